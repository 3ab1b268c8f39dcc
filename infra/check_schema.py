#!/usr/bin/env python3
"""Validate a labelport data root against the v1 JSON Schemas.

    python3 infra/check_schema.py DATA_ROOT

Checks every DATA_ROOT/projects/*/project.json against docs/schema/project.v1.json
and every line of every task file DATA_ROOT/projects/*/tasks/*.ndjson[.gz|.zst]
(and .jsonl[.gz|.zst]) against docs/schema/task.v1.json. Prints "N lines valid"
(task lines; blank lines are skipped) and exits 0, or prints FILE:LINE and the
first error and exits 1. Exits 2 on a usage error.

Needs the `jsonschema` and `zstandard` packages (pip install jsonschema zstandard).
"""

import gzip
import json
import sys
from pathlib import Path

import jsonschema
import zstandard

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "docs" / "schema"
TASK_SUFFIXES = (".ndjson", ".ndjson.gz", ".ndjson.zst", ".jsonl", ".jsonl.gz", ".jsonl.zst")


def validator(name):
    schema = json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def reject_constant(name):
    # Python's json reads NaN and Infinity; serde_json (the real reader) does not.
    raise ValueError(f"{name} is not JSON")


def no_duplicates(pairs):
    # serde refuses a duplicate field of a struct; Python would keep the last one.
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"duplicate key {key!r}")
        obj[key] = value
    return obj


def parse(text):
    return json.loads(text, parse_constant=reject_constant, object_pairs_hook=no_duplicates)


CHUNK = 1 << 20


def zstd_chunks(raw):
    """Decompresses every frame of a zstd stream; a truncated frame is an error."""
    dctx = zstandard.ZstdDecompressor()
    frame = dctx.decompressobj()
    in_frame = False
    while chunk := raw.read(CHUNK):
        while chunk:
            in_frame = True
            out = frame.decompress(chunk)
            if out:
                yield out
            if frame.eof:
                chunk = frame.unused_data
                frame = dctx.decompressobj()
                in_frame = False
            else:
                chunk = b""
    if in_frame:
        raise zstandard.ZstdError("zstd stream ended before the end of its frame")


def chunks(path):
    """Yields the decompressed bytes of a task file, decompressing by file name."""
    with open(path, "rb") as raw:
        if path.name.endswith(".zst"):
            yield from zstd_chunks(raw)
            return
        source = gzip.GzipFile(fileobj=raw) if path.name.endswith(".gz") else raw
        while chunk := source.read(CHUNK):
            yield chunk


def lines_of(path):
    """Yields the lines of a task file as bytes, without their newline."""
    rest = b""
    for chunk in chunks(path):
        parts = (rest + chunk).split(b"\n")
        rest = parts.pop()
        yield from parts
    if rest:
        yield rest


def describe(error):
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return f"at {where}: {error.message}"


def fail(location, message):
    print(f"{location}: {message}", file=sys.stderr)
    sys.exit(1)


def main(argv):
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    projects = Path(argv[1]) / "projects"
    if not projects.is_dir():
        print(f"{projects}: not a directory", file=sys.stderr)
        return 2

    project_schema = validator("project.v1.json")
    task_schema = validator("task.v1.json")

    lines = 0
    for project in sorted(p for p in projects.iterdir() if p.is_dir()):
        manifest = project / "project.json"
        if manifest.exists():
            try:
                doc = parse(manifest.read_text(encoding="utf-8"))
            except ValueError as e:
                fail(manifest, f"not JSON: {e}")
            error = jsonschema.exceptions.best_match(project_schema.iter_errors(doc))
            if error is not None:
                fail(manifest, describe(error))
        tasks = project / "tasks"
        if not tasks.is_dir():
            continue
        for path in sorted(tasks.iterdir()):
            if not path.is_file() or not path.name.endswith(TASK_SUFFIXES):
                continue
            number = 0
            try:
                for number, line in enumerate(lines_of(path), start=1):
                    if not line.strip():
                        continue
                    try:
                        doc = parse(line.decode("utf-8"))
                    except ValueError as e:
                        fail(f"{path}:{number}", f"not JSON: {e}")
                    error = jsonschema.exceptions.best_match(task_schema.iter_errors(doc))
                    if error is not None:
                        fail(f"{path}:{number}", describe(error))
                    lines += 1
            except (OSError, EOFError, zstandard.ZstdError) as e:
                fail(f"{path}:{number + 1}", f"cannot read: {e}")
    print(f"{lines} lines valid")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
