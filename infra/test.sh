#!/usr/bin/env bash
# Runs every test: installs the pinned tools, starts the AWS emulator, runs the Rust
# unit and end-to-end tests against it, runs the three functions as Lambda functions,
# drives `labelport serve` with curl and with schemathesis (its OpenAPI contract), runs
# `labelport export` as a user does, and checks generated data against the JSON Schema.
set -euo pipefail
cd "$(dirname "$0")/.."
source infra/tools.sh
source infra/system_tools.sh
source infra/emulator.sh
logs=$(mktemp -d)
# Adds the "N passed" counts a step printed, so the run ends with one total.
count() { grep -a -oE "(test result: ok\. )?[0-9]+ passed" "$1" | grep -oE "[0-9]+" | awk '{s += $1} END {print s + 0}'; }

echo "== cargo test (unit, doc and end-to-end tests against the emulator)"
cargo test --workspace --locked --features labelport-tests/e2e 2>&1 | tee "$logs/cargo.log"

echo "== task record JSON Schema against generated data (every mode)"
schema_data=$(mktemp -d)
for mode in classification element element_group entity entity_form transcription row document token video; do
  cargo run --quiet --locked --bin labelport -- generate --tasks 200 --mode "$mode" --project "p-${mode//_/-}" --out "$schema_data" --tasks-per-file 80 > /dev/null
done
"$LABELPORT_PYTHON" infra/check_schema.py "$schema_data"
rm -rf "$schema_data"

echo "== the three functions as Lambda functions (cargo lambda watch / invoke)"
bash infra/lambda_test.sh 2>&1 | tee "$logs/lambda.log"

echo "== labelport serve, driven with curl"
bash infra/serve_test.sh 2>&1 | tee "$logs/serve.log"

echo "== the API against its OpenAPI document (schemathesis on labelport serve)"
bash infra/contract_test.sh 2>&1 | tee "$logs/contract.log"

echo "== clients generated from the OpenAPI document (openapi-python-client, openapi-typescript)"
bash infra/client_test.sh 2>&1 | tee "$logs/client.log"

echo "== labelport export and formats, as a user runs them"
bash infra/cli_test.sh 2>&1 | tee "$logs/cli.log"

total=$(( $(count "$logs/cargo.log") + $(count "$logs/lambda.log") + $(count "$logs/serve.log") + $(count "$logs/contract.log") + $(count "$logs/client.log") + $(count "$logs/cli.log") ))
echo
echo "all tests: $total passed, 0 failed"
rm -rf "$logs"
