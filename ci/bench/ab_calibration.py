"""ab's intervals against a known truth (BENCHMARKS.md, "Issue 29").

Two reference servers alike (the debug builds the tests use), one
`loadgen ab` run between them with an objective no run can decide
(tolerance 0 at a confidence of 1 - 1e-12), so it runs to its cap. Its
pairs, in arrival order, are cut into windows of 100 to 1,600; in each,
the first-token p95 difference over its bootstrap standard error should
pass the look's quantile (one-sided 0.7 %, z = 2.45, 1.4 % two-sided) as
rarely as that. Both ways of resampling are shown: single pairs with the
normal quantile (what ab did first), blocks of ceil(sqrt(n)) pairs with
Student's t (what it does).
"""

import csv
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from aiperf import free_port  # noqa: E402

DURATION = os.environ.get("DURATION", "150s")
RATE = int(os.environ.get("RATE", "200"))
BIN = "target/debug"
Z = 2.45  # a look's one-sided 0.7 %: seven looks at alpha 0.05


def run(out):
    flags = ["--profile", "fast", "--first-token-ms", "40", "--token-interval-ms", "3"]
    ports = [free_port(), free_port()]
    servers = [
        subprocess.Popen([f"{BIN}/refserver", "--listen", f"127.0.0.1:{p}", "--log-level", "error", *flags],
                         stdout=subprocess.DEVNULL)
        for p in ports
    ]
    try:
        time.sleep(1)
        scenario = os.path.join(out, "aa.toml")
        with open(scenario, "w") as f:
            f.write(f'name = "aa"\nduration = "{DURATION}"\nwarmup = "0.5s"\nseed = 1\n'
                    'protocol = "openai-chat"\n[openai]\nmodel = "refserver"\nmax_tokens = 24\n'
                    f'[load]\nmodel = "open"\nrate = {RATE}\narrival = "poisson"\nmax_users = 200\n'
                    '[request]\naudio = false\nrepeat_ratio = 0.0\ntimeout = "5s"\n')
        subprocess.run([f"{BIN}/loadgen", "ab", scenario, "-q", "--start-in", "1s",
                        "--baseline", f"http://127.0.0.1:{ports[0]}",
                        "--candidate", f"http://127.0.0.1:{ports[1]}",
                        "--objective", "first_token.p95=0%", "--confidence", "0.999999999999",
                        "--out", os.path.join(out, "ab")], check=False)
    finally:
        for s in servers:
            s.kill()


def first_tokens(path):
    got = {}
    with open(path) as f:
        for r in csv.DictReader(f):
            if r["warmup"] == "false" and r["outcome"] == "ok" and r["first_token_us"]:
                got[int(r["arrival"])] = int(r["first_token_us"]) / 1000
    return got


def p95(v):
    v = sorted(v)
    return v[max(1, min(len(v), math.ceil(0.95 * len(v)))) - 1]


def worse_by(pairs):
    b, c = p95([p[0] for p in pairs]), p95([p[1] for p in pairs])
    return (c - b) / b * 100


def se(pairs, block, rng, resamples=200):
    n = len(pairs)
    diffs = []
    for _ in range(resamples):
        s = []
        while len(s) < n:
            start = rng.randrange(n)
            s.extend(pairs[(start + k) % n] for k in range(min(block, n - len(s))))
        diffs.append(worse_by(s))
    m = sum(diffs) / len(diffs)
    return math.sqrt(sum((d - m) ** 2 for d in diffs) / (len(diffs) - 1))


def t_upper(z, df):
    return (z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="ab-calibration-")
    if not os.path.exists(os.path.join(out, "ab")):
        run(out)
    b = first_tokens(os.path.join(out, "ab/baseline/requests.csv"))
    c = first_tokens(os.path.join(out, "ab/candidate/requests.csv"))
    pairs = [(b[k], c[k]) for k in sorted(set(b) & set(c))]
    print(f"{len(pairs)} A/A pairs in {out}; the difference is 0")
    print("| pairs a window | windows | single pairs, z: missed | blocks of ceil(sqrt n), t: missed |")
    print("| --- | --- | --- | --- |")
    rng = random.Random(1)
    for w in (100, 200, 400, 800, 1600):
        block = math.ceil(math.sqrt(w))
        t = t_upper(Z, math.ceil(w / block) - 1)
        windows = [pairs[i:i + w] for i in range(0, len(pairs) - w + 1, w)]
        single = sum(abs(worse_by(p)) > Z * se(p, 1, rng) for p in windows)
        blocks = sum(abs(worse_by(p)) > t * se(p, block, rng) for p in windows)
        n = len(windows)
        print(f"| {w} | {n} | {single} ({100 * single / n:.1f} %) | {blocks} ({100 * blocks / n:.1f} %) |")


if __name__ == "__main__":
    main()
