//! An encoder thread's work on one block: decode, filter and encode its records into an
//! `Out`, list what was skipped or refused for the errors report, then finish the block
//! (compress it, or deflate its ZIP entries).

use super::read::{newlines, Block};
use super::{Encoded, InvalidLines, Options, PipelineError};
use crate::assembly::finish_block;
use crate::decode::{DecodeError, Decoder, Framing};
use crate::filter::TaskFilter;
use crate::progress::{Progress, SkippedLine, MAX_LISTED_SKIPS};
use labelport_encoders::json_text::{write_int, write_str};
use labelport_encoders::{Encoder, Out, Record};
use labelport_output::Deflater;
use std::ops::Range;

/// One block's encoding: the output, the report lines and the counts.
struct BlockEncoder<'a> {
    block: &'a Block,
    encoder: &'a dyn Encoder,
    filter: &'a TaskFilter,
    options: &'a Options,
    /// The block as UTF-8, when it is: checked once per block (SIMD in std), so every
    /// record parses from `&str` where serde_json would otherwise check each borrowed
    /// string again. A block that fails is parsed from bytes, so the error still names
    /// its line.
    text: Option<&'a str>,
    out: Out,
    report: Vec<u8>,
    progress: Progress,
    skipped: Vec<SkippedLine>,
}

impl BlockEncoder<'_> {
    /// Handles the record at `range` of the block. `Err`: the export stops.
    fn record(
        &mut self,
        range: Range<usize>,
        line: u64,
        ordinal: u64,
    ) -> Result<(), PipelineError> {
        let bytes = &self.block.data[range.clone()];
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        self.progress.tasks_read += 1;
        // Records end at ASCII bytes, so they never split a UTF-8 sequence.
        let text = self.text.map(|t| &t[range]);
        // A record re-emitted as it was (NATIVE) must stay one line.
        let raw = match self.block.decoder.framing() {
            Framing::Lines => text,
            Framing::JsonArray => text.filter(|t| memchr::memchr(b'\n', t.as_bytes()).is_none()),
        };
        let outcome = decode_and_encode(
            bytes,
            text,
            raw,
            ordinal,
            self.block.decoder.as_ref(),
            self.encoder,
            self.filter,
            &mut self.out,
        );
        let file = &self.block.file;
        let refused = match outcome {
            Ok(Some(task_id)) => {
                let left_out = self.out.record_left_out();
                if left_out {
                    self.progress.tasks_left_out += 1;
                } else {
                    self.progress.tasks_exported += 1;
                }
                let refusals = self.out.record_refusals();
                for fragment in refusals.split(|b| *b == b'\n').filter(|f| !f.is_empty()) {
                    if !left_out {
                        self.progress.annotations_refused += 1;
                    }
                    report_line(&mut self.report, file, line, None, Some(&task_id), fragment);
                }
                return Ok(());
            }
            Ok(None) => {
                self.progress.tasks_filtered += 1;
                return Ok(());
            }
            Err(refused) => refused,
        };
        // The format's own bound, not this line's fault: skipping would not help.
        if let Some(why) = self.out.take_stop() {
            return Err(PipelineError::Output(format!(
                "{file}, line {line}: {}{why}",
                refused
                    .task_id
                    .as_deref()
                    .map(|id| format!("task {id}: "))
                    .unwrap_or_default()
            )));
        }
        match self.options.invalid_lines {
            InvalidLines::Skip => {
                self.progress.tasks_read -= 1;
                self.progress.lines_skipped += 1;
                let mut reason = b"\"reason\":".to_vec();
                write_str(&mut reason, &refused.message);
                report_line(
                    &mut self.report,
                    file,
                    line,
                    refused.column,
                    refused.task_id.as_deref(),
                    &reason,
                );
                if self.skipped.len() < MAX_LISTED_SKIPS {
                    self.skipped.push(SkippedLine {
                        file: file.to_string(),
                        line,
                        message: refused.message,
                    });
                }
                Ok(())
            }
            InvalidLines::Fail => Err(PipelineError::InvalidLine {
                file: file.to_string(),
                line,
                message: refused.message,
            }),
        }
    }
}

pub(super) fn encode_block(
    block: &Block,
    encoder: &dyn Encoder,
    filter: &TaskFilter,
    options: &Options,
    capacity: usize,
    deflater: &mut Deflater,
) -> Encoded {
    let mut state = BlockEncoder {
        block,
        encoder,
        filter,
        options,
        text: std::str::from_utf8(&block.data).ok(),
        out: Out::with_capacity(encoder.separator(), capacity),
        report: Vec::new(),
        progress: Progress {
            bytes_read: block.data.len() as u64,
            files_read: u64::from(block.last_of_file),
            ..Progress::default()
        },
        skipped: Vec::new(),
    };
    let data = &block.data;
    let outcome = match block.decoder.framing() {
        Framing::Lines => (|| {
            let mut start = 0usize;
            let mut line = block.first_line;
            while start < data.len() {
                let line_start = start;
                let mut line_end =
                    memchr::memchr(b'\n', &data[start..]).map_or(data.len(), |i| start + i);
                start = line_end + 1;
                if line_end > line_start && data[line_end - 1] == b'\r' {
                    line_end -= 1;
                }
                let ordinal = block.first_ordinal + (line - block.first_line);
                state.record(line_start..line_end, line, ordinal)?;
                line += 1;
            }
            Ok(())
        })(),
        Framing::JsonArray => (|| {
            let mut line = block.first_line;
            let mut counted = 0;
            for (k, range) in block.records.iter().enumerate() {
                line += newlines(&data[counted..range.start]);
                counted = range.start;
                state.record(range.clone(), line, block.first_ordinal + k as u64)?;
            }
            Ok(())
        })(),
    };
    Encoded {
        seq: block.seq,
        finished: finish_block(state.out, encoder, options.compression, deflater),
        report: state.report,
        progress: state.progress,
        skipped: state.skipped,
        error: outcome.err(),
    }
}

/// One line of the errors report: where, which task, then `members` (`"reason":..`,
/// or `"annotationId":..,"reason":..` from an encoder's refusal).
fn report_line(
    report: &mut Vec<u8>,
    file: &str,
    line: u64,
    column: Option<u64>,
    task_id: Option<&str>,
    members: &[u8],
) {
    report.extend_from_slice(b"{\"file\":");
    write_str(report, file);
    report.extend_from_slice(b",\"line\":");
    write_int(report, line);
    if let Some(column) = column {
        report.extend_from_slice(b",\"column\":");
        write_int(report, column);
    }
    if let Some(task_id) = task_id {
        report.extend_from_slice(b",\"taskId\":");
        write_str(report, task_id);
    }
    report.push(b',');
    report.extend_from_slice(members);
    report.extend_from_slice(b"}\n");
}

/// Decodes, filters and encodes one record. `Ok(Some(id))`: exported; `Ok(None)`:
/// filtered out; `Err`: why the record was not exported (the encoder's refusal of the
/// whole task reads like a decoding error, with the task's id).
#[allow(clippy::too_many_arguments)]
fn decode_and_encode(
    bytes: &[u8],
    text: Option<&str>,
    raw: Option<&str>,
    ordinal: u64,
    decoder: &dyn Decoder,
    encoder: &dyn Encoder,
    filter: &TaskFilter,
    out: &mut Out,
) -> Result<Option<String>, DecodeError> {
    let task = decoder.decode(text, bytes)?;
    if !filter.keep(&task) {
        return Ok(None);
    }
    out.begin_record();
    let record = Record {
        task: &task,
        raw: if decoder.is_native() { raw } else { None },
        ordinal,
    };
    match encoder.encode(&record, out) {
        Ok(()) => {
            out.end_record();
            // The id is only needed to report refusals, which are rare.
            Ok(Some(if out.record_refusals().is_empty() {
                String::new()
            } else {
                task.id.to_string()
            }))
        }
        Err(e) => {
            out.abort_record();
            Err(DecodeError {
                message: format!("task {}: {e}", task.id),
                column: None,
                task_id: Some(task.id.to_string()),
            })
        }
    }
}
