#!/usr/bin/env bash
# One trace replayed by our load generator, GuideLLM and inference-perf
# (BENCHMARKS.md, "Issue 28"): installs tcpdump (Debian) and each tool in a
# venv of its own from PyPI when missing (GuideLLM ~0.8, inference-perf
# 0.7, whose wheel says Python 3.12 or later but runs on Debian 12's 3.11:
# it is installed without its Python check and its dependencies resolved
# for 3.11), builds the release binaries and runs ci/bench/llm_peers.py.
#
#   bash ci/bench/llm_peers.sh                  # RATE=500 DURATION=20
#   RATE=100 DURATION=10 TOOLS=ours,guidellm bash ci/bench/llm_peers.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v tcpdump >/dev/null || apt-get install -y -q tcpdump >/dev/null
python3 -c 'import tokenizers' 2>/dev/null || python3 -m pip install -q --disable-pip-version-check tokenizers==0.22.1
export GUIDELLM=${GUIDELLM:-/tmp/venv-guidellm/bin/guidellm}
export INFERENCE_PERF=${INFERENCE_PERF:-/tmp/venv-iperf/bin/inference-perf}
if [ ! -x "$GUIDELLM" ]; then
  python3 -m venv /tmp/venv-guidellm
  /tmp/venv-guidellm/bin/pip install -q --disable-pip-version-check guidellm
fi
if [ ! -x "$INFERENCE_PERF" ]; then
  python3 -m venv /tmp/venv-iperf
  pip=/tmp/venv-iperf/bin/pip
  $pip download -q --disable-pip-version-check --no-deps --python-version 3.12 --only-binary=:all: \
    inference-perf==0.7.0 -d /tmp/venv-iperf/wheel
  $pip install -q --disable-pip-version-check --no-deps --ignore-requires-python /tmp/venv-iperf/wheel/inference_perf-*.whl
  $pip install -q --disable-pip-version-check "aiohttp>=3.11.11" "pydantic>=2.10.6" "numpy>=2.2.2" \
    "datasets>=3.3.2" "transformers==5.13.0" "jinja2>=3.1.0" "google-cloud-storage>=3.1.0" \
    "pyyaml>=6.0.2" "boto3>=1.39.0" "uvloop>=0.21.0" "tqdm>=4.67.1" "aiofiles>=25.1.0" \
    "tiktoken>=0.12.0" "rich>=13.0.0" "av>=13.0.0" "pillow>=10.0.0" "prometheus-client>=0.20.0"
fi
cargo build --release -q -p server -p loadgen
ulimit -n 20000
python3 ci/bench/llm_peers.py
