#!/usr/bin/env bash
# loadgen ab against two runs and loadgen compare (BENCHMARKS.md, "Issue
# 29"): builds the release binaries, then runs ci/bench/ab.py.
#
#   bash ci/bench/ab.sh                      # RATE=200 REPEATS=5 AA=20
#   RATE=100 REPEATS=3 AA=5 bash ci/bench/ab.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q -p server -p loadgen
ulimit -n 20000
python3 ci/bench/ab.py
