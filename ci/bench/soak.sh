#!/usr/bin/env bash
# The soak benchmark (BENCHMARKS.md, "Soak"): the reference server and the
# load generator for an hour at a steady open-model load, both processes'
# resident memory sampled every minute, and the slope of each (MB/hour).
#
#   bash ci/bench/soak.sh                       # DURATION=3600 SAMPLE=60 RATE=20
#   DURATION=600 SAMPLE=30 bash ci/bench/soak.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q -p server -p loadgen
ulimit -n 20000
python3 ci/bench/soak.py
