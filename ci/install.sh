#!/usr/bin/env bash
# Installs what the test suite needs and a fresh machine may lack. Safe to
# run again: it installs only what is missing. Needs root for apt-get.
set -euo pipefail

need_apt=()
# A real Prometheus scrapes the reference server; promtool tests the rules.
{ command -v prometheus && command -v promtool; } >/dev/null 2>&1 || need_apt+=(prometheus)
# An exporter none of our code wrote, read by `[[scrape]]`.
command -v prometheus-node-exporter >/dev/null 2>&1 || need_apt+=(prometheus-node-exporter)
# The HTML report is opened in headless Chromium by the tests.
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
# junit.xml is validated against ci/junit.xsd with xmllint.
command -v xmllint >/dev/null 2>&1 || need_apt+=(libxml2-utils)
# A real Redis for the reference server's Redis caches.
{ command -v redis-server && command -v redis-cli; } >/dev/null 2>&1 || need_apt+=(redis-server)
# nginx is the TLS-terminating proxy of the HTTPS tests; openssl makes
# their certificates.
command -v nginx >/dev/null 2>&1 || need_apt+=(nginx-light)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
# Admin actions from a non-loopback address: a network namespace (ip)
# and a client inside it (curl).
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
# `script` gives the progress-line test a terminal; tmux the live view's
# (its screen read back with capture-pane).
command -v script >/dev/null 2>&1 || need_apt+=(bsdutils)
command -v tmux >/dev/null 2>&1 || need_apt+=(tmux)

if [ ${#need_apt[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

# A third-party OpenAI-compatible server none of our code wrote: mockllm
# from PyPI (FastAPI + uvicorn), for the openai-chat test against it.
command -v python3 >/dev/null 2>&1 || { echo "ci/install.sh: python3 is missing (apt-get install python3 python3-pip)" >&2; exit 2; }
python3 -c 'import mockllm, uvicorn' >/dev/null 2>&1 || python3 -m pip install -q --disable-pip-version-check 'mockllm==0.0.8'
# An OpenAI-compatible mock that lists its models (/v1/models), for
# `loadgen init` against a server none of our code wrote.
python3 -c 'import llmock' >/dev/null 2>&1 || python3 -m pip install -q --disable-pip-version-check 'llmock==0.2.2'
# The published schemas of GitHub Actions and GitLab CI files, which
# action.yml and ci/gitlab/ are validated against.
command -v check-jsonschema >/dev/null 2>&1 || python3 -m pip install -q --disable-pip-version-check 'check-jsonschema==0.33.2'
# An SSE client none of our code wrote, for the server's stream test.
python3 -c 'import sseclient' >/dev/null 2>&1 || python3 -m pip install -q --disable-pip-version-check 'sseclient-py==1.9.0'
# Hugging Face's tokenizers: ci/tokenizer.py trains and saves a real
# tokenizer.json for the tests of any tokenizer a user points at.
python3 -c 'import tokenizers' >/dev/null 2>&1 || python3 -m pip install -q --disable-pip-version-check 'tokenizers==0.22.1'
# The Kubernetes manifests of ci/k8s are validated offline against the
# Kubernetes schemas it carries (it brings PyYAML, which the test reads
# the manifests with).
command -v kubernetes-validate >/dev/null 2>&1 || python3 -m pip install -q --disable-pip-version-check 'kubernetes-validate==1.34.1'

command -v cargo >/dev/null 2>&1 || { echo "ci/install.sh: cargo is missing; install Rust (rustup) first" >&2; exit 2; }
# The suite's runner: every test its own process, the timing tests alone
# (.config/nextest.toml). The machine's image carries it; elsewhere it is
# built from crates.io.
command -v cargo-nextest >/dev/null 2>&1 || cargo install --locked cargo-nextest
