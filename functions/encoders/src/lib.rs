//! Output formats. One format is one file behind the [`Encoder`] trait; compression
//! is a separate layer ([`Compression`]) that any format's bytes pass through.
//!
//! An encoder is built once per export from the request ([`build`]), which is where a
//! format refuses options it cannot honour, so a bad request fails at request time
//! and never per record. `encode` takes `&self`: the worker shares one encoder
//! between threads, each writing into its own reused buffer.
#![deny(missing_docs)]

mod compression;
mod csv;
mod ndjson;

pub use compression::Compression;

use labelport_model::{Project, Task};
use serde::{Deserialize, Serialize};

/// The formats labelport writes. Matched without a wildcard arm everywhere, so a
/// new format does not compile until every place that must know it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Format {
    /// The campaign CSV of seed 000: one line per task, mode-dependent columns.
    Csv,
    /// One task per line in the structure of seed 003.
    Ndjson,
}

impl Format {
    /// Every format.
    pub const ALL: [Format; 2] = [Format::Csv, Format::Ndjson];

    /// The name used in requests.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "CSV",
            Format::Ndjson => "NDJSON",
        }
    }
}

/// The field toggles of seed 003.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FieldToggles {
    /// Metadata of each annotation (who made it, when, with what confidence).
    #[serde(default)]
    pub annotation_metadata: bool,
    /// Every submission of the task, stage by stage, with its annotations.
    #[serde(default)]
    pub stage_history: bool,
    /// Video: only the frames a person set, no interpolated frames.
    #[serde(default)]
    pub only_key_frames: bool,
}

/// An option a format cannot honour, found when the encoder is built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ConfigError {
    /// The request field at fault, as a JSON path (`fields.stageHistory`).
    pub field: String,
    /// Why, for a person.
    pub message: String,
}

/// A task an encoder cannot express. The worker reports it with file and line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EncodeError(pub String);

/// Turns tasks into bytes of one format.
pub trait Encoder: Send + Sync {
    /// The format this encoder writes.
    fn format(&self) -> Format;
    /// The file extension, without compression (`csv`).
    fn extension(&self) -> &'static str;
    /// The MIME type of the uncompressed file.
    fn content_type(&self) -> &'static str;
    /// Bytes that open the file (a CSV header). Called once.
    fn header(&self, out: &mut Vec<u8>);
    /// Appends one task. Must not allocate per task beyond growing `out`.
    fn encode(&self, task: &Task<'_>, out: &mut Vec<u8>) -> Result<(), EncodeError>;
    /// Bytes that close the file. Called once, after the last task.
    fn footer(&self, out: &mut Vec<u8>);
}

/// Builds the encoder for `format`, checking the options against the project.
pub fn build(
    format: Format,
    fields: FieldToggles,
    project: &Project,
) -> Result<Box<dyn Encoder>, ConfigError> {
    match format {
        Format::Csv => Ok(Box::new(csv::CsvEncoder::new(fields, project)?)),
        Format::Ndjson => Ok(Box::new(ndjson::NdjsonEncoder::new(fields, project)?)),
    }
}
