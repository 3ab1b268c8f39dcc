# Sourced by the scripts: installs the pinned Python tools (the AWS emulator, cargo-lambda,
# zig, SAM CLI, cfn-lint, readers) into a virtual environment outside the clone, once.
# LABELPORT_TOOLS overrides where (default ~/.cache/labelport).
LABELPORT_TOOLS=${LABELPORT_TOOLS:-$HOME/.cache/labelport}
VENV="$LABELPORT_TOOLS/venv"
REQUIREMENTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/requirements.txt"
stamp="$VENV/.requirements.sha256"
want=$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "== installing test tools into $VENV (pinned in infra/requirements.txt)"
  mkdir -p "$LABELPORT_TOOLS"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
  # One environment for every tool: a pin that breaks another's requirement fails here.
  "$VENV/bin/pip" check
  echo "$want" > "$stamp"
fi
export PATH="$VENV/bin:$PATH"
export LABELPORT_PYTHON="$VENV/bin/python"
