//! A size-capped temporary file for bytes that must be held back until later.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Writes are gathered into a buffer this large so that many small records (ZIP central
/// directory entries are ~100 bytes) cost one system call per 256 KiB, not one each.
const WRITE_BUFFER: usize = 256 * 1024;

/// The largest chunk [`Spool::drain_into`] hands to its sink; it bounds the memory a
/// drain needs regardless of how much was spooled.
const DRAIN_CHUNK: usize = 1024 * 1024;

/// A temporary file that holds back bytes for later (a held-back section of a document,
/// a ZIP central directory), refusing to grow past a fixed bound so a full disk is an
/// error with a clear message, not a crash.
///
/// The file is unlinked as soon as it is created, so it disappears when the `Spool` is
/// dropped, even if the process is killed. Memory use is the write buffer (256 KiB) plus,
/// during [`drain_into`](Spool::drain_into), one 1 MiB chunk — never the content.
///
/// ```
/// use labelport_output::Spool;
/// let mut spool = Spool::new(None, 1024)?;
/// spool.write(b"held ")?;
/// spool.write(b"back")?;
/// let mut out = Vec::new();
/// spool.drain_into(&mut |chunk| { out.extend_from_slice(chunk); Ok(()) })?;
/// assert_eq!(out, b"held back");
/// assert!(spool.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Spool {
    file: BufWriter<File>,
    len: u64,
    limit: u64,
}

/// Why [`Spool::write`] failed.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The write would take the spool past its bound; nothing of it was written.
    #[error(
        "temporary spool is full: holding back more than {limit} bytes is not allowed \
         (make the export smaller, or raise the spool limit if the temp dir has room)"
    )]
    Full {
        /// The bound the spool was created with, in bytes.
        limit: u64,
    },
    /// The temporary file could not be written (often: the temp dir's disk is full).
    #[error("writing the temporary spool file failed: {0}")]
    Io(#[from] io::Error),
}

impl Spool {
    /// A spool in `dir` (None: the system temp dir, which is /tmp on Lambda) that holds at
    /// most `limit` bytes.
    pub fn new(dir: Option<&Path>, limit: u64) -> io::Result<Spool> {
        let file = match dir {
            Some(dir) => tempfile::tempfile_in(dir)?,
            None => tempfile::tempfile()?,
        };
        Ok(Spool {
            file: BufWriter::with_capacity(WRITE_BUFFER, file),
            len: 0,
            limit,
        })
    }

    /// Appends bytes (buffered); `Err(SpoolError::Full { limit })` past the bound (and then
    /// none of `bytes` is kept), `Err(SpoolError::Io)` otherwise. After an `Io` error part
    /// of `bytes` may have reached the file, so the spool's content can no longer be
    /// trusted: drop it.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), SpoolError> {
        let new_len = self
            .len
            .checked_add(bytes.len() as u64)
            .filter(|&n| n <= self.limit)
            .ok_or(SpoolError::Full { limit: self.limit })?;
        self.file.write_all(bytes)?;
        self.len = new_len;
        Ok(())
    }

    /// Bytes held so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bound, in bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Whether `more` bytes could still be written without passing the bound. Lets the
    /// ZIP writer refuse an entry before any of it goes out, rather than halfway.
    pub(crate) fn has_room_for(&self, more: u64) -> bool {
        self.len
            .checked_add(more)
            .is_some_and(|total| total <= self.limit)
    }

    /// Streams everything written, in order, to `sink` in chunks of at most 1 MiB, then
    /// empties the spool (it can be reused).
    ///
    /// If reading the file or the sink fails, the spool keeps its content and stays
    /// writable, so the caller decides whether to retry; the sink may have received part
    /// of it.
    pub fn drain_into(&mut self, sink: &mut dyn FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
        self.file.flush()?;
        let result = self.copy_out(sink);
        let file = self.file.get_mut();
        match result {
            Ok(()) => {
                file.set_len(0)?;
                file.seek(SeekFrom::Start(0))?;
                self.len = 0;
                Ok(())
            }
            Err(e) => {
                // Later writes must append after the content, not overwrite it.
                file.seek(SeekFrom::End(0))?;
                Err(e)
            }
        }
    }

    fn copy_out(&mut self, sink: &mut dyn FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
        let file = self.file.get_mut();
        file.seek(SeekFrom::Start(0))?;
        // `take` guards against a file that somehow grew beyond what we wrote.
        let mut reader = Read::by_ref(file).take(self.len);
        let mut chunk =
            vec![0u8; DRAIN_CHUNK.min(usize::try_from(self.len).unwrap_or(DRAIN_CHUNK))];
        let mut copied = 0u64;
        while copied < self.len {
            let filled = fill(&mut reader, &mut chunk)?;
            if filled == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "temporary spool file is shorter than expected: {copied} of {} bytes",
                        self.len
                    ),
                ));
            }
            sink(&chunk[..filled])?;
            copied += filled as u64;
        }
        Ok(())
    }
}

/// Reads until `buf` is full or the reader is exhausted, so chunks handed to the sink are
/// as large as allowed rather than whatever one `read` call happened to return.
fn fill(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn drain(spool: &mut Spool) -> (Vec<u8>, Vec<usize>) {
        let mut out = Vec::new();
        let mut sizes = Vec::new();
        spool
            .drain_into(&mut |chunk| {
                sizes.push(chunk.len());
                out.extend_from_slice(chunk);
                Ok(())
            })
            .unwrap();
        (out, sizes)
    }

    #[test]
    fn enforces_its_limit_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::new(Some(dir.path()), 10).unwrap();
        assert_eq!(spool.limit(), 10);
        spool.write(b"0123456").unwrap();
        assert!(spool.has_room_for(3));
        assert!(!spool.has_room_for(4));
        let err = spool.write(b"7890").unwrap_err();
        assert!(matches!(err, SpoolError::Full { limit: 10 }), "{err:?}");
        assert!(err.to_string().contains("more than 10 bytes"), "{err}");
        // The refused write left nothing behind.
        assert_eq!(spool.len(), 7);
        spool.write(b"789").unwrap();
        assert_eq!(spool.len(), 10);
        assert!(matches!(
            spool.write(b"x"),
            Err(SpoolError::Full { limit: 10 })
        ));
        // Empty writes always fit, even at the bound.
        spool.write(b"").unwrap();
        assert_eq!(drain(&mut spool).0, b"0123456789");
    }

    #[test]
    fn zero_limit_refuses_everything_but_empty_writes() {
        let mut spool = Spool::new(None, 0).unwrap();
        spool.write(b"").unwrap();
        assert!(matches!(
            spool.write(b"a"),
            Err(SpoolError::Full { limit: 0 })
        ));
        assert!(spool.is_empty());
        let (out, sizes) = drain(&mut spool);
        assert!(out.is_empty());
        assert!(sizes.is_empty());
    }

    #[test]
    fn drains_in_order_in_chunks_of_at_most_one_mib_and_can_be_reused() {
        let mut spool = Spool::new(None, 10 * DRAIN_CHUNK as u64).unwrap();
        let data: Vec<u8> = (0..3 * DRAIN_CHUNK + 5).map(|i| (i % 251) as u8).collect();
        // Many odd-sized writes, so buffering boundaries don't line up with chunks.
        for piece in data.chunks(77_777) {
            spool.write(piece).unwrap();
        }
        assert_eq!(spool.len(), data.len() as u64);
        let (out, sizes) = drain(&mut spool);
        assert_eq!(sizes, vec![DRAIN_CHUNK, DRAIN_CHUNK, DRAIN_CHUNK, 5]);
        assert!(out == data);
        assert_eq!(spool.len(), 0);

        // Reused: only what was written after the drain comes out, and the bound counts
        // from zero again.
        spool.write(b"second").unwrap();
        assert_eq!(drain(&mut spool), (b"second".to_vec(), vec![6]));
        spool.write(&vec![1u8; 10 * DRAIN_CHUNK]).unwrap();
        assert_eq!(spool.len(), 10 * DRAIN_CHUNK as u64);
    }

    #[test]
    fn failed_drain_keeps_the_content() {
        let mut spool = Spool::new(None, 100).unwrap();
        spool.write(b"abc").unwrap();
        let err = spool
            .drain_into(&mut |_| Err(io::Error::other("upload refused")))
            .unwrap_err();
        assert_eq!(err.to_string(), "upload refused");
        assert_eq!(spool.len(), 3);
        spool.write(b"def").unwrap();
        assert_eq!(drain(&mut spool).0, b"abcdef");
    }

    /// Open descriptors of this process whose target lies in `dir`.
    #[cfg(target_os = "linux")]
    fn open_files_in(dir: &Path) -> Vec<String> {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
            .filter(|target| target.starts_with(dir))
            .map(|target| target.display().to_string())
            .collect()
    }

    #[test]
    fn leaves_no_file_behind() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::new(Some(dir.path()), 1 << 20).unwrap();
        spool.write(&[7u8; 300_000]).unwrap();
        // Unlinked from the start: nothing to clean up even if the process is killed.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        #[cfg(target_os = "linux")]
        {
            let open = open_files_in(dir.path());
            assert_eq!(open.len(), 1, "{open:?}");
            assert!(open[0].ends_with("(deleted)"), "{open:?}");
        }
        drop(spool);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        // Closing the last descriptor is what frees the disk space.
        #[cfg(target_os = "linux")]
        assert_eq!(open_files_in(dir.path()), Vec::<String>::new());
    }

    #[test]
    fn missing_dir_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        assert!(Spool::new(Some(&missing), 1).is_err());
    }
}
