//! Why a [`ZipWriter`](super::ZipWriter) call failed.

use std::io;

use crate::spool::SpoolError;

/// Why a [`ZipWriter`](super::ZipWriter) call failed.
#[derive(Debug, thiserror::Error)]
pub enum ZipError {
    /// The entry name could be unsafe or unreadable when extracted; nothing was written.
    #[error("entry name {} cannot go into a ZIP: {reason}", shorten(.name))]
    BadName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The entry's data or sizes don't fit what was declared for it.
    #[error("entry {}: {problem}", shorten(.name))]
    Entry {
        /// The entry's name.
        name: String,
        /// What does not fit.
        problem: String,
    },
    /// The writer was called out of order (an entry still open, none open), or after an
    /// earlier failure left the archive incomplete. A bug in the caller.
    #[error("ZIP writer used out of order: {0}")]
    State(&'static str),
    /// The sink (or the spool file) failed; the archive is incomplete.
    #[error("writing the ZIP archive failed: {0}")]
    Io(#[from] io::Error),
    /// The central directory did not fit in its spool; nothing of this entry was written,
    /// and the archive can still be finished with the entries before it.
    #[error("the ZIP central directory could not be held back: {0}")]
    Spool(#[from] SpoolError),
}

/// Keeps error messages readable when a name is up to 64 KiB long.
fn shorten(name: &str) -> String {
    const SHOWN: usize = 200;
    if name.len() <= SHOWN {
        return format!("{name:?}");
    }
    let mut end = SHOWN;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}… ({} bytes)", &name[..end], name.len())
}
