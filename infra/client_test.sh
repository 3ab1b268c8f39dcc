#!/usr/bin/env bash
# Clients generated from the API's OpenAPI document (`labelport openapi`), as a customer
# makes them. openapi-python-client builds a Python package, and infra/client_check.py
# drives `labelport serve` with it: create (FILE_STORAGE and EMAIL), poll, list,
# download. openapi-typescript builds TypeScript types, and tsc --strict checks
# infra/client_check.ts's requests against them. A warning from either generator fails
# the test: they warn, and still exit 0, when they leave out an operation or a schema.
set -euo pipefail
cd "$(dirname "$0")/.."
source infra/serve.sh
passed=0
ok() { passed=$((passed + 1)); echo "ok: $1"; }
fail() { [ -n "${2:-}" ] && cat "$2"; echo "FAIL: $1"; exit 1; }

token=$("$bin" token --email manager@example.com --data "$data")
"$bin" openapi --url "$api" > "$data/openapi.json"

# Python: the generator prints one "Generating" line; any other line is a warning.
openapi-python-client generate --path "$data/openapi.json" --meta none \
  --output-path "$data/labelport_client" > "$data/python-client.log" 2>&1 \
  || fail "openapi-python-client failed" "$data/python-client.log"
grep -v -e '^Generating ' -e '^[[:space:]]*$' "$data/python-client.log" > /dev/null \
  && fail "openapi-python-client warned: the client lacks what it names" "$data/python-client.log"
ok "openapi-python-client generates the Python client with no warning"
"$PYTHON" infra/client_check.py "$data/openapi.json" "$data/labelport_client" "$api" "$token" "$data/outbox" \
  > "$data/python-check.log" 2>&1 || { tail -n 40 "$data/serve.log"; fail "the Python client against labelport serve" "$data/python-check.log"; }
cat "$data/python-check.log"
passed=$((passed + $(grep -c '^ok: ' "$data/python-check.log")))

# TypeScript: openapi-typescript and tsc, pinned, installed outside the clone once per pin.
typescript_tools=(openapi-typescript@7.13.0 typescript@5.9.3)
node_tools=${LABELPORT_TOOLS:-$HOME/.cache/labelport}/node
if [ "$(cat "$node_tools/.installed" 2>/dev/null)" != "${typescript_tools[*]}" ]; then
  echo "== installing ${typescript_tools[*]} into $node_tools"
  rm -rf "$node_tools"
  mkdir -p "$node_tools"
  npm install --prefix "$node_tools" --no-save --no-package-lock --no-audit --no-fund --loglevel=error "${typescript_tools[@]}"
  echo "${typescript_tools[*]}" > "$node_tools/.installed"
fi
mkdir "$data/typescript"
# It reports progress on stdout and warnings on stderr.
"$node_tools/node_modules/.bin/openapi-typescript" "$data/openapi.json" -o "$data/typescript/labelport-api.ts" \
  > /dev/null 2> "$data/typescript.log" || fail "openapi-typescript failed" "$data/typescript.log"
[ -s "$data/typescript.log" ] && fail "openapi-typescript warned" "$data/typescript.log"
"$PYTHON" - "$data/openapi.json" "$data/typescript/labelport-api.ts" <<'PY' || fail "openapi-typescript's types lack operations"
import json, re, sys
document, types = json.load(open(sys.argv[1])), open(sys.argv[2]).read()
ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
missing = [i for i in ids if not re.search(rf"^    {i}: {{$", types, re.M)]
sys.exit(f"missing: {missing}" if missing else 0)
PY
ok "openapi-typescript generates the types of every operation with no warning"
cp infra/client_check.ts "$data/typescript/"
"$node_tools/node_modules/.bin/tsc" --noEmit --strict --target es2022 --module esnext --moduleResolution bundler \
  "$data/typescript/client_check.ts" > "$data/tsc.log" 2>&1 || fail "tsc: the requests do not fit the types" "$data/tsc.log"
ok "tsc --strict: a TypeScript request may leave delivery out or name a method"
echo "$passed passed, 0 failed"
