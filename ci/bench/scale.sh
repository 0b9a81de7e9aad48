#!/usr/bin/env bash
# One load-generator process at scale (BENCHMARKS.md, "Scale"): N closed
# users holding open streams; launch time, memory per stream of both
# processes, the self-check. See ci/bench/scale.py.
#
#   bash ci/bench/scale.sh                          # USERS=10000 RAMP=8
#   USERS=15000 RAMP=10 bash ci/bench/scale.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q -p server -p loadgen
ulimit -n 20000
python3 ci/bench/scale.py
