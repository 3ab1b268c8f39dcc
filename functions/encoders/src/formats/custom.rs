//! CUSTOM: a jq program run on each task, as the NDJSON export writes it (so a program
//! can be tried with `jq` on an NDJSON export first). The program's outputs are the
//! export:
//!
//! - `"output": "ndjson"` (the default): each output value on its own line;
//! - `"output": "csv"` with `"columns": [..]`: each output must be an object of
//!   strings, numbers, booleans or nulls whose keys are among the columns; it is one
//!   row, the columns in the order given, a missing key an empty cell. Text cells are
//!   safe from spreadsheet formulas as in the other tabular formats (`"cells": "raw"`
//!   turns that off; see `crate::tabular`).
//!
//! `"program"` is compiled when the export is requested: one that does not compile is
//! refused with its line, column and the compiler's message. A task the program fails
//! on (an error, a value CSV cannot hold, or a broken bound: [`LIMITS`],
//! [`OUTPUT_BYTES_PER_TASK`]) is left out with the program's message in the errors
//! report; a task it outputs nothing for is left out and only counted
//! (`progress.tasksLeftOut`), as a program that filters means to. Outputs passing
//! [`OUTPUT_BYTES_PER_BLOCK`] in one block fail the export. What the program can reach
//! is in `crate::jq`: its input, nothing else.

use super::ndjson::NdjsonEncoder;
use crate::jq::{self, write_json, Limits, Program, RunError, TooLong};
use crate::tabular::{Cells, TableStyle, CELLS};
use crate::{ConfigError, Container, EncodeError, Encoder, FormatOption, FormatSpec, Out, Record};
use jaq_json::Val;
use serde::Deserialize;
use std::cell::{Cell, RefCell};
use std::io::Write;
use std::time::Duration;

/// A jq program per task.
pub static FORMAT: FormatSpec = FormatSpec {
    name: "CUSTOM",
    summary: "a jq program run on each task (as NDJSON writes it); its outputs as NDJSON lines, or CSV rows",
    modes: None,
    default_states: None,
    allowed_states: None,
    default_stages: Some(&["Complete"]),
    options: &[&PROGRAM, &OUTPUT, &COLUMNS, &CELLS, &crate::STRUCTURE],
    build,
};

/// `program`: the jq program.
static PROGRAM: FormatOption = FormatOption {
    key: "program",
    schema: <JqProgram as utoipa::PartialSchema>::schema,
};

/// `output`: how outputs are written.
static OUTPUT: FormatOption = FormatOption {
    key: "output",
    schema: <Output as utoipa::PartialSchema>::schema,
};

/// `columns`: the CSV's columns.
static COLUMNS: FormatOption = FormatOption {
    key: "columns",
    schema: <Columns as utoipa::PartialSchema>::schema,
};

/// A jq program (jq 1.7's language, run by jaq), applied to each task as NDJSON writes
/// it. No file, network, environment or clock access.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[schema(min_length = 1, max_length = 65536)]
pub struct JqProgram(pub String);

/// How the program's outputs are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Output {
    /// Each output value on its own line.
    #[default]
    Ndjson,
    /// Each output (a flat object) a row of `columns`.
    Csv,
}

/// The CSV's columns, in order: the keys of the program's objects.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[schema(min_items = 1)]
pub struct Columns(pub Vec<String>);

/// The longest program taken.
const MAX_PROGRAM_BYTES: usize = 65536;
/// The most of a value a message shows.
const SHOWN_BYTES: usize = 80;
/// Bounds of one task's run. The memory is per encoder thread (two on the worker's
/// Lambda); a string is at most four times what one task may output.
const LIMITS: Limits = Limits {
    time: Duration::from_secs(1),
    memory_bytes: 256 << 20,
    string_bytes: 16 << 20,
    depth: 256,
};
/// Bytes the program may output for one task.
const OUTPUT_BYTES_PER_TASK: usize = 4 << 20;
/// Bytes the program's outputs may take in one block (about 1 MiB of tasks): a block's
/// output is held in memory until it is written, so past this the export fails rather
/// than hold more.
const OUTPUT_BYTES_PER_BLOCK: usize = 32 << 20;

fn build(settings: &crate::Settings<'_>) -> Result<Box<dyn Encoder>, ConfigError> {
    let Some(JqProgram(text)) = settings.options.get::<JqProgram>("program")? else {
        return Err(ConfigError::new(
            "program",
            "CUSTOM needs a jq program (`program`), run on each task as NDJSON writes it",
        ));
    };
    if text.len() > MAX_PROGRAM_BYTES {
        return Err(ConfigError::new(
            "program",
            format!(
                "at most {MAX_PROGRAM_BYTES} bytes; this one has {}",
                text.len()
            ),
        ));
    }
    let program = Program::compile(&text).map_err(|errors| {
        let first = errors
            .first()
            .map_or_else(|| "does not compile".to_owned(), ToString::to_string);
        ConfigError::new("program", format!("does not compile: {first}"))
    })?;
    let output = settings
        .options
        .get::<Output>("output")?
        .unwrap_or_default();
    let columns = settings.options.get::<Columns>("columns")?;
    let columns = match (output, columns) {
        (Output::Csv, Some(Columns(columns))) if !columns.is_empty() => columns,
        (Output::Csv, _) => {
            return Err(ConfigError::new(
                "columns",
                "CSV output needs its columns, in order: the keys of the program's objects",
            ))
        }
        (Output::Ndjson, None) => Vec::new(),
        (Output::Ndjson, Some(_)) => {
            return Err(ConfigError::new("columns", "only with \"output\": \"csv\""))
        }
    };
    if output == Output::Ndjson && settings.options.get::<Cells>(CELLS.key)?.is_some() {
        return Err(ConfigError::new(CELLS.key, "only with \"output\": \"csv\""));
    }
    Ok(Box::new(CustomEncoder {
        input: NdjsonEncoder::from_settings(settings)?,
        program,
        columns,
        style: TableStyle::from_settings(settings, b',')?,
    }))
}

/// Runs the program on each task's NDJSON line.
struct CustomEncoder {
    input: NdjsonEncoder,
    program: Program,
    /// CSV columns; empty for NDJSON.
    columns: Vec<String>,
    /// How CSV cells are written.
    style: TableStyle,
}

thread_local! {
    /// The task as NDJSON writes it: reused, record after record.
    static INPUT: RefCell<Out> = RefCell::new(Out::new(b""));
}

/// Why an output was not written.
enum Refused {
    /// The program's: a value CSV cannot hold.
    Program(RunError),
    /// It would pass the bytes left for the task or the block.
    TooLong,
}

impl From<TooLong> for Refused {
    fn from(_: TooLong) -> Self {
        Refused::TooLong
    }
}

impl Encoder for CustomEncoder {
    fn container(&self) -> Container {
        if self.columns.is_empty() {
            Container::File {
                extension: "ndjson",
                content_type: "application/x-ndjson",
            }
        } else {
            Container::File {
                extension: "csv",
                content_type: "text/csv; charset=utf-8",
            }
        }
    }

    fn header(&self, out: &mut Vec<u8>) {
        if self.columns.is_empty() {
            return;
        }
        self.style.start(out);
        for (i, column) in self.columns.iter().enumerate() {
            if i > 0 {
                self.style.next(out);
            }
            self.style.text(out, column);
        }
        self.style.end_line(out);
    }

    fn encode(&self, record: &Record<'_, '_>, out: &mut Out) -> Result<(), EncodeError> {
        INPUT.with(|cell| {
            let mut input = cell.borrow_mut();
            input.clear();
            input.begin_record();
            self.input.encode(record, &mut input)?;
            let task_start = out.bytes().len();
            let block_full = Cell::new(false);
            let run = self.program.run(input.bytes(), LIMITS, |value| {
                let line = out.record();
                let task_left = OUTPUT_BYTES_PER_TASK.saturating_sub(line.len() - task_start);
                let block_left = OUTPUT_BYTES_PER_BLOCK.saturating_sub(line.len());
                let left = task_left.min(block_left);
                let start = line.len();
                let written = if self.columns.is_empty() {
                    write_json(value, line, left).map_err(Refused::from)
                } else {
                    write_row(line, value, &self.columns, &self.style, left)
                };
                line.push(b'\n');
                match written {
                    Ok(()) if line.len() - start <= left => Ok(()),
                    Err(Refused::Program(e)) => Err(e),
                    Ok(()) | Err(Refused::TooLong) if block_left < task_left => {
                        // Ends the run; the export fails below, with the reason.
                        block_full.set(true);
                        Err(RunError("the block is full".to_owned()))
                    }
                    Ok(()) | Err(Refused::TooLong) => Err(RunError(format!(
                        "the program output more than {} for one task",
                        jq::size(OUTPUT_BYTES_PER_TASK)
                    ))),
                }
            });
            match run {
                Ok(0) => out.leave_out(None),
                Ok(_) => {}
                Err(_) if block_full.get() => {
                    let why = format!(
                        "the program's outputs passed {} for one block of tasks (about 1 MiB \
                         of input), which CUSTOM holds in memory until it is written: output \
                         less per task",
                        jq::size(OUTPUT_BYTES_PER_BLOCK)
                    );
                    out.stop_export(why.clone());
                    return Err(EncodeError(why));
                }
                Err(RunError(message)) => {
                    out.leave_out(Some(&format!("the program failed on this task: {message}")))
                }
            }
            Ok(())
        })
    }
}

/// Writes an output object as a CSV row of `columns`, in at most `limit` bytes.
fn write_row(
    line: &mut Vec<u8>,
    value: &Val,
    columns: &[String],
    style: &TableStyle,
    limit: usize,
) -> Result<(), Refused> {
    let Val::Obj(object) = value else {
        return Err(Refused::Program(RunError(format!(
            "CSV output takes objects, and the program output {}",
            jq::shortened(value, SHOWN_BYTES)
        ))));
    };
    for (key, _) in object.iter() {
        let known = matches!(key, Val::TStr(k) if columns.iter().any(|c| c.as_bytes() == &k[..]));
        if !known {
            return Err(Refused::Program(RunError(format!(
                "the key {} is not one of `columns`",
                jq::shortened(key, SHOWN_BYTES)
            ))));
        }
    }
    let start = line.len();
    for (i, column) in columns.iter().enumerate() {
        if i > 0 {
            style.next(line);
        }
        let cell = object
            .iter()
            .find(|(k, _)| matches!(k, Val::TStr(k) if column.as_bytes() == &k[..]))
            .map(|(_, v)| v);
        match cell {
            None | Some(Val::Null) => {}
            // A cell's text may take twice its bytes, quoted: the bound is checked first.
            Some(Val::TStr(s)) if line.len() - start + s.len() > limit => {
                return Err(Refused::TooLong)
            }
            Some(Val::TStr(s)) => style.text(line, &String::from_utf8_lossy(s)),
            Some(v @ (Val::Num(_) | Val::Bool(_))) => {
                let _ = write!(line, "{v}");
            }
            Some(other) => {
                return Err(Refused::Program(RunError(format!(
                    "`{column}` holds {}: a CSV cell holds a string, number, boolean or null",
                    jq::shortened(other, SHOWN_BYTES)
                ))))
            }
        }
        if line.len() - start > limit {
            return Err(Refused::TooLong);
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::formats::testing;
    use crate::{EncodeError, Encoder, Out, Record};
    use serde_json::json;
    use std::time::{Duration, Instant};

    const TASK: &str = r#"{"id":"t1","asset":{"url":"s3://b/1.jpg"},"state":"validated","stage":"Complete","createdAt":"x",
        "submissions":[{"id":"s","stage":"L","origin":"human","completedAt":"x","annotations":[
          {"id":"a1","type":"point","label":"eye","points":[[1.5,2]]},
          {"id":"a2","type":"point","label":"nose, \"big\"","points":[[3,4]]}]}]}"#;
    const EMPTY: &str = r#"{"id":"t2","asset":{"url":"s3://b/2.jpg"},"state":"validated","stage":"Complete","createdAt":"x"}"#;

    #[test]
    fn outputs_are_lines_or_rows() {
        let project = testing::project("element", json!({}));
        let program = r#".task.tools[] | {id: .objectId, label: .title, task: $__task}"#;
        let Err(e) = testing::build("CUSTOM", &project, json!({"program": program})) else {
            panic!("an undefined variable compiles");
        };
        assert_eq!(e.field, "program");
        assert!(
            e.message
                .ends_with("line 1, column 54: variable $__task is not defined"),
            "{e}"
        );

        let ndjson = testing::build(
            "CUSTOM",
            &project,
            json!({"program": ".task.tools[] | {id: .objectId, label: .title}"}),
        )
        .unwrap();
        assert_eq!(
            testing::file(ndjson.as_ref(), &[TASK, EMPTY]),
            "{\"id\":\"a1\",\"label\":\"eye\"}\n{\"id\":\"a2\",\"label\":\"nose, \\\"big\\\"\"}\n"
        );
        let csv = testing::build(
            "CUSTOM",
            &project,
            json!({"program": ".task.tools[] | {label: .title, id: .objectId, x: .point[0]}",
                "output": "csv", "columns": ["id", "label", "x", "missing"]}),
        )
        .unwrap();
        assert_eq!(
            testing::file(csv.as_ref(), &[TASK]),
            "id,label,x,missing\na1,eye,1.5,\na2,\"nose, \"\"big\"\"\",3.0,\n"
        );
    }

    #[test]
    fn a_task_the_program_fails_on_is_left_out_with_the_reason() {
        let project = testing::project("element", json!({}));
        let csv = testing::build(
            "CUSTOM",
            &project,
            json!({"program": "{id: .task.taskId, tools: .task.tools}", "output": "csv", "columns": ["id", "tools"]}),
        )
        .unwrap();
        let task: labelport_model::Task<'_> = serde_json::from_str(TASK).unwrap();
        let mut out = crate::Out::new(b"");
        out.begin_record();
        let record = crate::Record {
            task: &task,
            raw: None,
            ordinal: 0,
        };
        csv.encode(&record, &mut out).unwrap();
        assert!(out.record_left_out() && out.bytes().is_empty());
        let reason = std::str::from_utf8(out.record_refusals()).unwrap();
        assert!(
            reason.starts_with("\"reason\":\"the program failed on this task: `tools` holds [{"),
            "{reason}"
        );
        let erroring = testing::build(
            "CUSTOM",
            &project,
            json!({"program": r#"if .task.taskId == "t2" then error("no tools") else .task.taskId end"#}),
        )
        .unwrap();
        assert_eq!(testing::file(erroring.as_ref(), &[TASK, EMPTY]), "\"t1\"\n");
    }

    /// Encodes `tasks` as one block, as the pipeline does: the block's output, and the
    /// encoder's error with the task it stopped at, if it stopped the export.
    fn encode_block(encoder: &dyn Encoder, tasks: &[&str]) -> (Out, Option<(usize, EncodeError)>) {
        let mut out = Out::new(encoder.separator());
        for (i, task) in tasks.iter().enumerate() {
            let task: labelport_model::Task<'_> = serde_json::from_str(task).unwrap();
            out.begin_record();
            let record = Record {
                task: &task,
                raw: None,
                ordinal: i as u64,
            };
            match encoder.encode(&record, &mut out) {
                Ok(()) => out.end_record(),
                Err(e) => {
                    out.abort_record();
                    return (out, Some((i, e)));
                }
            }
        }
        (out, None)
    }

    /// What the errors report gets for `task` under `program`, and how long it took.
    fn refusal(program: &str, task: &str) -> (String, Duration) {
        let project = testing::project("element", json!({}));
        let encoder = testing::build("CUSTOM", &project, json!({"program": program})).unwrap();
        let started = Instant::now();
        let (out, error) = encode_block(encoder.as_ref(), &[task]);
        let took = started.elapsed();
        assert!(error.is_none(), "{program}: {error:?}");
        assert!(out.record_left_out() && out.bytes().is_empty(), "{program}");
        (
            String::from_utf8(out.record_refusals().to_vec()).unwrap(),
            took,
        )
    }

    #[test]
    fn a_program_that_grows_a_value_without_end_is_refused_for_the_task() {
        for (program, says) in [
            // The string doubles each step: 2^31 bytes at the end.
            (
                r#"reduce range(31) as $i ("x"; . + .)"#,
                "the program built a string longer than 16 MiB",
            ),
            // Nested a million deep, which freeing would recurse on a level at a time.
            (
                "reduce range(1e6) as $i (0; [.])",
                "the program built a value nested more than 256 deep",
            ),
            (
                r#""x" * 5000000"#,
                "the program output more than 4 MiB for one task",
            ),
        ] {
            let (reason, took) = refusal(program, TASK);
            assert_eq!(
                reason,
                format!("\"reason\":\"the program failed on this task: {says}\"\n"),
                "{program}"
            );
            assert!(took < Duration::from_secs(1), "{program} took {took:?}");
            eprintln!("{program}: refused in {took:?}");
        }
    }

    #[test]
    fn outputs_past_the_block_bound_fail_the_export() {
        // 1 MB per task stays within a task's 4 MiB; a thousand of them in one block do
        // not stay within 32 MiB.
        let project = testing::project("element", json!({}));
        let program = json!({"program": r#""x" * 1000000"#});
        let encoder = testing::build("CUSTOM", &project, program).unwrap();
        let started = Instant::now();
        let (out, error) = encode_block(encoder.as_ref(), &[TASK; 1000]);
        let took = started.elapsed();
        let (at, error) = error.expect("the export stops");
        assert_eq!(at, 33, "the 34th task passes 32 MiB");
        assert!(
            error
                .0
                .starts_with("the program's outputs passed 32 MiB for one block of tasks"),
            "{error}"
        );
        assert_eq!(out.bytes().len(), 33 * 1_000_003);
        assert!(took < Duration::from_secs(5), "took {took:?}");
        eprintln!("1 MB per task over 1000 tasks: stopped at task {at} in {took:?}");
    }

    #[test]
    fn csv_cells_are_safe_from_formulas_unless_raw() {
        let project = testing::project("element", json!({}));
        let program = r#"{id: .task.taskId, label: "=HYPERLINK(\"http://x\")", "-n": -1}"#;
        let csv = |cells: Option<&str>| {
            let mut options =
                json!({"program": program, "output": "csv", "columns": ["id", "label", "-n"]});
            if let Some(cells) = cells {
                options["cells"] = cells.into();
            }
            let encoder = testing::build("CUSTOM", &project, options).unwrap();
            testing::file(encoder.as_ref(), &[TASK])
        };
        let safe = "id,label,'-n\nt1,\"'=HYPERLINK(\"\"http://x\"\")\",-1\n";
        assert_eq!(csv(None), safe);
        assert_eq!(csv(Some("safe")), safe);
        assert_eq!(
            csv(Some("raw")),
            "id,label,-n\nt1,\"=HYPERLINK(\"\"http://x\"\")\",-1\n"
        );
        let Err(e) = testing::build("CUSTOM", &project, json!({"program": ".", "cells": "raw"}))
        else {
            panic!("cells with NDJSON output builds");
        };
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            ("cells", "only with \"output\": \"csv\"")
        );
    }
}
