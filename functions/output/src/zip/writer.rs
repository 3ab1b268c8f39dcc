//! [`ZipWriter`]: entries and then the central directory, handed to a sink in order,
//! with the central directory's records held in a [`Spool`] until the end.

use std::io;

use super::compress::{Method, Prepared};
use super::dos_time::dos_date_time;
use super::error::ZipError;
use super::names::validate_name;
use super::records::{
    central_record, central_record_len, data_descriptor, end_records, local_header, Written,
    CENTRAL_HEADER_LEN, MAX_32, MAX_CENTRAL_ZIP64_EXTRA_LEN,
};
use crate::spool::{Spool, SpoolError};

/// Writes a ZIP archive as a forward-only byte stream, never holding the archive or its
/// central directory in memory.
///
/// Every output byte goes to a `sink` passed to each call, in order; the sink is never
/// asked to go back. Entries are written whole with [`add`](Self::add), after their data
/// was compressed with [`prepare`](super::prepare), or streamed with
/// [`start_entry`](Self::start_entry) / [`write_data`](Self::write_data) /
/// [`end_entry`](Self::end_entry) when they are too large for memory. Zip64 records are
/// written only where an entry or the archive needs them.
///
/// After an I/O error (from the sink or the spool) the archive is incomplete and every
/// later call fails with [`ZipError::State`].
///
/// ```
/// use labelport_output::{prepare, Method, Spool, ZipWriter};
///
/// let mut archive = Vec::new();
/// let mut sink = |bytes: &[u8]| -> std::io::Result<()> {
///     archive.extend_from_slice(bytes);
///     Ok(())
/// };
/// // 2024-01-01T00:00:00Z for every entry.
/// let mut zip = ZipWriter::new(Spool::new(None, 1 << 20)?, 1_704_067_200);
///
/// for (name, text, method) in [
///     ("tasks.ndjson", &b"{\"id\":\"t1\"}\n"[..], Method::Deflated),
///     ("images/1.jpg", &b"\xff\xd8 not really a jpeg"[..], Method::Stored),
/// ] {
///     let mut data = Vec::new();
///     let prepared = prepare(text, method, &mut data);
///     zip.add(name, &prepared, &data, &mut sink)?;
/// }
/// let size = zip.finish(&mut sink)?;
///
/// assert_eq!(size, archive.len() as u64);
/// assert_eq!(&archive[..4], b"PK\x03\x04");
/// assert_eq!(&archive[archive.len() - 22..][..4], b"PK\x05\x06");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ZipWriter {
    central_directory: Spool,
    /// Bytes handed to the sink so far: the offset of whatever comes next.
    offset: u64,
    entries: u64,
    dos_time: u16,
    dos_date: u16,
    open: Option<OpenEntry>,
    failed: bool,
    /// Reused for every header and record, so `add` allocates nothing once warmed up.
    scratch: Vec<u8>,
}

/// An entry begun with `start_entry` whose data is still being streamed.
#[derive(Debug)]
struct OpenEntry {
    name: String,
    method: Method,
    header_offset: u64,
    zip64_local: bool,
    compressed_size: u64,
}

type Sink<'a> = &'a mut dyn FnMut(&[u8]) -> io::Result<()>;

impl ZipWriter {
    /// A writer for a new archive. `central_directory`: the spool the central directory
    /// is kept in until `finish` (about 100 bytes per entry plus its name).
    /// `modified_unix_secs`: the modification time given to every entry (UTC; ZIP stores
    /// it in two-second steps, clamped to 1980–2107).
    pub fn new(central_directory: Spool, modified_unix_secs: u64) -> ZipWriter {
        let (dos_time, dos_date) = dos_date_time(modified_unix_secs);
        ZipWriter {
            central_directory,
            offset: 0,
            entries: 0,
            dos_time,
            dos_date,
            open: None,
            failed: false,
            scratch: Vec::with_capacity(256),
        }
    }

    /// Writes one entry whose data was prepared by [`prepare`](super::prepare): the local
    /// file header, which carries the CRC and sizes, then the data. A name ending in `/`
    /// makes a directory entry, which must have no data.
    pub fn add(
        &mut self,
        name: &str,
        prepared: &Prepared,
        data: &[u8],
        sink: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> Result<(), ZipError> {
        self.check_ready("add called while a streamed entry is open; call end_entry first")?;
        validate_name(name)?;
        let compressed_size = data.len() as u64;
        let uncompressed_size = prepared.uncompressed_size;
        if prepared.method == Method::Stored && compressed_size != uncompressed_size {
            return Err(ZipError::Entry {
                name: name.to_owned(),
                problem: format!(
                    "stored data is {compressed_size} bytes but its uncompressed size is \
                     {uncompressed_size}; pass exactly the bytes prepare appended"
                ),
            });
        }
        if name.ends_with('/') && uncompressed_size != 0 {
            return Err(ZipError::Entry {
                name: name.to_owned(),
                problem: "a name ending in '/' is a directory and cannot hold data".to_owned(),
            });
        }
        let written = Written {
            name,
            method: prepared.method,
            crc32: prepared.crc32,
            compressed_size,
            uncompressed_size,
            header_offset: self.offset,
            zip64_local: compressed_size >= MAX_32 || uncompressed_size >= MAX_32,
            data_descriptor: false,
        };
        // Checked before the first byte goes out, so a full spool leaves no half entry.
        self.reserve_central_record(central_record_len(&written))?;
        let result = self.write_whole_entry(&written, data, sink);
        self.poison_on_error(result)
    }

    /// Starts an entry too big to prepare in memory (a multi-GB original file). Its
    /// already-compressed (or stored) bytes follow through [`write_data`](Self::write_data),
    /// and [`end_entry`](Self::end_entry) closes it with the CRC-32 and uncompressed size
    /// the caller computed while compressing. Those go in a data descriptor after the
    /// data, as nothing before it can be rewritten.
    ///
    /// Stream [`Method::Deflated`] entries where readers may read the archive front to
    /// back: deflate marks its own end, but a stored entry with a data descriptor does not,
    /// and Java's `ZipInputStream` refuses it.
    ///
    /// `size_hint`: the uncompressed size if known, else None. None, or a size that may
    /// reach 4 GiB once compressed, gives the entry Zip64 sizes; a hint that turns out far
    /// too small makes `end_entry` fail, since the sizes can then no longer be recorded.
    /// Pass the size whenever it is known: a data descriptor follows the local header in
    /// having Zip64 sizes (APPNOTE 4.3.9), but JDK 17's `ZipInputStream` sizes it by the
    /// values, and misreads the Zip64 descriptor of an entry under 4 GiB.
    pub fn start_entry(
        &mut self,
        name: &str,
        method: Method,
        size_hint: Option<u64>,
        sink: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> Result<(), ZipError> {
        self.check_ready("start_entry called while another entry is open; call end_entry first")?;
        validate_name(name)?;
        if name.ends_with('/') {
            return Err(ZipError::Entry {
                name: name.to_owned(),
                problem: "a name ending in '/' is a directory, which has no data to stream; \
                          add it with `add` and empty data"
                    .to_owned(),
            });
        }
        let zip64_local = match size_hint {
            None => true,
            Some(size) => size.saturating_add(expansion_allowance(method, size)) >= MAX_32,
        };
        // The final record's size depends on sizes not known yet: reserve the largest.
        self.reserve_central_record(
            CENTRAL_HEADER_LEN + name.len() as u64 + MAX_CENTRAL_ZIP64_EXTRA_LEN,
        )?;
        let header_offset = self.offset;
        // CRC and sizes are not known yet: the local header has zeros (or the Zip64
        // sentinel) where they go, and the data descriptor has them.
        let unknown_yet = Written {
            name,
            method,
            crc32: 0,
            compressed_size: 0,
            uncompressed_size: 0,
            header_offset,
            zip64_local,
            data_descriptor: true,
        };
        self.scratch.clear();
        local_header(
            &mut self.scratch,
            &unknown_yet,
            self.dos_time,
            self.dos_date,
        );
        let result = emit(&mut self.offset, sink, &self.scratch);
        self.poison_on_error(result.map_err(ZipError::from))?;
        self.open = Some(OpenEntry {
            name: name.to_owned(),
            method,
            header_offset,
            zip64_local,
            compressed_size: 0,
        });
        Ok(())
    }

    /// Writes the next already-compressed (or, for [`Method::Stored`], plain) bytes of the
    /// entry begun with [`start_entry`](Self::start_entry).
    pub fn write_data(
        &mut self,
        compressed: &[u8],
        sink: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> Result<(), ZipError> {
        self.check_usable()?;
        let Some(open) = self.open.as_mut() else {
            return Err(ZipError::State(
                "write_data called with no entry open; call start_entry first",
            ));
        };
        let result = emit(&mut self.offset, sink, compressed);
        if result.is_ok() {
            open.compressed_size += compressed.len() as u64;
        }
        self.poison_on_error(result.map_err(ZipError::from))
    }

    /// Ends the entry begun with [`start_entry`](Self::start_entry): writes its data
    /// descriptor and records it for the central directory.
    pub fn end_entry(
        &mut self,
        crc32: u32,
        uncompressed_size: u64,
        sink: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> Result<(), ZipError> {
        self.check_usable()?;
        let Some(open) = self.open.take() else {
            return Err(ZipError::State(
                "end_entry called with no entry open; call start_entry first",
            ));
        };
        let result = self.write_end_of_entry(&open, crc32, uncompressed_size, sink);
        self.poison_on_error(result)
    }

    /// Writes the central directory (copied out of the spool), the Zip64 end of central
    /// directory record and locator when needed, and the end of central directory record.
    /// Returns the archive's total size.
    pub fn finish(
        mut self,
        sink: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> Result<u64, ZipError> {
        self.check_ready("finish called while a streamed entry is open; call end_entry first")?;
        let directory_offset = self.offset;
        let directory_size = self.central_directory.len();
        self.central_directory.drain_into(&mut *sink)?;
        self.offset += directory_size;

        let buf = &mut self.scratch;
        buf.clear();
        end_records(
            buf,
            self.entries,
            directory_size,
            directory_offset,
            self.offset,
        );
        emit(&mut self.offset, sink, buf)?;
        Ok(self.offset)
    }

    /// Entries written so far (streamed entries count once ended).
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Bytes handed to the sink so far.
    pub fn bytes_written(&self) -> u64 {
        self.offset
    }

    /// Size of the central directory so far, held in the spool until `finish`.
    pub fn spooled_bytes(&self) -> u64 {
        self.central_directory.len()
    }

    fn check_usable(&self) -> Result<(), ZipError> {
        if self.failed {
            return Err(ZipError::State(
                "an earlier write failed, so the archive is incomplete; start a new one",
            ));
        }
        Ok(())
    }

    /// Usable, with no streamed entry open (`misuse` says which call broke that rule).
    fn check_ready(&self, misuse: &'static str) -> Result<(), ZipError> {
        self.check_usable()?;
        if self.open.is_some() {
            return Err(ZipError::State(misuse));
        }
        Ok(())
    }

    fn poison_on_error<T>(&mut self, result: Result<T, ZipError>) -> Result<T, ZipError> {
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    fn reserve_central_record(&self, len: u64) -> Result<(), ZipError> {
        if self.central_directory.has_room_for(len) {
            Ok(())
        } else {
            Err(SpoolError::Full {
                limit: self.central_directory.limit(),
            }
            .into())
        }
    }

    fn write_whole_entry(
        &mut self,
        entry: &Written<'_>,
        data: &[u8],
        sink: Sink<'_>,
    ) -> Result<(), ZipError> {
        let buf = &mut self.scratch;
        buf.clear();
        local_header(buf, entry, self.dos_time, self.dos_date);
        emit(&mut self.offset, sink, buf)?;
        emit(&mut self.offset, sink, data)?;
        self.record(entry)
    }

    fn write_end_of_entry(
        &mut self,
        open: &OpenEntry,
        crc32: u32,
        uncompressed_size: u64,
        sink: Sink<'_>,
    ) -> Result<(), ZipError> {
        let compressed_size = open.compressed_size;
        let entry_error = |problem: String| ZipError::Entry {
            name: open.name.clone(),
            problem,
        };
        if open.method == Method::Stored && compressed_size != uncompressed_size {
            return Err(entry_error(format!(
                "stored entry received {compressed_size} bytes of data but end_entry says \
                 {uncompressed_size}"
            )));
        }
        if !open.zip64_local && (compressed_size >= MAX_32 || uncompressed_size >= MAX_32) {
            return Err(entry_error(format!(
                "its size hint promised less than 4 GiB, but it has {uncompressed_size} bytes \
                 ({compressed_size} compressed), which its 4-byte data descriptor cannot hold; \
                 pass size_hint None for entries that may reach 4 GiB"
            )));
        }
        let entry = Written {
            name: &open.name,
            method: open.method,
            crc32,
            compressed_size,
            uncompressed_size,
            header_offset: open.header_offset,
            zip64_local: open.zip64_local,
            data_descriptor: true,
        };
        self.write_data_descriptor(&entry, sink)?;
        self.record(&entry)
    }

    fn write_data_descriptor(&mut self, entry: &Written<'_>, sink: Sink<'_>) -> io::Result<()> {
        let buf = &mut self.scratch;
        buf.clear();
        data_descriptor(buf, entry);
        emit(&mut self.offset, sink, buf)
    }

    /// Spools the entry's central directory record, once all of the entry is out.
    fn record(&mut self, entry: &Written<'_>) -> Result<(), ZipError> {
        let buf = &mut self.scratch;
        buf.clear();
        central_record(buf, entry, self.dos_time, self.dos_date);
        self.central_directory.write(buf)?;
        self.entries += 1;
        Ok(())
    }
}

/// Hands `bytes` to the sink and advances the offset only once the sink took them.
fn emit(offset: &mut u64, sink: Sink<'_>, bytes: &[u8]) -> io::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    sink(bytes)?;
    *offset += bytes.len() as u64;
    Ok(())
}

/// Deflate can make incompressible data slightly larger (zlib bounds it near n/3000 plus
/// a few bytes); a streamed entry whose compressed size could reach 4 GiB needs Zip64
/// from its local header on. The allowance is deliberately wide: Zip64 costs 20 bytes,
/// a wrong guess costs the archive.
fn expansion_allowance(method: Method, size: u64) -> u64 {
    match method {
        Method::Stored => 0,
        Method::Deflated => size / 64 + 64 * 1024,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::zip::prepare;
    use crate::zip::records::*;

    /// 2024-02-29T13:45:59Z.
    const MODIFIED: u64 = 1_709_214_359;
    const DOS_TIME: u16 = (13 << 11) | (45 << 5) | 29;
    const DOS_DATE: u16 = (44 << 9) | (2 << 5) | 29;

    fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_le_bytes(b[at..at + 2].try_into().unwrap())
    }
    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }
    fn u64_at(b: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
    }

    fn writer() -> ZipWriter {
        ZipWriter::new(Spool::new(None, 64 << 20).unwrap(), MODIFIED)
    }

    fn add(zip: &mut ZipWriter, out: &mut Vec<u8>, name: &str, plain: &[u8], method: Method) {
        let mut data = Vec::new();
        let prepared = prepare(plain, method, &mut data);
        zip.add(name, &prepared, &data, &mut |b| {
            out.extend_from_slice(b);
            Ok(())
        })
        .unwrap();
    }

    fn finish(zip: ZipWriter, out: &mut Vec<u8>) -> u64 {
        zip.finish(&mut |b| {
            out.extend_from_slice(b);
            Ok(())
        })
        .unwrap()
    }

    /// The classic end of central directory record: (entries on disk, entries, size, offset).
    fn eocd(archive: &[u8]) -> (u16, u16, u32, u32) {
        let e = &archive[archive.len() - 22..];
        assert_eq!(u32_at(e, 0), END_SIGNATURE);
        assert_eq!(u16_at(e, 4), 0, "disk number");
        assert_eq!(u16_at(e, 6), 0, "central directory disk");
        assert_eq!(u16_at(e, 20), 0, "comment length");
        (u16_at(e, 8), u16_at(e, 10), u32_at(e, 12), u32_at(e, 16))
    }

    /// The Zip64 end record behind the locator, if any: (entries, size, offset, its own offset).
    fn zip64_end(archive: &[u8]) -> Option<(u64, u64, u64, u64)> {
        let locator = &archive[archive.len() - 42..archive.len() - 22];
        if u32_at(locator, 0) != ZIP64_LOCATOR_SIGNATURE {
            return None;
        }
        assert_eq!(u32_at(locator, 4), 0);
        assert_eq!(u32_at(locator, 16), 1, "total disks");
        let record_offset = archive.len() - 98;
        let record = &archive[record_offset..record_offset + 56];
        assert_eq!(u32_at(record, 0), ZIP64_END_SIGNATURE);
        assert_eq!(u64_at(record, 4), 44);
        assert_eq!(u16_at(record, 12), 0x032D);
        assert_eq!(u16_at(record, 14), VERSION_ZIP64);
        assert_eq!(u32_at(record, 16), 0);
        assert_eq!(u32_at(record, 20), 0);
        assert_eq!(
            u64_at(record, 24),
            u64_at(record, 32),
            "entries on disk vs total"
        );
        Some((
            u64_at(record, 32),
            u64_at(record, 40),
            u64_at(record, 48),
            u64_at(locator, 8),
        ))
    }

    #[test]
    fn bad_names_are_refused_before_anything_is_written() {
        let mut zip = writer();
        let mut out = Vec::new();
        let prepared = prepare(b"x", Method::Stored, &mut Vec::new());
        let mut sink = |b: &[u8]| {
            out.extend_from_slice(b);
            Ok(())
        };
        assert!(matches!(
            zip.add("../evil", &prepared, b"x", &mut sink),
            Err(ZipError::BadName { .. })
        ));
        assert!(matches!(
            zip.start_entry("/abs", Method::Stored, None, &mut sink),
            Err(ZipError::BadName { .. })
        ));
        assert_eq!(zip.bytes_written(), 0);
        // Not an I/O failure: the writer goes on.
        zip.add("ok", &prepared, b"x", &mut sink).unwrap();
        assert_eq!(zip.entries(), 1);
    }

    #[test]
    fn writes_exact_records_for_one_stored_entry() {
        let mut zip = writer();
        let mut out = Vec::new();
        add(&mut zip, &mut out, "a.txt", b"hello", Method::Stored);
        assert_eq!(zip.bytes_written(), 30 + 5 + 5);
        assert_eq!(zip.spooled_bytes(), 46 + 5);
        let size = finish(zip, &mut out);
        assert_eq!(size, 30 + 5 + 5 + 46 + 5 + 22);
        assert_eq!(out.len() as u64, size);

        // Local file header, with CRC and sizes: the data follows, and no descriptor.
        assert_eq!(u32_at(&out, 0), LOCAL_HEADER_SIGNATURE);
        assert_eq!(u16_at(&out, 4), 20, "version needed");
        assert_eq!(u16_at(&out, 6), 0x0800, "flags: UTF-8, no data descriptor");
        assert_eq!(u16_at(&out, 8), 0, "stored");
        assert_eq!(u16_at(&out, 10), DOS_TIME);
        assert_eq!(u16_at(&out, 12), DOS_DATE);
        assert_eq!(u32_at(&out, 14), 0x3610_a686, "CRC-32");
        assert_eq!(u32_at(&out, 18), 5, "compressed size");
        assert_eq!(u32_at(&out, 22), 5, "uncompressed size");
        assert_eq!(u16_at(&out, 26), 5);
        assert_eq!(u16_at(&out, 28), 0, "no extra field");
        assert_eq!(&out[30..35], b"a.txt");
        assert_eq!(&out[35..40], b"hello");
        // Central directory header.
        let c = &out[40..];
        assert_eq!(u32_at(c, 0), CENTRAL_HEADER_SIGNATURE);
        assert_eq!(u16_at(c, 4), 0x032D, "made by Unix, spec 4.5");
        assert_eq!(u16_at(c, 6), 20);
        assert_eq!(u16_at(c, 8), 0x0800, "the local header's flags");
        assert_eq!(u16_at(c, 10), 0);
        assert_eq!(u16_at(c, 12), DOS_TIME);
        assert_eq!(u16_at(c, 14), DOS_DATE);
        assert_eq!(u32_at(c, 16), 0x3610_a686);
        assert_eq!(u32_at(c, 20), 5);
        assert_eq!(u32_at(c, 24), 5);
        assert_eq!(u16_at(c, 28), 5);
        assert_eq!(u16_at(c, 30), 0, "no extra field");
        assert_eq!(u16_at(c, 32), 0, "no comment");
        assert_eq!(u16_at(c, 34), 0);
        assert_eq!(u16_at(c, 36), 0);
        assert_eq!(u32_at(c, 38), 0o100_644 << 16);
        assert_eq!(u32_at(c, 42), 0, "local header offset");
        assert_eq!(&c[46..51], b"a.txt");
        // End of central directory.
        assert_eq!(eocd(&out), (1, 1, 51, 40));
        assert_eq!(zip64_end(&out), None);
    }

    #[test]
    fn empty_archive_is_just_the_end_record() {
        let mut out = Vec::new();
        assert_eq!(finish(writer(), &mut out), 22);
        assert_eq!(eocd(&out), (0, 0, 0, 0));
    }

    #[test]
    fn directory_entries_get_directory_attributes_and_no_data() {
        let mut zip = writer();
        let mut out = Vec::new();
        add(&mut zip, &mut out, "images/", b"", Method::Stored);
        let local_len = out.len();
        finish(zip, &mut out);
        let c = &out[local_len..];
        assert_eq!(u32_at(c, 38), (0o040_755 << 16) | 0x10);

        let mut zip = writer();
        let mut data = Vec::new();
        let prepared = prepare(b"x", Method::Stored, &mut data);
        let err = zip
            .add("images/", &prepared, &data, &mut |_| Ok(()))
            .unwrap_err();
        assert!(err.to_string().contains("is a directory"), "{err}");
        let err = zip
            .start_entry("images/", Method::Stored, None, &mut |_| Ok(()))
            .unwrap_err();
        assert!(matches!(err, ZipError::Entry { .. }), "{err:?}");
        assert_eq!(zip.bytes_written(), 0);
    }

    #[test]
    fn stored_data_must_match_its_prepared_size() {
        let mut zip = writer();
        let prepared = prepare(b"hello", Method::Stored, &mut Vec::new());
        let err = zip
            .add("a", &prepared, b"hell", &mut |_| Ok(()))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "entry \"a\": stored data is 4 bytes but its uncompressed size is 5; pass exactly \
             the bytes prepare appended"
        );
        assert_eq!(zip.bytes_written(), 0);
    }

    /// Parses a streamed entry's local header: (version, compressed and uncompressed size
    /// fields, extra field).
    fn local_fields(out: &[u8], name_len: usize) -> (u16, u32, u32, Vec<u8>) {
        assert_eq!(u32_at(out, 0), LOCAL_HEADER_SIGNATURE);
        let extra_len = usize::from(u16_at(out, 28));
        let extra = out[30 + name_len..30 + name_len + extra_len].to_vec();
        (u16_at(out, 4), u32_at(out, 18), u32_at(out, 22), extra)
    }

    #[test]
    fn streamed_entry_of_unknown_size_uses_zip64_sizes() {
        let mut zip = writer();
        let mut out = Vec::new();
        let mut sink = |b: &[u8]| {
            out.extend_from_slice(b);
            Ok(())
        };
        zip.start_entry("s.bin", Method::Stored, None, &mut sink)
            .unwrap();
        zip.write_data(b"abc", &mut sink).unwrap();
        zip.write_data(b"", &mut sink).unwrap();
        zip.write_data(b"de", &mut sink).unwrap();
        zip.end_entry(crc32fast::hash(b"abcde"), 5, &mut sink)
            .unwrap();
        let before_central = zip.bytes_written() as usize;
        zip.finish(&mut sink).unwrap();

        let (version, csize, usize_, extra) = local_fields(&out, 5);
        assert_eq!(version, 45);
        assert_eq!(u16_at(&out, 6), 0x0808, "flags: data descriptor, UTF-8");
        assert_eq!(u32_at(&out, 14), 0, "the CRC waits for the descriptor");
        assert_eq!((csize, usize_), (0xFFFF_FFFF, 0xFFFF_FFFF));
        let mut expected_extra = vec![1, 0, 16, 0];
        expected_extra.extend_from_slice(&[0; 16]);
        assert_eq!(extra, expected_extra);
        assert_eq!(&out[55..60], b"abcde");
        // 8-byte sizes in the descriptor, because the local header had a Zip64 field.
        let d = &out[60..];
        assert_eq!(u32_at(d, 0), DATA_DESCRIPTOR_SIGNATURE);
        assert_eq!(u32_at(d, 4), crc32fast::hash(b"abcde"));
        assert_eq!(u64_at(d, 8), 5);
        assert_eq!(u64_at(d, 16), 5);
        assert_eq!(before_central, 60 + 24);
        // The central directory has real sizes, which fit, so no Zip64 field there.
        let c = &out[before_central..];
        assert_eq!(u16_at(c, 6), 45, "same version as the local header");
        assert_eq!(u16_at(c, 8), 0x0808, "same flags as the local header");
        assert_eq!(u32_at(c, 16), crc32fast::hash(b"abcde"));
        assert_eq!(u32_at(c, 20), 5);
        assert_eq!(u32_at(c, 24), 5);
        assert_eq!(u16_at(c, 30), 0);
        assert_eq!(eocd(&out), (1, 1, 46 + 5, 84));
    }

    #[test]
    fn size_hint_decides_whether_a_streamed_entry_uses_zip64() {
        let cases = [
            (Method::Stored, Some(0), false),
            (Method::Stored, Some(MAX_32 - 1), false),
            (Method::Stored, Some(MAX_32), true),
            (Method::Deflated, Some(1 << 20), false),
            // Incompressible data could grow past 4 GiB when deflated.
            (Method::Stored, Some(4_250_000_000), false),
            (Method::Deflated, Some(4_250_000_000), true),
            (Method::Deflated, None, true),
        ];
        for (method, hint, zip64) in cases {
            let mut zip = writer();
            let mut out = Vec::new();
            zip.start_entry("x", method, hint, &mut |b| {
                out.extend_from_slice(b);
                Ok(())
            })
            .unwrap();
            let (version, _, _, extra) = local_fields(&out, 1);
            assert_eq!(version == 45, zip64, "{method:?} {hint:?}");
            assert_eq!(extra.len() == 20, zip64, "{method:?} {hint:?}");
        }
    }

    #[test]
    fn small_streamed_entry_gets_a_four_byte_descriptor() {
        let mut zip = writer();
        let mut out = Vec::new();
        let mut sink = |b: &[u8]| {
            out.extend_from_slice(b);
            Ok(())
        };
        let mut data = Vec::new();
        let prepared = prepare(b"streamed text", Method::Deflated, &mut data);
        zip.start_entry("t.txt", Method::Deflated, Some(13), &mut sink)
            .unwrap();
        zip.write_data(&data, &mut sink).unwrap();
        zip.end_entry(prepared.crc32, 13, &mut sink).unwrap();
        assert_eq!(zip.bytes_written(), (30 + 5 + data.len() + 16) as u64);
        zip.finish(&mut sink).unwrap();
        assert_eq!(u16_at(&out, 6), 0x0808, "flags: data descriptor, UTF-8");
        assert_eq!(
            &out[14..26],
            &[0; 12],
            "CRC and sizes wait for the descriptor"
        );
        let d = &out[35 + data.len()..];
        assert_eq!(u32_at(d, 0), DATA_DESCRIPTOR_SIGNATURE);
        assert_eq!(u32_at(d, 8), data.len() as u32);
        assert_eq!(u32_at(d, 12), 13);
        assert_eq!(u32_at(d, 16), CENTRAL_HEADER_SIGNATURE);
    }

    #[test]
    fn whole_entry_past_four_gib_has_zip64_sizes_in_its_local_header() {
        // 5 GiB of zeros deflate to a few MB; ten bytes stand in for them here.
        let big: u64 = 5 << 30;
        let prepared = Prepared {
            method: Method::Deflated,
            crc32: 0x1234_5678,
            uncompressed_size: big,
        };
        let mut zip = writer();
        let mut out = Vec::new();
        let mut sink = |b: &[u8]| {
            out.extend_from_slice(b);
            Ok(())
        };
        zip.add("z.bin", &prepared, b"0123456789", &mut sink)
            .unwrap();
        assert_eq!(zip.bytes_written(), 30 + 5 + 20 + 10, "no data descriptor");
        zip.finish(&mut sink).unwrap();

        let (version, csize, usize_, extra) = local_fields(&out, 5);
        assert_eq!(version, 45);
        assert_eq!(u16_at(&out, 6), 0x0800, "flags: UTF-8, no data descriptor");
        assert_eq!(u32_at(&out, 14), 0x1234_5678);
        assert_eq!((csize, usize_), (0xFFFF_FFFF, 0xFFFF_FFFF));
        assert_eq!((u16_at(&extra, 0), u16_at(&extra, 2)), (1, 16));
        assert_eq!(u64_at(&extra, 4), big, "uncompressed first");
        assert_eq!(u64_at(&extra, 12), 10);
        assert_eq!(&out[55..65], b"0123456789");
        // Only the uncompressed size overflows in the central record.
        let c = &out[65..];
        assert_eq!(u32_at(c, 0), CENTRAL_HEADER_SIGNATURE);
        assert_eq!(u16_at(c, 8), 0x0800);
        assert_eq!(u32_at(c, 20), 10);
        assert_eq!(u32_at(c, 24), 0xFFFF_FFFF);
        assert_eq!(u16_at(c, 30), 4 + 8);
        assert_eq!(u64_at(c, 46 + 5 + 4), big);
    }

    /// Streams `size` bytes of a stored entry without keeping them: the sink keeps only
    /// chunks other than the (1 MiB) data chunks, so headers and records can be parsed.
    struct Tail {
        kept: Vec<u8>,
        skipped: u64,
    }

    const CHUNK: usize = 1 << 20;

    impl Tail {
        fn sink(&mut self) -> impl FnMut(&[u8]) -> io::Result<()> + '_ {
            |b: &[u8]| {
                if b.len() == CHUNK {
                    self.skipped += CHUNK as u64;
                } else {
                    self.kept.extend_from_slice(b);
                }
                Ok(())
            }
        }
    }

    #[test]
    fn entries_past_four_gib_get_zip64_fields_and_records() {
        let big: u64 = 4 * 1024 * CHUNK as u64 + 512 * CHUNK as u64; // 4.5 GiB
        let mut zip = writer();
        let mut tail = Tail {
            kept: Vec::new(),
            skipped: 0,
        };
        let chunk = vec![0u8; CHUNK];
        {
            let mut sink = tail.sink();
            zip.start_entry("big.bin", Method::Stored, Some(big), &mut sink)
                .unwrap();
            for _ in 0..big / CHUNK as u64 {
                zip.write_data(&chunk, &mut sink).unwrap();
            }
            // Not the real CRC of 4.5 GiB of zeros; nothing here checks it.
            zip.end_entry(0x1234_5678, big, &mut sink).unwrap();
            add(&mut zip, &mut Vec::new(), "after.txt", b"x", Method::Stored);
        }
        // `add` above went to a throwaway Vec; account for its bytes by hand.
        let after_offset = 30 + 7 + 20 + big + 24;
        assert_eq!(zip.entries(), 2);
        let directory_offset = zip.bytes_written();
        assert_eq!(directory_offset, after_offset + 30 + 9 + 1);
        let mut end = Vec::new();
        let size = finish(zip, &mut end);
        assert_eq!(tail.skipped, big);

        // Big entry: sizes in the Zip64 field of its central record.
        let c = &end;
        assert_eq!(u32_at(c, 0), CENTRAL_HEADER_SIGNATURE);
        assert_eq!(u16_at(c, 6), 45);
        assert_eq!(u32_at(c, 16), 0x1234_5678);
        assert_eq!(u32_at(c, 20), 0xFFFF_FFFF);
        assert_eq!(u32_at(c, 24), 0xFFFF_FFFF);
        assert_eq!(u16_at(c, 30), 4 + 16);
        assert_eq!(u32_at(c, 42), 0, "offset fits");
        let extra = &c[46 + 7..46 + 7 + 20];
        assert_eq!((u16_at(extra, 0), u16_at(extra, 2)), (1, 16));
        assert_eq!(u64_at(extra, 4), big, "uncompressed first");
        assert_eq!(u64_at(extra, 12), big);
        // Small entry after it: only its offset needs Zip64.
        let c = &end[46 + 7 + 20..];
        assert_eq!(u32_at(c, 0), CENTRAL_HEADER_SIGNATURE);
        assert_eq!(u16_at(c, 6), 45);
        assert_eq!(u32_at(c, 20), 1);
        assert_eq!(u32_at(c, 24), 1);
        assert_eq!(u32_at(c, 42), 0xFFFF_FFFF);
        assert_eq!(u16_at(c, 30), 4 + 8);
        let extra = &c[46 + 9..46 + 9 + 12];
        assert_eq!((u16_at(extra, 0), u16_at(extra, 2)), (1, 8));
        assert_eq!(u64_at(extra, 4), after_offset);

        // The directory starts past 4 GiB: Zip64 end record and locator.
        let directory_size = (46 + 7 + 20 + 46 + 9 + 12) as u64;
        assert_eq!(size, directory_offset + directory_size + 56 + 20 + 22);
        let zip64_end_offset = directory_offset + directory_size;
        assert_eq!(
            zip64_end(&end),
            Some((2, directory_size, directory_offset, zip64_end_offset))
        );
        assert_eq!(eocd(&end), (0xFFFF, 0xFFFF, 0xFFFF_FFFF, 0xFFFF_FFFF));

        // The big entry's own local header and descriptor.
        let (version, csize, usize_, extra) = local_fields(&tail.kept, 7);
        assert_eq!(
            (version, csize, usize_, extra.len()),
            (45, 0xFFFF_FFFF, 0xFFFF_FFFF, 20)
        );
        let d = &tail.kept[30 + 7 + 20..];
        assert_eq!(u32_at(d, 0), DATA_DESCRIPTOR_SIGNATURE);
        assert_eq!(u64_at(d, 8), big);
        assert_eq!(u64_at(d, 16), big);
    }

    #[test]
    fn too_small_a_size_hint_is_an_error_not_a_corrupt_archive() {
        let mut zip = writer();
        let mut tail = Tail {
            kept: Vec::new(),
            skipped: 0,
        };
        let chunk = vec![0u8; CHUNK];
        let mut sink = tail.sink();
        zip.start_entry("liar.bin", Method::Stored, Some(10), &mut sink)
            .unwrap();
        for _ in 0..4 * 1024 {
            zip.write_data(&chunk, &mut sink).unwrap();
        }
        let err = zip.end_entry(0, 4 << 30, &mut sink).unwrap_err();
        assert!(matches!(err, ZipError::Entry { .. }), "{err:?}");
        assert!(err.to_string().contains("size_hint None"), "{err}");
        assert!(matches!(zip.finish(&mut sink), Err(ZipError::State(_))));
    }

    #[test]
    fn stored_streamed_entry_must_receive_its_declared_size() {
        let mut zip = writer();
        let mut sink = |_: &[u8]| Ok(());
        zip.start_entry("a", Method::Stored, None, &mut sink)
            .unwrap();
        zip.write_data(b"abc", &mut sink).unwrap();
        let err = zip.end_entry(0, 4, &mut sink).unwrap_err();
        assert_eq!(
            err.to_string(),
            "entry \"a\": stored entry received 3 bytes of data but end_entry says 4"
        );
    }

    /// An archive of `n` one-byte stored entries.
    fn archive_of(n: u64) -> Vec<u8> {
        let mut zip = writer();
        let mut out = Vec::new();
        let mut sink = |b: &[u8]| {
            out.extend_from_slice(b);
            Ok(())
        };
        let prepared = prepare(b"x", Method::Stored, &mut Vec::new());
        for i in 0..n {
            zip.add(&format!("{i}"), &prepared, b"x", &mut sink)
                .unwrap();
        }
        assert_eq!(zip.entries(), n);
        zip.finish(&mut sink).unwrap();
        out
    }

    #[test]
    fn zip64_end_record_appears_at_65535_entries() {
        let out = archive_of(65_534);
        let (on_disk, total, size, offset) = eocd(&out);
        assert_eq!((on_disk, total), (65_534, 65_534));
        assert_eq!(offset as usize + size as usize + 22, out.len());
        assert_eq!(zip64_end(&out), None);

        // 0xFFFF is the sentinel, so 65,535 entries already need the Zip64 record.
        let out = archive_of(65_535);
        assert_eq!(eocd(&out), (0xFFFF, 0xFFFF, 0xFFFF_FFFF, 0xFFFF_FFFF));
        let (entries, _, _, _) = zip64_end(&out).unwrap();
        assert_eq!(entries, 65_535);
    }

    #[test]
    fn zip64_end_record_counts_65536_entries_and_points_at_every_header() {
        let out = archive_of(65_536);
        assert_eq!(eocd(&out), (0xFFFF, 0xFFFF, 0xFFFF_FFFF, 0xFFFF_FFFF));
        let (entries, size, offset, record_offset) = zip64_end(&out).unwrap();
        assert_eq!(entries, 65_536);
        assert_eq!(offset + size, record_offset, "records follow the directory");
        assert_eq!(record_offset as usize + 56 + 20 + 22, out.len());
        // Walk the directory: every record names its entry and points at its header.
        let mut at = offset as usize;
        for i in 0..entries {
            assert_eq!(u32_at(&out, at), CENTRAL_HEADER_SIGNATURE);
            let name_len = usize::from(u16_at(&out, at + 28));
            assert_eq!(&out[at + 46..at + 46 + name_len], i.to_string().as_bytes());
            let header = u32_at(&out, at + 42) as usize;
            assert_eq!(u32_at(&out, header), LOCAL_HEADER_SIGNATURE);
            assert_eq!(
                &out[header + 30..header + 30 + name_len],
                i.to_string().as_bytes()
            );
            at += 46 + name_len;
        }
        assert_eq!(at as u64, record_offset);
    }

    #[test]
    fn calls_out_of_order_are_state_errors_and_leave_the_writer_usable() {
        let mut zip = writer();
        let mut out = Vec::new();
        let mut sink = |b: &[u8]| {
            out.extend_from_slice(b);
            Ok(())
        };
        assert!(matches!(
            zip.write_data(b"x", &mut sink),
            Err(ZipError::State(m)) if m.contains("no entry open")
        ));
        assert!(matches!(
            zip.end_entry(0, 0, &mut sink),
            Err(ZipError::State(m)) if m.contains("no entry open")
        ));
        zip.start_entry("s", Method::Stored, None, &mut sink)
            .unwrap();
        let prepared = prepare(b"", Method::Stored, &mut Vec::new());
        assert!(matches!(
            zip.add("x", &prepared, b"", &mut sink),
            Err(ZipError::State(m)) if m.contains("open")
        ));
        assert!(matches!(
            zip.start_entry("y", Method::Stored, None, &mut sink),
            Err(ZipError::State(_))
        ));
        zip.write_data(b"ok", &mut sink).unwrap();
        zip.end_entry(crc32fast::hash(b"ok"), 2, &mut sink).unwrap();
        assert_eq!(zip.entries(), 1);

        zip.start_entry("t", Method::Stored, None, &mut sink)
            .unwrap();
        let err = zip.finish(&mut sink).unwrap_err();
        assert_eq!(
            err.to_string(),
            "ZIP writer used out of order: finish called while a streamed entry is open; \
             call end_entry first"
        );
    }

    #[test]
    fn a_failed_write_stops_the_writer() {
        let mut zip = writer();
        let prepared = prepare(b"data", Method::Stored, &mut Vec::new());
        let mut calls = 0;
        let mut failing = |_: &[u8]| {
            calls += 1;
            if calls == 2 {
                Err(io::Error::other("S3 said no"))
            } else {
                Ok(())
            }
        };
        let err = zip.add("a", &prepared, b"data", &mut failing).unwrap_err();
        assert!(matches!(err, ZipError::Io(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            "writing the ZIP archive failed: S3 said no"
        );
        // Only the header went out.
        assert_eq!(zip.bytes_written(), 31);
        let err = zip
            .add("b", &prepared, b"data", &mut |_| Ok(()))
            .unwrap_err();
        assert!(matches!(err, ZipError::State(m) if m.contains("earlier write failed")));
        assert!(matches!(
            zip.finish(&mut |_| Ok(())),
            Err(ZipError::State(_))
        ));
    }

    #[test]
    fn a_full_central_directory_spool_refuses_the_entry_before_writing_it() {
        // Room for one record of a one-byte name (47 bytes), not two.
        let spool = Spool::new(None, 60).unwrap();
        let mut zip = ZipWriter::new(spool, MODIFIED);
        let mut out = Vec::new();
        add(&mut zip, &mut out, "a", b"1", Method::Stored);
        let written = zip.bytes_written();
        let prepared = prepare(b"2", Method::Stored, &mut Vec::new());
        let err = zip.add("b", &prepared, b"2", &mut |_| Ok(())).unwrap_err();
        assert!(
            matches!(err, ZipError::Spool(SpoolError::Full { limit: 60 })),
            "{err:?}"
        );
        assert!(err.to_string().contains("more than 60 bytes"), "{err}");
        assert_eq!(zip.bytes_written(), written);
        // Streamed entries reserve the largest record they could need (47 + 28).
        let err = zip
            .start_entry("c", Method::Stored, None, &mut |_| Ok(()))
            .unwrap_err();
        assert!(matches!(err, ZipError::Spool(SpoolError::Full { .. })));
        assert_eq!(zip.bytes_written(), written);
        // What was written still makes a complete archive.
        finish(zip, &mut out);
        assert_eq!(eocd(&out), (1, 1, 47, written as u32));
    }
}
