//! The streaming export pipeline: source records in, the export's files out, in
//! source order, on several cores, in bounded memory.
//!
//! ```text
//!  reader thread ──blocks──▶ N encoder threads ──finished blocks──▶ caller's thread
//!  (cuts ~1 MiB blocks         (decode, filter, encode into       (puts blocks back in
//!   at record ends, counts      an Out, then compress the block   order; the Assembler
//!   lines)                      or deflate its ZIP entries)        writes them to Files)
//! ```
//!
//! A fixed number of tokens circulates between the reader and the caller's thread: the
//! reader takes one per block and the caller returns it once the block is written, so
//! no more than `2 × threads + 2` blocks are ever in memory, whatever the export's size.

mod encode;
mod read;

use encode::encode_block;
use read::{read_blocks, Block};

use crate::assembly::{Assembler, Files, FinishedBlock, OutputError, OutputLimits, Written};
use crate::decode::Decoder;
use crate::filter::TaskFilter;
use crate::progress::{Progress, SkippedLine, MAX_LISTED_SKIPS};
use labelport_encoders::json_text::write_str;
use labelport_encoders::{Compression, Encoder, Out};
use labelport_output::Deflater;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// What a malformed source line does to the export.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum InvalidLines {
    /// The export fails, naming the file and line.
    #[default]
    Fail,
    /// The line is skipped and counted; the first few are listed in the result.
    Skip,
}

/// How the pipeline runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Encoder threads (at least 1).
    pub threads: usize,
    /// Target size of a block of source records.
    pub block_size: usize,
    /// A longer record is refused rather than buffered without end.
    pub max_line: usize,
    /// What a malformed record does.
    pub invalid_lines: InvalidLines,
    /// Output compression.
    pub compression: Compression,
    /// Bounds of the temporary files.
    pub limits: OutputLimits,
    /// Raised to stop the export (a manager cancelled it): checked on every source read.
    pub cancel: Arc<AtomicBool>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            block_size: 1 << 20,
            max_line: 64 << 20,
            invalid_lines: InvalidLines::Fail,
            compression: Compression::None,
            limits: OutputLimits::default(),
            cancel: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// Where and under which names the export is written.
pub struct Output<'a> {
    /// The files.
    pub files: &'a mut dyn Files,
    /// The export's base name: `{base}.csv`, `{base}-00001.ndjson`, `{base}.zip`.
    pub base: &'a str,
    /// The time ZIP entries are dated with (seconds since the Unix epoch).
    pub modified_unix_secs: u64,
}

/// One source file to read.
pub struct Source {
    /// Its name, as errors should show it (`projects/p/tasks/part-00000.ndjson.gz`).
    pub name: String,
    /// Its decompressed bytes.
    pub reader: Box<dyn Read + Send>,
    /// How its records are cut and decoded (shared by the blocks of the source).
    pub decoder: Arc<dyn Decoder>,
}

/// Why the pipeline stopped.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A record is not a valid task, or the format cannot write it.
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
    /// The destination refused bytes.
    #[error("writing the export")]
    Sink(#[source] crate::store::BoxError),
    /// The output hit one of its bounds or rules.
    #[error("{0}")]
    Output(String),
    /// A source's bytes do not decompress (a corrupt or truncated gzip or zstd file).
    #[error("{file}, near line {line}: {message}")]
    Corrupt {
        /// The source file.
        file: String,
        /// The line reached when it broke.
        line: u64,
        /// Why.
        message: String,
    },
    /// A bug: an encoder or the reader panicked. The export stops rather than hangs.
    #[error("{0}")]
    Internal(String),
    /// The export was cancelled while it ran.
    #[error("the export was cancelled")]
    Cancelled,
}

impl From<OutputError> for PipelineError {
    fn from(e: OutputError) -> Self {
        match e {
            OutputError::Sink(e) => PipelineError::Sink(e),
            OutputError::Refused(message) => PipelineError::Output(message),
        }
    }
}

impl PipelineError {
    /// Whether another attempt may succeed (storage trouble), or not (the data).
    pub fn is_retryable(&self) -> bool {
        matches!(self, PipelineError::Read { .. } | PipelineError::Sink(_))
    }
}

/// A read error of the storage underneath a source, as opposed to bytes that do not
/// decompress: the first is worth another attempt, the second is the data's fault.
#[derive(Debug, thiserror::Error)]
#[error("reading from storage: {0}")]
pub struct StorageReadError(#[source] pub std::io::Error);

/// Whether an error reading a source came from the storage (see [`StorageReadError`]).
pub fn is_storage_error(e: &std::io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.is::<StorageReadError>())
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// The counts.
    pub progress: Progress,
    /// The first skipped lines.
    pub skipped: Vec<SkippedLine>,
    /// The files written, in order, the errors report last.
    pub written: Written,
}

struct Encoded {
    seq: u64,
    finished: FinishedBlock,
    report: Vec<u8>,
    progress: Progress,
    skipped: Vec<SkippedLine>,
    error: Option<PipelineError>,
}

/// Runs an export: reads every source in order, writes the encoded result to the
/// output's files in the same order, and reports cumulative progress after each block.
pub fn run<S>(
    sources: S,
    encoder: &dyn Encoder,
    filter: &TaskFilter,
    options: &Options,
    output: Output<'_>,
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
    let mut assembler = Assembler::start(
        output.files,
        encoder,
        options.compression,
        output.base,
        options.limits.clone(),
        output.modified_unix_secs,
    )?;
    let outcome = std::thread::scope(|scope| -> Result<(), PipelineError> {
        let reader = scope.spawn(move || read_blocks(sources, options, &token_rx, &block_tx));
        for _ in 0..threads {
            let block_rx = block_rx.clone();
            let done_tx = done_tx.clone();
            scope.spawn(move || {
                let capacity = options.block_size + options.block_size / 2;
                let mut deflater = Deflater::new();
                for block in block_rx.iter() {
                    // A panic must end the export, not leave a hole in the block order
                    // that every other thread would wait on until the function times out.
                    let encoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        encode_block(&block, encoder, filter, options, capacity, &mut deflater)
                    }))
                    .unwrap_or_else(|panic| Encoded::panicked(block.seq, panic.as_ref()));
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
        // Annotations omitted by design, per reason (a format has one or two reasons).
        let mut omitted: Vec<(&'static str, u64)> = Vec::new();
        for encoded in done_rx.iter() {
            pending.insert(encoded.seq, encoded);
            while let Some(block) = pending.remove(&next) {
                next += 1;
                if let Some(error) = block.error {
                    return Err(error);
                }
                add(&mut summary.progress, &block.progress);
                for &reason in block.finished.out.omitted() {
                    summary.progress.annotations_omitted += 1;
                    match omitted.iter_mut().find(|(r, _)| *r == reason) {
                        Some((_, count)) => *count += 1,
                        None => omitted.push((reason, 1)),
                    }
                }
                for skip in block.skipped {
                    if summary.skipped.len() < MAX_LISTED_SKIPS {
                        summary.skipped.push(skip);
                    }
                }
                assembler.block(&block.finished, &block.report)?;
                on_progress(&summary.progress);
                let _ = token_tx.send(());
            }
        }
        drop(token_tx);
        // One line per reason for what the format omits by design.
        let mut lines = Vec::new();
        for (reason, count) in omitted {
            lines.extend_from_slice(b"{\"reason\":");
            write_str(&mut lines, reason);
            lines.extend_from_slice(b",\"annotations\":");
            lines.extend_from_slice(count.to_string().as_bytes());
            lines.extend_from_slice(b"}\n");
        }
        assembler.report(&lines)?;
        match reader.join() {
            Ok(result) => result,
            Err(panic) => Err(PipelineError::Internal(format!(
                "the source reader stopped on a bug ({}); please report it",
                panic_text(panic.as_ref())
            ))),
        }
    });
    outcome?;
    summary.written = assembler.finish()?;
    summary.progress.bytes_spooled = summary.written.bytes_spooled;
    Ok(summary)
}

impl Encoded {
    /// The block whose encoding panicked: it fails the export.
    fn panicked(seq: u64, panic: &(dyn std::any::Any + Send)) -> Self {
        Encoded {
            seq,
            finished: FinishedBlock {
                out: Out::new(b""),
                packed: Vec::new(),
                entries: Vec::new(),
                held: Vec::new(),
            },
            report: Vec::new(),
            progress: Progress::default(),
            skipped: Vec::new(),
            error: Some(PipelineError::Internal(format!(
                "the encoder stopped on a bug ({}); nothing was written. Please report it",
                panic_text(panic)
            ))),
        }
    }
}

/// A panic's message, when it has one.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message")
}

fn add(total: &mut Progress, block: &Progress) {
    total.files_read += block.files_read;
    total.tasks_read += block.tasks_read;
    total.tasks_exported += block.tasks_exported;
    total.tasks_filtered += block.tasks_filtered;
    total.lines_skipped += block.lines_skipped;
    total.annotations_refused += block.annotations_refused;
    total.tasks_left_out += block.tasks_left_out;
    total.bytes_read += block.bytes_read;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::assembly::MemoryFiles;
    use crate::decode::NativeDecoder;
    use labelport_encoders::Record;
    use labelport_encoders::{Container, FieldToggles, Format, FormatOptions, Settings, MAX_PARTS};
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
            decoder: Arc::new(NativeDecoder),
        })
    }

    fn encoder(format: &str, options: serde_json::Value) -> Box<dyn Encoder> {
        let options: FormatOptions = serde_json::from_value(options).unwrap();
        Format::by_name(format)
            .unwrap()
            .build(&Settings {
                project: &project(),
                fields: FieldToggles::default(),
                compression: Compression::None,
                options: &options,
            })
            .unwrap()
    }

    /// Runs `encoder` over `sources` into memory; returns every file written.
    fn export_as(
        encoder: &dyn Encoder,
        sources: Vec<Result<Source, PipelineError>>,
        options: &Options,
        filter: &TaskFilter,
    ) -> (Result<Summary, PipelineError>, MemoryFiles) {
        let mut files = MemoryFiles::default();
        let output = Output {
            files: &mut files,
            base: "p",
            modified_unix_secs: 0,
        };
        let result = run(
            sources.into_iter(),
            encoder,
            filter,
            options,
            output,
            &mut |_| {},
        );
        (result, files)
    }

    /// Runs NDJSON over `sources`; returns the export file's bytes.
    fn export(
        sources: Vec<Result<Source, PipelineError>>,
        options: &Options,
        filter: &TaskFilter,
    ) -> (Result<Summary, PipelineError>, Vec<u8>) {
        let encoder = encoder("NDJSON", serde_json::json!({}));
        let (result, files) = export_as(encoder.as_ref(), sources, options, filter);
        let main = files
            .files
            .into_iter()
            .next()
            .map(|f| f.2)
            .unwrap_or_default();
        (result, main)
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

    fn generated(mode: Mode, tasks: u64) -> (Config, Vec<u8>) {
        let config = Config::new("p", mode, tasks, 11);
        let data = lines(&config);
        (config, data)
    }

    #[test]
    fn json_is_one_array_of_the_ndjson_objects_across_blocks_and_threads() {
        let (_, data) = generated(Mode::Classification, 400);
        let (result, ndjson) = export(
            vec![source("f.ndjson", data.clone())],
            &small_blocks(3),
            &TaskFilter::default(),
        );
        result.unwrap();
        let json = encoder("JSON", serde_json::json!({}));
        let (result, files) = export_as(
            json.as_ref(),
            vec![source("f.ndjson", data)],
            &small_blocks(3),
            &TaskFilter::default(),
        );
        result.unwrap();
        assert_eq!(files.files.len(), 1);
        let (name, content_type, bytes) = &files.files[0];
        assert_eq!(
            (name.as_str(), content_type.as_str()),
            ("p.json", "application/json")
        );
        let array: Vec<serde_json::Value> = serde_json::from_slice(bytes).unwrap();
        let lines: Vec<serde_json::Value> = ndjson
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert!(lines.len() > 100);
        assert_eq!(array, lines);
    }

    #[test]
    fn split_parts_rejoin_to_the_ndjson_export_byte_for_byte() {
        let (_, data) = generated(Mode::Entity, 4_000);
        // Blocks of a few tasks: parts of 37 tasks and of 1 MB both cut blocks.
        let blocks = Options {
            block_size: 16 << 10,
            ..small_blocks(2)
        };
        let (result, ndjson) = export(
            vec![source("f.ndjson", data.clone())],
            &blocks,
            &TaskFilter::default(),
        );
        assert!(ndjson.len() > 3_500_000, "{} bytes", ndjson.len());
        let exported = result.unwrap().progress.tasks_exported;
        for (limits, compression) in [
            (
                serde_json::json!({"maxFileBytes": 1_000_000}),
                Compression::None,
            ),
            (
                serde_json::json!({"maxTasksPerFile": 37}),
                Compression::None,
            ),
            (
                serde_json::json!({"maxFileBytes": 1_000_000, "maxTasksPerFile": 950}),
                Compression::Gzip,
            ),
        ] {
            let split = encoder("NDJSON_SPLIT", serde_json::json!({ "split": limits }));
            let options = Options {
                compression,
                ..blocks.clone()
            };
            let (result, files) = export_as(
                split.as_ref(),
                vec![source("f.ndjson", data.clone())],
                &options,
                &TaskFilter::default(),
            );
            result.unwrap();
            assert!(
                files.files.len() > 3,
                "{limits}: {} parts",
                files.files.len()
            );
            let mut joined = Vec::new();
            for (i, (name, content_type, bytes)) in files.files.iter().enumerate() {
                let plain = if compression == Compression::Gzip {
                    assert_eq!(name, &format!("p-{:05}.ndjson.gz", i + 1));
                    assert_eq!(content_type, "application/gzip");
                    let mut plain = Vec::new();
                    flate2::read::MultiGzDecoder::new(&bytes[..])
                        .read_to_end(&mut plain)
                        .unwrap();
                    plain
                } else {
                    assert_eq!(name, &format!("p-{:05}.ndjson", i + 1));
                    bytes.clone()
                };
                let records = memchr::memchr_iter(b'\n', &plain).count() as u64;
                assert!(records >= 1 && plain.ends_with(b"\n"), "part {name}");
                if let Some(max) = limits["maxFileBytes"].as_u64() {
                    assert!(
                        plain.len() as u64 <= max,
                        "part {name}: {} bytes",
                        plain.len()
                    );
                }
                if let Some(max) = limits["maxTasksPerFile"].as_u64() {
                    assert!(records <= max, "part {name}: {records} tasks");
                }
                joined.extend_from_slice(&plain);
            }
            assert_eq!(joined, ndjson, "{limits}");
            assert_eq!(memchr::memchr_iter(b'\n', &joined).count() as u64, exported);
        }
    }

    #[test]
    fn a_split_export_fails_rather_than_start_part_1001() {
        let config = Config::new("p", Mode::Classification, 1_200, 3);
        let kept: Vec<u64> = (0..config.tasks)
            .filter(|i| !generate::task(&config, *i).preview)
            .collect();
        let first = |tasks: u64| {
            let mut body = Vec::new();
            for &i in &kept[..tasks as usize] {
                generate::write_task_line(&config, i, &mut body);
            }
            vec![source("f.ndjson", body)]
        };
        let one_task_each = encoder(
            "NDJSON_SPLIT",
            serde_json::json!({"split": {"maxTasksPerFile": 1}}),
        );
        let options = Options {
            block_size: 16 << 10,
            ..small_blocks(2)
        };
        let (result, files) = export_as(
            one_task_each.as_ref(),
            first(MAX_PARTS),
            &options,
            &TaskFilter::default(),
        );
        assert_eq!(result.unwrap().progress.tasks_exported, MAX_PARTS);
        assert_eq!(files.files.len() as u64, MAX_PARTS);
        assert_eq!(files.files.last().unwrap().0, "p-01000.ndjson");

        let (result, files) = export_as(
            one_task_each.as_ref(),
            first(MAX_PARTS + 1),
            &options,
            &TaskFilter::default(),
        );
        let error = result.unwrap_err();
        assert!(
            !error.is_retryable(),
            "another attempt would fail the same way"
        );
        assert!(
            matches!(&error, PipelineError::Output(message) if message ==
                "NDJSON_SPLIT would write more than 1000 parts; raise split.maxTasksPerFile \
                 (now 1) or split.maxFileBytes (now 100000000), or export fewer tasks"),
            "{error:?}"
        );
        assert_eq!(
            files.files.len() as u64,
            MAX_PARTS,
            "part 1001 was never started"
        );
    }

    #[test]
    fn an_xlsx_export_past_its_temporary_space_fails_and_says_why() {
        let (config, data) = generated(Mode::Row, 8_000);
        let xlsx = Format::by_name("XLSX")
            .unwrap()
            .build(&Settings {
                project: &generate::project(&config),
                fields: FieldToggles::default(),
                compression: Compression::None,
                options: &FormatOptions::default(),
            })
            .unwrap();
        let blocks = Options {
            block_size: 16 << 10,
            ..small_blocks(2)
        };
        let (result, _) = export_as(
            xlsx.as_ref(),
            vec![source("f.ndjson", data.clone())],
            &blocks,
            &TaskFilter::default(),
        );
        let sheets = result.unwrap().written.bytes_spooled;
        assert!(
            sheets > 2 << 20,
            "the sheets' temporary files are counted: {sheets}"
        );

        let bounded = Options {
            limits: OutputLimits {
                workbook_limit: 1 << 20,
                ..OutputLimits::default()
            },
            ..blocks
        };
        let (result, _) = export_as(
            xlsx.as_ref(),
            vec![source("f.ndjson", data)],
            &bounded,
            &TaskFilter::default(),
        );
        let error = result.unwrap_err();
        assert!(
            !error.is_retryable(),
            "another attempt would fail the same way"
        );
        assert!(
            matches!(&error, PipelineError::Output(message) if message ==
                "the XLSX workbook needs more than 1 MiB of temporary space for its sheets; \
                 export fewer tasks, or choose TSV or CSV, which need none"),
            "{error:?}"
        );
    }

    #[test]
    fn an_export_with_nothing_to_split_is_one_empty_part() {
        let split = encoder("NDJSON_SPLIT", serde_json::json!({}));
        let (result, files) = export_as(
            split.as_ref(),
            vec![],
            &small_blocks(1),
            &TaskFilter::default(),
        );
        result.unwrap();
        assert_eq!(files.files.len(), 1);
        assert_eq!(files.files[0].0, "p-00001.ndjson");
        assert!(files.files[0].2.is_empty());
    }

    #[test]
    fn the_errors_report_lists_every_skipped_line_and_refused_annotation() {
        let (config, data) = generated(Mode::Entity, 200);
        let mut body = data;
        body.extend_from_slice(
            b"{\"id\":\"t-bad\",\"asset\":{\"url\":\"u\"},\"state\":\"done\"}\n",
        );
        let total_lines = 201;
        let json_simple = Format::by_name("JSON_SIMPLE")
            .unwrap()
            .build(&Settings {
                project: &generate::project(&config),
                fields: FieldToggles::default(),
                compression: Compression::None,
                options: &FormatOptions::default(),
            })
            .unwrap();
        let options = Options {
            invalid_lines: InvalidLines::Skip,
            ..small_blocks(2)
        };
        let (result, files) = export_as(
            json_simple.as_ref(),
            vec![source("tasks/f.ndjson", body)],
            &options,
            &TaskFilter::default(),
        );
        let summary = result.unwrap();
        let names: Vec<&str> = files.files.iter().map(|f| f.0.as_str()).collect();
        assert_eq!(names, ["p.zip", "errors.ndjson"]);
        assert_eq!(
            summary.written.files[1].role,
            crate::assembly::FileRole::Errors
        );
        let report: Vec<serde_json::Value> = files.files[1]
            .2
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        let p = &summary.progress;
        assert_eq!(p.lines_skipped, 1);
        assert!(p.annotations_refused > 0, "entity tasks have relations");
        assert_eq!(report.len() as u64, p.lines_skipped + p.annotations_refused);
        let skipped = &report[report.len() - 1];
        assert_eq!(skipped["file"], "tasks/f.ndjson");
        assert_eq!(skipped["line"], total_lines);
        assert!(skipped["column"].as_u64().unwrap() > 0);
        assert!(skipped["reason"]
            .as_str()
            .unwrap()
            .contains("unknown variant `done`"));
        // Each refusal names the task, its line, and a relation of that task's source.
        for refusal in &report[..report.len() - 1] {
            let line = refusal["line"].as_u64().unwrap();
            let task = generate::task(&config, line - 1);
            assert_eq!(refusal["taskId"], task.id.as_ref());
            let id = refusal["annotationId"].as_str().unwrap();
            assert!(
                task.submissions
                    .iter()
                    .any(|s| s.relations.iter().any(|r| r.id == id)),
                "{refusal}"
            );
        }
        assert!(
            summary.written.bytes_spooled > 0,
            "the ZIP directory and the report were spooled"
        );
        let zip = &files.files[0].2;
        assert_eq!(&zip[..4], b"PK\x03\x04");
    }

    /// A whole-document format in the shape of COCO: `{"items":[..],"notes":[..]}`,
    /// each task an item and each of its annotations a note held back to the end.
    struct Document;

    impl Encoder for Document {
        fn container(&self) -> Container {
            Container::File {
                extension: "json",
                content_type: "application/json",
            }
        }
        fn header(&self, out: &mut Vec<u8>) {
            out.extend_from_slice(b"{\"items\":[");
        }
        fn separator(&self) -> &'static [u8] {
            b","
        }
        fn encode(
            &self,
            record: &Record<'_, '_>,
            out: &mut Out,
        ) -> Result<(), labelport_encoders::EncodeError> {
            let task = record.task;
            let item = out.record();
            item.extend_from_slice(b"{\"id\":");
            write_str(item, &task.id);
            item.push(b'}');
            for a in task.annotations() {
                let note = out.held(0);
                note.extend_from_slice(b"{\"task\":");
                write_str(note, &task.id);
                note.extend_from_slice(b",\"annotation\":");
                write_str(note, &a.id);
                note.push(b'}');
            }
            Ok(())
        }
        fn held_sections(&self) -> usize {
            1
        }
        fn section_opening(&self, _section: usize, out: &mut Vec<u8>) {
            out.extend_from_slice(b"],\"notes\":[");
        }
        fn footer(&self, out: &mut Vec<u8>) {
            out.extend_from_slice(b"]}");
        }
    }

    #[test]
    fn a_held_back_section_is_spooled_and_written_after_the_records() {
        let (config, data) = generated(Mode::Element, 300);
        let kept: Vec<_> = (0..300)
            .map(|i| generate::task(&config, i))
            .filter(|t| !t.preview)
            .collect();
        let items: Vec<serde_json::Value> = kept
            .iter()
            .map(|t| serde_json::json!({"id": t.id}))
            .collect();
        let notes: Vec<serde_json::Value> = kept
            .iter()
            .flat_map(|t| {
                t.annotations()
                    .iter()
                    .map(|a| serde_json::json!({"task": t.id, "annotation": a.id}))
                    .collect::<Vec<_>>()
            })
            .collect();
        assert!(notes.len() > items.len());
        for compression in [Compression::None, Compression::Gzip] {
            let options = Options {
                compression,
                ..small_blocks(3)
            };
            let (result, files) = export_as(
                &Document,
                vec![source("f.ndjson", data.clone())],
                &options,
                &TaskFilter::default(),
            );
            let summary = result.unwrap();
            let mut bytes = files.files[0].2.clone();
            if compression == Compression::Gzip {
                let mut plain = Vec::new();
                flate2::read::MultiGzDecoder::new(&bytes[..])
                    .read_to_end(&mut plain)
                    .unwrap();
                bytes = plain;
            }
            let document: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(document["items"], serde_json::Value::from(items.clone()));
            assert_eq!(document["notes"], serde_json::Value::from(notes.clone()));
            assert!(summary.progress.bytes_spooled > 0);
        }
        // With nothing to export, the document is still whole.
        let (result, files) =
            export_as(&Document, vec![], &small_blocks(1), &TaskFilter::default());
        result.unwrap();
        assert_eq!(files.files[0].2, br#"{"items":[],"notes":[]}"#);
    }

    /// The generated tasks as one pretty-printed JSON array, elements spread over lines.
    fn as_array(data: &[u8]) -> Vec<u8> {
        let tasks: Vec<serde_json::Value> = data
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        serde_json::to_vec_pretty(&tasks).unwrap()
    }

    fn array_source(name: &str, bytes: Vec<u8>) -> Result<Source, PipelineError> {
        Ok(Source {
            name: name.into(),
            reader: Box::new(std::io::Cursor::new(bytes)),
            decoder: Arc::new(crate::decode::NativeArrayDecoder),
        })
    }

    #[test]
    fn a_json_array_source_exports_like_its_lines_whatever_the_block_size() {
        let (_, data) = generated(Mode::Entity, 250);
        let (result, from_lines) = export(
            vec![source("f.ndjson", data.clone())],
            &small_blocks(2),
            &TaskFilter::default(),
        );
        let lines_summary = result.unwrap();
        for block_size in [300, 4096, 1 << 20] {
            let options = Options {
                block_size,
                ..small_blocks(3)
            };
            let (result, from_array) = export(
                vec![array_source("all.json", as_array(&data))],
                &options,
                &TaskFilter::default(),
            );
            let summary = result.unwrap();
            assert_eq!(from_array, from_lines, "block size {block_size}");
            assert_eq!(
                summary.progress.tasks_read,
                lines_summary.progress.tasks_read
            );
        }
    }

    #[test]
    fn a_bad_array_element_is_reported_on_the_line_it_starts() {
        let (_, data) = generated(Mode::Classification, 30);
        let mut array = String::from_utf8(as_array(&data)).unwrap();
        // Break the 11th element: its state becomes unknown.
        let at = array.match_indices("\n  {").nth(10).unwrap().0;
        let line = array[..at].matches('\n').count() as u64 + 2;
        let state = at + array[at..].find("\"state\": \"").unwrap() + 10;
        array.replace_range(state..state + 1, "X");
        let (result, _) = export(
            vec![array_source("all.json", array.into_bytes())],
            &small_blocks(2),
            &TaskFilter::default(),
        );
        match result {
            Err(PipelineError::InvalidLine {
                file,
                line: got,
                message,
            }) => {
                assert_eq!((file.as_str(), got), ("all.json", line), "{message}");
                assert!(message.contains("unknown variant"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        // A file that is not one array fails with where it stops being one.
        let (result, _) = export(
            vec![array_source("all.json", b"[{}]\n{}".to_vec())],
            &small_blocks(1),
            &TaskFilter::default(),
        );
        assert!(
            matches!(&result, Err(PipelineError::InvalidLine { line: 2, message, .. }) if message.contains("after the end of the array")),
            "{result:?}"
        );
    }

    /// An encoder with a bug: it panics on one task.
    struct Panicking;

    impl Encoder for Panicking {
        fn container(&self) -> Container {
            Container::File {
                extension: "txt",
                content_type: "text/plain",
            }
        }
        #[allow(clippy::panic)]
        fn encode(
            &self,
            record: &Record<'_, '_>,
            out: &mut Out,
        ) -> Result<(), labelport_encoders::EncodeError> {
            if record.ordinal == 123 {
                panic!("index out of bounds in a format");
            }
            out.record().push(b'.');
            Ok(())
        }
    }

    #[test]
    fn an_encoder_that_panics_fails_the_export_instead_of_hanging_it() {
        let (_, data) = generated(Mode::Classification, 400);
        let (sender, receiver) = std::sync::mpsc::channel();
        // On its own thread, so a hang shows as a failed receive rather than a stuck test run.
        std::thread::spawn(move || {
            let (result, _) = export_as(
                &Panicking,
                vec![source("f.ndjson", data)],
                &small_blocks(2),
                &TaskFilter::default(),
            );
            let _ = sender.send(result.map(|_| ()));
        });
        let error = receiver
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the export ended")
            .unwrap_err();
        assert!(
            matches!(&error, PipelineError::Internal(text) if text.contains("index out of bounds in a format")),
            "{error:?}"
        );
    }

    #[test]
    fn a_corrupt_compressed_source_is_a_data_error_with_its_place() {
        let (_, data) = generated(Mode::Classification, 300);
        let mut gz = Vec::new();
        Compression::Gzip.compress_block(&data, &mut gz);
        let truncated = gz[..gz.len() * 2 / 3].to_vec();
        for (bytes, what) in [
            (truncated, "truncated"),
            (b"plain text, not gzip\n".to_vec(), "not gzip"),
        ] {
            let reader = crate::source::decompress(
                "p/tasks/f.ndjson.gz",
                Box::new(std::io::Cursor::new(bytes)),
            )
            .unwrap();
            let sources = vec![Ok(Source {
                name: "p/tasks/f.ndjson.gz".into(),
                reader,
                decoder: Arc::new(NativeDecoder),
            })];
            let (result, _) = export(sources, &small_blocks(2), &TaskFilter::default());
            let error = result.unwrap_err();
            assert!(!error.is_retryable(), "{what}: {error}");
            assert!(
                matches!(&error, PipelineError::Corrupt { file, .. } if file == "p/tasks/f.ndjson.gz"),
                "{what}: {error:?}"
            );
        }
    }
}
