#!/usr/bin/env bash
# Installs what the test suite needs and a fresh machine may lack. Safe to
# run again: it installs only what is missing. Needs root for apt-get.
set -euo pipefail

need_apt=()
# Each later component adds its line here, e.g.:
#   command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)

if [ ${#need_apt[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

command -v cargo >/dev/null 2>&1 || { echo "ci/install.sh: cargo is missing; install Rust (rustup) first" >&2; exit 2; }
