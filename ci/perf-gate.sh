#!/usr/bin/env bash
# The CI performance gate from a shell, for any CI system: flags for the
# CHATLOAD_* variables of ci/action/gate.sh, which does the work (as the
# GitHub Action and the GitLab template do). Exit 0 pass, 1 SLO violated
# or regression, 2 error.
#
#   ci/perf-gate.sh SCENARIO [--target URL] [--slo FILE] [--fail-on LEVEL]
#                   [--baseline REPORT_JSON] [--out DIR] [--accept-inconclusive]
#                   [-- more loadgen run flags]
#
# Example (a PR against the last good run of main):
#   ci/perf-gate.sh scenarios/baseline.toml --baseline reports/baselines/baseline.json
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

usage="usage: ci/perf-gate.sh SCENARIO [--target URL] [--slo FILE] [--fail-on LEVEL] [--baseline FILE] [--out DIR] [--accept-inconclusive] [-- flags]"
export CHATLOAD_SCENARIO="${1:?$usage}"
shift
export CHATLOAD_OUT="perf-report"
while [ $# -gt 0 ]; do
  case "$1" in
    --target) export CHATLOAD_TARGET="$2"; shift 2 ;;
    --slo) export CHATLOAD_SLO="$2"; shift 2 ;;
    --fail-on) export CHATLOAD_FAIL_ON="$2"; shift 2 ;;
    --baseline) export CHATLOAD_BASELINE="$2"; shift 2 ;;
    --out) export CHATLOAD_OUT="$2"; shift 2 ;;
    --accept-inconclusive) export CHATLOAD_ACCEPT_INCONCLUSIVE=true; shift ;;
    --) shift; export CHATLOAD_ARGS="$*"; break ;;
    *) echo "ci/perf-gate.sh: unknown option $1; $usage" >&2; exit 2 ;;
  esac
done
exec bash "$here/action/gate.sh"
