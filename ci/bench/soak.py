"""The soak benchmark (BENCHMARKS.md, "Soak"): the reference server and the
load generator as two processes, a steady load for DURATION seconds, both
processes' resident memory sampled every SAMPLE seconds, and the slope of
each (least squares over the samples after the warm-up, MB per hour).

Run by ci/bench/soak.sh (which builds the release binaries). Environment:
DURATION (s, default 3600), SAMPLE (s, default 60), RATE (requests/s,
default 20), OUT (default /tmp/soak).
"""

import json
import os
import socket
import subprocess
import sys
import time

DURATION = int(os.environ.get("DURATION", "3600"))
SAMPLE = int(os.environ.get("SAMPLE", "60"))
RATE = float(os.environ.get("RATE", "20"))
OUT = os.environ.get("OUT", "/tmp/soak")
WARMUP = min(300, DURATION // 6)


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def slope_per_hour(points):
    """Least-squares slope of (seconds, MB) points, in MB per hour."""
    n = len(points)
    if n < 2:
        return float("nan")
    mx = sum(t for t, _ in points) / n
    my = sum(m for _, m in points) / n
    sxx = sum((t - mx) ** 2 for t, _ in points)
    sxy = sum((t - mx) * (m - my) for t, m in points)
    return sxy / sxx * 3600 if sxx else float("nan")


def scenario_file(path, name, port, duration_s, load, request):
    """Writes a scenario against 127.0.0.1:PORT without warm-up; `load`
    and `request` are their tables' keys and values. Returns `path`."""
    lines = [f'name = "{name}"', f'target = "http://127.0.0.1:{port}"',
             f'duration = "{duration_s}s"', 'warmup = "0s"']
    for table, keys in (("load", load), ("request", request)):
        lines.append(f"[{table}]")
        # JSON's strings, numbers and booleans are TOML's too.
        lines += [f"{k} = {json.dumps(v)}" for k, v in keys.items()]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    os.makedirs(OUT, exist_ok=True)
    port = free_port()
    server = subprocess.Popen(
        ["target/release/refserver", "--listen", f"127.0.0.1:{port}",
         "--profile", "fast", "--first-token-ms", "50", "--token-interval-ms", "20",
         "--log-level", "error"],
        stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    scenario = scenario_file(
        os.path.join(OUT, "soak.toml"), "soak-bench", port, DURATION,
        {"model": "open", "rate": RATE, "max_users": 200},
        {"audio": True, "repeat_ratio": 0.6, "timeout": "30s"})
    loadgen = subprocess.Popen(
        ["target/release/loadgen", "run", scenario, "--out", os.path.join(OUT, "run"), "-q"],
        stdout=subprocess.DEVNULL)
    samples = []
    t0 = time.monotonic()
    try:
        while loadgen.poll() is None and time.monotonic() - t0 < DURATION:
            t = time.monotonic() - t0
            samples.append((t, rss_mb(server.pid), rss_mb(loadgen.pid)))
            print(f"{t:7.0f} s  server {samples[-1][1]:7.1f} MB  loadgen {samples[-1][2]:7.1f} MB", flush=True)
            time.sleep(SAMPLE)
        loadgen.wait()
    finally:
        server.terminate()
        server.wait()
    after = [s for s in samples if s[0] >= WARMUP]
    result = {
        "duration_s": DURATION, "sample_s": SAMPLE, "rate": RATE, "warmup_s": WARMUP,
        "samples": samples,
        "server_mb_per_hour": slope_per_hour([(t, a) for t, a, _ in after]),
        "loadgen_mb_per_hour": slope_per_hour([(t, b) for t, _, b in after]),
    }
    with open(os.path.join(OUT, "run", "report.json")) as f:
        r = json.load(f)
    result["requests"] = r["requests"]
    with open(os.path.join(OUT, "soak.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}, indent=1))


if __name__ == "__main__":
    sys.exit(main())
