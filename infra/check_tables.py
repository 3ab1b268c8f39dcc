#!/usr/bin/env python3
"""Checks the table formats of row and document projects with readers labelport did not
write: Python's csv (TSV, CSV, HUGGINGFACE_CSV), json (JSON_TABULAR), pandas and Hugging
Face `datasets` (CSV and HUGGINGFACE_CSV, loaded as a user loads a dataset) and openpyxl
(XLSX, every sheet). The table formats keep the Complete stage; CSV keeps annotated and
validated tasks, its own default.

    check_tables.py tsv|csv|huggingface-csv|json-tabular|xlsx SOURCE PROJECT_DIR [--raw] [--excel]
                    [--max-rows N]
    check_tables.py long-csv|wide-csv SOURCE PROJECT_DIR [--latest] [--data-sources A,B]
                    [--batches A,B]

LONG_CSV and WIDE_CSV are checked against the tasks' assessments (submissions), all or
the latest of each task by time, as the documentation describes their rows.

Every row must be its task's, cell by cell: the id, the row's cells in the project's
column order (row mode) or the text (document mode), and the labels, undoing the
documented cell rules (a `'` before a formula-like value unless --raw; `|` between
labels, `\\` escaping). Prints "N rows match" and exits 0, or names the first difference.
"""
import argparse
import csv
import io
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_export import fail, fetch, final_annotations, tasks, text, values  # noqa: E402


def expected_rows(project_dir, kept=lambda task: task["stage"] == "Complete"):
    project = json.load(open(os.path.join(project_dir, "project.json")))
    columns = project.get("columns", [])
    header = ["id"] + (["text"] if project["mode"] == "document" else columns) + ["label"]
    rows = []
    for task in tasks(project_dir):
        if task.get("preview") or not kept(task):
            continue
        if project["mode"] == "document":
            cells = [task["asset"].get("text", "")]
        else:
            row = {c["column"]: c["value"] for c in task["asset"].get("row", [])}
            cells = [row.get(c, "") for c in columns]
        labels = [a["label"] for a in final_annotations(task) if a["type"] == "class"]
        rows.append([task["id"]] + cells + [labels])
    return header, rows


def compare(got_rows, header, rows, decode):
    if len(got_rows) != len(rows):
        fail(f"{len(got_rows)} rows, expected {len(rows)}")
    for n, (got, want) in enumerate(zip(got_rows, rows), start=2):
        for column, cell, value in zip(header, got, want):
            decoded = decode(cell, isinstance(value, list))
            if decoded != value:
                fail(f"row {n} ({want[0]}), column {column}: {cell!r} reads as {decoded!r}, expected {value!r}")


def delimited(data, delimiter, raw, excel):
    bom = "\ufeff".encode()
    if excel != data.startswith(bom):
        fail("a byte order mark where none was asked for, or none where one was")
    textdata = data.decode("utf-8-sig")
    if excel and "\r\n" not in textdata:
        fail("excel: lines do not end with CRLF")
    reader = csv.reader(io.StringIO(textdata, newline=""), delimiter=delimiter)
    header = next(reader)
    rows = list(reader)

    def decode(cell, is_list):
        if is_list:
            return values(cell, safe=not raw)
        return cell if raw else text(cell)
    return header, rows, decode


FORMULA_LIKE = tuple("=+-@\t\r'")


def as_text(value):
    """A cell as a reader typed it, back to the text it was: an empty cell is NaN or
    None, a column of numbers is numbers."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value if isinstance(value, str) else str(value)


def check_xlsx(data, header, rows, raw, max_rows):
    """Every sheet starts with the header; the rows, in order over the sheets, are the
    tasks', values exact; a formula-like text cell carries Excel's quote prefix (unless
    raw); a sheet holds at most max_rows rows and is named by the rows it holds."""
    import openpyxl

    book = openpyxl.load_workbook(io.BytesIO(data))
    got = []
    for sheet in book.worksheets:
        lines = list(sheet.iter_rows())
        if [c.value for c in lines[0]] != header:
            fail(f"sheet {sheet.title}: header {[c.value for c in lines[0]]}, expected {header}")
        if len(lines) - 1 > max_rows:
            fail(f"sheet {sheet.title} holds {len(lines) - 1} rows, more than {max_rows}")
        first = len(got) + 1
        for line in lines[1:]:
            cells = []
            for cell in line:
                value = "" if cell.value is None else cell.value
                if not isinstance(value, str):
                    fail(f"{sheet.title}!{cell.coordinate}: {value!r} is not text")
                if cell.quotePrefix != (not raw and value.startswith(FORMULA_LIKE)):
                    fail(f"{sheet.title}!{cell.coordinate}: {value!r} quote prefix {cell.quotePrefix}")
                cells.append(value)
            got.append(cells + [""] * (len(header) - len(cells)))
        if len(book.worksheets) > 1 and sheet.title != f"Tasks {first}-{len(got)}":
            fail(f"sheet {sheet.title!r} holds rows {first}-{len(got)}")
    compare(got, header, rows, lambda cell, is_list: values(cell, safe=False) if is_list else cell)
    print(f"{len(got)} rows match in {len(book.worksheets)} sheets")


LEAD = ["task_id", "external_id", "data_source", "assessment_id", "origin", "assessor",
        "stage", "assessed_at", "entity_id", "label"]


def assessments(task, latest):
    from datetime import datetime

    subs = task.get("submissions") or []
    if not latest or not subs:
        return subs
    def at(s):
        try:
            return datetime.fromisoformat(s["completedAt"].replace("Z", "+00:00")).timestamp()
        except ValueError:
            return float("-inf")
    best = max(range(len(subs)), key=lambda i: (at(subs[i]), i))
    return [subs[best]]


def location(annotation):
    if annotation["type"] == "box":
        b = annotation["bbox"]
        box = {"type": "box", "x": b["x"], "y": b["y"], "width": b["width"], "height": b["height"]}
        if b.get("rotation") is not None:
            box["rotation"] = b["rotation"]
        return box
    if annotation["type"] in ("polygon", "point"):
        return {"type": annotation["type"], "points": annotation["points"]}
    return None


def check_assessments(data, args):
    project = json.load(open(os.path.join(args.project_dir, "project.json")))
    attributes = project.get("labels", {}).get("attributes", [])
    wide = args.format == "wide-csv"
    want_header = LEAD + (["location", "confidence"] + attributes if wide else ["attribute", "value", "confidence"])
    reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
    header = next(reader)
    if header != want_header:
        fail(f"header {header}, expected {want_header}")
    got = list(reader)
    expected = []  # (lead values, tail checker)
    for task in tasks(args.project_dir):
        if task.get("preview"):
            continue
        asset = task["asset"]
        if args.data_sources and asset.get("dataSource") not in args.data_sources:
            continue
        if args.batches and not set(task.get("batches", [])) & set(args.batches):
            continue
        for s in assessments(task, args.latest):
            lead = [task["id"], asset.get("externalId") or "", asset.get("dataSource") or "", s["id"], s["origin"],
                    s.get("labeler") or s.get("model") or "", s["stage"], s["completedAt"]]
            annotations = [a for a in s.get("annotations", []) if a["type"] in ("box", "polygon", "point", "class")]
            if not annotations:
                expected.append((lead + ["", ""], ["", "", ""] if not wide else ["", ""] + [""] * len(attributes)))
            for a in annotations:
                head = lead + [a["id"], a.get("label") or ""]
                if wide:
                    cells = [location(a), a.get("confidence")]
                    for name in attributes:
                        cells.append([x["value"] for x in a.get("attributes", []) if x["name"] == name])
                    expected.append((head, cells))
                else:
                    expected.append((head, ["location", location(a), a.get("confidence")]))
                    for x in a.get("attributes", []):
                        expected.append((head, [x["name"], x["value"], x.get("confidence")]))
    if len(got) != len(expected):
        fail(f"{len(got)} rows, expected {len(expected)}")

    def same(cell, want):
        if isinstance(want, dict) or (want is None and cell.startswith("{")):
            return cell != "" and json.loads(cell) == want
        if isinstance(want, float) or isinstance(want, int) and not isinstance(want, bool):
            return cell != "" and abs(float(cell) - want) < 1e-12
        if want is None:
            return cell == ""
        if isinstance(want, list):
            return values(cell) == want
        return text(cell) == want

    for n, (row, (head, tail)) in enumerate(zip(got, expected), start=2):
        for column, cell, want in zip(header, row, head + tail):
            if not same(cell, want):
                fail(f"row {n}, column {column}: {cell!r}, expected {want!r}")
    kept = len({tuple(r[:4]) for r in got})
    print(f"{len(got)} rows match ({kept} assessments)")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("format", choices=["tsv", "csv", "huggingface-csv", "json-tabular", "xlsx", "long-csv", "wide-csv"])
    parser.add_argument("--latest", action="store_true")
    parser.add_argument("--data-sources", type=lambda s: s.split(","))
    parser.add_argument("--batches", type=lambda s: s.split(","))
    parser.add_argument("source")
    parser.add_argument("project_dir")
    parser.add_argument("--raw", action="store_true")
    parser.add_argument("--excel", action="store_true")
    parser.add_argument("--max-rows", type=int, default=1048575)
    args = parser.parse_args()
    data = fetch(args.source)
    if args.format in ("long-csv", "wide-csv"):
        check_assessments(data, args)
        return
    if args.format == "csv":
        header, rows = expected_rows(args.project_dir, lambda task: task["state"] in ("annotated", "validated"))
    else:
        header, rows = expected_rows(args.project_dir)

    if args.format == "xlsx":
        check_xlsx(data, header, rows, args.raw, args.max_rows)
        return

    if args.format == "json-tabular":
        objects = json.loads(data)
        if any(list(o) != header for o in objects):
            fail(f"keys {list(objects[0]) if objects else []}, expected {header}")
        compare([list(o.values()) for o in objects], header, rows, lambda cell, _: cell)
        print(f"{len(objects)} rows match")
        return

    delimiter = "\t" if args.format == "tsv" else ","
    # HUGGINGFACE_CSV is training data: its texts are written as they are, always.
    raw = args.raw or args.format == "huggingface-csv"
    got_header, got_rows, decode = delimited(data, delimiter, raw, args.excel)
    if got_header != header:
        fail(f"header {got_header}, expected {header}")
    compare(got_rows, header, rows, decode)

    if args.format in ("csv", "huggingface-csv"):
        import pandas
        from datasets import load_dataset

        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "table.csv")
            with open(path, "wb") as f:
                f.write(data)
            # As a training script reads it: no dtype hints, pandas' own guesses.
            frame = pandas.read_csv(path)
            if list(frame.columns) != header:
                fail(f"pandas reads columns {list(frame.columns)}, expected {header}")
            compare([[as_text(v) for v in row] for row in frame.values.tolist()], header, rows, decode)
            if not rows:
                # datasets has no empty split to load; pandas read the header above.
                print("0 rows match, read by csv and pandas")
                return
            dataset = load_dataset("csv", data_files=path, split="train", cache_dir=os.path.join(folder, "cache"))
            if dataset.num_rows != len(rows) or dataset.column_names != header:
                fail(f"datasets loads {dataset.num_rows} rows of {dataset.column_names}, expected {len(rows)} of {header}")
            # Every cell, text byte for byte (a leading `=` or `-` included).
            compare([[as_text(row[c]) for c in header] for row in dataset], header, rows, decode)
        print(f"{len(got_rows)} rows match, read by csv, pandas and datasets")
        return
    print(f"{len(got_rows)} rows match")


if __name__ == "__main__":
    main()
