#!/usr/bin/env bash
# The action's loadgen: built from the action's own source with
# `cargo install --locked --path loadgen` into CHATLOAD_BIN_DIR (which
# actions/cache keeps between runs, keyed on Cargo.lock and the action's
# ref), unless it is already there; then put on the job's PATH.
set -euo pipefail
src="${GITHUB_ACTION_PATH:-$(cd "$(dirname "$0")/../.." && pwd)}"
bin_dir="${CHATLOAD_BIN_DIR:-$src/target/chatload}"
if [ ! -x "$bin_dir/bin/loadgen" ]; then
  command -v cargo >/dev/null 2>&1 || {
    echo "chatload: cargo is missing: add a Rust toolchain step (e.g. dtolnay/rust-toolchain@stable) before this action" >&2
    exit 2
  }
  # The action's checkout has no git history: its ref names the build.
  export LOADGEN_COMMIT="${LOADGEN_COMMIT:-${GITHUB_ACTION_REF:-}}"
  CARGO_TARGET_DIR="$bin_dir/build" cargo install --locked --path "$src/loadgen" --root "$bin_dir"
fi
# The gate's script beside it, so that a cached binary needs no source.
cp "$src/ci/action/gate.sh" "$bin_dir/bin/chatload-gate"
chmod +x "$bin_dir/bin/chatload-gate"
[ -n "${GITHUB_PATH:-}" ] && echo "$bin_dir/bin" >> "$GITHUB_PATH"
"$bin_dir/bin/loadgen" --version
