#!/usr/bin/env bash
# The CI performance gate: runs a scenario (against a service, or the
# embedded reference server), compares it with a committed baseline when
# one is given, writes report.md (and the comparison) to the job summary,
# and exits with the verdict: 0 pass, 1 SLO violated or regression, 2 error.
#
#   ci/perf-gate.sh SCENARIO [--target URL] [--baseline REPORT_JSON] [--out DIR]
#                   [--accept-inconclusive] [-- extra loadgen run flags]
#
# --accept-inconclusive is the comparison's: figures too few samples
# leave undecided (a p99 of fewer than 368 requests) do not fail it.
#
# Example (a PR against the last good run of main):
#   ci/perf-gate.sh scenarios/baseline.toml --baseline reports/baselines/baseline.json
set -uo pipefail
cd "$(dirname "$0")/.."

scenario="${1:?usage: ci/perf-gate.sh SCENARIO [--target URL] [--baseline FILE] [--out DIR] [--accept-inconclusive] [-- flags]}"
shift
target="" baseline="" out="perf-report" compare_flags=()
while [ $# -gt 0 ]; do
  case "$1" in
    --target) target="$2"; shift 2 ;;
    --baseline) baseline="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --accept-inconclusive) compare_flags+=(--accept-inconclusive); shift ;;
    --) shift; break ;;
    *) echo "ci/perf-gate.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

loadgen="${LOADGEN:-target/release/loadgen}"
if [ ! -x "$loadgen" ]; then
  cargo build --release -p loadgen || exit 2
fi

args=(run "$scenario" --out "$out" --quiet)
[ -n "$target" ] && args+=(--target "$target")
"$loadgen" "${args[@]}" "$@"
run_status=$?

summary="${GITHUB_STEP_SUMMARY:-/dev/null}"
[ -f "$out/report.md" ] && cat "$out/report.md" >> "$summary"

cmp_status=0
if [ -n "$baseline" ] && [ -f "$out/report.json" ]; then
  "$loadgen" compare "$baseline" "$out/report.json" "${compare_flags[@]}" > "$out/compare.md"
  cmp_status=$?
  cat "$out/compare.md"
  { echo; cat "$out/compare.md"; } >> "$summary"
fi

# The worst of the two: 2 (error) over 1 (violation) over 0.
status=$run_status
[ "$cmp_status" -gt "$status" ] && status=$cmp_status
exit "$status"
