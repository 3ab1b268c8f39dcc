#!/usr/bin/env python3
"""Checks that ZIP archives read whole, and alike, in four readers that share no code:
Python's zipfile (the reference), Info-ZIP's unzip, libarchive's bsdtar and Java's
java.util.zip.ZipInputStream (infra/ZipCheck.java).

    check_zip_readers.py ARCHIVE...

Per archive:
- zipfile: `testzip()` reads every entry and checks its CRC. Its entry names and sizes,
  in central directory order, are what every other reader must give.
- unzip: `unzip -t` reads and CRC-checks every entry; `unzip -l` lists names and sizes.
- bsdtar: `bsdtar -tv` lists names and sizes from the central directory; `bsdtar -xO`
  fed through a pipe reads every entry front to back, through local headers and data
  descriptors (libarchive's streaming reader, which checks CRCs), and must give as many
  bytes as the sizes add up to.
- ZipInputStream: reads every entry front to back, checking CRCs and sizes; it must give
  zipfile's names, and as many bytes per entry as zipfile's sizes.

Needs unzip, bsdtar, java and javac (infra/system_tools.sh installs them). Prints one line
per archive, or names the first reader that disagrees and exits 1.
"""
import os
import re
import subprocess
import sys
import tempfile
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_export import fail  # noqa: E402

ZIP_CHECK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ZipCheck.java")
# Readers print names in the locale's encoding: make it UTF-8, whatever the caller's.
ENV = dict(os.environ, LC_ALL="C.UTF-8")
# `unzip -l -qq`: size, date, time, then the name after three spaces.
UNZIP_LINE = re.compile(r" *(\d+) +\S+ +\S+   (.*)")
# `bsdtar -tv`: mode, links, owner, group, size, date (month, day, time or year), name.
BSDTAR_LINE = re.compile(r"\S+ +\d+ +\S+ +\S+ +(\d+) \S+ +\d+ +\S+ (.*)")


def run(command):
    """The command's standard output; a failure ends the check with its messages."""
    result = subprocess.run(command, env=ENV, capture_output=True)
    if result.returncode != 0:
        said = (result.stderr or result.stdout).decode(errors="replace").strip()
        fail(f"{' '.join(command)} failed (exit {result.returncode}):\n{said[-3000:]}")
    return result.stdout.decode()


def listing(command, line_format, archive):
    """(name, size) per line of a reader's listing."""
    entries = []
    for line in run(command).splitlines():
        match = line_format.fullmatch(line)
        if match is None:
            fail(f"{archive}: cannot read {command[0]}'s listing line {line!r}")
        entries.append((match[2], int(match[1])))
    return entries


def zipfile_entries(archive):
    with zipfile.ZipFile(archive) as z:
        bad = z.testzip()
        if bad is not None:
            fail(f"{archive}: zipfile finds a bad CRC or header in {bad!r}")
        return [(info.filename, info.file_size) for info in z.infolist()]


def unzip_entries(archive):
    run(["unzip", "-tqq", archive])
    return listing(["unzip", "-l", "-qq", archive], UNZIP_LINE, archive)


def bsdtar_entries(archive):
    entries = listing(["bsdtar", "-tvf", archive], BSDTAR_LINE, archive)
    # From a pipe, not the file: libarchive then cannot seek to the central directory.
    cat = subprocess.Popen(["cat", archive], stdout=subprocess.PIPE)
    with tempfile.TemporaryFile() as errors:
        extract = subprocess.Popen(["bsdtar", "-xOf", "-"], stdin=cat.stdout, stdout=subprocess.PIPE,
                                   stderr=errors, env=ENV)
        cat.stdout.close()
        extracted = 0
        while chunk := extract.stdout.read(1 << 16):
            extracted += len(chunk)
        extract.wait()
        cat.wait()
        errors.seek(0)
        said = errors.read().decode(errors="replace").strip()
    if extract.returncode != 0 or said:
        fail(f"{archive}: bsdtar reading it from a pipe failed (exit {extract.returncode}):\n{said[-3000:]}")
    expected = sum(size for _, size in entries)
    if extracted != expected:
        fail(f"{archive}: bsdtar read {extracted} bytes from a pipe, its entries hold {expected}")
    return entries


def zipinputstream_entries(archives):
    """{archive: [(name, bytes read)]} from one Java run over every archive."""
    with tempfile.TemporaryDirectory() as classes:
        run(["javac", "-d", classes, ZIP_CHECK])
        output = run(["java", "-cp", classes, "ZipCheck", *archives])
    entries, current = {}, None
    for line in output.splitlines():
        if "\t" in line:
            name, size = line.rsplit("\t", 1)
            current.append((name, int(size)))
        else:
            current = entries.setdefault(line, [])
    return entries


def agree(archive, reader, entries, expected):
    if entries == expected:
        return
    for n, (got, want) in enumerate(zip(entries, expected)):
        if got != want:
            fail(f"{archive}: entry {n}: {reader} gives (name, size) {got!r}, zipfile {want!r}")
    fail(f"{archive}: {reader} gives {len(entries)} entries, zipfile {len(expected)}")


def main(archives):
    if not archives:
        fail("usage: check_zip_readers.py ARCHIVE...")
    read_by_java = zipinputstream_entries(archives)
    for archive in archives:
        expected = zipfile_entries(archive)
        agree(archive, "unzip", unzip_entries(archive), expected)
        agree(archive, "bsdtar", bsdtar_entries(archive), expected)
        agree(archive, "ZipInputStream", read_by_java[archive], expected)
        total = sum(size for _, size in expected)
        print(f"{os.path.basename(archive)}: {len(expected)} entries, {total} bytes read alike by zipfile, "
              "unzip, bsdtar and ZipInputStream")


if __name__ == "__main__":
    main(sys.argv[1:])
