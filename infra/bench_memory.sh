#!/usr/bin/env bash
# Peak memory and throughput of `labelport export` at 10k, 100k and 1M tasks: memory
# must stay flat as the export grows. Usage: infra/bench_memory.sh [MODE] (default element).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-element}
cargo build --release --quiet --locked --bin labelport
bin=${CARGO_TARGET_DIR:-target}/release/labelport
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "| tasks | source MB | format | seconds | MB/s | peak RSS MB |"
echo "| ---: | ---: | --- | ---: | ---: | ---: |"
for tasks in 10000 100000 1000000; do
  "$bin" generate --tasks "$tasks" --mode "$mode" --project "p$tasks" --out "$work" > /dev/null
  project="$work/projects/p$tasks"
  mb=$(du -sm --apparent-size "$project/tasks" | cut -f1)
  for format in csv ndjson; do
    /usr/bin/time -f "%e %M" -o "$work/time" "$bin" export --project "$project" --format "$format" \
      --stages Label,Review,Complete --out "$work/out.$format" 2> /dev/null
    read -r secs kb < "$work/time"
    awk -v t="$tasks" -v mb="$mb" -v f="$format" -v s="$secs" -v kb="$kb" \
      'BEGIN { printf "| %d | %d | %s | %.2f | %.0f | %.1f |\n", t, mb, f, s, (s > 0 ? mb / s : 0), kb / 1024 }'
    rm -f "$work/out.$format"
  done
  rm -rf "$project"
done
