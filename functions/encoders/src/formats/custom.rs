//! CUSTOM: a jq program run on each task, as the NDJSON export writes it (so a program
//! can be tried with `jq` on an NDJSON export first). The program's outputs are the
//! export:
//!
//! - `"output": "ndjson"` (the default): each output value on its own line;
//! - `"output": "csv"` with `"columns": [..]`: each output must be an object of
//!   strings, numbers, booleans or nulls whose keys are among the columns; it is one
//!   row, the columns in the order given, a missing key an empty cell.
//!
//! `"program"` is compiled when the export is requested: one that does not compile is
//! refused with its line, column and the compiler's message. A task the program fails
//! on (an error, a value CSV cannot hold, or a broken bound: 1 s, 4 MiB of output per
//! task) is left out with the program's message in the errors report; a task it
//! outputs nothing for is left out and only counted (`progress.tasksLeftOut`), as a
//! program that filters means to. What the program can reach is in `crate::jq`:
//! its input, nothing else.

use super::ndjson::NdjsonEncoder;
use crate::csv_text::write_cell;
use crate::jq::{Limits, Program, RunError};
use crate::{ConfigError, Container, EncodeError, Encoder, FormatOption, FormatSpec, Out, Record};
use jaq_json::Val;
use serde::Deserialize;
use std::cell::RefCell;
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
    options: &[&PROGRAM, &OUTPUT, &COLUMNS, &crate::STRUCTURE],
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
/// Bounds of one task's run.
const LIMITS: Limits = Limits {
    time: Duration::from_secs(1),
    output_bytes: 4 << 20,
};

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
            format!("at most {MAX_PROGRAM_BYTES} bytes; this one has {}", text.len()),
        ));
    }
    let program = Program::compile(&text).map_err(|errors| {
        let first = errors
            .first()
            .map_or_else(|| "does not compile".to_owned(), ToString::to_string);
        ConfigError::new("program", format!("does not compile: {first}"))
    })?;
    let output = settings.options.get::<Output>("output")?.unwrap_or_default();
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
    Ok(Box::new(CustomEncoder {
        input: NdjsonEncoder::from_settings(settings)?,
        program,
        columns,
    }))
}

/// Runs the program on each task's NDJSON line.
struct CustomEncoder {
    input: NdjsonEncoder,
    program: Program,
    /// CSV columns; empty for NDJSON.
    columns: Vec<String>,
}

thread_local! {
    /// The task as NDJSON writes it: reused, record after record.
    static INPUT: RefCell<Out> = RefCell::new(Out::new(b""));
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
        for (i, column) in self.columns.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_cell(out, column, b',');
        }
        if !self.columns.is_empty() {
            out.push(b'\n');
        }
    }

    fn encode(&self, record: &Record<'_, '_>, out: &mut Out) -> Result<(), EncodeError> {
        INPUT.with(|cell| {
            let mut input = cell.borrow_mut();
            input.clear();
            input.begin_record();
            self.input.encode(record, &mut input)?;
            let run = self.program.run(input.bytes(), LIMITS, |value| {
                let line = out.record();
                let start = line.len();
                if self.columns.is_empty() {
                    // Writing into a Vec cannot fail.
                    let _ = write!(line, "{value}");
                } else {
                    write_row(line, value, &self.columns)?;
                }
                line.push(b'\n');
                Ok(line.len() - start)
            });
            match run {
                Ok(0) => out.leave_out(None),
                Ok(_) => {}
                Err(RunError(message)) => {
                    out.leave_out(Some(&format!("the program failed on this task: {message}")))
                }
            }
            Ok(())
        })
    }
}

/// Writes an output object as a CSV row of `columns`.
fn write_row(line: &mut Vec<u8>, value: &Val, columns: &[String]) -> Result<(), RunError> {
    let Val::Obj(object) = value else {
        return Err(RunError(format!(
            "CSV output takes objects, and the program output {}",
            shorten(value)
        )));
    };
    for (key, _) in object.iter() {
        let known = matches!(key, Val::TStr(k) if columns.iter().any(|c| c.as_bytes() == &k[..]));
        if !known {
            return Err(RunError(format!(
                "the key {} is not one of `columns`",
                shorten(key)
            )));
        }
    }
    for (i, column) in columns.iter().enumerate() {
        if i > 0 {
            line.push(b',');
        }
        let cell = object
            .iter()
            .find(|(k, _)| matches!(k, Val::TStr(k) if column.as_bytes() == &k[..]))
            .map(|(_, v)| v);
        match cell {
            None | Some(Val::Null) => {}
            Some(Val::TStr(s)) => write_cell(line, &String::from_utf8_lossy(s), b','),
            Some(v @ (Val::Num(_) | Val::Bool(_))) => {
                let _ = write!(line, "{v}");
            }
            Some(other) => {
                return Err(RunError(format!(
                    "`{column}` holds {}: a CSV cell holds a string, number, boolean or null",
                    shorten(other)
                )))
            }
        }
    }
    Ok(())
}

/// A value for a message, cut to a readable length.
fn shorten(value: &Val) -> String {
    let text = value.to_string();
    match text.char_indices().nth(80) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::formats::testing;
    use serde_json::json;

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
            e.message.ends_with("line 1, column 54: variable $__task is not defined"),
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
}
