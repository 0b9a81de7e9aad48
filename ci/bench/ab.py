#!/usr/bin/env python3
"""`loadgen ab` against two separate runs and `loadgen compare`
(BENCHMARKS.md, "Issue 29"): the requests each needs to find a 10 %
first-token p95 regression past a 5 % tolerance, and the false alarms of
each over A/A repeats.

Two release refservers (`--profile fast`, first token FT ms (40), a
token each TI ms (3): exact delays, so what varies is the machine's doing, as
between two CI runs), the candidate with `--slower-first-token 10`; an open model at
RATE/s, Poisson arrivals, OpenAI chat, 24 tokens an answer. Both methods
judge one objective, first token p95 within +5 %, at 95 % confidence:
- ab: `loadgen ab --objective first_token.p95=5%` until it decides; the
  requests are both targets' (two a pair).
- compare: a run of N requests at each target, then `loadgen compare
  --tolerance latency_ms.first_token.p95=5%` (the row of that figure;
  its intervals decide); N climbs LADDER until it says "regressed"; the
  requests are 2N.
Then AA repeats of each with the baseline twice (ab: one server as both;
compare: two runs of one server at the N it needed), counting failures.

All of it beside a noisy neighbour (NOISE=1, the default): a process
that keeps one core busy for a spell, then idles for one (SPELLS=0.2,2:
0.2 to 2 s each, seeded), as another job on a shared CI runner does;
NOISE=0 for a quiet machine.

    python3 ci/bench/ab.py          # RATE=200 REPEATS=5 AA=20
    LENGTHS=1 FT=20 python3 ci/bench/ab.py   # prompts of many lengths, prefill
Prints one JSON line per measurement and a summary.
"""
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from aiperf import free_port  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "target/release"
RATE = int(os.environ.get("RATE", "200"))
# The servers' first token and token gap (ms): exact delays.
FT, TI = os.environ.get("FT", "40"), os.environ.get("TI", "3")
REPEATS = int(os.environ.get("REPEATS", "5"))
AA = int(os.environ.get("AA", "20"))
LADDER = [50, 100, 200, 400, 800, 1600, 3200, 6400]
NOISE = os.environ.get("NOISE", "1") == "1"
# PER_RUN=1: instead of one neighbour throughout, each run (each of
# compare's two, or one ab run: its targets run at once) draws whether a
# neighbour busy on one core runs beside it, as another CI job may or
# may not share the runner: the shift between two runs that pairing is
# for.
PER_RUN = os.environ.get("PER_RUN", "0") == "1"
COIN = __import__("random").Random(2029)
# How long the neighbour's busy and idle spells last (s): short ones hit
# two back-to-back runs alike; long ones (SPELLS=5,15) differ between them.
SPELLS = [float(x) for x in os.environ.get("SPELLS", "0.2,2").split(",")]
NEIGHBOUR = f"""
import random, time
r = random.Random(29)
while True:
    end = time.time() + r.uniform({SPELLS[0]}, {SPELLS[1]})
    while time.time() < end:
        pass
    time.sleep(r.uniform({SPELLS[0]}, {SPELLS[1]}))
"""
# LENGTHS=1: prompts of many lengths (cl100k_base, normal, mean 800
# tokens, sd 600, 32 to 3,000) and servers whose prefill takes a
# second for PREFILL tokens (the candidate's 10 % covers it too): the
# request-to-request spread of an LLM service, where a prompt costs the
# same on both builds. ab sends each prompt to both; compare's two runs
# draw their own (seeds differ, as two runs on two days would).
LENGTHS = os.environ.get("LENGTHS", "0") == "1"
PREFILL = os.environ.get("PREFILL", "20000")
OUT = Path(os.environ.get("OUT", "/tmp/ab-bench"))


def server(extra, log):
    port = free_port()
    p = subprocess.Popen(
        [str(BIN / "refserver"), "--listen", f"127.0.0.1:{port}", "--profile", "fast",
         "--first-token-ms", FT, "--token-interval-ms", TI, "--model-slots", "0", "--max-streams", "20000", "--log-level", "error",
         *(["--tokenizer", "cl100k_base", "--prefill-tokens-per-sec", PREFILL] if LENGTHS else []), *extra],
        stdout=open(log, "w"), stderr=subprocess.STDOUT)
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=1)
            return p, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    sys.exit("refserver did not start")


def scenario(seed, seconds):
    path = OUT / f"s-{seed}-{seconds}.toml"
    path.write_text(f"""name = "ab-bench"
duration = "{seconds}s"
warmup = "1s"
seed = {seed}
protocol = "openai-chat"
[openai]
model = "refserver"
max_tokens = 24
[load]
model = "open"
rate = {RATE}
arrival = "poisson"
max_users = 400
[request]
audio = false
repeat_ratio = 0.0
timeout = "10s"
""" + ("""[tokens]
tokenizer = "cl100k_base"
input = { dist = "normal", mean = 800, stddev = 600, min = 32, max = 3000 }
""" if LENGTHS else ""))
    return path


def beside(cmd):
    """Runs cmd, with a busy neighbour half the time when PER_RUN."""
    hog = None
    if PER_RUN and COIN.random() < 0.5:
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finally:
        if hog:
            hog.terminate()
            hog.wait()


def ab(base, cand, seed, out):
    """ab's verdict and the requests it took (both sides')."""
    cmd = [str(BIN / "loadgen"), "ab", str(scenario(seed, 120)), "-q", "--start-in", "2s",
           "--baseline", base, "--candidate", cand, "--objective", "first_token.p95=5%",
           "--out", str(out)]
    beside(cmd)
    r = json.loads((out / "ab.json").read_text())
    return r["verdict"], 2 * r["pairs"], r["objectives"][0]["worse_by"]


def run(url, seed, n, out):
    cmd = [str(BIN / "loadgen"), "run", str(scenario(seed, max(1, round(n / RATE)))), "-q",
           "--target", url, "--out", str(out)]
    beside(cmd)
    return out / "report.json"


def compare(b, c, out):
    """The first-token p95 row's word: regressed, inconclusive or ok."""
    subprocess.run([str(BIN / "loadgen"), "compare", str(b), str(c), "--out", str(out),
                    "--tolerance", "latency_ms.first_token.p95=5%"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for line in (out / "comparison.md").read_text().splitlines():
        if line.startswith("| latency_ms.first_token.p95 |"):
            word = line.rsplit("|", 2)[-2].lower()
            return "regressed" if "regress" in word else "inconclusive" if "inconclusive" in word else "ok"
    return "missing"


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    neighbour = subprocess.Popen([sys.executable, "-c", NEIGHBOUR]) if NOISE and not PER_RUN else None
    base_p, base = server([], OUT / "base.log")
    cand_p, cand = server(["--slower-first-token", "10"], OUT / "cand.log")
    results = {"ab": [], "compare": [], "ab_aa": [], "compare_aa": []}
    try:
        for seed in range(1, REPEATS + 1):
            verdict, requests, worse = ab(base, cand, seed, OUT / f"ab-{seed}")
            results["ab"].append({"seed": seed, "verdict": verdict, "requests": requests, "worse_by": worse})
            print(json.dumps({"method": "ab", **results["ab"][-1]}), flush=True)
            for n in LADDER:
                d = OUT / f"cmp-{seed}-{n}"
                word = compare(run(base, seed, n, d / "b"), run(cand, seed + 1000, n, d / "c"), d)
                print(json.dumps({"method": "compare", "seed": seed, "n": n, "row": word}), flush=True)
                if word == "regressed":
                    results["compare"].append({"seed": seed, "requests": 2 * n})
                    break
            else:
                results["compare"].append({"seed": seed, "requests": None})
        n_cmp = statistics.median([r["requests"] // 2 for r in results["compare"] if r["requests"]] or [LADDER[-1]])
        for k in range(AA):
            seed = 100 + k
            verdict, requests, _ = ab(base, base, seed, OUT / f"aa-{k}")
            results["ab_aa"].append(verdict)
            d = OUT / f"cmp-aa-{k}"
            word = compare(run(base, seed, n_cmp, d / "b"), run(base, seed + 1000, n_cmp, d / "c"), d)
            results["compare_aa"].append(word)
            print(json.dumps({"aa": k, "ab": verdict, "ab_requests": requests, "compare": word, "n": n_cmp}), flush=True)
    finally:
        base_p.terminate()
        cand_p.terminate()
        if neighbour:
            neighbour.terminate()
    ab_req = [r["requests"] for r in results["ab"] if r["verdict"] == "fail"]
    cmp_req = [r["requests"] for r in results["compare"] if r["requests"]]
    print(json.dumps({
        "rate": RATE,
        "noise": NOISE,
        "first_token_ms": FT,
        "spells_s": None if PER_RUN else SPELLS,
        "per_run": PER_RUN,
        "lengths": LENGTHS,
        "ab_detected": f"{len(ab_req)}/{REPEATS}",
        "ab_requests_median": statistics.median(ab_req) if ab_req else None,
        "compare_detected": f"{len(cmp_req)}/{REPEATS}",
        "compare_requests_median": statistics.median(cmp_req) if cmp_req else None,
        "ab_aa_false_alarms": f"{results['ab_aa'].count('fail')}/{AA}",
        "ab_aa_verdicts": results["ab_aa"],
        "compare_aa_false_alarms": f"{results['compare_aa'].count('regressed')}/{AA}",
        "compare_aa_rows": results["compare_aa"],
    }))


if __name__ == "__main__":
    main()
