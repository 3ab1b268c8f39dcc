//! The reader thread: sources cut into blocks of about `Options::block_size` at record
//! ends, lines counted, a token taken per block so no more than a fixed number are in
//! memory.

use super::{Options, PipelineError, Source};
use crate::decode::{ArrayScanner, Decoder, Framing};
use std::io::{self, Read};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub(super) struct Block {
    pub(super) seq: u64,
    pub(super) file: Arc<str>,
    pub(super) decoder: Arc<dyn Decoder>,
    pub(super) first_line: u64,
    /// The ordinal of the block's first line (line files) or element (array files).
    pub(super) first_ordinal: u64,
    /// Array files: each element's bytes in `data`. Line files: empty.
    pub(super) records: Vec<Range<usize>>,
    pub(super) data: Vec<u8>,
    /// The last block of its file: counts a finished file.
    pub(super) last_of_file: bool,
}

/// A source that stops with an error once the export is cancelled: a slow source (or a
/// filter that keeps little) cannot keep a cancelled export reading to its end.
struct Cancellable<'a, R> {
    inner: R,
    cancel: &'a AtomicBool,
}

impl<R: Read> Read for Cancellable<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(io::Error::other("the export was cancelled"));
        }
        self.inner.read(buf)
    }
}

/// Cuts each source into blocks that end at a record end. Runs on its own thread.
pub(super) fn read_blocks<S>(
    sources: S,
    options: &Options,
    tokens: &crossbeam_channel::Receiver<()>,
    blocks: &crossbeam_channel::Sender<Block>,
) -> Result<(), PipelineError>
where
    S: Iterator<Item = Result<Source, PipelineError>>,
{
    let mut seq = 0u64;
    // Ordinals: a line file takes one per line, an array file one per element.
    let mut ordinal = 0u64;
    let mut carry: Vec<u8> = Vec::new();
    for source in sources {
        let Source {
            name,
            reader,
            decoder,
        } = source?;
        let mut reader = Cancellable {
            inner: reader,
            cancel: &options.cancel,
        };
        let framing = decoder.framing();
        let mut scanner = ArrayScanner::default();
        let file: Arc<str> = Arc::from(name.as_str());
        let mut line = 1u64;
        carry.clear();
        let mut eof = false;
        let invalid = |line: u64, message: String| PipelineError::InvalidLine {
            file: name.clone(),
            line,
            message,
        };
        while !eof {
            if tokens.recv().is_err() {
                return Ok(()); // the caller stopped (an error downstream)
            }
            let mut data = Vec::with_capacity(options.block_size + 64 * 1024);
            data.append(&mut carry);
            let mut records = Vec::new();
            // Fill to the block size, then on to the next record end. `read_to_end` on
            // `take` reads into spare capacity without zeroing it first, and stops only at
            // the limit or the end of the source.
            loop {
                let before = data.len();
                let want = if before < options.block_size {
                    options.block_size - before
                } else {
                    64 * 1024
                };
                let n = (&mut reader)
                    .take(want as u64)
                    .read_to_end(&mut data)
                    .map_err(|source| {
                        if options.cancel.load(Ordering::Relaxed) {
                            PipelineError::Cancelled
                        } else if super::is_storage_error(&source) {
                            PipelineError::Read {
                                file: name.clone(),
                                source,
                            }
                        } else {
                            PipelineError::Corrupt {
                                file: name.clone(),
                                line: line + newlines(&data),
                                message: format!(
                                    "the file cannot be read as it is named: {source}"
                                ),
                            }
                        }
                    })?;
                eof = n < want;
                let cut = match framing {
                    Framing::Lines if eof => Some(data.len()),
                    Framing::Lines => (data.len() >= options.block_size)
                        .then(|| {
                            memchr::memrchr(b'\n', &data[before..]).map(|end| before + end + 1)
                        })
                        .flatten(),
                    Framing::JsonArray => {
                        scanner.scan(&data, &mut records).map_err(|(at, message)| {
                            invalid(line + newlines(&data[..at]), message)
                        })?;
                        if eof {
                            scanner
                                .finish()
                                .map_err(|message| invalid(line + newlines(&data), message))?;
                        }
                        (eof || (data.len() >= options.block_size && !records.is_empty()))
                            .then(|| scanner.pending_from().unwrap_or(data.len()))
                    }
                };
                if let Some(cut) = cut {
                    carry.extend_from_slice(&data[cut..]);
                    data.truncate(cut);
                    scanner.rebase(cut);
                    break;
                }
                if data.len() > options.max_line {
                    return Err(invalid(
                        line + newlines(&data),
                        format!("a record longer than {} MiB", options.max_line >> 20),
                    ));
                }
            }
            let lines = newlines(&data);
            let block = Block {
                seq,
                file: file.clone(),
                decoder: decoder.clone(),
                first_line: line,
                first_ordinal: ordinal,
                records,
                data,
                last_of_file: eof,
            };
            ordinal += match framing {
                Framing::Lines => lines,
                Framing::JsonArray => block.records.len() as u64,
            };
            seq += 1;
            line += lines;
            if blocks.send(block).is_err() {
                return Ok(());
            }
        }
        // The last line of a file may lack its line end; it still takes an ordinal.
        ordinal += 1;
    }
    Ok(())
}

pub(super) fn newlines(data: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', data).count() as u64
}
