#!/usr/bin/env python3
"""Checks CUSTOM against jq itself (libjq, through PyPI's `jq`): the program run by jq
on each line of the project's NDJSON export must give what labelport's CUSTOM export
holds, output for output.

    check_custom.py CUSTOM_SOURCE NDJSON_SOURCE PROGRAM [--csv COLUMN,COLUMN...]

NDJSON output: each line, read by json, equals jq's output value. CSV output (read by
Python's csv): the header is the columns, and each row holds jq's object's values
(a missing key an empty cell). A line jq fails on must be missing from the export; the
count of those is printed. Prints "N outputs match" or names the first difference and
exits 1.
"""
import argparse
import csv
import io
import json
import os
import sys

import jq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_export import fail, fetch  # noqa: E402


def cell(value):
    """A jq value as labelport's CSV writes it, numbers compared as numbers."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return float(value)
    return value


def same_cell(got, want):
    if isinstance(want, float):
        try:
            return float(got) == want
        except ValueError:
            return False
    return got == want


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("custom")
    parser.add_argument("ndjson")
    parser.add_argument("program")
    parser.add_argument("--csv")
    args = parser.parse_args()
    program = jq.compile(args.program)
    want, failed = [], 0
    for line in fetch(args.ndjson).decode("utf-8").splitlines():
        try:
            want.extend(program.input_text(line).all())
        except ValueError:
            failed += 1
    data = fetch(args.custom).decode("utf-8")
    if args.csv:
        columns = args.csv.split(",")
        rows = list(csv.reader(io.StringIO(data)))
        if rows[0] != columns:
            fail(f"header {rows[0]}, expected {columns}")
        got = rows[1:]
        if len(got) != len(want):
            fail(f"{len(got)} rows, jq gives {len(want)}")
        for i, (row, value) in enumerate(zip(got, want)):
            expected = [cell(value.get(c)) for c in columns]
            if len(row) != len(columns) or not all(same_cell(g, w) for g, w in zip(row, expected)):
                fail(f"row {i + 1}: {row}, jq gives {expected}")
    else:
        got = [json.loads(line) for line in data.splitlines()]
        if len(got) != len(want):
            fail(f"{len(got)} lines, jq gives {len(want)}")
        for i, (g, w) in enumerate(zip(got, want)):
            if g != w:
                fail(f"line {i + 1}: {json.dumps(g)[:200]}, jq gives {json.dumps(w)[:200]}")
    print(f"{len(got)} outputs match ({failed} tasks jq fails on)")


if __name__ == "__main__":
    main()
