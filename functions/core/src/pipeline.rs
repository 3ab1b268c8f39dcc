//! The streaming export pipeline: task lines in, encoded (and compressed) bytes out,
//! in source order, on several cores, in bounded memory.
//!
//! ```text
//!  reader thread ──blocks──▶ N encoder threads ──encoded blocks──▶ caller's thread
//!  (cuts ~1 MiB blocks         (parse, check, filter,               (puts blocks back in
//!   at line ends, counts        encode, compress each                order, hands them
//!   lines)                      block on its own)                    to the sink)
//! ```
//!
//! A fixed number of tokens circulates between the reader and the caller's thread: the
//! reader takes one per block and the caller returns it once the block is written, so
//! no more than `2 × threads + 2` blocks are ever in memory, whatever the export's size.
//! Compressed blocks are independent gzip members / zstd frames, which concatenate
//! into one valid file.

use crate::error::Failure;
use crate::filter::TaskFilter;
use crate::job::{Progress, SkippedLine};
use crate::request::InvalidLines;
use labelport_encoders::{Compression, Encoder};
use labelport_model::Task;
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::sync::Arc;

/// At most this many skipped lines are listed in a result.
pub const MAX_LISTED_SKIPS: usize = 100;

/// How the pipeline runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Encoder threads (at least 1).
    pub threads: usize,
    /// Target size of a block of source lines.
    pub block_size: usize,
    /// A longer line is refused rather than buffered without end.
    pub max_line: usize,
    /// What a malformed line does.
    pub invalid_lines: InvalidLines,
    /// Output compression.
    pub compression: Compression,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            block_size: 1 << 20,
            max_line: 64 << 20,
            invalid_lines: InvalidLines::Fail,
            compression: Compression::None,
        }
    }
}

/// What an export request turns into: the encoder, the filter and the options. Built
/// once per export, where a format refuses options it cannot honour.
pub struct Plan {
    /// The format's encoder.
    pub encoder: Box<dyn Encoder>,
    /// The tasks kept (the request's filters, else the format's defaults).
    pub filter: TaskFilter,
    /// How the pipeline runs.
    pub options: Options,
}

impl Plan {
    /// Plans `request` on `project` with `threads` encoder threads.
    pub fn new(
        request: &crate::request::ExportRequest,
        project: &labelport_model::Project,
        threads: usize,
    ) -> Result<Self, labelport_encoders::ConfigError> {
        let states = request.effective_states();
        Ok(Plan {
            encoder: labelport_encoders::build(request.format, request.fields, project)?,
            filter: TaskFilter::new(states.as_deref(), request.effective_stages()),
            options: Options {
                threads,
                invalid_lines: request.invalid_lines,
                compression: request.compression,
                ..Options::default()
            },
        })
    }

    /// Runs the plan (see [`run`]).
    pub fn run<S>(
        &self,
        sources: S,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), crate::ports::BoxError>,
        on_progress: &mut dyn FnMut(&Progress),
    ) -> Result<Summary, PipelineError>
    where
        S: Iterator<Item = Result<Source, PipelineError>> + Send,
    {
        run(
            sources,
            self.encoder.as_ref(),
            &self.filter,
            &self.options,
            sink,
            on_progress,
        )
    }
}

/// One source file to read.
pub struct Source {
    /// Its name, as errors should show it (`projects/p/tasks/part-00000.ndjson.gz`).
    pub name: String,
    /// Its decompressed bytes.
    pub reader: Box<dyn Read + Send>,
}

/// Why the pipeline stopped.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A line is not a valid task record, or the format cannot express it.
    #[error("{file}, line {line}: {message}")]
    InvalidLine {
        /// The source file.
        file: String,
        /// The 1-based line.
        line: u64,
        /// Why.
        message: String,
    },
    /// A source could not be opened or read.
    #[error("reading {file}")]
    Read {
        /// The source file.
        file: String,
        /// The I/O error (a decompression error shows here too).
        #[source]
        source: io::Error,
    },
    /// The sink refused bytes.
    #[error("writing the export")]
    Sink(#[source] crate::ports::BoxError),
}

impl PipelineError {
    /// The failure to record on the job.
    pub fn to_failure(&self) -> Failure {
        match self {
            PipelineError::InvalidLine {
                file,
                line,
                message,
            } => Failure {
                code: "INVALID_SOURCE_LINE".into(),
                message: format!("{file}, line {line}: {message}"),
                file: Some(file.clone()),
                line: Some(*line),
            },
            PipelineError::Read { file, .. } => Failure {
                code: "SOURCE_READ_ERROR".into(),
                message: crate::error::chain(self),
                file: Some(file.clone()),
                line: None,
            },
            PipelineError::Sink(_) => Failure::new("STORAGE_ERROR", crate::error::chain(self)),
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// The counts.
    pub progress: Progress,
    /// The first skipped lines.
    pub skipped: Vec<SkippedLine>,
}

struct Block {
    seq: u64,
    file: Arc<str>,
    first_line: u64,
    data: Vec<u8>,
    /// The last block of its file: counts a finished file.
    last_of_file: bool,
}

struct Encoded {
    seq: u64,
    bytes: Vec<u8>,
    progress: Progress,
    skipped: Vec<SkippedLine>,
    error: Option<PipelineError>,
}

/// Runs an export: reads every source in order, writes the encoded result to `sink`
/// in the same order, and reports cumulative progress after each block.
pub fn run<S>(
    sources: S,
    encoder: &dyn Encoder,
    filter: &TaskFilter,
    options: &Options,
    sink: &mut dyn FnMut(&[u8]) -> Result<(), crate::ports::BoxError>,
    on_progress: &mut dyn FnMut(&Progress),
) -> Result<Summary, PipelineError>
where
    S: Iterator<Item = Result<Source, PipelineError>> + Send,
{
    let threads = options.threads.max(1);
    let in_flight = 2 * threads + 2;
    let (token_tx, token_rx) = crossbeam_channel::bounded::<()>(in_flight);
    for _ in 0..in_flight {
        // The channel holds exactly `in_flight`, so this cannot block or fail.
        let _ = token_tx.send(());
    }
    let (block_tx, block_rx) = crossbeam_channel::bounded::<Block>(in_flight);
    let (done_tx, done_rx) = crossbeam_channel::unbounded::<Encoded>();

    let mut summary = Summary::default();
    let mut write = |bytes: &[u8], written: &mut bool| -> Result<(), PipelineError> {
        if !bytes.is_empty() {
            *written = true;
            sink(bytes).map_err(PipelineError::Sink)?;
        }
        Ok(())
    };
    let mut written = false;
    let mut scratch = Vec::new();
    let mut compressed = Vec::new();
    encoder.header(&mut scratch);
    compress(options.compression, &scratch, &mut compressed);
    write(
        compressed_or_plain(options.compression, &scratch, &compressed),
        &mut written,
    )?;

    let outcome = std::thread::scope(|scope| -> Result<(), PipelineError> {
        let reader = scope.spawn(move || read_blocks(sources, options, &token_rx, &block_tx));
        for _ in 0..threads {
            let block_rx = block_rx.clone();
            let done_tx = done_tx.clone();
            scope.spawn(move || {
                let mut plain = Vec::with_capacity(options.block_size + options.block_size / 2);
                for block in block_rx.iter() {
                    let encoded = encode_block(&block, encoder, filter, options, &mut plain);
                    if done_tx.send(encoded).is_err() {
                        break;
                    }
                }
            });
        }
        drop(block_rx);
        drop(done_tx);

        let mut pending: BTreeMap<u64, Encoded> = BTreeMap::new();
        let mut next = 0u64;
        for encoded in done_rx.iter() {
            pending.insert(encoded.seq, encoded);
            while let Some(block) = pending.remove(&next) {
                next += 1;
                if let Some(error) = block.error {
                    return Err(error);
                }
                add(&mut summary.progress, &block.progress);
                for skip in block.skipped {
                    if summary.skipped.len() < MAX_LISTED_SKIPS {
                        summary.skipped.push(skip);
                    }
                }
                write(&block.bytes, &mut written)?;
                on_progress(&summary.progress);
                let _ = token_tx.send(());
            }
        }
        drop(token_tx);
        match reader.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    });
    outcome?;

    scratch.clear();
    encoder.footer(&mut scratch);
    compressed.clear();
    // An empty compressed export is still a valid (empty) gzip or zstd file.
    if !scratch.is_empty() || (!written && options.compression != Compression::None) {
        compress(options.compression, &scratch, &mut compressed);
        write(
            compressed_or_plain(options.compression, &scratch, &compressed),
            &mut written,
        )?;
    }
    Ok(summary)
}

fn compress(compression: Compression, plain: &[u8], out: &mut Vec<u8>) {
    if compression != Compression::None {
        compression.compress_block(plain, out);
    }
}

fn compressed_or_plain<'a>(
    compression: Compression,
    plain: &'a [u8],
    compressed: &'a [u8],
) -> &'a [u8] {
    if compression == Compression::None {
        plain
    } else {
        compressed
    }
}

fn add(total: &mut Progress, block: &Progress) {
    total.files_read += block.files_read;
    total.tasks_read += block.tasks_read;
    total.tasks_exported += block.tasks_exported;
    total.tasks_filtered += block.tasks_filtered;
    total.lines_skipped += block.lines_skipped;
    total.bytes_read += block.bytes_read;
}

/// Cuts each source into blocks that end at a line end. Runs on its own thread.
fn read_blocks<S>(
    sources: S,
    options: &Options,
    tokens: &crossbeam_channel::Receiver<()>,
    blocks: &crossbeam_channel::Sender<Block>,
) -> Result<(), PipelineError>
where
    S: Iterator<Item = Result<Source, PipelineError>>,
{
    let mut seq = 0u64;
    let mut carry: Vec<u8> = Vec::new();
    for source in sources {
        let Source { name, mut reader } = source?;
        let file: Arc<str> = Arc::from(name.as_str());
        let mut line = 1u64;
        carry.clear();
        let mut eof = false;
        while !eof {
            if tokens.recv().is_err() {
                return Ok(()); // the caller stopped (an error downstream)
            }
            let mut data = Vec::with_capacity(options.block_size + 64 * 1024);
            data.append(&mut carry);
            // Fill to the block size, then on to the next line end. `read_to_end` on `take`
            // reads into spare capacity without zeroing it first, and stops only at the
            // limit or the end of the source.
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
                    .map_err(|source| PipelineError::Read {
                        file: name.clone(),
                        source,
                    })?;
                if n < want {
                    eof = true;
                    break;
                }
                if data.len() >= options.block_size {
                    if let Some(end) = memchr::memrchr(b'\n', &data[before..]) {
                        carry.extend_from_slice(&data[before + end + 1..]);
                        data.truncate(before + end + 1);
                        break;
                    }
                    if data.len() > options.max_line {
                        return Err(PipelineError::InvalidLine {
                            file: name.clone(),
                            line: line + memchr::memchr_iter(b'\n', &data).count() as u64,
                            message: format!("line longer than {} MiB", options.max_line >> 20),
                        });
                    }
                }
            }
            let lines = memchr::memchr_iter(b'\n', &data).count() as u64;
            let block = Block {
                seq,
                file: file.clone(),
                first_line: line,
                data,
                last_of_file: eof,
            };
            seq += 1;
            line += lines;
            if blocks.send(block).is_err() {
                return Ok(());
            }
        }
    }
    Ok(())
}

fn encode_block(
    block: &Block,
    encoder: &dyn Encoder,
    filter: &TaskFilter,
    options: &Options,
    plain: &mut Vec<u8>,
) -> Encoded {
    plain.clear();
    let mut progress = Progress {
        bytes_read: block.data.len() as u64,
        files_read: u64::from(block.last_of_file),
        ..Progress::default()
    };
    let mut skipped = Vec::new();
    let mut error = None;
    let mut start = 0usize;
    let mut line_no = block.first_line;
    let data = &block.data;
    // One UTF-8 check per block (SIMD in std) lets every line parse from `&str`, where
    // serde_json would otherwise check each borrowed string again. A block that fails
    // is parsed from bytes, so the error still names its line.
    let text = std::str::from_utf8(data).ok();
    while start < data.len() {
        let line_start = start;
        let mut line_end = memchr::memchr(b'\n', &data[start..]).map_or(data.len(), |i| start + i);
        start = line_end + 1;
        let this_line = line_no;
        line_no += 1;
        if line_end > line_start && data[line_end - 1] == b'\r' {
            line_end -= 1;
        }
        let line = &data[line_start..line_end];
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        progress.tasks_read += 1;
        // Line ends are ASCII, so they never split a UTF-8 sequence: the slice is valid too.
        let line_text = text.map(|t| &t[line_start..line_end]);
        let outcome = parse_and_encode(line, line_text, encoder, filter, plain);
        let message = match outcome {
            Ok(true) => {
                progress.tasks_exported += 1;
                continue;
            }
            Ok(false) => {
                progress.tasks_filtered += 1;
                continue;
            }
            Err(message) => message,
        };
        let file = block.file.to_string();
        match options.invalid_lines {
            InvalidLines::Skip => {
                progress.tasks_read -= 1;
                progress.lines_skipped += 1;
                if skipped.len() < MAX_LISTED_SKIPS {
                    skipped.push(SkippedLine {
                        file,
                        line: this_line,
                        message,
                    });
                }
            }
            InvalidLines::Fail => {
                error = Some(PipelineError::InvalidLine {
                    file,
                    line: this_line,
                    message,
                });
                break;
            }
        }
    }
    let bytes = if options.compression == Compression::None {
        // Hand the block over and start the next one at the same capacity, not from zero.
        let capacity = plain.capacity();
        std::mem::replace(plain, Vec::with_capacity(capacity))
    } else {
        let mut out = Vec::with_capacity(plain.len() / 3);
        options.compression.compress_block(plain, &mut out);
        out
    };
    Encoded {
        seq: block.seq,
        bytes,
        progress,
        skipped,
        error,
    }
}

/// Parses, checks, filters and encodes one line. `Ok(false)`: filtered out.
fn parse_and_encode(
    line: &[u8],
    text: Option<&str>,
    encoder: &dyn Encoder,
    filter: &TaskFilter,
    out: &mut Vec<u8>,
) -> Result<bool, String> {
    let parsed: Result<Task<'_>, _> = match text {
        Some(text) => serde_json::from_str(text),
        None => serde_json::from_slice(line),
    };
    let task = parsed.map_err(|e| {
        let message = e.to_string();
        // A line is one JSON document: "line 1" is noise, the column is not.
        message.replace(" at line 1 column ", " at column ")
    })?;
    for submission in &task.submissions {
        for annotation in &submission.annotations {
            annotation.check().map_err(|field| {
                format!(
                    "task {}: annotation {} of type {} has no valid `{field}`",
                    task.id,
                    annotation.id,
                    annotation.kind.as_str()
                )
            })?;
        }
    }
    if !filter.keep(&task) {
        return Ok(false);
    }
    let mark = out.len();
    encoder.encode(&task, out).map_err(|e| {
        out.truncate(mark);
        format!("task {}: {e}", task.id)
    })?;
    Ok(true)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use labelport_encoders::{FieldToggles, Format};
    use labelport_generate::{self as generate, Config};
    use labelport_model::{Mode, TaskState};

    fn project() -> labelport_model::Project {
        generate::project(&Config::new("p", Mode::Classification, 1, 1))
    }

    fn lines(config: &Config) -> Vec<u8> {
        let mut all = Vec::new();
        for i in 0..config.tasks {
            generate::write_task_line(config, i, &mut all);
        }
        all
    }

    fn source(name: &str, bytes: Vec<u8>) -> Result<Source, PipelineError> {
        Ok(Source {
            name: name.into(),
            reader: Box::new(std::io::Cursor::new(bytes)),
        })
    }

    fn export(
        sources: Vec<Result<Source, PipelineError>>,
        options: &Options,
        filter: &TaskFilter,
    ) -> (Result<Summary, PipelineError>, Vec<u8>) {
        let encoder =
            labelport_encoders::build(Format::Ndjson, FieldToggles::default(), &project()).unwrap();
        let mut out = Vec::new();
        let mut sink = |b: &[u8]| -> Result<(), crate::ports::BoxError> {
            out.extend_from_slice(b);
            Ok(())
        };
        let result = run(
            sources.into_iter(),
            encoder.as_ref(),
            filter,
            options,
            &mut sink,
            &mut |_| {},
        );
        (result, out)
    }

    fn ids(ndjson: &[u8]) -> Vec<String> {
        ndjson
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| {
                serde_json::from_slice::<serde_json::Value>(l).unwrap()["task"]["taskId"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }

    fn small_blocks(threads: usize) -> Options {
        // Tiny blocks force many blocks, so threads finish out of order and lines straddle blocks.
        Options {
            threads,
            block_size: 700,
            ..Options::default()
        }
    }

    #[test]
    fn output_keeps_source_order_across_threads_and_files() {
        let config = Config::new("p", Mode::Classification, 500, 3);
        let all = lines(&config);
        let cut = memchr::memchr_iter(b'\n', &all).nth(199).unwrap() + 1;
        let sources = vec![
            source("a.ndjson", all[..cut].to_vec()),
            source("b.ndjson", all[cut..].to_vec()),
        ];
        let (result, out) = export(sources, &small_blocks(4), &TaskFilter::default());
        let summary = result.unwrap();
        let expected: Vec<String> = (0..500)
            .filter(|i| !generate::task(&config, *i).preview)
            .map(generate::task_id)
            .collect();
        assert_eq!(ids(&out), expected);
        assert_eq!(summary.progress.tasks_read, 500);
        assert_eq!(summary.progress.files_read, 2);
        assert_eq!(summary.progress.bytes_read, all.len() as u64);
        assert_eq!(
            summary.progress.tasks_exported + summary.progress.tasks_filtered,
            500
        );
    }

    #[test]
    fn a_bad_line_is_reported_with_its_file_and_line_even_across_blocks() {
        let config = Config::new("p", Mode::Classification, 300, 3);
        let all = String::from_utf8(lines(&config)).unwrap();
        let mut text: Vec<&str> = all.lines().collect();
        text[236] = r#"{"id":"t-x","asset":{"url":"u"},"state":"done"}"#;
        let body = text.join("\r\n"); // CRLF, and no newline after the last line
        let (result, _) = export(
            vec![source("tasks/part-7.ndjson", body.into_bytes())],
            &small_blocks(3),
            &TaskFilter::default(),
        );
        match result {
            Err(PipelineError::InvalidLine {
                file,
                line,
                message,
            }) => {
                assert_eq!((file.as_str(), line), ("tasks/part-7.ndjson", 237));
                assert!(message.contains("unknown variant `done`"), "{message}");
                assert!(message.contains("at column"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn skipping_counts_and_lists_bad_lines_and_keeps_the_rest() {
        let config = Config::new("p", Mode::Classification, 50, 3);
        let mut body = lines(&config);
        body.extend_from_slice(b"\n   \nnot json\n");
        body.extend_from_slice(br#"{"id":"t-box","asset":{"url":"u"},"state":"annotated","stage":"Complete","createdAt":"x","submissions":[{"id":"s","stage":"Label","origin":"human","completedAt":"x","annotations":[{"id":"a1","type":"box","label":"car"}]}]}"#);
        let options = Options {
            invalid_lines: InvalidLines::Skip,
            ..small_blocks(2)
        };
        let (result, out) = export(
            vec![source("f.ndjson", body)],
            &options,
            &TaskFilter::default(),
        );
        let summary = result.unwrap();
        assert_eq!(summary.progress.lines_skipped, 2);
        assert_eq!(summary.progress.tasks_read, 50, "blank lines are not tasks");
        assert_eq!(summary.skipped[0].line, 53);
        assert_eq!(summary.skipped[1].line, 54);
        assert!(
            summary.skipped[1]
                .message
                .contains("annotation a1 of type box has no valid `bbox`"),
            "{:?}",
            summary.skipped[1]
        );
        assert_eq!(ids(&out).len() as u64, summary.progress.tasks_exported);
    }

    #[test]
    fn invalid_utf8_is_reported_on_its_line() {
        let config = Config::new("p", Mode::Classification, 20, 3);
        let mut body = lines(&config);
        body.extend_from_slice(b"{\"id\":\"t\xff\"}\n");
        let (result, _) = export(
            vec![source("f.ndjson", body)],
            &small_blocks(1),
            &TaskFilter::default(),
        );
        match result {
            Err(PipelineError::InvalidLine { line, message, .. }) => {
                assert_eq!(line, 21);
                assert!(message.contains("invalid unicode code point"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn filters_apply() {
        let config = Config::new("p", Mode::Classification, 400, 9);
        let filter = TaskFilter::new(Some(&[TaskState::Validated]), Some(vec!["Complete".into()]));
        let (result, out) = export(
            vec![source("f.ndjson", lines(&config))],
            &small_blocks(2),
            &filter,
        );
        let expected: Vec<String> = (0..400)
            .filter(|i| filter.keep(&generate::task(&config, *i)))
            .map(generate::task_id)
            .collect();
        assert!(!expected.is_empty());
        assert_eq!(ids(&out), expected);
        assert_eq!(
            result.unwrap().progress.tasks_exported,
            expected.len() as u64
        );
    }

    #[test]
    fn a_line_longer_than_the_limit_is_refused_not_buffered() {
        let mut body = b"{\"id\":\"".to_vec();
        body.extend(std::iter::repeat_n(b'x', 5000));
        let options = Options {
            max_line: 2000,
            ..small_blocks(1)
        };
        let (result, _) = export(
            vec![source("big.ndjson", body)],
            &options,
            &TaskFilter::default(),
        );
        assert!(
            matches!(result, Err(PipelineError::InvalidLine { line: 1, .. })),
            "{result:?}"
        );
    }

    #[test]
    fn compressed_output_is_one_valid_stream_even_when_empty() {
        let config = Config::new("p", Mode::Classification, 300, 5);
        let options = Options {
            compression: Compression::Gzip,
            ..small_blocks(2)
        };
        let (plain_result, plain) = export(
            vec![source("f.ndjson", lines(&config))],
            &small_blocks(2),
            &TaskFilter::default(),
        );
        plain_result.unwrap();
        let (result, gz) = export(
            vec![source("f.ndjson", lines(&config))],
            &options,
            &TaskFilter::default(),
        );
        result.unwrap();
        let mut decoded = Vec::new();
        flate2::read::MultiGzDecoder::new(&gz[..])
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(decoded, plain);

        let (result, gz) = export(vec![], &options, &TaskFilter::default());
        result.unwrap();
        assert!(!gz.is_empty(), "an empty export is still a gzip file");
        let mut decoded = Vec::new();
        flate2::read::MultiGzDecoder::new(&gz[..])
            .read_to_end(&mut decoded)
            .unwrap();
        assert!(decoded.is_empty());
    }
}
