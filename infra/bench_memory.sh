#!/usr/bin/env bash
# Peak memory and throughput of `labelport export` at 10k, 100k and 1M tasks: memory
# must stay flat as the export grows.
# Usage: infra/bench_memory.sh [MODE [FORMAT...]] (default: element, every format that
# fits element projects; JSON_SIMPLE fits text modes: `infra/bench_memory.sh document json_simple`).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-element}
shift || true
formats=("$@")
[ ${#formats[@]} -gt 0 ] || formats=(csv ndjson json ndjson_split native)
cargo build --release --quiet --locked --bin labelport
bin=${CARGO_TARGET_DIR:-target}/release/labelport
work=$(mktemp -d)
mkdir -p "$work/out"
trap 'rm -rf "$work"' EXIT
echo "| tasks | source MB | format | seconds | tasks/s | MB/s | peak RSS MB |"
echo "| ---: | ---: | --- | ---: | ---: | ---: | ---: |"
for tasks in 10000 100000 1000000; do
  "$bin" generate --tasks "$tasks" --mode "$mode" --project "p$tasks" --out "$work" > /dev/null
  project="$work/projects/p$tasks"
  mb=$(du -sm --apparent-size "$project/tasks" | cut -f1)
  for format in "${formats[@]}"; do
    options='{}'
    # The program the pipeline bench measures CUSTOM with.
    [ "$format" = custom ] && options='{"program":"{id: .task.taskId, state: .task.state, labels: [.task.tools[].title] | join(\"|\")}"}'
    /usr/bin/time -f "%e %M" -o "$work/time" "$bin" export --allow-loss --project "$project" --format "$format" \
      --options "$options" --stages Label,Review,Complete --out "$work/out/export.$format" 2> /dev/null
    read -r secs kb < "$work/time"
    awk -v t="$tasks" -v mb="$mb" -v f="$format" -v s="$secs" -v kb="$kb" \
      'BEGIN { printf "| %d | %d | %s | %.2f | %.0f | %.0f | %.1f |\n", t, mb, f, s, (s > 0 ? t / s : 0), (s > 0 ? mb / s : 0), kb / 1024 }'
    rm -rf "$work/out"/*
  done
  rm -rf "$project"
done
