//! Output formats. One format is one file in `formats/` behind the [`Encoder`] trait,
//! described by a [`FormatSpec`] and registered by one line in `formats/mod.rs`.
//! Everything the rest of labelport knows about a format (its name, the modes it fits,
//! its default filters, its options, how its output is laid out) comes from that spec,
//! so nothing else matches on formats and a new one needs no other edit.
//!
//! Layers, kept apart: an encoder turns one task into bytes ([`Encoder::encode`]); the
//! [`Container`] it names says whether those bytes make one file, a set of parts or a
//! ZIP of named entries; compression ([`Compression`]) is applied to the bytes after.
//!
//! An encoder is built once per export ([`FormatSpec::build`]), which is where a format
//! refuses options it cannot honour, so a bad request fails at request time and never
//! per record. `encode` takes `&self`: the pipeline shares one encoder between threads,
//! each writing into its own reused [`Out`].
#![deny(missing_docs)]

mod assessments;
mod cloud_ml;
mod compression;
pub mod csv_text;
mod formats;
mod jq;
pub mod json_text;
mod label_studio;
mod options;
mod out;
pub mod sheet;
mod table;
pub mod tabular;
mod task_json;
mod tokens;
mod vision;

pub use compression::Compression;
pub use label_studio::TAXONOMY_PATH_SEPARATOR;
pub use options::{Compat, FormatOption, FormatOptions, Structure, COMPAT, STRUCTURE};
pub use out::{Out, Piece};

use labelport_model::{Mode, Project, Task, TaskState};
use serde::{Deserialize, Serialize};

/// Everything labelport knows about one format.
pub struct FormatSpec {
    /// The name used in requests, file names and the CLI (`NDJSON_SPLIT`).
    pub name: &'static str,
    /// One line for `labelport formats` and the docs.
    pub summary: &'static str,
    /// The project modes the format can express; `None`: every mode.
    pub modes: Option<&'static [Mode]>,
    /// Task states kept when the request names none; `None`: every state.
    pub default_states: Option<&'static [TaskState]>,
    /// The only states a request may ask for; `None`: any.
    pub allowed_states: Option<&'static [TaskState]>,
    /// Workflow stages kept when the request names none; `None`: every stage.
    pub default_stages: Option<&'static [&'static str]>,
    /// Top-level request keys the format reads (`structure`, `split`), each with
    /// its schema for the API's OpenAPI document.
    pub options: &'static [&'static FormatOption],
    /// Builds the encoder for one export, refusing what it cannot honour.
    pub build: fn(&Settings<'_>) -> Result<Box<dyn Encoder>, ConfigError>,
}

impl FormatSpec {
    /// Whether the format can express a project of `mode`.
    pub fn fits(&self, mode: Mode) -> bool {
        self.modes.is_none_or(|modes| modes.contains(&mode))
    }

    /// Whether the format reads request key `key` as one of its options.
    pub fn takes(&self, key: &str) -> bool {
        self.options.iter().any(|o| o.key == key)
    }
}

/// A registered format, as requests name it. Serializes as its name; parsing an
/// unknown name lists the known ones.
#[derive(Clone, Copy)]
pub struct Format(&'static FormatSpec);

impl Format {
    /// Every registered format, in registration order.
    pub fn all() -> impl Iterator<Item = Format> {
        formats::REGISTRY.iter().map(|spec| Format(spec))
    }

    /// The format called `name` (exact, upper case).
    pub fn by_name(name: &str) -> Option<Format> {
        Format::all().find(|f| f.0.name == name)
    }

    /// The format's description.
    pub fn spec(self) -> &'static FormatSpec {
        self.0
    }

    /// The name used in requests (`CSV`).
    pub fn as_str(self) -> &'static str {
        self.0.name
    }

    /// Builds the encoder for one export.
    pub fn build(self, settings: &Settings<'_>) -> Result<Box<dyn Encoder>, ConfigError> {
        if !self.0.fits(settings.project.mode) {
            let modes: Vec<&str> = self
                .0
                .modes
                .unwrap_or(&[])
                .iter()
                .map(|m| m.as_str())
                .collect();
            return Err(ConfigError::new(
                "format",
                format!(
                    "{} cannot express {} projects; it fits {}",
                    self.0.name,
                    settings.project.mode,
                    modes.join(", ")
                ),
            ));
        }
        for key in settings.options.keys() {
            if !self.0.takes(key) {
                let takes = if self.0.options.is_empty() {
                    "no options".to_owned()
                } else {
                    let keys: Vec<&str> = self.0.options.iter().map(|o| o.key).collect();
                    keys.join(", ")
                };
                return Err(ConfigError::new(
                    key.clone(),
                    format!("not an option of {}; it takes {takes}", self.0.name),
                ));
            }
        }
        (self.0.build)(settings)
    }
}

impl PartialEq for Format {
    fn eq(&self, other: &Self) -> bool {
        self.0.name == other.0.name
    }
}

impl Eq for Format {}

impl std::fmt::Debug for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.name)
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.name)
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::by_name(&s.to_ascii_uppercase()).ok_or_else(|| {
            let names: Vec<&str> = Format::all().map(Format::as_str).collect();
            format!("unknown format `{s}`, expected one of {}", names.join(", "))
        })
    }
}

impl Serialize for Format {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.name)
    }
}

/// The `format` member of the API's OpenAPI document: one of the registered names.
impl utoipa::PartialSchema for Format {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let list: Vec<String> = Format::all()
            .map(|f| format!("- `{}`: {}", f.0.name, f.0.summary))
            .collect();
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(Format::all().map(Format::as_str)))
            .description(Some(format!("The output format.\n\n{}", list.join("\n"))))
            .into()
    }
}

impl utoipa::ToSchema for Format {}

impl<'de> Deserialize<'de> for Format {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Format::by_name(&name).ok_or_else(|| {
            let names: Vec<&str> = Format::all().map(Format::as_str).collect();
            serde::de::Error::custom(format!(
                "unknown variant `{name}`, expected one of {}",
                names.join(", ")
            ))
        })
    }
}

/// The field toggles: optional parts of each record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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

impl FieldToggles {
    /// Refuses every toggle but `onlyKeyFrames`, for a format that keeps video frames
    /// and nothing else optional (the image formats).
    pub fn refuse_all_but_key_frames(self, format: &str) -> Result<(), ConfigError> {
        FieldToggles {
            only_key_frames: false,
            ..self
        }
        .refuse_all(format)
    }

    /// Refuses every toggle that is on, for a format that has no room for any.
    pub fn refuse_all(self, format: &str) -> Result<(), ConfigError> {
        let toggles = [
            (self.annotation_metadata, "fields.annotationMetadata"),
            (self.stage_history, "fields.stageHistory"),
            (self.only_key_frames, "fields.onlyKeyFrames"),
        ];
        match toggles.iter().find(|(on, _)| *on) {
            Some((_, field)) => Err(ConfigError::new(
                *field,
                format!("not available in the {format} format; use NDJSON or JSON"),
            )),
            None => Ok(()),
        }
    }
}

/// What an encoder is built from: the project and the request's format-related parts.
pub struct Settings<'a> {
    /// The project exported.
    pub project: &'a Project,
    /// The field toggles.
    pub fields: FieldToggles,
    /// The output compression.
    pub compression: Compression,
    /// The request's format options (the keys of [`FormatSpec::options`]).
    pub options: &'a FormatOptions,
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

impl ConfigError {
    /// An error about `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A task an encoder cannot write at all. The pipeline reports it with file and line.
/// (An annotation it cannot express is not an error: see [`Out::refuse`].)
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EncodeError(pub String);

/// One task to encode, with what the pipeline knows about it.
pub struct Record<'r, 'a> {
    /// The task.
    pub task: &'r Task<'a>,
    /// The source text of the record when it is a task record v1 (the native source),
    /// so a format that re-emits the record keeps every field, known or not.
    pub raw: Option<&'r str>,
    /// The record's position in the export's sources, from 0: its line counted over
    /// every line file before it, or its element in an array file. Unique within the
    /// export and the same on every run (stable ids, unique entry names); not dense.
    pub ordinal: u64,
}

/// The most parts a `Parts` container cuts one export into. Every part is a file the
/// status lists and the worker uploads and completes on its own: at one part per task,
/// 2,000 tasks made a 1.7 MB status, and from about 7,000 the status passed Lambda's
/// 6 MB response and the uploads could not finish. An export that would need more
/// parts fails instead, saying which options make the parts larger
/// ([`Encoder::too_many_parts`]).
pub const MAX_PARTS: u64 = 1_000;

/// How an export's bytes become files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// One file, `{base}.{extension}`: header, records, footer; compressed as asked.
    File {
        /// Extension without compression (`csv`).
        extension: &'static str,
        /// MIME type of the uncompressed file.
        content_type: &'static str,
    },
    /// Records cut into parts of at most `max_bytes` (uncompressed) and `max_records`
    /// each, `{base}-00001.{extension}`, ...; each part has the header and footer. At
    /// most [`MAX_PARTS`] parts.
    Parts {
        /// Extension without compression.
        extension: &'static str,
        /// MIME type of the uncompressed parts.
        content_type: &'static str,
        /// A part holds at most this many bytes before compression (at least one record).
        max_bytes: u64,
        /// A part holds at most this many records.
        max_records: u64,
    },
    /// One ZIP, `{base}.zip`, of the entries the encoder names ([`Out::entry`]).
    Zip,
    /// One XLSX workbook, `{base}.xlsx`: the header and each record are a row of cells
    /// ([`sheet`]); past `max_rows_per_sheet` rows, a new sheet.
    Workbook {
        /// Rows under the header in one sheet, at most Excel's 1,048,575.
        max_rows_per_sheet: u32,
    },
}

impl Container {
    /// Whether the container compresses its own contents (a ZIP, an XLSX), so the
    /// export cannot be compressed again.
    pub fn is_archive(self) -> bool {
        matches!(self, Container::Zip | Container::Workbook { .. })
    }
}

/// Turns tasks into bytes of one format.
pub trait Encoder: Send + Sync {
    /// How the bytes are laid out in files.
    fn container(&self) -> Container;
    /// Bytes that open each file of a `File` or `Parts` container (a CSV header, `[`).
    fn header(&self, _out: &mut Vec<u8>) {}
    /// Bytes between two records of a file (`,\n` in a JSON array).
    fn separator(&self) -> &'static [u8] {
        b""
    }
    /// Writes one record into `out` ([`Out::record`] or [`Out::entry`]). Must not
    /// allocate per record beyond growing `out`.
    fn encode(&self, record: &Record<'_, '_>, out: &mut Out) -> Result<(), EncodeError>;
    /// Bytes that close each file of a `File` or `Parts` container.
    fn footer(&self, _out: &mut Vec<u8>) {}
    /// In a `Parts` container, why the export stops when it would need more than
    /// [`MAX_PARTS`] parts, for a person: which options make the parts larger, and
    /// their values now.
    fn too_many_parts(&self) -> String {
        format!("the export would be cut into more than {MAX_PARTS} parts")
    }
    /// Entries written once, after every record, into a `Zip` container (a README,
    /// a class list).
    fn closing_entries(&self, _out: &mut Out) {}
    /// How many sections the format holds back until the end: in a `File`, parts of
    /// the file that follow its records (COCO's annotations, after its images); in a
    /// `Zip`, whole entries written after the records' entries (a documents file and
    /// the annotations file that points into it). Records write to them with
    /// [`Out::held`]; the pipeline spools them to bounded temporary files.
    fn held_sections(&self) -> usize {
        0
    }
    /// Bytes written before held-back section `section`: after the file's records
    /// (`],"annotations":[`; the footer follows the last section), or at the start of
    /// the section's ZIP entry (a CSV header).
    fn section_opening(&self, _section: usize, _out: &mut Vec<u8>) {}
    /// In a `Zip` container, the name of the entry held-back section `section` becomes.
    fn section_entry(&self, _section: usize) -> &'static str {
        ""
    }
    /// Whether held-back section `section` numbers its elements from its block's start
    /// and is rewritten by [`Encoder::renumber_section`]. Such a section is compressed
    /// after the rewrite, on the assembling thread, instead of on the encoder threads.
    fn renumbers_section(&self, _section: usize) -> bool {
        false
    }
    /// Blocks of records are encoded in parallel, so a record cannot know how many
    /// elements came before its block (the line of the documents file its annotations
    /// point to, COCO's image and annotation ids). A format whose section `section`
    /// numbers elements from the block's start ([`Encoder::renumbers_section`])
    /// rewrites the block's `bytes` into `out` here, given how many elements each
    /// section held before the block (`before`), and returns `true`; `false` keeps the
    /// bytes as written (nothing came before). `bytes` are never compressed.
    fn renumber_section(
        &self,
        _section: usize,
        _bytes: &[u8],
        _before: &[u64],
        _out: &mut Vec<u8>,
    ) -> bool {
        false
    }
}
