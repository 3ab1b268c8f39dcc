#!/usr/bin/env bash
# `labelport export` and `labelport formats` as a user runs them: the JSON family and a
# ZIP written to local files, checked by Python's json, libjq and zipfile; every ZIP also
# by unzip, bsdtar and Java's ZipInputStream.
set -euo pipefail
cd "$(dirname "$0")/.."
source infra/system_tools.sh
PYTHON=${LABELPORT_PYTHON:-python3}
cargo build --quiet --locked --bin labelport
bin=${CARGO_TARGET_DIR:-target}/debug/labelport
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
passed=0
ok() { passed=$((passed + 1)); echo "ok: $1"; }
fail() { echo "FAIL: $1"; exit 1; }

"$bin" generate --tasks 3000 --mode entity --seed 3 --project ents --out "$data" --tasks-per-file 1000 > /dev/null
"$bin" generate --tasks 2000 --mode document --seed 3 --project docs --out "$data" --tasks-per-file 1000 > /dev/null
ents="$data/projects/ents"

formats=$("$bin" formats)
for name in CSV NDJSON JSON NDJSON_SPLIT NATIVE JSON_SIMPLE TSV JSON_TABULAR HUGGINGFACE_CSV XLSX LONG_CSV WIDE_CSV TSV_IOB TSV_NON_IOB CONLL2003 JSON_ADVANCED PLAIN AMAZON_COMPREHEND_CSV AZURE_AUTOML_CSV GCP_VERTEX_AI_CSV GCP_VERTEX_AI_JSONL CUSTOM COCO YOLO VOC; do
  echo "$formats" | grep -q "^$name " || fail "labelport formats does not list $name"
done
ok "labelport formats lists every format with its modes"

# An export the format cannot hold whole is written, says so, and exits 3 (documented),
# unless --allow-loss; --out's folder is created.
"$bin" generate --tasks 200 --mode element --seed 5 --project lossy --out "$data" > /dev/null
status=0
# YOLO has no place for a point: the generated points are refused.
"$bin" export --project "$data/projects/lossy" --format yolo --out "$data/new/folder/lossy.zip" 2> "$data/log" || status=$?
[ "$status" = 3 ] || fail "an export that refused annotations exited $status, not 3: $(tail -2 "$data/log")"
[ -s "$data/new/folder/lossy.zip" ] && [ -s "$data/new/folder/lossy.errors.ndjson" ] || fail "the lossy export or its report is missing"
grep -q "annotations refused.*new/folder/lossy.errors.ndjson; pass --allow-loss" "$data/log" || fail "the exit does not name the report: $(tail -1 "$data/log")"
"$bin" export --allow-loss --project "$data/projects/lossy" --format yolo --out "$data/new/folder/lossy.zip" 2> "$data/log" || fail "--allow-loss exited non-zero"
"$bin" export --project "$data/projects/lossy" --format ndjson --out "$data/new/lossy.ndjson" 2> "$data/log" || fail "a lossless export exited non-zero"
ok "a lossy export exits 3 naming its errors report, 0 with --allow-loss; --out creates its folder"

"$bin" export --allow-loss --project "$ents" --format json --options '{"structure":"legacy"}' --stage-history --out "$data/ents.json" 2> "$data/log"
"$PYTHON" infra/check_formats.py json "$data/ents.json" "$ents" --legacy --stage-history || fail "json"
ok "JSON (legacy, stage history) loads whole in Python's json"

"$bin" export --allow-loss --project "$ents" --format ndjson_split --options '{"split":{"maxFileBytes":1000000}}' --out "$data/split.ndjson" 2> "$data/log"
parts=("$data"/split-*.ndjson)
[ "${#parts[@]}" -gt 1 ] || fail "one part"
"$PYTHON" infra/check_formats.py ndjson-parts "$ents" --max-bytes 1000000 "${parts[@]}" || fail "parts"
"$bin" export --allow-loss --project "$ents" --format ndjson --out "$data/whole.ndjson" 2> "$data/log"
cat "${parts[@]}" | cmp -s - "$data/whole.ndjson" || fail "the parts are not the NDJSON export"
ok "NDJSON_SPLIT: ${#parts[@]} parts, re-joined by jq, equal to NDJSON byte for byte"

"$bin" export --allow-loss --project "$data/projects/docs" --format json_simple --out "$data/docs.zip" 2> "$data/log"
"$PYTHON" infra/check_formats.py json-simple "$data/docs.zip" "$data/projects/docs" || fail "zip"
[ ! -e "$data/docs.errors.ndjson" ] || fail "a report with nothing to report"
ok "JSON_SIMPLE: the ZIP tests clean in zipfile and holds every document"

"$bin" export --allow-loss --project "$data/projects/docs" --format xlsx --options '{"maxRowsPerSheet":400}' --out "$data/docs.xlsx" 2> "$data/log"
"$PYTHON" infra/check_tables.py xlsx "$data/docs.xlsx" "$data/projects/docs" --max-rows 400 || fail "xlsx"
"$bin" export --allow-loss --project "$data/projects/docs" --format tsv --options '{"excel":true}' --out "$data/docs.tsv" 2> "$data/log"
"$PYTHON" infra/check_tables.py tsv "$data/docs.tsv" "$data/projects/docs" --excel || fail "tsv"
"$bin" export --allow-loss --project "$data/projects/docs" --format csv --out "$data/docs.csv" 2> "$data/log"
"$PYTHON" infra/check_tables.py csv "$data/docs.csv" "$data/projects/docs" > "$data/log" || fail "csv of a document project: $(tail -1 "$data/log")"
ok "CSV of a document project: its text and labels, read by csv, pandas and datasets"
ok "XLSX (several sheets, read by openpyxl) and TSV for Excel from the CLI"

"$bin" generate --tasks 500 --mode element --seed 3 --project imgs --out "$data" > /dev/null
"$bin" export --allow-loss --project "$data/projects/imgs" --format long_csv --options '{"assessments":"latest"}' --data-sources upload --out "$data/long.csv" 2> "$data/log"
"$PYTHON" infra/check_tables.py long-csv "$data/long.csv" "$data/projects/imgs" --latest --data-sources upload || fail "long csv"
# --labelers keeps the tasks those labelers submitted work on, by e-mail without case.
cat > "$data/by_labeler.py" <<'PY'
import json, os, sys
sys.path.insert(0, "infra")
from check_export import tasks
project, exported, wanted = sys.argv[1], sys.argv[2], sys.argv[3].lower()
def by(task):
    return any((s.get("labeler") or "").lower() == wanted for s in task.get("submissions") or [])
expected = [t["id"] for t in tasks(project) if not t.get("preview") and by(t)]
got = [json.loads(line) for line in open(exported) if line.strip()]
if [t["id"] for t in got] != expected or not expected:
    sys.exit(f"{len(got)} tasks exported, expected {len(expected)} by {wanted}")
print(f"{len(got)} tasks, each with a submission by {wanted}")
PY
labeler=$("$PYTHON" -c 'import sys; sys.path.insert(0, "infra"); from check_export import tasks; print(next(s["labeler"] for t in tasks(sys.argv[1]) for s in t.get("submissions") or [] if s.get("labeler")))' "$data/projects/imgs")
"$bin" export --project "$data/projects/imgs" --format native --labelers "${labeler^^}" --out "$data/by-labeler.ndjson" 2> "$data/log" || fail "labelers: $(tail -1 "$data/log")"
"$PYTHON" "$data/by_labeler.py" "$data/projects/imgs" "$data/by-labeler.ndjson" "$labeler" > "$data/log" || fail "labelers: $(tail -1 "$data/log")"
ok "--labelers: $(tail -1 "$data/log")"
ok "LONG_CSV, latest assessments of one data source, from the CLI"

"$bin" export --allow-loss --project "$ents" --format conll2003 --options '{"tagging":"iob1"}' --out "$data/ents.conll" 2> "$data/log"
"$PYTHON" infra/check_tokens.py conll2003 "$data/ents.conll" "$ents" --iob1 || fail "conll2003"
ok "CONLL2003 (IOB1) from the CLI: seqeval recovers every span"

# Seven 1 MB blocks encoded in parallel: each block's annotation rows are renumbered
# after the documents of the blocks before it.
"$bin" export --allow-loss --project "$ents" --format amazon_comprehend_csv --out "$data/ents-comprehend.zip" 2> "$data/log"
"$PYTHON" infra/check_cloud_ml.py comprehend-entities "$data/ents-comprehend.zip" "$ents" || fail "comprehend"
"$bin" generate --tasks 1000 --mode token --seed 3 --project toks --out "$data" --tasks-per-file 500 > /dev/null
"$bin" export --allow-loss --project "$data/projects/toks" --format amazon_comprehend_csv --out "$data/toks-comprehend.zip" 2> "$data/log"
"$PYTHON" infra/check_cloud_ml.py comprehend-entities "$data/toks-comprehend.zip" "$data/projects/toks" || fail "comprehend tokens"
"$bin" export --allow-loss --project "$data/projects/docs" --format gcp_vertex_ai_jsonl --options '{"classification":"single-label"}' --out "$data/docs.jsonl" 2> "$data/log"
"$PYTHON" infra/check_cloud_ml.py vertex-jsonl "$data/docs.jsonl" "$data/projects/docs" --single-label || fail "vertex"
grep -q "left out by the format" "$data/log" || fail "the command does not count the tasks left out"
ok "AMAZON_COMPREHEND_CSV (documents and annotations over many blocks; a token project) and GCP_VERTEX_AI_JSONL from the CLI"

program='.task.tools[] | {id: .objectId, label: .title}'
"$bin" export --allow-loss --project "$ents" --format ndjson --out "$data/ents.ndjson" 2> "$data/log"
"$bin" export --allow-loss --project "$ents" --format custom --options "{\"program\":\"$program\",\"output\":\"csv\",\"columns\":[\"id\",\"label\"]}" --out "$data/custom.csv" 2> "$data/log"
"$PYTHON" infra/check_custom.py "$data/custom.csv" "$data/ents.ndjson" "$program" --csv id,label || fail "custom"
if "$bin" export --project "$ents" --format custom --options '{"program":"map("}' --out "$data/bad.ndjson" 2> "$data/log"; then
  fail "a program that does not compile is taken"
fi
grep -q "column 4: expected closing parenthesis" "$data/log" || fail "the compile error does not say where"
ok "CUSTOM from the CLI: a jq program's CSV rows equal libjq's; a bad program names line and column"

# An empty project: every table and assessment layout is its header alone.
"$bin" generate --tasks 0 --mode row --project empty-rows --out "$data" > /dev/null
"$bin" generate --tasks 0 --mode element --project empty-imgs --out "$data" > /dev/null
for format in tsv huggingface_csv json_tabular xlsx long_csv wide_csv; do
  project="$data/projects/empty-rows"
  case $format in long_csv|wide_csv) project="$data/projects/empty-imgs" ;; esac
  "$bin" export --allow-loss --project "$project" --format "$format" --out "$data/empty.$format" 2> "$data/log" || fail "empty $format"
  "$PYTHON" infra/check_tables.py "${format//_/-}" "$data/empty.$format" "$project" | grep -q "^0 rows match" || fail "empty $format"
done
ok "an empty project exports every table layout as its header alone"

"$bin" export --allow-loss --project "$ents" --format json_simple --out "$data/ents.zip" 2> "$data/log"
[ -s "$data/ents.errors.ndjson" ] || fail "no errors report for the relations JSON_SIMPLE cannot hold"
grep -q "errors report" "$data/log" || fail "the command does not point at the report"
ok "relations JSON_SIMPLE cannot hold are listed in ents.errors.ndjson"

# A task file that is one JSON array (pretty-printed, gzip) reads like its lines.
arr="$data/projects/arr"
mkdir -p "$arr/tasks"
cp "$ents/project.json" "$arr/"
"$PYTHON" - "$ents/tasks" "$arr/tasks/all.json.gz" <<'PY'
import gzip, json, os, sys
folder, out = sys.argv[1], sys.argv[2]
tasks = [json.loads(line) for name in sorted(os.listdir(folder)) for line in open(os.path.join(folder, name)) if line.strip()]
with gzip.open(out, "wt") as f:
    json.dump(tasks, f, indent=2)
PY
"$bin" export --allow-loss --project "$arr" --format ndjson --out "$data/from-array.ndjson" 2> "$data/log"
cmp -s "$data/from-array.ndjson" "$data/whole.ndjson" || fail "a JSON array source exports differently from its lines"
ok "a task file that is one JSON array (all.json.gz) exports like the same tasks as lines"

if "$bin" export --project "$ents" --format json_simple --compression gzip --out "$data/x.zip" 2> "$data/log"; then
  fail "a ZIP with gzip was accepted"
fi
grep -q -- "--compression" "$data/log" || fail "the refusal does not name --compression: $(cat "$data/log")"
[ ! -e "$data/x.zip" ] || fail "a refused export left a file"
ok "a refused option names its flag and leaves no file"
# Every task of a 103,000-task image project (all states and stages): more than 100,000
# label files in one ZIP, each read back by globox, every refusal in the report.
all_states=pending,annotated,validated,rejected,skipped
all_stages=Label,Review,Complete
"$bin" generate --tasks 103000 --mode element --seed 4 --project many --out "$data" --tasks-per-file 34400 > /dev/null
"$bin" export --allow-loss --project "$data/projects/many" --format yolo --states "$all_states" --stages "$all_stages" --out "$data/many.zip" 2> "$data/log"
out=$("$PYTHON" infra/check_vision.py yolo "$data/many.zip" "$data/projects/many" --report "$data/many.errors.ndjson" --states "$all_states" --stages "$all_stages") || fail "yolo: $out"
images=${out%% images*}
[ "$images" -gt 100000 ] || fail "only $images images"
ok "YOLO from the CLI: $out, in one ZIP"
"$bin" generate --tasks 6000 --mode element --seed 5 --project pics --out "$data" --tasks-per-file 2000 > /dev/null
"$bin" export --allow-loss --project "$data/projects/pics" --format coco --compression zstd --out "$data/pics.json" 2> "$data/log"
"$PYTHON" infra/check_vision.py coco "$data/pics.json" "$data/projects/pics" --report "$data/pics.errors.ndjson" > "$data/log" || fail "coco: $(tail -1 "$data/log")"
ok "COCO (zstd) from the CLI: $(tail -1 "$data/log")"
"$bin" export --allow-loss --project "$data/projects/pics" --format voc --out "$data/pics-voc.zip" 2> "$data/log"
"$PYTHON" infra/check_vision.py voc "$data/pics-voc.zip" "$data/projects/pics" --report "$data/pics-voc.errors.ndjson" > "$data/log" || fail "voc: $(tail -1 "$data/log")"
ok "VOC from the CLI: $(tail -1 "$data/log")"
# A Label Studio export of the same kind of project, converted: read back like the
# project's own COCO and YOLO, every bad task reported with its line and id.
"$bin" generate --tasks 3000 --mode element --seed 6 --project lsimg --out "$data" --tasks-per-file 1000 --label-studio > /dev/null
ls_dir="$data/label-studio"
"$bin" convert --allow-loss --from label-studio --config "$ls_dir/lsimg.xml" --in "$ls_dir/lsimg.json" --format coco --out "$data/ls-coco.json" 2> "$data/log"
"$PYTHON" infra/check_vision.py coco "$data/ls-coco.json" "$data/projects/lsimg" --label-studio --report "$data/ls-coco.errors.ndjson" > "$data/log" || fail "convert coco: $(tail -1 "$data/log")"
gzip -k "$ls_dir/lsimg.json"
"$bin" convert --allow-loss --from label-studio --config "$ls_dir/lsimg.xml" --in "$ls_dir/lsimg.json.gz" --format yolo --options '{"yolo":{"task":"segment"}}' --out "$data/ls-yolo.zip" 2> "$data/log"
"$PYTHON" infra/check_vision.py yolo-segment "$data/ls-yolo.zip" "$data/projects/lsimg" --label-studio --report "$data/ls-yolo.errors.ndjson" > "$data/log" || fail "convert yolo: $(tail -1 "$data/log")"
ok "labelport convert --from label-studio: COCO and YOLO (from .json.gz) read back as the project's own"
# The same export downloaded as a .zip (written by Python's zipfile) converts to the same
# tasks: the zip crate unpacks its one export to a temporary file.
"$PYTHON" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED).write(sys.argv[2], "export/lsimg.json")' "$data/lsimg.zip" "$ls_dir/lsimg.json"
"$bin" convert --allow-loss --from label-studio --config "$ls_dir/lsimg.xml" --in "$ls_dir/lsimg.json" --format ndjson --out "$data/ls-plain.ndjson" 2> "$data/log" || fail "convert ndjson: $(tail -1 "$data/log")"
"$bin" convert --allow-loss --from label-studio --config "$ls_dir/lsimg.xml" --in "$data/lsimg.zip" --format ndjson --out "$data/ls-zipped.ndjson" 2> "$data/log" || fail "convert from a zip: $(tail -1 "$data/log")"
cmp -s "$data/ls-plain.ndjson" "$data/ls-zipped.ndjson" || fail "a zipped export converts differently"
"$PYTHON" -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1], "w"); z.writestr("a.json", "[]"); z.writestr("b.json", "[]")' "$data/two.zip"
"$bin" convert --allow-loss --from label-studio --config "$ls_dir/lsimg.xml" --in "$data/two.zip" --format ndjson --out "$data/two.ndjson" 2> "$data/log" && fail "a zip of two exports was converted"
grep -q "holds 2 exports" "$data/log" || fail "a zip of two exports: $(tail -1 "$data/log")"
ok "labelport convert reads an export delivered as a .zip (the zip crate), and refuses one of two"
"$bin" convert --allow-loss --from label-studio --config "$ls_dir/lsimg.xml" --in "$ls_dir/lsimg.json" --format yolo --out "$data/ls-detect.zip" 2> "$data/log"
out=$("$PYTHON" infra/check_peer.py yolo "$data/ls-detect.zip" "$ls_dir/lsimg.json" "$ls_dir/lsimg.xml" 2> "$data/peer.log") || fail "peer: $out $(tail -3 "$data/peer.log")"
ok "YOLO converted from Label Studio: $out"
# Converts Label Studio export $2 with "compat": "label-studio" to format $1 at $3 and
# holds it to label-studio-sdk's converter on the same export; sets $peer to what agrees.
compat_peer() {
  local format=$1 export=$2 out=$3
  shift 3
  "$bin" convert --allow-loss --from label-studio --config "$ls_dir/$export.xml" --in "$ls_dir/$export.json" --format "$format" --options '{"compat":"label-studio"}' --out "$out" 2> "$data/log" || fail "convert compat $format: $(tail -3 "$data/log")"
  peer=$("$PYTHON" infra/check_peer.py "$format" "$out" "$ls_dir/$export.json" "$ls_dir/$export.xml" "$@" 2> "$data/peer.log") || fail "peer compat $format: $peer $(tail -3 "$data/peer.log")"
}
compat_peer yolo lsimg "$data/ls-compat.zip" --compat
ok "YOLO with compat label-studio, named and numbered as label-studio-sdk's: $peer"
compat_peer coco lsimg "$data/ls-compat.json"
ok "COCO with compat label-studio, numbered and named as label-studio-sdk's: $peer"
compat_peer voc lsimg "$data/ls-compat-voc.zip"
ok "VOC with compat label-studio, files and corners as label-studio-sdk's: $peer"
"$bin" generate --tasks 3000 --mode entity --seed 6 --project lsent --out "$data" --label-studio > /dev/null
compat_peer conll2003 lsent "$data/ls-compat.conll"
ok "CONLL2003 with compat label-studio, laid out and tagged as label-studio-sdk's: $peer"
"$bin" generate --tasks 1000 --mode classification --seed 6 --project lscls --out "$data" --label-studio > /dev/null
# The result types the generator does not write (textarea, rating, taxonomy; several
# choices, a choice holding a comma, cancelled annotations, a task nobody annotated).
cp tests/fixtures/label-studio/form.json tests/fixtures/label-studio/form.xml "$ls_dir/"
for export in lsimg lsent lscls form; do
  compat_peer csv "$export" "$data/ls-compat-$export.csv"
  ok "CSV with compat label-studio ($export), record by record as label-studio-sdk's: $peer"
  compat_peer json "$export" "$data/ls-compat-$export.json"
  ok "JSON with compat label-studio ($export), label-studio-sdk's JSON_MIN: $peer"
done
"$PYTHON" - "$ls_dir/lsimg.json" "$data/bad.json" <<'PY'
import json, sys
tasks = json.load(open(sys.argv[1]))
tasks[3]["annotations"][-1]["result"][0]["from_name"] = "nope"
tasks.insert(5, [1, 2])
json.dump(tasks, open(sys.argv[2], "w"), indent=1)
PY
if "$bin" convert --from label-studio --config "$ls_dir/lsimg.xml" --in "$data/bad.json" --format coco --out "$data/bad-coco.json" 2> "$data/log"; then
  fail "a bad Label Studio task was accepted"
fi
grep -q "bad.json, line [0-9]*: task $("$PYTHON" -c "import json,sys; print(json.load(open(sys.argv[1]))[3]['id'])" "$ls_dir/lsimg.json"): result .*from_name \`nope\`" "$data/log" || fail "the refusal does not say where and why: $(grep -v '^ ' "$data/log" | head -3)"
[ ! -e "$data/bad-coco.json" ] || fail "a failed conversion left a file"
"$bin" convert --allow-loss --from label-studio --config "$ls_dir/lsimg.xml" --in "$data/bad.json" --format coco --skip-invalid-lines --out "$data/bad-coco.json" 2> "$data/log"
[ "$(grep -c '"line"' "$data/bad-coco.errors.ndjson")" -ge 2 ] || fail "the skipped tasks are not in the report"
grep -q "a task must be a JSON object" "$data/bad-coco.errors.ndjson" || fail "the non-object task is not reported"
ok "a Label Studio task with an unknown from_name or that is no object is refused with its line and id, or skipped and reported"
# Every ZIP written above (JSON_SIMPLE, AMAZON_COMPREHEND_CSV, YOLO, VOC; XLSX workbooks
# are ZIPs too) in three more readers beside zipfile, among them Java's forward-only
# ZipInputStream, which refuses what readers of the central directory forgive.
archives=("$data"/*.zip "$data"/*.xlsx)
"$PYTHON" infra/check_zip_readers.py "${archives[@]}" > "$data/log" 2>&1 || fail "ZIP readers: $(tail -3 "$data/log")"
ok "${#archives[@]} ZIP archives read whole and list alike in zipfile, unzip, bsdtar and ZipInputStream"
echo "$passed passed, 0 failed"
