#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the tests need when it
# is missing, then the quality gates (fmt, clippy's lints as errors) and
# every test (cargo-nextest, which this machine's image carries). Ends
# with one line: "tests: N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."

# The installs (apt and pip downloads, a minute or more on a clean CI
# machine) go on while the suite compiles, which needs none of them;
# the tests start only after both are done.
command -v cargo-nextest >/dev/null 2>&1 || cargo install --locked cargo-nextest
log=$(mktemp)
install_log=$(mktemp)
trap 'rm -f "$log" "$install_log"' EXIT
bash ci/install.sh >"$install_log" 2>&1 &
install_pid=$!

# A clean CI build gains nothing from incremental compilation; it only
# doubles the target folder (the disk ran out once on CI).
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL=0; fi

cargo fmt --all -- --check

# Clippy's lints run inside the test build: clippy-driver as the
# workspace's compiler wrapper is what `cargo clippy` does, with code
# generation, so the dependencies are compiled once instead of checked
# once and built once. `-D warnings` is `cargo clippy -- -D warnings`'s
# gate (dependencies keep cargo's --cap-lints). --all-targets builds the
# benches and examples as clippy --all-targets lints them (a criterion
# bench run as a test runs each benchmark once). A fresh clone on the
# 2-vCPU machine: clippy then the test build took 271 + 202 s; this one
# build, 350 s; with the dependencies unoptimized, 160 s (BENCHMARKS.md).
# jemalloc's make builds a static library twice, without and with PIC;
# tikv-jemalloc-sys links only the PIC one (libjemalloc_pic.a). A
# variable given in MAKEFLAGS overrides the Makefile's list, so only that
# one is built: make took 26 s and 41 CPU-s instead of 41 s and 67 CPU-s at -j2 (BENCHMARKS.md).
export MAKEFLAGS="${MAKEFLAGS:-} STATIC_LIBS=lib/libjemalloc_pic.a"
export RUSTC_WORKSPACE_WRAPPER="${RUSTC_WORKSPACE_WRAPPER:-clippy-driver}"
export RUSTFLAGS="${RUSTFLAGS:-} -D warnings"

# nextest runs every test as its own process. The tests that judge
# timing (.config/nextest.toml: the override that gives a test every
# thread) run one at a time at the usual priority, and nothing else runs
# at that priority beside them. First the longest of them, which keep
# the machine mostly idle (the override of priority 100: the capacity
# searches, the soak), with every test that does not judge timing beside
# them, six at a time, in the idle scheduling class (`chrt --idle`: the
# kernel gives them only a core nothing else wants, and a timing test's
# thread that wakes takes its core back at once); then, when both are
# done, the other timing tests. One after the other the test phase took
# 508 s (BENCHMARKS.md, "Issue 27").
status=0
# Built first, then written to disk, then run. A fresh build leaves about
# 2.6 GB of binaries for the kernel to write back, 30 s after writing
# them; in a fresh-clone run the second timing test, 10-14 s after the
# build, saw the machine busy for 3 s (first tokens 10 % slower, one arm
# of an `ab` run 11-13 % worse than the other: BENCHMARKS.md "Issue
# 29"). `sync` gets that writeback done before any test starts.
cargo nextest run --workspace --all-targets --no-run 2>&1 | tee "$log" || status=$?
if ! wait "$install_pid"; then
  cat "$install_log" >&2
  echo "ci/test.sh: ci/install.sh failed (its output above); the tests need what it installs" >&2
  exit 2
fi
cat "$install_log"
sync
# The two filters, as .config/nextest.toml writes them.
filters=$(python3 -c 'import tomllib
o = tomllib.load(open(".config/nextest.toml", "rb"))["profile"]["default"]["overrides"]
print(next(x["filter"] for x in o if x.get("threads-required") == "num-test-threads").replace("\n", " "))
print(next(x["filter"] for x in o if x.get("priority") == 100 and "threads-required" not in x).replace("\n", " "))')
alone=$(sed -n 1p <<<"$filters")
first=$(sed -n 2p <<<"$filters")
beside_log=$(mktemp)
trap 'rm -f "$log" "$install_log" "$beside_log"' EXIT
if [ "$status" = 0 ]; then
  chrt --idle 0 cargo nextest run --workspace --all-targets --no-fail-fast --profile beside \
    -E "not ($alone)" >"$beside_log" 2>&1 &
  beside_pid=$!
  cargo nextest run --workspace --all-targets --no-fail-fast --profile first -E "$first" 2>&1 |
    tee "$log" || status=$?
  wait "$beside_pid" || status=$?
  tee -a "$log" <"$beside_log"
  cargo nextest run --workspace --all-targets --no-fail-fast -E "($alone) & not ($first)" 2>&1 |
    tee -a "$log" || status=$?
fi
awk '/^ *Summary \[/ { for (i = 1; i < NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
