#!/usr/bin/env python3
"""Checks the token formats with seqeval, a reader labelport did not write: its strict
IOB2 / IOB1 entity extraction must recover exactly the generated spans.

    check_tokens.py tsv-iob|conll2003|tsv-non-iob SOURCE PROJECT_DIR [--iob1]
    check_tokens.py plain|json-advanced SOURCE PROJECT_DIR

PLAIN must hold one line per task, its text (line breaks as spaces, so offsets hold) or
its tokens joined by spaces. JSON_ADVANCED (read by Python's json) must hold every span
with its offsets, spelling its text, who made it, and every relation.

Token projects: the tokens must be the tasks' own and the entities their spans (token
indices). Entity projects: the tokens, joined, must spell each text, and each entity
must spell its span's text. Overlapping or nested spans are not expected (IOB cannot
express them; they go to the errors report). Prints "N entities match" or names the
first difference and exits 1.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_export import fail, fetch, final_annotations, tasks  # noqa: E402


def read_lines(data, conll):
    """(token, tag) pairs of the whole file, and the DOCSTART count."""
    pairs, docs = [], 0
    for line in data.decode("utf-8").split("\n"):
        if not line:
            continue
        fields = line.split(" ") if conll else line.split("\t")
        if conll:
            if fields[0] == "-DOCSTART-":
                if fields != ["-DOCSTART-", "-X-", "-X-", "O"]:
                    fail(f"DOCSTART line {line!r}")
                docs += 1
                continue
            if len(fields) != 4 or fields[1:3] != ["-X-", "-X-"]:
                fail(f"not four columns: {line!r}")
        elif len(fields) != 2:
            fail(f"not two columns: {line!r}")
        pairs.append((fields[0], fields[-1]))
    return pairs, docs


def kept_spans(task, by_tokens):
    spans = []
    for a in final_annotations(task):
        if a["type"] != "span":
            continue
        s, e = (a.get("tokenStart"), a.get("tokenEnd")) if by_tokens else (a.get("start"), a.get("end"))
        if s is not None and e is not None and s < e:
            spans.append((s, e, a))
    spans.sort(key=lambda x: (x[0], x[1]))
    kept, end = [], 0
    for i, (s, e, a) in enumerate(spans):
        if i > 0 and s < end:
            continue
        kept.append((s, e, a))
        end = e
    return kept


def check_documents(data, expected, fmt):
    if fmt == "plain":
        lines = data.decode("utf-8").split("\n")
        if lines[-1] != "" or len(lines) - 1 != len(expected):
            fail(f"{len(lines) - 1} lines, expected {len(expected)} documents")
        for line, task in zip(lines, expected):
            asset = task["asset"]
            want = " ".join(asset["tokens"]) if asset.get("tokens") else asset.get("text", "")
            want = want.replace("\r", " ").replace("\n", " ")
            if line != want:
                fail(f"task {task['id']}: line {line!r}, expected {want!r}")
        print(f"{len(expected)} documents match")
        return
    documents = json.loads(data)
    if len(documents) != len(expected):
        fail(f"{len(documents)} documents, expected {len(expected)}")
    spans = 0
    for doc, task in zip(documents, expected):
        asset = task["asset"]
        by_tokens = bool(asset.get("tokens"))
        if doc["id"] != task["id"] or doc.get("tokens" if by_tokens else "text") != asset.get("tokens" if by_tokens else "text", ""):
            fail(f"document {doc['id']}: id or text differs from task {task['id']}")
        subs = task.get("submissions") or []
        assessor = (subs[-1].get("labeler") or subs[-1].get("model")) if subs else None
        want = []
        for a in final_annotations(task):
            if a["type"] != "span":
                continue
            s, e = ("tokenStart", "tokenEnd") if by_tokens else ("start", "end")
            want.append({"id": a["id"], "label": a.get("label"), s: a.get(s), e: a.get(e), "text": a.get("text"),
                         "labeledBy": a.get("createdBy") or assessor, "labeledAt": a.get("createdAt")})
            if a.get("text") is not None:
                spelled = " ".join(asset["tokens"][a[s]:a[e]]) if by_tokens else asset["text"][a[s]:a[e]]
                if spelled != a["text"]:
                    fail(f"task {task['id']}: span {a['id']} spells {spelled!r}, not {a['text']!r}")
        if doc["spans"] != want:
            fail(f"document {doc['id']}: spans {doc['spans'][:2]}..., expected {want[:2]}...")
        relations = subs[-1].get("relations", []) if subs else []
        if doc["relations"] != [{k: r[k] for k in ("id", "label", "from", "to")} for r in relations]:
            fail(f"document {doc['id']}: relations differ")
        spans += len(want)
    print(f"{len(documents)} documents and {spans} spans match")


def check_tags(pairs, expected, fmt, iob1, label=lambda name: name):
    """Holds (token, tag) pairs to the tasks: the tokens spell them, and seqeval's entities
    (or, for tsv-non-iob, each token's label) are their spans, each label as `label`
    writes it. Returns the entity count."""
    from seqeval.scheme import IOB1, IOB2, Entities

    at, entities = 0, 0
    for task in expected:
        by_tokens = bool(task["asset"].get("tokens"))
        if by_tokens:
            want = task["asset"]["tokens"]
            got = pairs[at:at + len(want)]
            if [t for t, _ in got] != [w.replace(" ", "_") if fmt in ("conll2003", "azure-ner") else w for w in want]:
                fail(f"task {task['id']}: tokens {[t for t, _ in got]}, expected {want}")
        else:
            text = "".join(task["asset"].get("text", "").split())
            got, spelled = [], ""
            while spelled != text:
                if at + len(got) >= len(pairs) or not text.startswith(spelled + pairs[at + len(got)][0]):
                    fail(f"task {task['id']}: the tokens do not spell its text after {spelled[-30:]!r}")
                spelled += pairs[at + len(got)][0]
                got.append(pairs[at + len(got)])
        at += len(got)
        tags = [tag for _, tag in got]
        spans = kept_spans(task, by_tokens)
        if fmt == "tsv-non-iob":
            # Each token's label, from where it lies: token indices, or its characters
            # found in the text in order.
            if by_tokens:
                places = [(i, i + 1) for i in range(len(got))]
            else:
                text, places, pos = task["asset"]["text"], [], 0
                for token, _ in got:
                    pos = text.index(token, pos)
                    start = len(text[:pos])
                    places.append((start, start + len(token)))
                    pos += len(token)
            want = []
            for start, end in places:
                want.append(next((label(a["label"]) for s, e, a in spans if s <= start and end <= e), "O"))
            if tags != want:
                fail(f"task {task['id']}: labels {tags}, expected {want}")
            entities += len(spans)
            continue
        scheme = IOB1 if iob1 else IOB2
        found = [(e.tag, e.start, e.end) for e in Entities([tags], scheme).entities[0]]
        tokens = [t for t, _ in got]
        if by_tokens:
            want_entities = [(label(a["label"]), s, e) for s, e, a in spans]
        else:
            want_entities = [(label(a["label"]), "".join(a.get("text", "").split())) for _, _, a in spans]
            found = [(tag, "".join(tokens[s:e])) for tag, s, e in found]
        if found != want_entities:
            fail(f"task {task['id']}: seqeval finds {found}, expected {want_entities}")
        entities += len(found)
    if at != len(pairs):
        fail(f"{len(pairs) - at} token lines beyond the tasks")
    return entities


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("format", choices=["tsv-iob", "conll2003", "tsv-non-iob", "plain", "json-advanced"])
    parser.add_argument("source")
    parser.add_argument("project_dir")
    parser.add_argument("--iob1", action="store_true")
    args = parser.parse_args()
    expected = [t for t in tasks(args.project_dir) if not t.get("preview") and t["stage"] == "Complete"]
    if args.format in ("plain", "json-advanced"):
        check_documents(fetch(args.source), expected, args.format)
        return
    pairs, docs = read_lines(fetch(args.source), args.format == "conll2003")
    if args.format == "conll2003" and docs != len(expected):
        fail(f"{docs} DOCSTART lines, expected {len(expected)}")
    entities = check_tags(pairs, expected, args.format, args.iob1)
    print(f"{entities} entities match in {len(expected)} documents")


if __name__ == "__main__":
    main()
