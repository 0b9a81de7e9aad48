#!/usr/bin/env bash
# The sharded-run benchmark (BENCHMARKS.md, "Sharded runs"): four shard
# processes against one shard alone on this machine (streams/s, concurrent
# streams), and `loadgen merge` of an hour of four shards' files (time,
# peak memory).
#
#   bash ci/bench/shards.sh             # OUT=/tmp/shards-bench
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q -p server -p loadgen
cargo build --release -q -p loadgen --example hour_of_shards
ulimit -n 20000
python3 ci/bench/shards.py
