#!/usr/bin/env python3
"""Checks the cloud-ML import files with Python's csv, json, zipfile and ast and with
seqeval, against the generated tasks and each service's rules for its files.

    check_cloud_ml.py comprehend-entities|comprehend-classes SOURCE PROJECT_DIR
    check_cloud_ml.py azure-ner|azure-classes SOURCE PROJECT_DIR
    check_cloud_ml.py vertex-csv|vertex-jsonl SOURCE PROJECT_DIR [--single-label]

Amazon Comprehend: the entity ZIP holds documents.txt (one document per line) and
annotations.csv (File,Line,Begin Offset,End Offset,Type), every row's characters spell
its span, types are upper case letters, digits and `_`, at most 64 characters and 25
types; classifier rows are `CLASS|CLASS,text`. Azure AutoML: the NER file passes
AutoML's data validation rules and seqeval's IOB2 entities are the spans; the
classification CSV is `text,labels` with labels a Python list literal. Vertex AI: labels
of 2 to 30 letters, digits or `_`; the CSV is `"text",label,...`; the JSON Lines hold
classificationAnnotation(s) or textSegmentAnnotations whose offsets spell the spans.

Prints "N ... match" or names the first difference and exits 1.
"""
import argparse
import ast
import csv
import io
import json
import os
import re
import sys
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_export import fail, fetch, final_annotations, tasks  # noqa: E402
from check_tokens import check_tags, kept_spans  # noqa: E402


def name(label, upper=False, allow_underscore=False, longest=64):
    """A service's name for a label: runs of other characters joined by one `_`."""
    words = "".join(c if c.isalnum() else " " for c in label).split()
    out = "_".join(words)
    out = out.upper() if upper else out
    return out[:longest].rstrip("_")


def comprehend(label):
    return name(label, upper=True, longest=64)


def vertex(label):
    return name(label, longest=30)


def document_text(task):
    """The document a classification file holds: the text, or the row's cells."""
    asset = task["asset"]
    if "row" in asset:
        return " ".join(cell["value"] for cell in asset["row"])
    return asset.get("text", "")


def entity_text(task):
    asset = task["asset"]
    return " ".join(asset["tokens"]) if asset.get("tokens") else asset.get("text", "")


def classes(task):
    return [a["label"] for a in final_annotations(task) if a["type"] == "class" and a.get("label") is not None]


def char_spans(task):
    """Each kept span as (begin, end, label) in characters of entity_text, by begin."""
    asset = task["asset"]
    if not asset.get("tokens"):
        return [(s, e, a["label"]) for s, e, a in kept_spans(task, False)]
    tokens, starts, at = asset["tokens"], [], 0
    for token in tokens:
        starts.append(at)
        at += len(token) + 1
    return [(starts[s], starts[e - 1] + len(tokens[e - 1]), a["label"]) for s, e, a in kept_spans(task, True)]


def check_comprehend_entities(data, expected):
    archive = zipfile.ZipFile(io.BytesIO(data))
    if archive.namelist() != ["documents.txt", "annotations.csv"]:
        fail(f"entries {archive.namelist()}, expected documents.txt and annotations.csv")
    documents = archive.read("documents.txt").decode("utf-8").split("\n")
    if documents[-1] != "" or len(documents) - 1 != len(expected):
        fail(f"{len(documents) - 1} documents, expected {len(expected)}")
    rows = list(csv.reader(io.StringIO(archive.read("annotations.csv").decode("utf-8"))))
    if rows[0] != ["File", "Line", "Begin Offset", "End Offset", "Type"]:
        fail(f"header {rows[0]}")
    got = []
    for row in rows[1:]:
        file, line, begin, end, kind = row
        if file != "documents.txt":
            fail(f"File {file!r} is not the documents file")
        if not re.fullmatch(r"[A-Z0-9_]{1,64}", kind):
            fail(f"Type {kind!r} breaks Comprehend's rule (upper case, underscores, 64 characters)")
        got.append((int(line), int(begin), int(end), kind))
    if len({g[3] for g in got}) > 25:
        fail("more than 25 entity types")
    want = []
    for line, task in enumerate(expected):
        text = entity_text(task).replace("\r", " ").replace("\n", " ")
        if documents[line] != text:
            fail(f"line {line}: {documents[line]!r}, expected task {task['id']}'s text")
        for begin, end, label in char_spans(task):
            want.append((line, begin, end, comprehend(label)))
    if got != want:
        diff = next(((g, w) for g, w in zip(got, want) if g != w), (len(got), len(want)))
        fail(f"{len(got)} annotations, expected {len(want)}; first difference {diff}")
    for line, begin, end, _ in got[:1000]:
        if not documents[line][begin:end].strip():
            fail(f"line {line} [{begin}, {end}) spells nothing")
    print(f"{len(got)} entities match in {len(expected)} documents")


def check_comprehend_classes(data, expected):
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    want = [("|".join(comprehend(c) for c in classes(t)), document_text(t).replace("\r", " ").replace("\n", " "))
            for t in expected if classes(t)]
    got = [tuple(row) for row in rows]
    for row in got:
        if len(row) != 2 or not all(re.fullmatch(r"[A-Z0-9_]+", c) for c in row[0].split("|")):
            fail(f"row {row} is not CLASS|CLASS,text")
        if "\n" in row[1] or "\r" in row[1]:
            fail(f"a document spans lines: {row[1]!r}")
    if got != want:
        diff = next(((g, w) for g, w in zip(got, want) if g != w), (len(got), len(want)))
        fail(f"{len(got)} rows, expected {len(want)}; first difference {diff}")
    print(f"{len(got)} documents match")


def check_azure_ner(data, expected):
    text = data.decode("utf-8")
    lines = text.split("\n")
    if text.startswith("\n") or not text.endswith("\n\n") or text.endswith("\n\n\n") or "\n\n\n" in text:
        fail("AutoML wants no empty first line, one empty line between samples and one at the end")
    pairs = []
    for line in lines:
        if not line:
            continue
        if not re.fullmatch(r"\S+ (O|[BI]-\S+)", line):
            fail(f"line {line!r} is not `token label` with one space")
        token, tag = line.split(" ")
        pairs.append((token, tag))
    entities = check_tags(pairs, expected, "azure-ner", False, label=lambda n: "_".join(n.split()))
    print(f"{entities} entities match in {len(expected)} documents")


def check_azure_classes(data, expected, single):
    reader = csv.DictReader(io.StringIO(data.decode("utf-8")))
    if reader.fieldnames != ["text", "labels"]:
        fail(f"header {reader.fieldnames}")
    got = []
    for row in reader:
        labels = [row["labels"]] if single else ast.literal_eval(row["labels"])
        got.append((row["text"], labels))
    want = [(document_text(t), classes(t)) for t in expected if not single or len(classes(t)) == 1]
    if got != want:
        diff = next(((g, w) for g, w in zip(got, want) if g != w), (len(got), len(want)))
        fail(f"{len(got)} rows, expected {len(want)}; first difference {diff}")
    print(f"{len(got)} documents match")


def valid_vertex(label):
    if not re.fullmatch(r"\w{2,30}", label):
        fail(f"label {label!r} breaks Vertex AI's rule (2 to 30 letters, digits or _)")
    return label


def keeps(task, single):
    n = len(classes(task))
    return n == 1 if single else n > 0


def check_vertex_csv(data, expected, single):
    got = []
    for row in csv.reader(io.StringIO(data.decode("utf-8"))):
        if len(row) < 2 or (single and len(row) != 2):
            fail(f"row {row[:3]} is not text,label{'' if single else ',...'}")
        got.append((row[0], [valid_vertex(label) for label in row[1:]]))
    want = [(document_text(t), [vertex(c) for c in classes(t)]) for t in expected if keeps(t, single)]
    if got != want:
        diff = next(((g, w) for g, w in zip(got, want) if g != w), (len(got), len(want)))
        fail(f"{len(got)} rows, expected {len(want)}; first difference {diff}")
    print(f"{len(got)} documents match")


def check_vertex_jsonl(data, expected, single, mode):
    lines = [json.loads(line) for line in data.decode("utf-8").splitlines()]
    if mode in ("token", "entity"):
        want = []
        for task in expected:
            text = entity_text(task)
            spans = [{"startOffset": b, "endOffset": e, "displayName": vertex(label)}
                     for b, e, label in char_spans(task) if 1 <= len(text[b:e].split()) <= 10]
            want.append({"textSegmentAnnotations": spans, "textContent": text})
        for line in lines:
            for span in line["textSegmentAnnotations"]:
                valid_vertex(span["displayName"])
                if not line["textContent"][span["startOffset"]:span["endOffset"]].strip():
                    fail(f"span {span} spells nothing")
    else:
        want = []
        for task in expected:
            if not keeps(task, single):
                continue
            names = [{"displayName": vertex(c)} for c in classes(task)]
            key = "classificationAnnotation" if single else "classificationAnnotations"
            want.append({key: names[0] if single else names, "textContent": document_text(task)})
        for line in lines:
            for a in [line.get("classificationAnnotation")] if single else line.get("classificationAnnotations", []):
                valid_vertex(a["displayName"])
    if lines != want:
        diff = next(((g, w) for g, w in zip(lines, want) if g != w), (len(lines), len(want)))
        fail(f"{len(lines)} lines, expected {len(want)}; first difference {diff}")
    print(f"{len(lines)} documents match")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("format", choices=["comprehend-entities", "comprehend-classes", "azure-ner",
                                           "azure-classes", "vertex-csv", "vertex-jsonl"])
    parser.add_argument("source")
    parser.add_argument("project_dir")
    parser.add_argument("--single-label", action="store_true")
    args = parser.parse_args()
    expected = [t for t in tasks(args.project_dir) if not t.get("preview") and t["stage"] == "Complete"]
    data = fetch(args.source)
    with open(os.path.join(args.project_dir, "project.json"), encoding="utf-8") as f:
        mode = json.load(f)["mode"]
    check = {
        "comprehend-entities": lambda: check_comprehend_entities(data, expected),
        "comprehend-classes": lambda: check_comprehend_classes(data, expected),
        "azure-ner": lambda: check_azure_ner(data, expected),
        "azure-classes": lambda: check_azure_classes(data, expected, args.single_label),
        "vertex-csv": lambda: check_vertex_csv(data, expected, args.single_label),
        "vertex-jsonl": lambda: check_vertex_jsonl(data, expected, args.single_label, mode),
    }[args.format]
    check()


if __name__ == "__main__":
    main()
