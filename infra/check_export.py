#!/usr/bin/env python3
"""Checks an export with readers labelport did not write (Python's csv, json, gzip).

    check_export.py csv    SOURCE PROJECT_DIR [--states a,b] [--stages X,Y]
    check_export.py ndjson SOURCE PROJECT_DIR [--stages X,Y] [--stage-history]

SOURCE is a file path or a URL (a presigned download). PROJECT_DIR holds project.json
and tasks/*.ndjson[.gz|.zst]: the generated source the export must match row for row.
Prints "N rows match" and exits 0, or names the first difference and exits 1.
"""
import argparse
import csv
import gzip
import io
import json
import os
import sys
import tempfile
import urllib.request

BASE = ["id", "state", "assignee_email", "created_at", "duration_seconds",
        "comment_count", "task_url", "element_url"]
# Columns holding text (the rest are labelport's own numbers and states).
TEXT = {"id", "assignee_email", "created_at", "task_url", "element_url", "transcription"}


def fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)


def fetch(source):
    if source.startswith(("http://", "https://")):
        with urllib.request.urlopen(source, timeout=30) as response:
            data = response.read()
            disposition = response.headers.get("Content-Disposition", "")
        if "attachment" not in disposition:
            fail(f"download has no attachment Content-Disposition: {disposition!r}")
        return data
    with open(source, "rb") as f:
        return f.read()


def open_lines(path):
    if path.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path), encoding="utf-8")
    if path.endswith(".zst"):
        import zstandard
        return io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(open(path, "rb")), encoding="utf-8")
    return open(path, encoding="utf-8")


def tasks(project_dir):
    folder = os.path.join(project_dir, "tasks")
    for name in sorted(os.listdir(folder)):
        with open_lines(os.path.join(folder, name)) as f:
            for line in f:
                if line.strip():
                    yield json.loads(line)


def final_annotations(task):
    submissions = task.get("submissions") or []
    return submissions[-1].get("annotations", []) if submissions else []


def decimal_seconds(ms):
    whole, frac = divmod(ms, 1000)
    return f"{whole}.{frac:03d}".rstrip("0").rstrip(".") if frac else str(whole)


def text(cell):
    """A text cell's value: safe cells have a `'` put before a formula-like value."""
    return cell[1:] if cell.startswith("'") else cell


def values(cell, safe=True):
    """A multi-value cell's values: split on an unescaped `|`, then unescape `\\`."""
    out, current, escaped = [], [], False
    for c in (text(cell) if safe else cell):
        if escaped:
            current.append(c)
            escaped = False
        elif c == "\\":
            escaped = True
        elif c == "|":
            out.append("".join(current))
            current = []
        else:
            current.append(c)
    out.append("".join(current))
    return out if cell else []


def mode_cells(mode, task, form_fields):
    anns = final_annotations(task)
    labels = lambda kind: [a["label"] for a in anns if a["type"] == kind]
    count = lambda *kinds: str(sum(1 for a in anns if a["type"] in kinds))
    if mode == "classification":
        return {"class": labels("class")}
    if mode in ("row", "document"):
        fail("a row or document project's CSV is its table: check it with check_tables.py csv")
    if mode == "element":
        return {"element_count": count("box", "polygon", "point")}
    if mode == "element_group":
        return {"element_group_count": count("group")}
    if mode in ("entity", "token"):
        return {"entity_count": count("span")}
    if mode == "transcription":
        return {"transcription": " ".join(a["text"] for a in anns if a["type"] == "transcription")}
    if mode == "entity_form":
        return {f: [a["text"] for a in anns if a["type"] == "answer" and a.get("field") == f]
                for f in form_fields}
    if mode == "video":
        tracks, loose = set(), 0
        for a in anns:
            if a["type"] in ("box", "polygon", "point"):
                if a.get("track") is None:
                    loose += 1
                else:
                    tracks.add(a["track"])
        return {"object_count": str(len(tracks) + loose)}
    fail(f"unknown mode {mode}")


def check_csv(data, project_dir, states, stages):
    project = json.load(open(os.path.join(project_dir, "project.json")))
    mode = project["mode"]
    states = states or ["annotated", "validated"]
    expected = [t for t in tasks(project_dir)
                if not t.get("preview") and t["state"] in states and (not stages or t["stage"] in stages)]
    reader = csv.DictReader(io.StringIO(data.decode("utf-8"), newline=""))
    if reader.fieldnames[:len(BASE)] != BASE:
        fail(f"header {reader.fieldnames} does not start with {BASE}")
    rows = list(reader)
    if len(rows) != len(expected):
        fail(f"{len(rows)} rows, expected {len(expected)}")
    form_fields = project.get("labels", {}).get("formFields", [])
    for n, (row, task) in enumerate(zip(rows, expected), start=2):
        links = task.get("links") or {}
        want = {
            "id": task["id"], "state": task["state"], "assignee_email": task.get("assignee") or "",
            "created_at": task["createdAt"], "duration_seconds": decimal_seconds(task.get("durationMs", 0)),
            "comment_count": str(task.get("commentCount", 0)), "task_url": links.get("task") or "",
            "element_url": links.get("element") or "",
        }
        want.update(mode_cells(mode, task, form_fields))
        for column, value in want.items():
            got = row.get(column)
            got = values(got) if isinstance(value, list) else text(got) if column in TEXT else got
            if got != value:
                fail(f"CSV line {n}, column {column}: {row.get(column)!r}, expected {value!r} (task {task['id']})")
    print(f"{len(rows)} rows match")


def check_ndjson(data, project_dir, stages, stage_history):
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)  # concatenated members are one stream
    stages = stages or ["Complete"]
    expected = [t for t in tasks(project_dir) if not t.get("preview") and t["stage"] in stages]
    lines = [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]
    if len(lines) != len(expected):
        fail(f"{len(lines)} lines, expected {len(expected)}")
    for n, (record, task) in enumerate(zip(lines, expected), start=1):
        t = record["task"]
        checks = {
            "asset": (record["asset"], task["asset"]["url"]),
            "task.taskId": (t["taskId"], task["id"]),
            "task.stage": (t["stage"], task["stage"]),
            "task.totalDuration": (t["totalDuration"], task.get("durationMs", 0)),
            "annotations": (len(t["tools"]) + len(t["classifications"]), len(final_annotations(task))),
            "task.relations": (len(t["relations"]), len((task.get("submissions") or [{}])[-1].get("relations", []) if task.get("submissions") else [])),
        }
        if stage_history:
            checks["task.stageHistory"] = (len(t["stageHistory"]), len(task.get("submissions") or []))
        elif "stageHistory" in t:
            fail(f"line {n}: stageHistory present without the toggle")
        for field, (got, want) in checks.items():
            if got != want:
                fail(f"NDJSON line {n}, {field}: {got!r}, expected {want!r} (task {task['id']})")
    print(f"{len(lines)} rows match")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("format", choices=["csv", "ndjson"])
    parser.add_argument("source")
    parser.add_argument("project_dir")
    parser.add_argument("--states", type=lambda s: s.split(","))
    parser.add_argument("--stages", type=lambda s: s.split(","))
    parser.add_argument("--stage-history", action="store_true")
    args = parser.parse_args()
    data = fetch(args.source)
    with tempfile.TemporaryDirectory():
        if args.format == "csv":
            check_csv(data, args.project_dir, args.states, args.stages)
        else:
            check_ndjson(data, args.project_dir, args.stages, args.stage_history)


if __name__ == "__main__":
    main()
