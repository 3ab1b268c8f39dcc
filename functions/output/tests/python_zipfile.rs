//! Archives written by `ZipWriter` read back by readers that share no code with it:
//! Python's standard `zipfile` (always; the interpreter is `$LABELPORT_PYTHON`, else
//! `python3`) and Info-ZIP's `unzip -t` (only where the `unzip` binary is installed).
//!
//! `archive_past_four_gib_reads_back` writes a 4.5 GiB archive to the temp dir and reads
//! all of it back, so it is ignored by default; run it with
//! `cargo test -p labelport-output -- --ignored`.
#![allow(clippy::unwrap_used)]

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use labelport_output::{prepare, EntryDeflater, Method, Spool, ZipWriter};

/// 2024-02-29T13:45:58Z (even seconds: ZIP keeps two-second steps).
const MODIFIED: u64 = 1_709_214_358;
const MODIFIED_PY: &str = "(2024, 2, 29, 13, 45, 58)";

fn python() -> String {
    std::env::var("LABELPORT_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// Runs a Python script with the given arguments and returns its standard output.
fn run_python(script: &str, args: &[&str]) -> String {
    let python = python();
    let output = Command::new(&python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {python:?}: {e}; set LABELPORT_PYTHON to a Python 3 interpreter")
        });
    assert!(
        output.status.success(),
        "Python's zipfile rejected the archive:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// `unzip -t` on the archive, if Info-ZIP's unzip is installed.
fn unzip_test(path: &Path) {
    let output = match Command::new("unzip").arg("-tqq").arg(path).output() {
        Ok(output) => output,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            eprintln!("unzip not installed: skipping the unzip -t check");
            return;
        }
        Err(e) => panic!("cannot run unzip: {e}"),
    };
    assert!(
        output.status.success(),
        "unzip -t failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Writes an archive to `path` through `build`, which gets the writer and a file sink.
fn write_archive(
    path: &Path,
    build: impl FnOnce(&mut ZipWriter, &mut dyn FnMut(&[u8]) -> io::Result<()>),
) -> u64 {
    let mut file = BufWriter::with_capacity(1 << 20, File::create(path).unwrap());
    let mut sink = |bytes: &[u8]| file.write_all(bytes);
    let spool = Spool::new(path.parent(), 1 << 30).unwrap();
    let mut zip = ZipWriter::new(spool, MODIFIED);
    build(&mut zip, &mut sink);
    let size = zip.finish(&mut sink).unwrap();
    file.flush().unwrap();
    assert_eq!(std::fs::metadata(path).unwrap().len(), size);
    size
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Text that compresses but not to nothing.
fn ndjson(lines: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..lines {
        writeln!(
            out,
            r#"{{"id":"task-{i}","label":"cat","box":[{},{},{},{}]}}"#,
            i % 640,
            i * 7 % 480,
            i % 13 + 10,
            i % 17 + 10
        )
        .unwrap();
    }
    out
}

/// Bytes that do not compress, as in a JPEG.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

/// Prints one line per entry: name, content (both hex), method, flags, time, size, and
/// whether zipfile considers it a directory.
const LIST_ENTRIES: &str = r#"
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    bad = z.testzip()
    assert bad is None, f"testzip: first bad entry {bad!r}"
    for info in z.infolist():
        print(info.filename.encode("utf-8").hex(), z.read(info).hex(), info.compress_type,
              info.flag_bits, repr(info.date_time).replace(" ", ""), info.file_size,
              info.is_dir(), sep="\t")
"#;

#[test]
fn entries_read_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.zip");

    let tasks = ndjson(2_000);
    let photo = noise(100_000, 7);
    let streamed = ndjson(60_000); // ~3.5 MB, streamed in pieces
    let streamed_stored = noise(300_000, 11);
    let whole: Vec<(&str, Vec<u8>, Method)> = vec![
        ("tasks.ndjson", tasks.clone(), Method::Deflated),
        (
            "é/ü.txt",
            "grüße, naïve café. ".repeat(80).into_bytes(),
            Method::Deflated,
        ),
        (
            "日本語/ラベル.json",
            r#"{"ラベル":"猫"}"#.as_bytes().to_vec(),
            Method::Stored,
        ),
        ("images/photo.jpg", photo.clone(), Method::Stored),
        // Deflate cannot shrink nothing, so the entry is stored.
        ("empty-deflated.txt", Vec::new(), Method::Deflated),
        ("empty-stored.txt", Vec::new(), Method::Stored),
        ("images/", Vec::new(), Method::Stored),
    ];

    write_archive(&path, |zip, sink| {
        for (name, plain, method) in &whole {
            let mut data = Vec::new();
            let prepared = prepare(plain, *method, &mut data);
            zip.add(name, &prepared, &data, sink).unwrap();
        }

        // Deflated while streaming, size unknown: the way a multi-GB original goes in.
        zip.start_entry("stream/big.ndjson", Method::Deflated, None, sink)
            .unwrap();
        let mut crc = crc32fast::Hasher::new();
        let mut encoder =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(1));
        for piece in streamed.chunks(256 * 1024) {
            crc.update(piece);
            encoder.write_all(piece).unwrap();
            let compressed = std::mem::take(encoder.get_mut());
            zip.write_data(&compressed, sink).unwrap();
        }
        let rest = encoder.finish().unwrap();
        zip.write_data(&rest, sink).unwrap();
        zip.end_entry(crc.finalize(), streamed.len() as u64, sink)
            .unwrap();

        // Stored while streaming, size known.
        zip.start_entry(
            "stream/stored.bin",
            Method::Stored,
            Some(streamed_stored.len() as u64),
            sink,
        )
        .unwrap();
        for piece in streamed_stored.chunks(100_000) {
            zip.write_data(piece, sink).unwrap();
        }
        zip.end_entry(
            crc32fast::hash(&streamed_stored),
            streamed_stored.len() as u64,
            sink,
        )
        .unwrap();
        // Deflated as it arrives in small uneven pieces, as a spooled section is.
        zip.start_entry("stream/sections.ndjson", Method::Deflated, None, sink)
            .unwrap();
        let mut deflater = EntryDeflater::new();
        for piece in streamed.chunks(777) {
            deflater.write(piece, zip, sink).unwrap();
        }
        deflater.finish(zip, sink).unwrap();
        assert_eq!(zip.entries(), 10);
    });

    let listing = run_python(LIST_ENTRIES, &[path.to_str().unwrap()]);
    let lines: Vec<Vec<&str>> = listing
        .lines()
        .map(|line| line.split('\t').collect())
        .collect();
    // Flags: UTF-8 names (0x0800) on every entry; a data descriptor (0x0008) only on the
    // streamed ones, whose CRC and sizes come after their data.
    const WHOLE: &str = "2048";
    const STREAMED: &str = "2056";
    let mut expected: Vec<(&str, &[u8], Method, &str)> = whole
        .iter()
        .map(|(name, plain, method)| {
            let stored = plain.is_empty() || *method == Method::Stored;
            let method = if stored { Method::Stored } else { *method };
            (*name, plain.as_slice(), method, WHOLE)
        })
        .collect();
    expected.push(("stream/big.ndjson", &streamed, Method::Deflated, STREAMED));
    expected.push((
        "stream/stored.bin",
        &streamed_stored,
        Method::Stored,
        STREAMED,
    ));
    expected.push((
        "stream/sections.ndjson",
        &streamed,
        Method::Deflated,
        STREAMED,
    ));
    assert_eq!(lines.len(), expected.len(), "{listing:.2000}");
    for (line, (name, content, method, flags)) in lines.iter().zip(&expected) {
        assert_eq!(line[0], hex(name.as_bytes()), "name of {name}");
        assert!(line[1] == hex(content), "content of {name} differs");
        let method_code = match method {
            Method::Stored => "0",
            Method::Deflated => "8",
        };
        assert_eq!(line[2], method_code, "method of {name}");
        assert_eq!(line[3], *flags, "flags of {name}");
        assert_eq!(line[4], MODIFIED_PY.replace(' ', ""), "time of {name}");
        assert_eq!(line[5], content.len().to_string(), "size of {name}");
        let is_dir = if name.ends_with('/') { "True" } else { "False" };
        assert_eq!(line[6], is_dir, "{name}");
    }
    unzip_test(&path);
}

#[test]
fn seventy_thousand_entries_use_zip64_end_records() {
    const ENTRIES: usize = 70_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("many.zip");

    let started = Instant::now();
    let size = write_archive(&path, |zip, sink| {
        let mut data = Vec::new();
        for i in 0..ENTRIES {
            let plain = format!(r#"{{"id":{i}}}"#);
            let method = if i % 2 == 0 {
                Method::Deflated
            } else {
                Method::Stored
            };
            data.clear();
            let prepared = prepare(plain.as_bytes(), method, &mut data);
            zip.add(&format!("tasks/{i:05}.json"), &prepared, &data, sink)
                .unwrap();
        }
    });
    let written = started.elapsed();

    // The classic record says "see Zip64" in every field.
    let archive = std::fs::read(&path).unwrap();
    let end = &archive[archive.len() - 22..];
    assert_eq!(&end[..4], b"PK\x05\x06");
    assert_eq!(&end[8..20], &[0xFF; 12]);
    assert_eq!(&archive[archive.len() - 42..][..4], b"PK\x06\x07");

    let started = Instant::now();
    let out = run_python(
        r#"
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    names = z.namelist()
    assert len(names) == 70000, len(names)
    assert z.testzip() is None
    for i, name in enumerate(names):
        assert name == f"tasks/{i:05}.json", name
        assert z.read(name) == b'{"id":%d}' % i, name
print("ok")
"#,
        &[path.to_str().unwrap()],
    );
    assert_eq!(out.trim(), "ok");
    let read = started.elapsed();
    unzip_test(&path);
    eprintln!(
        "70,000 entries: {size} bytes written in {written:.2?}, read back by Python in {read:.2?}"
    );
}

/// One stored entry of 4.5 GiB followed by a small one, so entry sizes, a local header
/// offset and the central directory offset all pass 4 GiB. Needs ~4.5 GiB of free space
/// in the temp dir and a minute or so.
#[test]
#[ignore = "writes and reads 4.5 GiB; run with `cargo test -p labelport-output -- --ignored`"]
fn archive_past_four_gib_reads_back() {
    const CHUNK: usize = 1 << 20;
    const BIG: u64 = 4608 * CHUNK as u64; // 4.5 GiB
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.zip");

    let started = Instant::now();
    write_archive(&path, |zip, sink| {
        zip.start_entry("originals/big.bin", Method::Stored, Some(BIG), sink)
            .unwrap();
        let mut chunk = noise(CHUNK, 3);
        let mut crc = crc32fast::Hasher::new();
        for i in 0..BIG / CHUNK as u64 {
            // Every chunk differs, so a reader that mixed chunks up would fail the CRC.
            chunk[..8].copy_from_slice(&i.to_le_bytes());
            crc.update(&chunk);
            zip.write_data(&chunk, sink).unwrap();
        }
        zip.end_entry(crc.finalize(), BIG, sink).unwrap();

        let mut data = Vec::new();
        let prepared = prepare(b"after the big one", Method::Deflated, &mut data);
        zip.add("after.txt", &prepared, &data, sink).unwrap();
    });
    let written = started.elapsed();

    let started = Instant::now();
    let out = run_python(
        r#"
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    big = z.getinfo("originals/big.bin")
    assert big.file_size == big.compress_size == int(sys.argv[2]), big
    after = z.getinfo("after.txt")
    assert after.header_offset > 0xFFFFFFFF, after.header_offset
    assert z.read("after.txt") == b"after the big one"
    assert z.testzip() is None
print("ok")
"#,
        &[path.to_str().unwrap(), &BIG.to_string()],
    );
    assert_eq!(out.trim(), "ok");
    let read = started.elapsed();
    unzip_test(&path);
    eprintln!("4.5 GiB archive: written in {written:.2?}, checked by Python in {read:.2?}");
}
