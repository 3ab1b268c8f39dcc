//! Input decoders: how a source file is cut into records and how one record becomes a
//! task of the model. The native task record is the first decoder; another tool's
//! export (one JSON array, say) is a new decoder beside it, chosen by file name in
//! [`crate::source`].

use labelport_model::Task;

/// How a source is cut into records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One record per line (`\n`, optionally `\r\n`); blank lines are not records.
    Lines,
}

/// Why one record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// Why, for a person.
    pub message: String,
    /// The 1-based column in the record's line, when the decoder knows it.
    pub column: Option<u64>,
    /// The task's id, when the record got far enough to have one.
    pub task_id: Option<String>,
}

/// Turns records of one kind of source into tasks.
pub trait Decoder: Send + Sync {
    /// How the source is cut into records.
    fn framing(&self) -> Framing;
    /// Decodes one record, borrowing from its text where the model allows. `text` is
    /// the record as UTF-8 when the block it came from was valid UTF-8 (checked once
    /// per block), else `None`, and `bytes` must be decoded instead.
    fn decode<'a>(&self, text: Option<&'a str>, bytes: &'a [u8]) -> Result<Task<'a>, DecodeError>;
    /// Whether a record of this source is a task record v1 as it stands, so a format
    /// that re-emits records (NATIVE) may copy its text and keep every field.
    fn is_native(&self) -> bool;
}

/// The task record v1, one per line (`*.ndjson`, `*.jsonl`).
///
/// ```
/// use labelport_core::decode::{Decoder, NativeDecoder};
/// let line = r#"{"id":"t1","asset":{"url":"u"},"state":"annotated","stage":"Complete","createdAt":"x"}"#;
/// let task = NativeDecoder.decode(Some(line), line.as_bytes()).unwrap();
/// assert_eq!(task.id, "t1");
/// let bad = r#"{"id":"t2","asset":{"url":"u"},"state":"done"}"#;
/// let error = NativeDecoder.decode(Some(bad), bad.as_bytes()).unwrap_err();
/// assert_eq!(error.column, Some(45));
/// ```
pub struct NativeDecoder;

impl Decoder for NativeDecoder {
    fn framing(&self) -> Framing {
        Framing::Lines
    }

    fn decode<'a>(&self, text: Option<&'a str>, bytes: &'a [u8]) -> Result<Task<'a>, DecodeError> {
        let parsed: Result<Task<'a>, _> = match text {
            Some(text) => serde_json::from_str(text),
            None => serde_json::from_slice(bytes),
        };
        let task = parsed.map_err(|e| {
            let message = e.to_string();
            // A line is one JSON document: "line 1" is noise, the column is not.
            DecodeError {
                message: message.replace(" at line 1 column ", " at column "),
                column: (e.column() > 0).then_some(e.column() as u64),
                task_id: None,
            }
        })?;
        for submission in &task.submissions {
            for annotation in &submission.annotations {
                annotation.check().map_err(|field| DecodeError {
                    message: format!(
                        "task {}: annotation {} of type {} has no valid `{field}`",
                        task.id,
                        annotation.id,
                        annotation.kind.as_str()
                    ),
                    column: None,
                    task_id: Some(task.id.to_string()),
                })?;
            }
        }
        Ok(task)
    }

    fn is_native(&self) -> bool {
        true
    }
}
