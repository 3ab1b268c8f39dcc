//! Archives written by `ZipWriter` read back with the `zip` crate's `ZipArchive`, a reader
//! that shares no code with it and checks each entry's CRC-32 as it reads: every name,
//! method, size, time and byte must come back as written. Unlike `python_zipfile.rs`, it
//! needs nothing outside cargo, so it runs wherever the crate's tests do.
#![allow(clippy::unwrap_used)]

use std::io::{self, Cursor, Read};

use labelport_output::{Deflater, EntryDeflater, Method, Spool, ZipWriter};
use zip::{CompressionMethod, ZipArchive};

/// 2024-02-29T13:45:58Z (even seconds: ZIP keeps two-second steps).
const MODIFIED: u64 = 1_709_214_358;
const MODIFIED_FIELDS: (u16, u8, u8, u8, u8, u8) = (2024, 2, 29, 13, 45, 58);

/// An entry as it should read back.
struct Expected {
    name: String,
    content: Vec<u8>,
    /// How the writer stored it (what the deflater chose, for an entry added whole).
    method: Method,
}

/// The archive `build` writes, in memory.
fn write_archive(
    build: impl FnOnce(&mut ZipWriter, &mut dyn FnMut(&[u8]) -> io::Result<()>),
) -> Vec<u8> {
    let mut archive = Vec::new();
    let mut sink = |bytes: &[u8]| {
        archive.extend_from_slice(bytes);
        Ok(())
    };
    let mut zip = ZipWriter::new(Spool::new(None, 64 << 20).unwrap(), MODIFIED);
    build(&mut zip, &mut sink);
    let size = zip.finish(&mut sink).unwrap();
    assert_eq!(size, archive.len() as u64);
    archive
}

/// The entries an archive should hold, in order. Those added whole go through one reused
/// [`Deflater`], as on the pipeline's threads: a new one per entry costs more than
/// deflating a small entry.
#[derive(Default)]
struct Entries {
    expected: Vec<Expected>,
    deflater: Deflater,
    data: Vec<u8>,
}

impl Entries {
    /// Adds `content` whole, stored as the deflater decides.
    fn add(
        &mut self,
        zip: &mut ZipWriter,
        sink: &mut dyn FnMut(&[u8]) -> io::Result<()>,
        name: &str,
        content: &[u8],
        method: Method,
    ) {
        self.data.clear();
        let prepared = self.deflater.prepare(content, method, &mut self.data);
        zip.add(name, &prepared, &self.data, sink).unwrap();
        self.streamed(name, content, prepared.method);
    }

    /// Records an entry the test streamed itself.
    fn streamed(&mut self, name: &str, content: &[u8], method: Method) {
        self.expected.push(Expected {
            name: name.to_owned(),
            content: content.to_vec(),
            method,
        });
    }
}

/// The zip crate's name for `method`.
fn compression(method: Method) -> CompressionMethod {
    match method {
        Method::Stored => CompressionMethod::Stored,
        Method::Deflated => CompressionMethod::Deflated,
    }
}

/// Reads every entry of `archive` with the zip crate, in order, and compares it with
/// `expected`.
fn assert_reads_back(archive: &[u8], expected: &[Expected]) {
    let mut reader = ZipArchive::new(Cursor::new(archive)).unwrap();
    assert_eq!(reader.len(), expected.len());
    let mut content = Vec::new();
    for (index, want) in expected.iter().enumerate() {
        let mut file = reader.by_index(index).unwrap();
        let name = &want.name;
        assert_eq!(file.name_raw(), name.as_bytes());
        assert_eq!(file.name().unwrap(), *name);
        assert_eq!(
            file.compression(),
            compression(want.method),
            "method of {name}"
        );
        assert_eq!(file.size(), want.content.len() as u64, "size of {name}");
        match want.method {
            Method::Stored => assert_eq!(file.compressed_size(), file.size(), "{name}"),
            Method::Deflated => assert!(file.compressed_size() < file.size(), "{name}"),
        }
        assert_eq!(
            file.crc32(),
            crc32fast::hash(&want.content),
            "CRC of {name}"
        );
        assert_eq!(file.is_dir(), name.ends_with('/'), "{name}");
        let modified = file.last_modified().unwrap();
        let fields = (
            modified.year(),
            modified.month(),
            modified.day(),
            modified.hour(),
            modified.minute(),
            modified.second(),
        );
        assert_eq!(fields, MODIFIED_FIELDS, "time of {name}");
        content.clear();
        // The reader compares the CRC-32 of what it read when it reaches the end.
        file.read_to_end(&mut content).unwrap();
        assert!(content == want.content, "content of {name} differs");
    }
}

/// Text that compresses but not to nothing.
fn ndjson(lines: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..lines {
        let line = format!(
            r#"{{"id":"task-{i}","label":"cat","box":[{},{},{},{}]}}"#,
            i % 640,
            i * 7 % 480,
            i % 13 + 10,
            i % 17 + 10
        );
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
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

#[test]
fn stored_deflated_empty_and_streamed_entries_read_back_exactly() {
    let tasks = ndjson(2_000);
    let streamed = ndjson(20_000);
    let streamed_stored = noise(300_000, 11);
    let mut entries = Entries::default();
    let archive = write_archive(|zip, sink| {
        entries.add(zip, sink, "tasks.ndjson", &tasks, Method::Deflated);
        let cafe = "grüße, naïve café. ".repeat(80);
        entries.add(zip, sink, "é/ü.txt", cafe.as_bytes(), Method::Deflated);
        let label = r#"{"ラベル":"猫"}"#.as_bytes();
        entries.add(zip, sink, "日本語/ラベル.json", label, Method::Stored);
        let photo = noise(100_000, 7);
        entries.add(zip, sink, "images/photo.jpg", &photo, Method::Stored);
        // Deflate cannot shrink nothing, so this one is stored.
        entries.add(zip, sink, "empty-deflated.txt", b"", Method::Deflated);
        entries.add(zip, sink, "empty-stored.txt", b"", Method::Stored);
        entries.add(zip, sink, "images/", b"", Method::Stored);

        // Deflated as it arrives in small uneven pieces, size unknown: a data descriptor
        // with Zip64 sizes follows the data.
        zip.start_entry("stream/sections.ndjson", Method::Deflated, None, sink)
            .unwrap();
        let mut deflater = EntryDeflater::new();
        for piece in streamed.chunks(777) {
            deflater.write(piece, zip, sink).unwrap();
        }
        deflater.finish(zip, sink).unwrap();
        entries.streamed("stream/sections.ndjson", &streamed, Method::Deflated);

        // Stored while streaming, size known: a four-byte data descriptor.
        let size = streamed_stored.len() as u64;
        zip.start_entry("stream/stored.bin", Method::Stored, Some(size), sink)
            .unwrap();
        for piece in streamed_stored.chunks(100_000) {
            zip.write_data(piece, sink).unwrap();
        }
        zip.end_entry(crc32fast::hash(&streamed_stored), size, sink)
            .unwrap();
        entries.streamed("stream/stored.bin", &streamed_stored, Method::Stored);
    });
    // What the test means to cover: text deflated, the empty entry stored.
    assert_eq!(entries.expected[0].method, Method::Deflated);
    assert_eq!(entries.expected[4].method, Method::Stored);
    assert_reads_back(&archive, &entries.expected);
}

#[test]
fn a_changed_byte_fails_the_readers_crc_check() {
    let content = b"hello, hello, hello";
    let mut entries = Entries::default();
    let mut archive = write_archive(|zip, sink| {
        entries.add(zip, sink, "a.txt", content, Method::Stored);
    });
    // Unchanged, it reads back.
    assert_reads_back(&archive, &entries.expected);

    // The stored data starts after the 30-byte local header and the name.
    let data_start = 30 + "a.txt".len();
    assert_eq!(&archive[data_start..data_start + content.len()], content);
    archive[data_start] ^= 0x01;
    let mut reader = ZipArchive::new(Cursor::new(&archive[..])).unwrap();
    let mut file = reader.by_index(0).unwrap();
    let err = file.read_to_end(&mut Vec::new()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    assert!(err.to_string().contains("checksum"), "{err}");
}

#[test]
fn seventy_thousand_entries_read_back_through_the_zip64_end_records() {
    const ENTRIES: usize = 70_000;
    let mut entries = Entries::default();
    let archive = write_archive(|zip, sink| {
        for i in 0..ENTRIES {
            let content = format!(r#"{{"id":{i}}}"#);
            let name = format!("tasks/{i:05}.json");
            entries.add(zip, sink, &name, content.as_bytes(), Method::Stored);
        }
    });
    // More than 65,534 entries: the count is in the Zip64 end record, which the classic
    // record's 0xFFFF sends the reader to, through the locator before it.
    let end = &archive[archive.len() - 22..];
    assert_eq!(&end[..4], b"PK\x05\x06");
    assert_eq!(&end[8..12], &[0xFF; 4], "entry counts");
    assert_eq!(&archive[archive.len() - 42..][..4], b"PK\x06\x07");
    assert_reads_back(&archive, &entries.expected);
}
