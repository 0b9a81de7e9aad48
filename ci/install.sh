#!/usr/bin/env bash
# Installs what the test suite needs and a fresh machine may lack. Safe to
# run again: it installs only what is missing. Needs root for apt-get.
set -euo pipefail

need_apt=()
# A real Prometheus scrapes the reference server; promtool tests the rules.
{ command -v prometheus && command -v promtool; } >/dev/null 2>&1 || need_apt+=(prometheus)
# The HTML report is opened in headless Chromium by the tests.
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
# junit.xml is validated against ci/junit.xsd with xmllint.
command -v xmllint >/dev/null 2>&1 || need_apt+=(libxml2-utils)
# `script` gives the progress-line test a terminal.
command -v script >/dev/null 2>&1 || need_apt+=(bsdutils)

if [ ${#need_apt[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

command -v cargo >/dev/null 2>&1 || { echo "ci/install.sh: cargo is missing; install Rust (rustup) first" >&2; exit 2; }
