#!/usr/bin/env bash
# The three functions as Lambda functions (cargo lambda watch / invoke) against the
# emulator. Sourced tools and emulator when run alone; infra/test.sh calls it with both.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${AWS_ENDPOINT_URL:-}" ]; then
  source infra/tools.sh
  source infra/emulator.sh
fi
"$LABELPORT_PYTHON" infra/lambda_e2e.py
