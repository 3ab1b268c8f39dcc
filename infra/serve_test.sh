#!/usr/bin/env bash
# `labelport serve` as a user drives it with curl: token, POST, poll, download through
# the signed local link; Python's csv reader checks the file against the seeded project.
set -euo pipefail
cd "$(dirname "$0")/.."
source infra/serve.sh
fail() { echo "FAIL: $1"; cat "$data/serve.log"; exit 1; }
passed=0
ok() { passed=$((passed + 1)); echo "ok: $1"; }

json="Content-Type: application/json"
token=$("$bin" token --email manager@example.com --data "$data")
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$api/v1/projects/demo/exports" -d '{"format":"CSV"}')
[ "$code" = 401 ] || fail "no token: $code"; ok "no token: 401"
labeler=$("$bin" token --email labeler1@example.com --data "$data")
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$api/v1/projects/demo/exports" -H "$json" -H "Authorization: Bearer $labeler" -d '{"format":"CSV"}')
[ "$code" = 403 ] || fail "labeler: $code"; ok "a labeler: 403"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$api/v1/projects/demo/exports" -H "Authorization: Bearer $token" -d '{"format":"CSV"}')
[ "$code" = 415 ] || fail "a form-encoded body: $code"; ok "a body sent without Content-Type: application/json: 415"
body=$(curl -s -X POST "$api/v1/projects/demo/exports" -H "$json" -H "Authorization: Bearer $token" -d '{"format":"CSV","filters":{"states":["nope"]}}')
echo "$body" | grep -q '"pointer":"/filters/states/0"' || fail "bad filter: $body"; ok "a bad filter: 400 problem details pointing at /filters/states/0"

id=$(curl -s -X POST "$api/v1/projects/demo/exports" -H "$json" -H "Authorization: Bearer $token" -d '{"format":"CSV"}' \
  | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["id"])')
ok "export $id accepted"
for _ in $(seq 1 100); do
  status=$(curl -s "$api/v1/exports/$id" -H "Authorization: Bearer $token")
  state=$(echo "$status" | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["state"])')
  [ "$state" = SUCCEEDED ] || [ "$state" = FAILED ] && break
  sleep 0.2
done
[ "$state" = SUCCEEDED ] || fail "state $state"; ok "status SUCCEEDED"
link=$(echo "$status" | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["downloadUrl"])')
# The status's link is signed: it downloads with no token, as from an e-mail.
curl -s -f -L -o "$data/demo.csv" "$link" || fail "download"
"$PYTHON" infra/check_export.py csv "$data/demo.csv" "$data/projects/demo" || fail "content"
ok "the status's signed link downloads the CSV with no token, and it matches the seeded project"
code=$(curl -s -o /dev/null -w '%{http_code}' "$api/v1/exports/$id/download" -H "Authorization: Bearer $token")
[ "$code" = 401 ] || fail "unsigned download: $code"; ok "a download without a signed link: 401, token or not"
code=$(curl -s -o /dev/null -w '%{http_code}' "${link/sig=/sig=AA}")
[ "$code" = 403 ] || fail "tampered signed link: $code"; ok "a tampered signed link: 403"
location=$(curl -s -o /dev/null -w '%{redirect_url}' "$link")
code=$(curl -s -o /dev/null -w '%{http_code}' "${location/signature=/signature=00}")
[ "$code" = 403 ] || fail "tampered file URL: $code"; ok "a tampered file URL behind it: 403"

# A format of several files: every part is listed and downloads through ?file=.
id=$(curl -s -X POST "$api/v1/projects/demo/exports" -H "$json" -H "Authorization: Bearer $token" \
  -d '{"format":"NDJSON_SPLIT","split":{"maxTasksPerFile":1500}}' \
  | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["id"])')
for _ in $(seq 1 150); do
  status=$(curl -s "$api/v1/exports/$id" -H "Authorization: Bearer $token")
  state=$(echo "$status" | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["state"])')
  [ "$state" = SUCCEEDED ] || [ "$state" = FAILED ] && break
  sleep 0.2
done
[ "$state" = SUCCEEDED ] || fail "split state $state"
parts=()
while read -r name link; do
  curl -s -f -L -o "$data/$name" "$link" || fail "download $name"
  parts+=("$data/$name")
done < <(echo "$status" | "$PYTHON" -c 'import json,sys; [print(f["name"], f["downloadUrl"]) for f in json.load(sys.stdin)["result"]["files"]]')
[ "${#parts[@]}" -gt 2 ] || fail "only ${#parts[@]} parts"
"$PYTHON" infra/check_formats.py ndjson-parts "$data/projects/demo" --max-tasks 1500 "${parts[@]}" || fail "parts"
ok "NDJSON_SPLIT: ${#parts[@]} parts, each downloaded through its own signed link, re-joined by jq"
first=$(echo "$status" | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["result"]["files"][0]["downloadUrl"])')
code=$(curl -s -o /dev/null -w '%{http_code}' "${first/file=/file=x}")
[ "$code" = 403 ] || fail "a link with its file changed: $code"; ok "a link whose file was changed: 403"

# The lifecycle routes as the README shows them.
listed=$(curl -s "$api/v1/projects/demo/exports?state=SUCCEEDED&limit=5" -H "Authorization: Bearer $token")
echo "$listed" | "$PYTHON" -c 'import json,sys; d=json.load(sys.stdin); assert len(d["exports"]) == 2 and all(e["state"] == "SUCCEEDED" for e in d["exports"]), d' \
  || fail "list: $listed"
ok "the project's exports listed, newest first, filtered by state"
curl -s -f -L -o "$data/latest.ndjson" "$api/v1/projects/demo/exports/latest/download" -H "Authorization: Bearer $token" || fail "latest download"
[ -s "$data/latest.ndjson" ] || fail "latest download is empty"; ok "the latest export downloads for a manager"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$api/v1/exports/$id/cancel" -H "Authorization: Bearer $token")
[ "$code" = 409 ] || fail "cancel of an ended export: $code"; ok "cancelling an ended export: 409"
echo "$passed passed, 0 failed"
