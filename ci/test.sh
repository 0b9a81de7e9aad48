#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the tests need when it
# is missing, then the quality gates (fmt, clippy) and every test.
set -euo pipefail
cd "$(dirname "$0")/.."

bash ci/install.sh

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
