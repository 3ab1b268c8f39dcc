#!/usr/bin/env bash
# labelport convert against Label Studio's own converter (label-studio-sdk, installed
# into a venv of its own) on the same generated Label Studio exports of element
# projects, to COCO (or BENCH_FORMAT: csv or json, both with "compat": "label-studio",
# against the converter's CSV and JSON_MIN): seconds, tasks/s and peak RSS, side by side.
# Usage: [BENCH_FORMAT=csv] infra/bench_label_studio.sh [TASKS...] (default: 10000 100000 1000000).
# The converter's run is bounded by PEER_MEMORY_MB (default 16384) of address space and
# PEER_TIMEOUT seconds (default 1800); past either the row says so.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(10000 100000 1000000)
peer_venv=${LABELPORT_TOOLS:-$HOME/.cache/labelport}/peer-venv
if [ ! -x "$peer_venv/bin/python" ]; then
  python3 -m venv "$peer_venv"
  "$peer_venv/bin/pip" install --quiet --disable-pip-version-check label-studio-sdk==2.1.2
fi
format=${BENCH_FORMAT:-coco}
case "$format" in
  coco) peer_format=COCO options='{}' ;;
  csv) peer_format=CSV options='{"compat":"label-studio"}' ;;
  json) peer_format=JSON_MIN options='{"compat":"label-studio"}' ;;
  *) echo "BENCH_FORMAT is coco, csv or json, not $format"; exit 2 ;;
esac
cargo build --release --quiet --locked --bin labelport
bin=${CARGO_TARGET_DIR:-target}/release/labelport
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/peer.py" <<'PY'
import sys
from label_studio_sdk.converter import Converter
config, export, out, fmt = sys.argv[1:5]
Converter(config=config, project_dir=None, download_resources=False).convert(export, out, fmt, is_dir=False)
PY
echo "| tasks in the export | export MB | tool | seconds | tasks/s | peak RSS MB |"
echo "| ---: | ---: | --- | ---: | ---: | ---: |"
for tasks in "${sizes[@]}"; do
  # About 46% of generated tasks are finished and go into the export.
  "$bin" generate --tasks "$((tasks * 100 / 46))" --mode element --project "ls$tasks" --out "$work" --label-studio > "$work/gen"
  export_file="$work/label-studio/ls$tasks.json"
  config="$work/label-studio/ls$tasks.xml"
  n=$(grep -oE "wrote [0-9]+ finished" "$work/gen" | grep -oE "[0-9]+")
  mb=$(du -m --apparent-size "$export_file" | cut -f1)
  /usr/bin/time -f "%e %M" -o "$work/time" "$bin" convert --allow-loss --from label-studio --config "$config" \
    --in "$export_file" --format "$format" --options "$options" --out "$work/out.$format" 2> /dev/null
  read -r secs kb < "$work/time"
  awk -v t="$n" -v mb="$mb" -v s="$secs" -v kb="$kb" \
    'BEGIN { printf "| %d | %d | labelport convert | %.2f | %.0f | %.1f |\n", t, mb, s, t / s, kb / 1024 }'
  status=0
  ( ulimit -v $(( ${PEER_MEMORY_MB:-16384} * 1024 )); timeout "${PEER_TIMEOUT:-1800}" \
    /usr/bin/time -f "%e %M" -o "$work/time" "$peer_venv/bin/python" "$work/peer.py" "$config" "$export_file" "$work/peer" "$peer_format" \
    > /dev/null 2> "$work/peer.log" ) || status=$?
  if [ "$status" -eq 0 ]; then
    read -r secs kb < "$work/time"
    awk -v t="$n" -v mb="$mb" -v s="$secs" -v kb="$kb" \
      'BEGIN { printf "| %d | %d | label-studio-sdk Converter | %.2f | %.0f | %.1f |\n", t, mb, s, t / s, kb / 1024 }'
  else
    why=$(grep -m1 -oE "MemoryError|Killed" "$work/peer.log" || true)
    echo "| $n | $mb | label-studio-sdk Converter | failed (exit $status${why:+, $why}) | – | – |"
  fi
  rm -rf "$work/label-studio" "$work/projects" "$work/peer" "$work/out.$format" "$work"/out.errors.ndjson
done
