#!/usr/bin/env python3
"""Checks the JSON family, NATIVE, JSON_SIMPLE ZIPs, errors reports and downloads with
readers labelport did not write (Python's json and zipfile, jq's libjq, requests).

    check_formats.py json        SOURCE PROJECT_DIR [--legacy] [--stage-history] [--stages A,B]
    check_formats.py ndjson-parts PROJECT_DIR [--max-bytes N] [--max-tasks N] [--legacy] SOURCE...
    check_formats.py native      SOURCE PROJECT_DIR
    check_formats.py json-simple SOURCE PROJECT_DIR [--entries N]
    check_formats.py report      SOURCE --skipped FILE:LINE,... --refused N
    check_formats.py download    URL SHA256 SIZE CONTENT_TYPE

SOURCE is a file path or a URL. PROJECT_DIR holds project.json and tasks/: the generated
truth. Prints what matched and exits 0, or names the first difference and exits 1.
"""
import argparse
import hashlib
import io
import json
import os
import sys
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_export import fail, fetch, final_annotations, tasks  # noqa: E402


def expected_tasks(project_dir, stages):
    return [t for t in tasks(project_dir) if not t.get("preview") and (stages is None or t["stage"] in stages)]


def check_record(n, record, task, legacy, stage_history):
    """One exported object against its source task, in either structure."""
    if legacy:
        if "task" in record or len(record.get("tasks", [])) != 1:
            fail(f"record {n}: the legacy structure has a `tasks` list of one task: {list(record)}")
        t = record["tasks"][0]
        tools, duration = t["objects"], t["duration"]
        if "tools" in t or "totalDuration" in t:
            fail(f"record {n}: legacy record has current keys")
    else:
        t = record["task"]
        tools, duration = t["tools"], t["totalDuration"]
    submissions = task.get("submissions") or []
    checks = {
        "asset": (record["asset"], task["asset"]["url"]),
        "taskId": (t["taskId"], task["id"]),
        "stage": (t["stage"], task["stage"]),
        "duration": (duration, task.get("durationMs", 0)),
        "annotations": (len(tools) + len(t["classifications"]), len(final_annotations(task))),
        "relations": (len(t["relations"]), len(submissions[-1].get("relations", [])) if submissions else 0),
    }
    if stage_history:
        history = t["stageHistory"]
        checks["stageHistory"] = (len(history), len(submissions))
        for stage, submission in zip(history, submissions):
            if legacy and ("objects" in stage or "tools" in stage):
                fail(f"record {n}: legacy stage history holds annotations")
            if stage["completedAt"] != submission["completedAt"]:
                fail(f"record {n}: stage completedAt {stage['completedAt']!r}")
    elif "stageHistory" in t:
        fail(f"record {n}: stageHistory present without the toggle")
    for field, (got, want) in checks.items():
        if got != want:
            fail(f"record {n}, {field}: {got!r}, expected {want!r} (task {task['id']})")


def check_json(args):
    data = fetch(args.source)
    document = json.loads(data)  # the whole file, as a reader that loads documents does
    if not isinstance(document, list):
        fail(f"the JSON export is a {type(document).__name__}, not an array")
    expected = expected_tasks(args.project_dir, args.stages or ["Complete"])
    if len(document) != len(expected):
        fail(f"{len(document)} elements, expected {len(expected)}")
    for n, (record, task) in enumerate(zip(document, expected), start=1):
        check_record(n, record, task, args.legacy, args.stage_history)
    print(f"{len(document)} elements match")


def check_ndjson_parts(args):
    import jq

    joined = b""
    for i, source in enumerate(args.sources, start=1):
        data = fetch(source)
        if data[:2] == b"\x1f\x8b":
            import gzip
            data = gzip.decompress(data)
        lines = data.count(b"\n")
        if not data.endswith(b"\n") or lines < 1:
            fail(f"part {i} does not hold whole lines")
        if args.max_bytes and len(data) > args.max_bytes and lines > 1:
            fail(f"part {i}: {len(data)} bytes > {args.max_bytes}")
        if args.max_tasks and lines > args.max_tasks:
            fail(f"part {i}: {lines} tasks > {args.max_tasks}")
        joined += data
    # jq (libjq) reads the re-joined parts as one stream of JSON texts.
    records = jq.compile(".").input_text(joined.decode("utf-8")).all()
    expected = expected_tasks(args.project_dir, ["Complete"])
    if len(records) != len(expected):
        fail(f"{len(records)} records in {len(args.sources)} parts, expected {len(expected)}")
    for n, (record, task) in enumerate(zip(records, expected), start=1):
        check_record(n, record, task, args.legacy, False)
    print(f"{len(records)} records in {len(args.sources)} parts match")


def check_native(args):
    data = fetch(args.source).decode("utf-8")
    got = [line for line in data.split("\n") if line]
    folder = os.path.join(args.project_dir, "tasks")
    want = []
    from check_export import open_lines
    for name in sorted(os.listdir(folder)):
        with open_lines(os.path.join(folder, name)) as f:
            for line in f:
                line = line.strip()
                if line and not json.loads(line).get("preview"):
                    want.append(line)
    if got != want:
        first = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
        fail(f"NATIVE line {first + 1} differs from the source record ({len(got)} lines, expected {len(want)})")
    print(f"{len(got)} records match their source byte for byte")


def check_json_simple(args):
    data = fetch(args.source)
    archive = zipfile.ZipFile(io.BytesIO(data))
    bad = archive.testzip()
    if bad is not None:
        fail(f"testzip: {bad} is corrupt")
    names = archive.namelist()
    if args.entries is not None and len(names) != args.entries:
        fail(f"{len(names)} entries, expected {args.entries}")
    expected = expected_tasks(args.project_dir, None)
    documents = [n for n in names if n.startswith("documents/")]
    if len(documents) != len(expected):
        fail(f"{len(documents)} documents, expected {len(expected)}")
    for task in expected:
        name = f"documents/{task['id']}.json"
        document = json.loads(archive.read(name))
        labels = [a["label"] for a in final_annotations(task) if a["type"] in ("class", "span")]
        if [label["label"] for label in document["labels"]] != labels:
            fail(f"{name}: labels {document['labels']!r}, expected {labels!r}")
        if document["id"] != task["id"]:
            fail(f"{name}: id {document['id']!r}")
        for submission in task.get("submissions") or []:
            labeler = submission.get("labeler")
            if labeler and f"labelers/{labeler}/{task['id']}.json" not in names:
                fail(f"no entry for {labeler}'s work on {task['id']}")
    print(f"{len(names)} entries, {len(documents)} documents match")


def check_report(args):
    lines = [json.loads(line) for line in fetch(args.source).decode("utf-8").splitlines() if line.strip()]
    skipped = [r for r in lines if "annotationId" not in r]
    refused = [r for r in lines if "annotationId" in r]
    want = [tuple(s.rsplit(":", 1)) for s in args.skipped.split(",")] if args.skipped else []
    got = [(r["file"], str(r["line"])) for r in skipped]
    if got != want:
        fail(f"skipped lines {got}, expected {want}")
    if any(not r.get("reason") for r in lines):
        fail("a report line without a reason")
    if len(refused) != args.refused:
        fail(f"{len(refused)} refused annotations, expected {args.refused}")
    if any(not (r.get("taskId") and r.get("file") and r.get("line")) for r in refused):
        fail("a refusal without its task, file or line")
    print(f"{len(skipped)} skipped lines and {len(refused)} refused annotations match")


def check_download(args):
    import requests

    response = requests.get(args.url, timeout=30)
    response.raise_for_status()
    body = response.content  # what a user saving the download gets
    if "Content-Encoding" in response.headers:
        fail(f"Content-Encoding {response.headers['Content-Encoding']!r}: clients would unpack the file")
    if response.headers.get("Content-Type") != args.content_type:
        fail(f"Content-Type {response.headers.get('Content-Type')!r}, expected {args.content_type!r}")
    if len(body) != args.size or hashlib.sha256(body).hexdigest() != args.sha256:
        fail(f"the download ({len(body)} bytes) is not the file the status lists ({args.size} bytes)")
    print(f"{len(body)} bytes, SHA-256 matches")


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("json")
    p.add_argument("source")
    p.add_argument("project_dir")
    p.add_argument("--legacy", action="store_true")
    p.add_argument("--stage-history", action="store_true")
    p.add_argument("--stages", type=lambda s: s.split(","))
    p = sub.add_parser("ndjson-parts")
    p.add_argument("project_dir")
    p.add_argument("sources", nargs="+")
    p.add_argument("--max-bytes", type=int)
    p.add_argument("--max-tasks", type=int)
    p.add_argument("--legacy", action="store_true")
    p = sub.add_parser("native")
    p.add_argument("source")
    p.add_argument("project_dir")
    p = sub.add_parser("json-simple")
    p.add_argument("source")
    p.add_argument("project_dir")
    p.add_argument("--entries", type=int)
    p = sub.add_parser("report")
    p.add_argument("source")
    p.add_argument("--skipped", default="")
    p.add_argument("--refused", type=int, required=True)
    p = sub.add_parser("download")
    p.add_argument("url")
    p.add_argument("sha256")
    p.add_argument("size", type=int)
    p.add_argument("content_type")
    args = parser.parse_args()
    {
        "json": check_json,
        "ndjson-parts": check_ndjson_parts,
        "native": check_native,
        "json-simple": check_json_simple,
        "report": check_report,
        "download": check_download,
    }[args.command](args)


if __name__ == "__main__":
    main()
