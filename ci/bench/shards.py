"""The sharded-run benchmark (BENCHMARKS.md, "Sharded runs"). Run by
ci/bench/shards.sh, which builds the release binaries.

1. Streams/s: the release reference server (fast profile, 50 ms first
   token, answers of ~100 tokens 5 ms apart, no model-slot or stream
   limit) at an open-model RATE, from one
   load-generator process, then from four shards of the same scenario
   started together (--start-at) and merged.
2. Concurrent streams: the same with 10 s answers (a token each 100 ms),
   so that RATE x 10 streams are open at once.
3. The merge: `loadgen merge` of four shards of one hour each (one
   interval-log entry a second per tag, RATE_PER_SHARD requests a second),
   written by the hour_of_shards example; its time and peak memory
   (/usr/bin/time).

Environment: OUT (default /tmp/shards-bench), RATE (default 300),
LONG_RATE (default 150), SECONDS (default 20), HOUR (default 3600),
RATE_PER_SHARD (default 25).
"""

import datetime
import json
import os
import shutil
import socket
import subprocess
import sys
import time

OUT = os.environ.get("OUT", "/tmp/shards-bench")
RATE = float(os.environ.get("RATE", "300"))
LONG_RATE = float(os.environ.get("LONG_RATE", "150"))
SECONDS = int(os.environ.get("SECONDS", "20"))
HOUR = int(os.environ.get("HOUR", "3600"))
RATE_PER_SHARD = int(os.environ.get("RATE_PER_SHARD", "25"))
LG = "target/release/loadgen"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server(token_ms):
    port = free_port()
    p = subprocess.Popen(
        ["target/release/refserver", "--listen", f"127.0.0.1:{port}", "--profile", "fast",
         "--first-token-ms", "50", "--token-interval-ms", str(token_ms),
         # The model and the stream limit out of the way: the clients are measured.
         "--model-slots", "0", "--max-streams", "20000", "--log-level", "error"],
        stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    return p, port


def scenario(path, name, port, rate):
    with open(path, "w") as f:
        f.write(f"""name = "{name}"
target = "http://127.0.0.1:{port}"
duration = "{SECONDS}s"
warmup = "3s"
[load]
model = "open"
rate = {rate}
max_users = {int(rate * 12) + 100}
[request]
audio = false
timeout = "30s"
""")


def figures(report):
    r = json.load(open(report))
    q = r["requests"]
    ft = r["scheduled_latency_ms"]["first_token"]
    sc = r["self_check"]
    return {
        "ok": q["ok"], "failed": q["failed"], "dropped": q["dropped"],
        "ok_per_s": round(q["ok"] / r["measured_s"], 1) if r["measured_s"] else None,
        "max_open_streams": max((s["active"] for s in r["timeseries"]), default=0),
        "first_token_p50_ms": ft["p50"], "first_token_p99_ms": ft["p99"],
        "trustworthy": sc["trustworthy"], "reasons": sc["reasons"],
        "client_cpu_avg_percent": sc.get("cpu_percent_avg"),
        "client_peak_rss_mb": sc.get("peak_rss_mb"),
        "verdict": r["verdict"],
    }


def compare(label, token_ms, rate):
    srv, port = server(token_ms)
    try:
        d = os.path.join(OUT, label)
        os.makedirs(d, exist_ok=True)
        sc = os.path.join(d, "scenario.toml")
        scenario(sc, label, port, rate)
        subprocess.run([LG, "run", sc, "--out", os.path.join(d, "one"), "-q"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        one = figures(os.path.join(d, "one", "report.json"))
        at = (datetime.datetime.now(datetime.timezone.utc)
              + datetime.timedelta(seconds=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
        shards = [subprocess.Popen([LG, "run", sc, "--shard", f"{i}/4", "--start-at", at,
                                    "--out", os.path.join(d, "four"), "-q"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                  for i in range(4)]
        for s in shards:
            s.wait()
        subprocess.run([LG, "merge", os.path.join(d, "four"), "--out", os.path.join(d, "merged")],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        four = figures(os.path.join(d, "merged", "report.json"))
        four["per_shard_peak_rss_mb"] = [
            json.load(open(os.path.join(d, "four", f"shard-{i}", "report.json")))["self_check"].get("peak_rss_mb")
            for i in range(4)]
        return {"rate": rate, "token_interval_ms": token_ms, "one_process": one, "four_shards": four}
    finally:
        srv.terminate()
        srv.wait()


def merge_hour():
    d = os.path.join(OUT, "hour")
    shutil.rmtree(d, ignore_errors=True)
    t = time.monotonic()
    subprocess.run(["target/release/examples/hour_of_shards", d, "4", str(HOUR), str(RATE_PER_SHARD)], check=True)
    written_s = time.monotonic() - t
    size = sum(os.path.getsize(os.path.join(root, f)) for root, _, fs in os.walk(d) for f in fs)
    timed = subprocess.run(["/usr/bin/time", "-f", "%e %M", LG, "merge", d, "--out", os.path.join(d, "merged")],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed, rss_kb = timed.stderr.strip().splitlines()[-1].split()
    r = json.load(open(os.path.join(d, "merged", "report.json")))
    return {"shards": 4, "seconds": HOUR, "requests": r["requests"]["total"],
            "input_mb": round(size / 1e6, 1), "written_s": round(written_s, 1),
            "merge_s": float(elapsed), "merge_peak_rss_mb": round(int(rss_kb) / 1024, 1),
            "verdict": r["verdict"]}


def main():
    os.makedirs(OUT, exist_ok=True)
    result = {
        "streams_per_s": compare("short", 5, RATE),
        "concurrent": compare("long", 100, LONG_RATE),
        "merge_hour": merge_hour(),
    }
    with open(os.path.join(OUT, "shards.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    sys.exit(main())
