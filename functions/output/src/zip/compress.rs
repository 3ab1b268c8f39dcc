//! An entry's data compressed ahead of time, on any thread: [`prepare`] (or a reused
//! [`Deflater`]) appends the raw-deflate or stored bytes and returns what the writer's
//! headers need, [`Prepared`].

/// flate2 level 1: as in the encoders' gzip, speed keeps compression from being the
/// bottleneck of a two-core worker; the few percent of size it costs is not worth 3×.
pub(super) const DEFLATE_LEVEL: u32 = 1;

/// How an entry's bytes are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// As they are (method 0): for data that is already compressed (JPEG, PNG, video),
    /// where deflate would spend CPU for nothing.
    Stored,
    /// Raw deflate (method 8), no zlib or gzip header.
    Deflated,
}

impl Method {
    /// The method's number in ZIP's headers.
    pub(super) fn code(self) -> u16 {
        match self {
            Method::Stored => 0,
            Method::Deflated => 8,
        }
    }
}

/// An entry's data compressed ahead of time (on another thread), ready to be written
/// with [`ZipWriter::add`](super::ZipWriter::add). The compressed bytes themselves stay
/// with the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prepared {
    /// How the data was stored.
    pub method: Method,
    /// CRC-32 of the uncompressed bytes.
    pub crc32: u32,
    /// Length of the uncompressed bytes.
    pub uncompressed_size: u64,
}

/// Compresses `plain` for an entry: appends the raw-deflate (no zlib/gzip header) bytes
/// (level 1, flate2) or the plain bytes (Stored) to `out`, and returns the CRC-32 and
/// uncompressed size. Runs on the pipeline's encoder threads, in parallel.
///
/// Only what this call appended belongs to the entry: pass `&out[start..]` to
/// [`ZipWriter::add`](super::ZipWriter::add), where `start` was `out.len()` before the call.
///
/// Each call sets up a new compressor; a thread that prepares many entries keeps a
/// [`Deflater`] instead.
pub fn prepare(plain: &[u8], method: Method, out: &mut Vec<u8>) -> Prepared {
    Deflater::new().prepare(plain, method, out)
}

/// Entries shorter than this are stored, not deflated. Deflate must reset a 128 KiB
/// hash table per entry, which for a few hundred bytes costs more than the deflating:
/// on JSON_SIMPLE's documents (most under 512 bytes) storing them made the export 2.6
/// times faster on one core for a 6% bigger archive.
pub const STORE_BELOW: usize = 1024;

/// A deflate compressor kept across entries, one per thread: setting one up costs
/// hundreds of KiB of tables, far more than deflating a small entry (a label file, a
/// JSON document), so it is reset rather than rebuilt.
pub struct Deflater {
    compress: flate2::Compress,
}

impl Default for Deflater {
    fn default() -> Self {
        Deflater::new()
    }
}

impl std::fmt::Debug for Deflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Deflater")
    }
}

impl Deflater {
    /// A raw-deflate compressor at level 1.
    pub fn new() -> Self {
        Deflater {
            compress: flate2::Compress::new(flate2::Compression::new(DEFLATE_LEVEL), false),
        }
    }

    /// As [`prepare`], reusing this compressor. A `Deflated` entry that deflate would
    /// not make smaller (tiny or random data) is stored instead: the returned
    /// [`Prepared::method`] says which.
    pub fn prepare(&mut self, plain: &[u8], method: Method, out: &mut Vec<u8>) -> Prepared {
        let crc32 = crc32fast::hash(plain);
        let start = out.len();
        let mut method = method;
        if plain.len() < STORE_BELOW {
            method = Method::Stored;
        }
        if method == Method::Deflated {
            self.compress.reset();
            // Deflate's worst case is a few bytes per 16 KiB block over the input.
            out.reserve(plain.len() + plain.len() / 64 + 64);
            let mut consumed = 0usize;
            loop {
                let before_in = self.compress.total_in();
                let status = self.compress.compress_vec(
                    &plain[consumed..],
                    out,
                    flate2::FlushCompress::Finish,
                );
                consumed += (self.compress.total_in() - before_in) as usize;
                match status {
                    Ok(flate2::Status::StreamEnd) => break,
                    // Out of room: grow and go on.
                    Ok(flate2::Status::Ok | flate2::Status::BufError) => out.reserve(64 * 1024),
                    // Deflate does not fail on valid parameters; store rather than panic.
                    Err(_) => {
                        out.truncate(start);
                        method = Method::Stored;
                        break;
                    }
                }
            }
            if method == Method::Deflated && out.len() - start >= plain.len() {
                out.truncate(start);
                method = Method::Stored;
            }
        }
        if method == Method::Stored {
            out.extend_from_slice(plain);
        }
        Prepared {
            method,
            crc32,
            uncompressed_size: plain.len() as u64,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn prepare_appends_raw_deflate_and_reports_crc() {
        let plain = b"hello hello hello hello hello".repeat(100);
        let mut out = b"earlier".to_vec();
        let prepared = prepare(&plain, Method::Deflated, &mut out);
        assert_eq!(&out[..7], b"earlier");
        assert_eq!(prepared.method, Method::Deflated);
        assert_eq!(prepared.uncompressed_size, plain.len() as u64);
        assert_eq!(prepared.crc32, crc32fast::hash(&plain));
        let deflated = &out[7..];
        assert!(deflated.len() < 100, "{}", deflated.len());
        let mut inflated = Vec::new();
        flate2::read::DeflateDecoder::new(deflated)
            .read_to_end(&mut inflated)
            .unwrap();
        assert_eq!(inflated, plain);

        let mut out = Vec::new();
        let prepared = prepare(b"hello", Method::Stored, &mut out);
        assert_eq!(out, b"hello");
        // The CRC-32 of "hello", from any reference table.
        assert_eq!(prepared.crc32, 0x3610_a686);
        assert_eq!(prepared.uncompressed_size, 5);
    }

    #[test]
    fn a_reused_deflater_stores_what_deflate_cannot_shrink() {
        let mut deflater = Deflater::new();
        let mut out = Vec::new();
        let text = b"label,label,label,label,label,label,label,label,label,label".repeat(50);
        for _ in 0..3 {
            out.clear();
            let prepared = deflater.prepare(&text, Method::Deflated, &mut out);
            assert_eq!(prepared.method, Method::Deflated);
            assert!(out.len() < text.len() / 10);
            let mut back = Vec::new();
            flate2::read::DeflateDecoder::new(&out[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, text);
            assert_eq!(prepared.crc32, crc32fast::hash(&text));
        }
        let short = vec![b'a'; STORE_BELOW - 1];
        for tiny in [&b""[..], b"{}", b"x", &short] {
            out.clear();
            let prepared = deflater.prepare(tiny, Method::Deflated, &mut out);
            assert_eq!((prepared.method, out.as_slice()), (Method::Stored, tiny));
        }
    }
}
