#!/usr/bin/env bash
# How well ab's intervals hold their level (BENCHMARKS.md, "Issue 29",
# "Calibration"): one long A/A run of two reference servers, cut into
# windows, each window's interval checked against the known difference, 0.
#
#   bash ci/bench/ab_calibration.sh          # DURATION=150s RATE=200
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build -q -p server -p loadgen
python3 ci/bench/ab_calibration.py
