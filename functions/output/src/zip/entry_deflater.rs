//! A streamed entry deflated as its bytes arrive, for bytes never in memory all at once.

use std::io;

use super::compress::DEFLATE_LEVEL;
use super::error::ZipError;
use super::writer::ZipWriter;

/// Deflates one streamed entry's bytes as they arrive, for bytes that were never in
/// memory all at once (a section spooled to a temporary file): start it with
/// [`ZipWriter::start_entry`], pass each piece to [`write`](Self::write), and
/// [`finish`](Self::finish) ends the entry with the CRC-32 and size it kept.
pub struct EntryDeflater {
    compress: flate2::Compress,
    crc: crc32fast::Hasher,
    size: u64,
    buffer: Vec<u8>,
}

impl std::fmt::Debug for EntryDeflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntryDeflater")
            .field("size", &self.size)
            .finish()
    }
}

impl Default for EntryDeflater {
    fn default() -> Self {
        EntryDeflater::new()
    }
}

/// Deflated bytes are handed to the ZIP writer in pieces of about this size.
const STREAM_PIECE: usize = 64 * 1024;

impl EntryDeflater {
    /// A raw-deflate compressor at the writer's level, for an entry begun with
    /// `start_entry(name, Method::Deflated, ..)`.
    pub fn new() -> Self {
        EntryDeflater {
            compress: flate2::Compress::new(flate2::Compression::new(DEFLATE_LEVEL), false),
            crc: crc32fast::Hasher::new(),
            size: 0,
            buffer: Vec::with_capacity(STREAM_PIECE + 1024),
        }
    }

    /// Compresses the entry's next bytes, writing full pieces to `zip`.
    pub fn write(
        &mut self,
        plain: &[u8],
        zip: &mut ZipWriter,
        sink: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> Result<(), ZipError> {
        self.crc.update(plain);
        self.size += plain.len() as u64;
        self.run(plain, flate2::FlushCompress::None, zip, sink)
    }

    /// Flushes the compressor and ends the entry.
    pub fn finish(
        mut self,
        zip: &mut ZipWriter,
        sink: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> Result<(), ZipError> {
        self.run(&[], flate2::FlushCompress::Finish, zip, sink)?;
        if !self.buffer.is_empty() {
            zip.write_data(&self.buffer, sink)?;
        }
        zip.end_entry(self.crc.finalize(), self.size, sink)
    }

    fn run(
        &mut self,
        mut plain: &[u8],
        flush: flate2::FlushCompress,
        zip: &mut ZipWriter,
        sink: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> Result<(), ZipError> {
        loop {
            if self.buffer.capacity() - self.buffer.len() < 1024 {
                zip.write_data(&self.buffer, sink)?;
                self.buffer.clear();
            }
            let before = self.compress.total_in();
            let status = self
                .compress
                .compress_vec(plain, &mut self.buffer, flush)
                .map_err(|e| ZipError::Io(io::Error::other(e)))?;
            plain = &plain[(self.compress.total_in() - before) as usize..];
            let done = match flush {
                flate2::FlushCompress::Finish => status == flate2::Status::StreamEnd,
                // Without a flush, deflate is done once it took every byte and had
                // room left over.
                _ => plain.is_empty() && self.buffer.capacity() - self.buffer.len() >= 1024,
            };
            if done {
                return Ok(());
            }
        }
    }
}
