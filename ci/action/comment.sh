#!/usr/bin/env bash
# Comments the gate's report on the pull request through GitHub's REST
# API (GITHUB_API_URL, GITHUB_REPOSITORY, PR_NUMBER, GITHUB_TOKEN, as the
# action sets them). A comment that cannot be posted is a warning on the
# job, not a verdict: the gate's own step decides the job.
set -uo pipefail
out="${CHATLOAD_OUT:-chatload-run}"
value() { sed -n "s/^$1=//p" "$out/gate.env" 2>/dev/null | tail -1; }
verdict="$(value verdict)"
report="$(value report)"
if [ -z "$verdict" ] || [ ! -f "$report" ]; then
  echo "::warning::chatload: no report to comment ($out/gate.env: the gate did not finish)"
  exit 0
fi
for v in GITHUB_API_URL GITHUB_REPOSITORY PR_NUMBER GITHUB_TOKEN; do
  if [ -z "${!v:-}" ]; then
    echo "::warning::chatload: $v is not set: no comment on the pull request"
    exit 0
  fi
done
case "$verdict" in pass) mark="✅ PASS" ;; fail) mark="❌ FAIL" ;; *) mark="⚠️ ERROR" ;; esac
# GitHub takes at most 65,536 characters a comment.
body="$( { echo "### chatload performance gate: $mark"; echo; cat "$report"; } | head -c 60000 )"
url="$GITHUB_API_URL/repos/$GITHUB_REPOSITORY/issues/$PR_NUMBER/comments"
if ! printf '%s' "$body" \
  | python3 -c 'import json, sys; print(json.dumps({"body": sys.stdin.read()}))' \
  | curl -sS --fail-with-body -X POST "$url" \
      -H "Authorization: Bearer $GITHUB_TOKEN" \
      -H "Accept: application/vnd.github+json" \
      -H "Content-Type: application/json" \
      --data-binary @- > "$out/comment.json"; then
  echo "::warning::chatload: the comment on $url failed (does the token have pull-requests: write?)"
fi
exit 0
