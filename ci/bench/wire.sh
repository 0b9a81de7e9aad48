#!/usr/bin/env bash
# The load generator's first-token error against the wire (BENCHMARKS.md).
# For each N in USERS and each of RUNS runs: a release refserver pinned to
# core 0 with an exact 100 ms first token, tcpdump on lo (pinned to core 0
# too), and loadgen (bench-client scenario, N closed users) pinned to core
# 1; then ci/bench/wire.py compares every request's first-token stamp with
# the packets. Prints one line per run: N, run, the error (client - wire)
# p50/p99/max in ms, requests matched, and the run's self-check.
#
#   bash ci/bench/wire.sh                   # USERS="100 1000" RUNS=3 DURATION=15s
#   USERS=1000 RUNS=5 bash ci/bench/wire.sh
#   USERS=10000 TOKEN_MS=200 RUNS=1 bash ci/bench/wire.sh
#   STALL=8s,1500ms USERS=1000 RUNS=1 bash ci/bench/wire.sh   # inject a client stall
#     (the test hook LOADGEN_TEST_STALL): the self-check must not trust the run
#   SCRAPES=5 USERS=1000 bash ci/bench/wire.sh   # with 5 [[scrape]] endpoints read
#     every second (a second, idle refserver's /metrics with the vLLM preset,
#     on a port tcpdump does not watch), issue 30's benchmark
#
# Needs root for tcpdump (Debian package, installed here when missing).
set -euo pipefail
cd "$(dirname "$0")/../.."
USERS=${USERS:-"100 1000"}
RUNS=${RUNS:-3}
DURATION=${DURATION:-15s}
OUT=${OUT:-/tmp/wire-bench}
PORT=${PORT:-5300}
SCRAPES=${SCRAPES:-0}
SCRAPE_PORT=${SCRAPE_PORT:-5301}
TOKEN_MS=${TOKEN_MS:-50}   # the server's gap between tokens (200 for 10,000 streams)

command -v tcpdump >/dev/null || { apt-get update -qq && apt-get install -y -qq tcpdump; }
cargo build --release -q -p server -p loadgen
ulimit -n 20000
mkdir -p "$OUT"

# The scenario: bench-client, plus SCRAPES [[scrape]] entries.
scenario=scenarios/bench-client.toml
scraped=""
if [ "$SCRAPES" -gt 0 ]; then
  scenario="$OUT/bench-client-scrapes.toml"
  { cat scenarios/bench-client.toml
    for i in $(seq 1 "$SCRAPES"); do
      printf '\n[[scrape]]\nname = "s%d"\nurl = "http://127.0.0.1:%s/metrics"\npreset = "vllm"\ninterval = "1s"\n' "$i" "$SCRAPE_PORT"
    done
  } > "$scenario"
  taskset -c 0 target/release/refserver --listen "127.0.0.1:$SCRAPE_PORT" --profile fast --log-level error \
    > "$OUT/scraped-server.log" 2>&1 &
  scraped=$!
  trap 'kill "$scraped" 2>/dev/null || true' EXIT
fi

for n in $USERS; do
  for run in $(seq 1 "$RUNS"); do
    dir="$OUT/n$n-run$run"
    rm -rf "$dir"; mkdir -p "$dir"
    taskset -c 0 target/release/refserver --listen "127.0.0.1:$PORT" --profile fast \
      --first-token-ms 100 --token-interval-ms "$TOKEN_MS" --model-slots 0 --max-streams 20000 \
      --log-level error > "$dir/server.log" 2>&1 &
    server=$!
    for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/api/metrics/streaming/summary" >/dev/null && break; sleep 0.1; done
    taskset -c 0 tcpdump -i lo -s 0 -U -n --time-stamp-precision=nano \
      -w "$dir/lo.pcap" "tcp port $PORT" 2> "$dir/tcpdump.log" &
    dump=$!
    sleep 1
    status=0
    LOADGEN_TEST_STALL=${STALL:-} taskset -c 1 target/release/loadgen run "$scenario" \
      --target "http://127.0.0.1:$PORT" --users "$n" --duration "$DURATION" \
      --out "$dir/run" -q > "$dir/loadgen.log" 2>&1 || status=$?
    sleep 1
    kill "$dump" "$server" 2>/dev/null || true
    wait "$dump" "$server" 2>/dev/null || true
    wire=$(python3 ci/bench/wire.py "$dir/lo.pcap" "$dir/run" --port "$PORT")
    check=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); c=r["self_check"]; q=r["requests"]; print(json.dumps({"exit": int(sys.argv[2]), "scrapes": len(r.get("engine") or {}), "requests": q["total"], "ok": q["ok"], "trustworthy": c["trustworthy"], "lag_p99_ms": c["scheduler_lag_ms"]["p99"], "lag_max_ms": c["scheduler_lag_ms"]["max"], "stalls": c["stalls"], "stalled_requests": c["stalled_requests"], "cpu_avg": round(c["cpu_percent_avg"], 1)}))' "$dir/run/report.json" "$status")
    echo "users=$n run=$run wire=$wire client=$check"
    rm -f "$dir/lo.pcap"
  done
done
