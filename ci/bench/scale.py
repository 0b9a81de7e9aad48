"""How far one load-generator process goes (BENCHMARKS.md, "Scale"): N
closed users against a release refserver whose streams stay open (a first
token after FIRST_MS, then a token a second), the server pinned to core 0
and the load generator to core 1. Every SAMPLE seconds: both processes'
resident memory and the server's open streams (its summary endpoint).

Prints, as JSON: when the last stream opened (seconds after the load
generator was started, and its ramp_up), the memory per open stream of
each process (least squares of RSS against open streams over the ramp),
their RSS at N streams, and the run's self-check from report.json.

Run by ci/bench/scale.sh (which builds the release binaries). Environment:
USERS (default 10000), RAMP (s, default 8), HOLD (s after the ramp,
default 6), FIRST_MS (default 4000), SAMPLE (default 0.25), OUT.
"""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

from soak import free_port, rss_mb, scenario_file

USERS = int(os.environ.get("USERS", "10000"))
RAMP = float(os.environ.get("RAMP", "8"))
HOLD = float(os.environ.get("HOLD", "6"))
FIRST_MS = int(os.environ.get("FIRST_MS", "4000"))
SAMPLE = float(os.environ.get("SAMPLE", "0.25"))
OUT = os.environ.get("OUT", "/tmp/scale")


def active(port):
    url = f"http://127.0.0.1:{port}/api/metrics/streaming/summary"
    with urllib.request.urlopen(url, timeout=2) as r:
        return int(json.load(r)["summary"]["activeStreams"])


def per_stream_kib(points):
    """Least-squares slope of (streams, MB) points, in KiB per stream."""
    n = len(points)
    mx = sum(s for s, _ in points) / n
    my = sum(m for _, m in points) / n
    sxx = sum((s - mx) ** 2 for s, _ in points)
    sxy = sum((s - mx) * (m - my) for s, m in points)
    return sxy / sxx * 1024 if sxx else float("nan")


def main():
    os.makedirs(OUT, exist_ok=True)
    port = free_port()
    server = subprocess.Popen(
        ["taskset", "-c", "0", "target/release/refserver", "--listen", f"127.0.0.1:{port}",
         "--profile", "fast", "--first-token-ms", str(FIRST_MS), "--token-interval-ms", "1000",
         "--model-slots", "0", "--max-streams", "20000", "--max-connections", "20000",
         "--log-level", "error"],
        stdout=subprocess.DEVNULL)
    try:
        return run(server, port)
    finally:
        server.terminate()
        server.wait()


def run(server, port):
    for _ in range(50):
        try:
            active(port)
            break
        except OSError:
            time.sleep(0.1)
    scenario = scenario_file(
        os.path.join(OUT, "scale.toml"), "scale-bench", port, RAMP + HOLD + 120,
        {"model": "closed", "users": USERS, "ramp_up": f"{RAMP}s"},
        {"audio": False, "timeout": "300s"})
    server_idle = rss_mb(server.pid)
    started = time.monotonic()
    loadgen = subprocess.Popen(
        ["taskset", "-c", "1", "target/release/loadgen", "run", scenario,
         "--out", os.path.join(OUT, "run"), "-q"],
        stdout=subprocess.DEVNULL)
    samples, all_open = [], None
    try:
        while loadgen.poll() is None:
            t = time.monotonic() - started
            if t > RAMP + HOLD:
                # Streams last ~100 s: stop the run as a user would (the
                # streams in flight are counted as interrupted).
                loadgen.send_signal(signal.SIGINT)
                break
            try:
                s = active(port)
                samples.append((t, s, rss_mb(loadgen.pid), rss_mb(server.pid)))
            except (OSError, RuntimeError):
                pass
            if all_open is None and samples and samples[-1][1] >= USERS:
                all_open = samples[-1][0]
            time.sleep(SAMPLE)
    finally:
        loadgen.wait()
    with open(os.path.join(OUT, "samples.json"), "w") as f:
        json.dump(samples, f)
    ramp = [x for x in samples if 0.1 * USERS <= x[1] <= USERS]
    full = max(samples, key=lambda x: (x[1], -x[0]))
    report = json.load(open(os.path.join(OUT, "run", "report.json")))
    check = report["self_check"]
    result = {
        "users": USERS,
        "ramp_up_s": RAMP,
        "all_open_after_s": all_open,
        "most_open": full[1],
        "loadgen_kib_per_stream": round(per_stream_kib([(x[1], x[2]) for x in ramp]), 1),
        "server_kib_per_stream": round(per_stream_kib([(x[1], x[3]) for x in ramp]), 1),
        "loadgen_rss_mb_at_most": round(full[2], 1),
        "server_rss_mb_at_most": round(full[3], 1),
        "server_rss_mb_idle": round(server_idle, 1),
        "loadgen_exit": loadgen.returncode,
        "trustworthy": check["trustworthy"],
        "lag_p99_ms": check["scheduler_lag_ms"]["p99"],
        "lag_max_ms": check["scheduler_lag_ms"]["max"],
        "cpu_avg": round(check["cpu_percent_avg"], 1),
        "requests": report["requests"]["total"],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
