//! The bytes of ZIP's headers and records (PKWARE APPNOTE 6.3.x): an entry's local
//! header and data descriptor, its central directory record, and the end of central
//! directory records, with Zip64 fields and records only where a size, an offset or the
//! entry count needs them.

use super::compress::Method;

pub(super) const LOCAL_HEADER_SIGNATURE: u32 = 0x0403_4b50;
pub(super) const DATA_DESCRIPTOR_SIGNATURE: u32 = 0x0807_4b50;
pub(super) const CENTRAL_HEADER_SIGNATURE: u32 = 0x0201_4b50;
pub(super) const ZIP64_END_SIGNATURE: u32 = 0x0606_4b50;
pub(super) const ZIP64_LOCATOR_SIGNATURE: u32 = 0x0706_4b50;
pub(super) const END_SIGNATURE: u32 = 0x0605_4b50;

const ZIP64_EXTRA_ID: u16 = 0x0001;

/// A 4-byte field holds less than this; the value itself is the sentinel that sends
/// readers to the Zip64 field (APPNOTE 4.4.8), so it can't be a real size or offset.
pub(super) const MAX_32: u64 = 0xFFFF_FFFF;
/// Likewise for the 2-byte entry counts of the end of central directory record.
const MAX_16: u64 = 0xFFFF;

/// General purpose flag bit 3: CRC and sizes follow the data, in a data descriptor.
const FLAG_DATA_DESCRIPTOR: u16 = 1 << 3;
/// General purpose flag bit 11: the name is UTF-8. Set on every entry.
const FLAG_UTF8_NAME: u16 = 1 << 11;

const VERSION_DEFAULT: u16 = 20;
pub(super) const VERSION_ZIP64: u16 = 45;
/// Upper byte 3 (Unix): extractors then apply the Unix mode in the external attributes,
/// so files come out 0644 rather than with whatever the extractor guesses.
const VERSION_MADE_BY: u16 = (3 << 8) | VERSION_ZIP64;

const UNIX_FILE_MODE: u32 = 0o100_644;
const UNIX_DIR_MODE: u32 = 0o040_755;
const DOS_DIRECTORY: u32 = 0x10;

pub(super) const CENTRAL_HEADER_LEN: u64 = 46;
/// A Zip64 extra field in the central directory with all three fields we ever use.
pub(super) const MAX_CENTRAL_ZIP64_EXTRA_LEN: u64 = 4 + 3 * 8;

/// Everything the local header and the central directory record about one entry.
pub(super) struct Written<'a> {
    pub(super) name: &'a str,
    pub(super) method: Method,
    pub(super) crc32: u32,
    pub(super) compressed_size: u64,
    pub(super) uncompressed_size: u64,
    pub(super) header_offset: u64,
    pub(super) zip64_local: bool,
    /// Streamed: CRC and sizes came after the data, in a data descriptor (flag bit 3),
    /// not in the local header.
    pub(super) data_descriptor: bool,
}

impl Written<'_> {
    /// The general purpose flags, the same in the local header and the central record.
    fn flags(&self) -> u16 {
        if self.data_descriptor {
            FLAG_UTF8_NAME | FLAG_DATA_DESCRIPTOR
        } else {
            FLAG_UTF8_NAME
        }
    }
}

fn version_needed(zip64_local: bool, header_offset: u64) -> u16 {
    // Sizes of 4 GiB or more always come with a Zip64 local header (or are refused), so
    // these two cover every entry that has a Zip64 field anywhere.
    if zip64_local || header_offset >= MAX_32 {
        VERSION_ZIP64
    } else {
        VERSION_DEFAULT
    }
}

/// An entry's local file header. A streamed entry's CRC and sizes are still zero here:
/// with bit 3 set, readers take them from the data descriptor.
pub(super) fn local_header(buf: &mut Vec<u8>, entry: &Written<'_>, dos_time: u16, dos_date: u16) {
    let zip64 = entry.zip64_local;
    put32(buf, LOCAL_HEADER_SIGNATURE);
    put16(buf, version_needed(zip64, entry.header_offset));
    put16(buf, entry.flags());
    put16(buf, entry.method.code());
    put16(buf, dos_time);
    put16(buf, dos_date);
    put32(buf, entry.crc32);
    // A Zip64 entry has the sentinel here and both sizes in its extra field (APPNOTE
    // 4.5.3); streamed, that field holds zeros until the data descriptor, which is also
    // what Python's zipfile writes for unseekable output.
    if zip64 {
        put32(buf, MAX_32 as u32);
        put32(buf, MAX_32 as u32);
    } else {
        // Below 4 GiB, checked by `zip64_local`, so the casts cannot truncate.
        put32(buf, entry.compressed_size as u32);
        put32(buf, entry.uncompressed_size as u32);
    }
    put16(buf, entry.name.len() as u16);
    put16(buf, if zip64 { 4 + 16 } else { 0 });
    buf.extend_from_slice(entry.name.as_bytes());
    if zip64 {
        put16(buf, ZIP64_EXTRA_ID);
        put16(buf, 16);
        put64(buf, entry.uncompressed_size);
        put64(buf, entry.compressed_size);
    }
}

/// The fields of the central directory's Zip64 extra field for `entry`, in the order
/// APPNOTE 4.5.3 gives: only those whose classic field overflowed, in this order.
fn zip64_central_fields(entry: &Written<'_>) -> impl Iterator<Item = u64> {
    [
        entry.uncompressed_size,
        entry.compressed_size,
        entry.header_offset,
    ]
    .into_iter()
    .filter(|&value| value >= MAX_32)
}

pub(super) fn central_record_len(entry: &Written<'_>) -> u64 {
    let fields = zip64_central_fields(entry).count() as u64;
    let extra = if fields > 0 { 4 + 8 * fields } else { 0 };
    CENTRAL_HEADER_LEN + entry.name.len() as u64 + extra
}

pub(super) fn central_record(buf: &mut Vec<u8>, entry: &Written<'_>, dos_time: u16, dos_date: u16) {
    let field32 = |value: u64| {
        if value >= MAX_32 {
            MAX_32 as u32
        } else {
            value as u32
        }
    };
    let mut zip64_fields = [0u64; 3];
    let mut zip64_count = 0;
    for value in zip64_central_fields(entry) {
        zip64_fields[zip64_count] = value;
        zip64_count += 1;
    }
    let zip64_fields = &zip64_fields[..zip64_count];
    let extra_len = if zip64_fields.is_empty() {
        0
    } else {
        4 + 8 * zip64_fields.len()
    };
    let external_attributes = if entry.name.ends_with('/') {
        (UNIX_DIR_MODE << 16) | DOS_DIRECTORY
    } else {
        UNIX_FILE_MODE << 16
    };

    put32(buf, CENTRAL_HEADER_SIGNATURE);
    put16(buf, VERSION_MADE_BY);
    put16(buf, version_needed(entry.zip64_local, entry.header_offset));
    put16(buf, entry.flags());
    put16(buf, entry.method.code());
    put16(buf, dos_time);
    put16(buf, dos_date);
    put32(buf, entry.crc32);
    put32(buf, field32(entry.compressed_size));
    put32(buf, field32(entry.uncompressed_size));
    put16(buf, entry.name.len() as u16);
    put16(buf, extra_len as u16);
    put16(buf, 0); // comment length
    put16(buf, 0); // disk where the entry starts
    put16(buf, 0); // internal attributes
    put32(buf, external_attributes);
    put32(buf, field32(entry.header_offset));
    buf.extend_from_slice(entry.name.as_bytes());
    if !zip64_fields.is_empty() {
        put16(buf, ZIP64_EXTRA_ID);
        put16(buf, (8 * zip64_fields.len()) as u16);
        for &value in zip64_fields {
            put64(buf, value);
        }
    }
}

/// A streamed entry's data descriptor: its CRC and sizes, after its data.
pub(super) fn data_descriptor(buf: &mut Vec<u8>, entry: &Written<'_>) {
    put32(buf, DATA_DESCRIPTOR_SIGNATURE);
    put32(buf, entry.crc32);
    // Readers size the descriptor by whether the local header had a Zip64 field
    // (APPNOTE 4.3.9.2), not by the values, so this must follow that choice.
    if entry.zip64_local {
        put64(buf, entry.compressed_size);
        put64(buf, entry.uncompressed_size);
    } else {
        put32(buf, entry.compressed_size as u32);
        put32(buf, entry.uncompressed_size as u32);
    }
}

/// The end of the archive, after the central directory of `entries` records
/// (`directory_size` bytes at `directory_offset`): the Zip64 end of central directory
/// record and its locator when a count, size or offset overflows its classic field, then
/// the end of central directory record. `records_offset` is where these start.
pub(super) fn end_records(
    buf: &mut Vec<u8>,
    entries: u64,
    directory_size: u64,
    directory_offset: u64,
    records_offset: u64,
) {
    // 0xFFFF entries is itself the sentinel, hence `>=`.
    let zip64 = entries >= MAX_16 || directory_size >= MAX_32 || directory_offset >= MAX_32;
    if zip64 {
        put32(buf, ZIP64_END_SIGNATURE);
        put64(buf, 44); // size of the rest of this record
        put16(buf, VERSION_MADE_BY);
        put16(buf, VERSION_ZIP64);
        put32(buf, 0); // this disk
        put32(buf, 0); // disk where the central directory starts
        put64(buf, entries); // on this disk
        put64(buf, entries); // in total
        put64(buf, directory_size);
        put64(buf, directory_offset);

        put32(buf, ZIP64_LOCATOR_SIGNATURE);
        put32(buf, 0); // disk with the Zip64 end record
        put64(buf, records_offset); // where the Zip64 end record starts
        put32(buf, 1); // total disks
    }
    // Readers disagree on which sentinel makes them look for the Zip64 record (Go
    // checks any of them, others only the one that overflowed), so once there is a
    // Zip64 record every classic field points to it.
    let (count, size, offset) = if zip64 {
        (MAX_16 as u16, MAX_32 as u32, MAX_32 as u32)
    } else {
        // All three are below their maximum here, so the casts cannot truncate.
        (
            entries as u16,
            directory_size as u32,
            directory_offset as u32,
        )
    };
    put32(buf, END_SIGNATURE);
    put16(buf, 0); // this disk
    put16(buf, 0); // disk where the central directory starts
    put16(buf, count); // on this disk
    put16(buf, count); // in total
    put32(buf, size);
    put32(buf, offset);
    put16(buf, 0); // comment length
}

fn put16(buf: &mut Vec<u8>, value: u16) {
    buf.extend_from_slice(&value.to_le_bytes());
}

fn put32(buf: &mut Vec<u8>, value: u32) {
    buf.extend_from_slice(&value.to_le_bytes());
}

fn put64(buf: &mut Vec<u8>, value: u64) {
    buf.extend_from_slice(&value.to_le_bytes());
}
