#!/usr/bin/env bash
# Runs every test: installs the pinned tools, starts the AWS emulator, runs the Rust
# unit and end-to-end tests against it, runs the three functions as Lambda functions,
# and checks the generated data against the JSON Schema.
set -euo pipefail
cd "$(dirname "$0")/.."
source infra/tools.sh
source infra/emulator.sh

echo "== cargo test (unit, doc and end-to-end tests against the emulator)"
cargo test --workspace --locked

echo "== task record JSON Schema against generated data (every mode)"
schema_data=$(mktemp -d)
for mode in classification element element_group entity entity_form transcription row document token video; do
  cargo run --quiet --locked --bin labelport -- generate --tasks 200 --mode "$mode" --project "p-${mode//_/-}" --out "$schema_data" --tasks-per-file 80 > /dev/null
done
"$LABELPORT_PYTHON" infra/check_schema.py "$schema_data"

echo "== the three functions as Lambda functions (cargo lambda watch / invoke)"
bash infra/lambda_test.sh

echo "== labelport serve, driven with curl"
bash infra/serve_test.sh
