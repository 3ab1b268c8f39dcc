#!/usr/bin/env python3
"""Holds the workspace to its layout (docs/crates.md):

- the engine's normal dependencies include no HTTP server or client, AWS SDK or
  Lambda runtime (`cargo tree -p labelport-engine -e normal`);
- no import circle between the top-level modules of a crate (`use crate::a` in `b`
  and `use crate::b` in `a`, directly or through others);
- no production file longer than 800 lines before its tests.

Prints what it checked and exits 0, or names the first breach and exits 1.
"""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FORBIDDEN = re.compile(r"^(axum|hyper|reqwest|tower-http|aws-sdk-|aws-config|aws-smithy-|lambda_runtime|lambda_http|aws_lambda_events)\b")
MAX_LINES = 800


def fail(message):
    print(f"FAIL: {message}")
    sys.exit(1)


def engine_dependencies():
    out = subprocess.run(
        ["cargo", "tree", "-p", "labelport-engine", "-e", "normal", "--prefix", "none", "--locked"],
        cwd=ROOT, check=True, capture_output=True, text=True).stdout
    names = sorted({line.split()[0] for line in out.splitlines() if line.strip()})
    bad = [n for n in names if FORBIDDEN.match(n)]
    if bad:
        fail(f"labelport-engine depends on {', '.join(bad)}")
    return len(names)


def crates():
    for base in ("functions", "tests"):
        for name in sorted(os.listdir(os.path.join(ROOT, base))):
            src = os.path.join(ROOT, base, name, "src") if base == "functions" else os.path.join(ROOT, base, "src")
            if os.path.isdir(src):
                yield os.path.relpath(src, ROOT), src
            if base == "tests":
                break


def production_lines(path):
    count = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#[cfg(test)]"):
                break
            count += 1
    return count


def top_module(src, path):
    rel = os.path.relpath(path, src).replace(os.sep, "/")
    first = rel.split("/")[0]
    return first[:-3] if first.endswith(".rs") else first


def check_crate(label, src):
    edges = {}
    files = 0
    for folder, _, names in os.walk(src):
        for name in names:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(folder, name)
            files += 1
            lines = production_lines(path)
            if lines > MAX_LINES and os.sep + "bin" + os.sep not in path:
                fail(f"{os.path.relpath(path, ROOT)} has {lines} lines before its tests (at most {MAX_LINES})")
            module = top_module(src, path)
            if module in ("lib", "main"):
                continue
            text = open(path, encoding="utf-8").read().split("#[cfg(test)]")[0]
            # Code only: a doc comment may name a module without depending on it.
            text = "\n".join(line.split("//")[0] for line in text.splitlines())
            for used in re.findall(r"\bcrate::([a-z_][a-z0-9_]*)", text):
                if used != module:
                    edges.setdefault(module, set()).add(used)
    # A circle is a module that reaches itself.
    for start in sorted(edges):
        seen, stack = set(), [(start, [start])]
        while stack:
            node, trail = stack.pop()
            for nxt in sorted(edges.get(node, ())):
                if nxt == start:
                    fail(f"{label}: import circle {' -> '.join(trail + [start])}")
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, trail + [nxt]))
    return files


def main():
    deps = engine_dependencies()
    checked = 0
    for label, src in crates():
        checked += check_crate(label, src)
    print(f"labelport-engine: {deps} normal dependencies, none of axum, reqwest, the AWS SDK or the Lambda runtime; "
          f"{checked} source files: no import circle between a crate's modules, none over {MAX_LINES} lines before its tests")


if __name__ == "__main__":
    main()
