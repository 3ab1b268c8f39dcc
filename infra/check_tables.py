#!/usr/bin/env python3
"""Checks the table formats of row and document projects with readers labelport did not
write: Python's csv (TSV, HUGGINGFACE_CSV), json (JSON_TABULAR), pandas and Hugging
Face `datasets` (HUGGINGFACE_CSV, loaded as a user loads a dataset) and openpyxl (XLSX,
every sheet).

    check_tables.py tsv|huggingface-csv|json-tabular|xlsx SOURCE PROJECT_DIR [--raw] [--excel]
                    [--max-rows N]

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


def expected_rows(project_dir):
    project = json.load(open(os.path.join(project_dir, "project.json")))
    columns = project.get("columns", [])
    header = ["id"] + (["text"] if project["mode"] == "document" else columns) + ["label"]
    rows = []
    for task in tasks(project_dir):
        if task.get("preview") or task["stage"] != "Complete":
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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("format", choices=["tsv", "huggingface-csv", "json-tabular", "xlsx"])
    parser.add_argument("source")
    parser.add_argument("project_dir")
    parser.add_argument("--raw", action="store_true")
    parser.add_argument("--excel", action="store_true")
    parser.add_argument("--max-rows", type=int, default=1048575)
    args = parser.parse_args()
    data = fetch(args.source)
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
    got_header, got_rows, decode = delimited(data, delimiter, args.raw, args.excel)
    if got_header != header:
        fail(f"header {got_header}, expected {header}")
    compare(got_rows, header, rows, decode)

    if args.format == "huggingface-csv":
        import pandas
        from datasets import load_dataset

        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "table.csv")
            with open(path, "wb") as f:
                f.write(data)
            frame = pandas.read_csv(path, dtype=str, keep_default_na=False)
            if list(frame.columns) != header:
                fail(f"pandas reads columns {list(frame.columns)}, expected {header}")
            compare(frame.values.tolist(), header, rows, decode)
            dataset = load_dataset("csv", data_files=path, split="train", cache_dir=os.path.join(folder, "cache"))
            if dataset.num_rows != len(rows) or dataset.column_names != header:
                fail(f"datasets loads {dataset.num_rows} rows of {dataset.column_names}, expected {len(rows)} of {header}")
            ids = dataset["id"]
            if list(ids) != [r[0] for r in rows]:
                fail("datasets reads other ids")
            for got, want in zip(dataset["label"], rows):
                if decode(got or "", True) != want[-1]:
                    fail(f"datasets reads label {got!r} for {want[0]}, expected {want[-1]!r}")
        print(f"{len(got_rows)} rows match, read by csv, pandas and datasets")
        return
    print(f"{len(got_rows)} rows match")


if __name__ == "__main__":
    main()
