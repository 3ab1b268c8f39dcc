//! A streaming ZIP writer (PKWARE APPNOTE 6.3.x, with Zip64) whose output only ever
//! grows at the end.
//!
//! The destination is an S3 multipart upload, which cannot seek back to patch a header.
//! An entry added whole ([`ZipWriter::add`]) has its CRC and sizes known before its first
//! byte goes out, so its local header carries them. Only a streamed entry
//! ([`ZipWriter::start_entry`]), whose CRC and sizes are known at its end, carries them in
//! a data descriptor after its data (general purpose flag bit 3). Forward-only readers
//! need the first kind: Java's `ZipInputStream` refuses a stored entry with a data
//! descriptor, since nothing tells it where the data ends. The central directory, which
//! must come last, is kept in a [`Spool`](crate::Spool) (a temporary file) until
//! [`ZipWriter::finish`], so memory stays constant however many entries an archive has.
//!
//! The parts: [`ZipWriter`] (`writer`) puts entries and the central directory out in
//! order; `records` lays out the bytes of each header and record (Zip64 where needed);
//! `compress` prepares an entry's data ahead of time and `entry_deflater` deflates a
//! streamed one; `names` refuses unsafe entry names and `dos_time` gives ZIP's
//! timestamps.

mod compress;
mod dos_time;
mod entry_deflater;
mod error;
mod names;
mod records;
mod writer;

pub use compress::{prepare, Deflater, Method, Prepared, STORE_BELOW};
pub use entry_deflater::EntryDeflater;
pub use error::ZipError;
pub use writer::ZipWriter;
