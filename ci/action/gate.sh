#!/usr/bin/env bash
# The performance gate, as the GitHub Action (action.yml), the GitLab
# template (ci/gitlab/chatload.gitlab-ci.yml) and ci/perf-gate.sh run it.
# Reads CHATLOAD_* variables, runs the scenario (or `loadgen ab` when
# both CHATLOAD_BASELINE_URL and CHATLOAD_CANDIDATE_URL are set),
# compares with CHATLOAD_BASELINE when given, appends report.md (and the
# comparison) to the job summary, and records the verdict. Its own exit
# status is the gate's: 0 pass, 1 SLO violated or regression, 2 usage or
# run error. Nothing here fails silently: a missing report is an error.
#
#   CHATLOAD_SCENARIO         the scenario file (required)
#   CHATLOAD_TARGET           the service's URL (empty: the scenario's, or the embedded reference server)
#   CHATLOAD_SLO              an SLO file over the scenario's
#   CHATLOAD_FAIL_ON          target | warning | critical (empty: warning)
#   CHATLOAD_BASELINE         a baseline run's report.json (or its folder): `loadgen compare`
#   CHATLOAD_BASELINE_URL     with CHATLOAD_CANDIDATE_URL: `loadgen ab` between two services
#   CHATLOAD_CANDIDATE_URL
#   CHATLOAD_ACCEPT_INCONCLUSIVE  true: figures too few samples leave undecided do not fail the comparison
#   CHATLOAD_ARGS             more flags for loadgen run/ab, split on white space
#   CHATLOAD_OUT              the run folder (default chatload-run)
#   LOADGEN                   the loadgen binary (default: loadgen on PATH, else target/release/loadgen)
#
# Writes, when the CI system gives them: GITHUB_STEP_SUMMARY (report.md),
# GITHUB_OUTPUT (verdict, exit-code, out, report). Always writes
# $CHATLOAD_OUT/gate.env with the same keys, for a later step or job.
set -uo pipefail

fail() { echo "chatload gate: $*" >&2; exit 2; }

scenario="${CHATLOAD_SCENARIO:-}"
[ -n "$scenario" ] || fail "CHATLOAD_SCENARIO (the action's input 'scenario') is required: the scenario file to run"
[ -f "$scenario" ] || fail "scenario $scenario: no such file (paths are relative to $(pwd))"
out="${CHATLOAD_OUT:-chatload-run}"
loadgen="${LOADGEN:-}"
if [ -z "$loadgen" ]; then
  if command -v loadgen >/dev/null 2>&1; then loadgen=loadgen; else loadgen=target/release/loadgen; fi
fi
command -v "$loadgen" >/dev/null 2>&1 || [ -x "$loadgen" ] || fail "loadgen: $loadgen is not there; build it (cargo build --release -p loadgen) or set LOADGEN"

extra=()
[ -n "${CHATLOAD_ARGS:-}" ] && read -r -a extra <<< "$CHATLOAD_ARGS"

if [ -n "${CHATLOAD_BASELINE_URL:-}" ] || [ -n "${CHATLOAD_CANDIDATE_URL:-}" ]; then
  [ -n "${CHATLOAD_BASELINE_URL:-}" ] && [ -n "${CHATLOAD_CANDIDATE_URL:-}" ] \
    || fail "an A/B gate needs both CHATLOAD_BASELINE_URL and CHATLOAD_CANDIDATE_URL (inputs baseline-url and candidate-url)"
  [ -z "${CHATLOAD_SLO:-}${CHATLOAD_FAIL_ON:-}${CHATLOAD_TARGET:-}${CHATLOAD_BASELINE:-}" ] \
    || fail "an A/B gate judges the candidate against the baseline service: slo, fail-on, target and baseline are a single run's (give ab's --objective in args)"
  report="$out/ab.md"
  "$loadgen" ab "$scenario" --baseline "$CHATLOAD_BASELINE_URL" --candidate "$CHATLOAD_CANDIDATE_URL" \
    --out "$out" --quiet "${extra[@]}"
  run_status=$?
else
  report="$out/report.md"
  args=(run "$scenario" --out "$out" --quiet)
  [ -n "${CHATLOAD_TARGET:-}" ] && args+=(--target "$CHATLOAD_TARGET")
  [ -n "${CHATLOAD_SLO:-}" ] && args+=(--slo "$CHATLOAD_SLO")
  [ -n "${CHATLOAD_FAIL_ON:-}" ] && args+=(--fail-on "$CHATLOAD_FAIL_ON")
  "$loadgen" "${args[@]}" "${extra[@]}"
  run_status=$?
fi

summary="${GITHUB_STEP_SUMMARY:-}"
if [ -f "$report" ]; then
  [ -n "$summary" ] && cat "$report" >> "$summary"
elif [ "$run_status" -eq 0 ]; then
  # A pass without its report is not a pass.
  echo "chatload gate: $report was not written" >&2
  run_status=2
fi

cmp_status=0
if [ -n "${CHATLOAD_BASELINE:-}" ]; then
  if [ -f "$out/report.json" ]; then
    cmp_flags=()
    [ "${CHATLOAD_ACCEPT_INCONCLUSIVE:-false}" = true ] && cmp_flags+=(--accept-inconclusive)
    "$loadgen" compare "$CHATLOAD_BASELINE" "$out/report.json" "${cmp_flags[@]}" > "$out/compare.md"
    cmp_status=$?
    cat "$out/compare.md"
    [ -n "$summary" ] && { echo; cat "$out/compare.md"; } >> "$summary"
  else
    echo "chatload gate: no $out/report.json to compare with $CHATLOAD_BASELINE" >&2
    cmp_status=2
  fi
fi

# The worst of the two: 2 (error) over 1 (violation) over 0.
status=$run_status
[ "$cmp_status" -gt "$status" ] && status=$cmp_status
case "$status" in
  0) verdict=pass ;;
  1) verdict=fail ;;
  *) verdict=error; status=2 ;;
esac
mkdir -p "$out"
{
  echo "verdict=$verdict"
  echo "exit-code=$status"
  echo "out=$out"
  echo "report=$report"
} > "$out/gate.env"
[ -n "${GITHUB_OUTPUT:-}" ] && cat "$out/gate.env" >> "$GITHUB_OUTPUT"
echo "chatload gate: $verdict (exit $status); the run folder is $out" >&2
exit "$status"
