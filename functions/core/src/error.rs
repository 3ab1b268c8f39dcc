//! Errors a person sees: request errors (4xx, naming the field) and the reasons an
//! export failed (with file and line where one applies).

use labelport_engine::pipeline::PipelineError;
use serde::{Deserialize, Serialize};

/// A request field at fault and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RequestError {
    /// The field, as a JSON path (`filters.states[1]`), or `body`.
    pub field: String,
    /// Why, for a person.
    pub message: String,
}

impl RequestError {
    /// Makes one.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        RequestError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<labelport_engine::plan::FieldError> for RequestError {
    fn from(e: labelport_engine::plan::FieldError) -> Self {
        RequestError {
            field: e.field,
            message: e.message,
        }
    }
}

impl From<labelport_engine::import::ImportError> for RequestError {
    fn from(e: labelport_engine::import::ImportError) -> Self {
        use labelport_engine::import::ImportError;
        match e {
            ImportError::Invalid { field, message } => RequestError::new(field, message),
            ImportError::Store { key, source } => {
                RequestError::new("source", format!("{key} could not be read: {source}"))
            }
        }
    }
}

/// Why an export ended without its files: a stable code a program can match on. The
/// codes are the contract (the status, the webhook, the e-mail and the metrics carry
/// them); the message beside a code says what happened for a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FailureCode {
    /// A source line is not a valid task (file and line given).
    InvalidSourceLine,
    /// A compressed source does not decompress (file and near line given).
    SourceCorrupt,
    /// The output hit one of its bounds (too many parts, temporary space).
    OutputLimit,
    /// The platform's storage did not answer, after every retry.
    StorageError,
    /// A bug in labelport; the detail is in the log.
    InternalError,
    /// A manager cancelled the export.
    Cancelled,
    /// The project's file is gone.
    ProjectNotFound,
    /// The project's file is not a valid project.
    InvalidProjectManifest,
    /// The request no longer fits the project (its format options, its filters).
    InvalidRequest,
    /// The project has no task files.
    NoTaskFiles,
    /// The import's settings are missing or invalid.
    InvalidImport,
    /// The import's export is not where the request said.
    ImportNotFound,
    /// The customer's bucket could not be opened through their role.
    DestinationUnavailable,
    /// The export could not be queued when it was asked for.
    NotQueued,
    /// No worker took the queued export in time.
    NotStarted,
    /// A worker took the export and was not heard from again.
    Abandoned,
    /// Every attempt stopped without finishing (time-outs, crashes).
    TooManyAttempts,
}

impl FailureCode {
    /// The code as the contract spells it (`STORAGE_ERROR`).
    pub fn as_str(self) -> &'static str {
        match self {
            FailureCode::InvalidSourceLine => "INVALID_SOURCE_LINE",
            FailureCode::SourceCorrupt => "SOURCE_CORRUPT",
            FailureCode::OutputLimit => "OUTPUT_LIMIT",
            FailureCode::StorageError => "STORAGE_ERROR",
            FailureCode::InternalError => "INTERNAL_ERROR",
            FailureCode::Cancelled => "CANCELLED",
            FailureCode::ProjectNotFound => "PROJECT_NOT_FOUND",
            FailureCode::InvalidProjectManifest => "INVALID_PROJECT_MANIFEST",
            FailureCode::InvalidRequest => "INVALID_REQUEST",
            FailureCode::NoTaskFiles => "NO_TASK_FILES",
            FailureCode::InvalidImport => "INVALID_IMPORT",
            FailureCode::ImportNotFound => "IMPORT_NOT_FOUND",
            FailureCode::DestinationUnavailable => "DESTINATION_UNAVAILABLE",
            FailureCode::NotQueued => "NOT_QUEUED",
            FailureCode::NotStarted => "NOT_STARTED",
            FailureCode::Abandoned => "ABANDONED",
            FailureCode::TooManyAttempts => "TOO_MANY_ATTEMPTS",
        }
    }
}

impl std::fmt::Display for FailureCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for FailureCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Why an export failed, as stored in the job record and shown by the status endpoint.
///
/// The one rule for what a customer may read: everything here is shown as it is (the
/// status, the e-mail, the webhook, the metrics' code), so `message` says what it means
/// for the customer and never carries a backend's text. Storage and internal failures
/// are made by [`Failure::storage`] and [`Failure::internal`], which log the detail and
/// keep a plain message; a source position is given only where the data is at fault.
#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error, utoipa::ToSchema,
)]
#[serde(rename_all = "camelCase")]
#[error("{code}: {message}")]
pub struct Failure {
    /// What kind of failure it is.
    pub code: FailureCode,
    /// What happened, for a person.
    pub message: String,
    /// The source file at fault, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The 1-based line in that file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
}

impl Failure {
    /// A failure not tied to a source position.
    pub fn new(code: FailureCode, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
            file: None,
            line: None,
        }
    }

    /// Storage that did not answer while `doing` something. The SDK's text (keys,
    /// request ids, endpoints) goes to the log; the job record, the status and the
    /// e-mail get a code and what it means for the customer.
    pub fn storage(doing: &str, err: &(dyn std::error::Error + 'static)) -> Self {
        tracing::warn!(error = %chain(err), "storage error while {doing}");
        Failure::new(
            FailureCode::StorageError,
            format!("the platform's storage did not answer while {doing}; the export is retried automatically, and ends with this message only if it keeps happening"),
        )
    }

    /// A bug, met while `doing` something: the detail goes to the log only.
    pub fn internal(doing: &str, detail: &str) -> Self {
        tracing::error!(detail, "internal error while {doing}");
        Failure::new(
            FailureCode::InternalError,
            format!("labelport failed while {doing} (an internal error, logged); try again, and if it happens again report it with the export id"),
        )
    }
}

impl Failure {
    /// An export a manager cancelled.
    pub fn cancelled() -> Self {
        Failure::new(
            FailureCode::Cancelled,
            "a manager cancelled the export; nothing of it was kept",
        )
    }
}

impl From<&PipelineError> for Failure {
    /// The failure a pipeline error records on the job: the source position where the
    /// data is at fault, a code and a plain reason where storage or a bug is.
    fn from(e: &PipelineError) -> Self {
        match e {
            PipelineError::InvalidLine {
                file,
                line,
                message,
            } => Failure {
                code: FailureCode::InvalidSourceLine,
                message: format!("{file}, line {line}: {message}"),
                file: Some(file.clone()),
                line: Some(*line),
            },
            PipelineError::Read { file, source } => Failure {
                file: Some(file.clone()),
                ..Failure::storage(&format!("reading {file}"), source)
            },
            PipelineError::Sink(source) => Failure::storage("writing the export", source.as_ref()),
            PipelineError::Output(message) => {
                Failure::new(FailureCode::OutputLimit, message.clone())
            }
            PipelineError::Corrupt { file, line, .. } => Failure {
                code: FailureCode::SourceCorrupt,
                message: e.to_string(),
                file: Some(file.clone()),
                line: Some(*line),
            },
            PipelineError::Internal(message) => Failure::internal("encoding the export", message),
            PipelineError::Cancelled => Failure::cancelled(),
        }
    }
}

/// An error that says when its message should be delivered again, instead of the
/// queue consumer's usual backoff (a job or a notification another attempt holds: when
/// its hold ends). Found in an error's `source()` chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("deliver the message again in {} s", .0.as_secs())]
pub struct RedeliverAfter(pub std::time::Duration);

impl RedeliverAfter {
    /// The delay an error asks for, looking through its `source()` chain.
    pub fn of(err: &(dyn std::error::Error + 'static)) -> Option<std::time::Duration> {
        let mut next = Some(err);
        while let Some(e) = next {
            if let Some(RedeliverAfter(after)) = e.downcast_ref::<RedeliverAfter>() {
                return Some(*after);
            }
            next = e.source();
        }
        None
    }
}

/// Renders an error and its `source()` chain on one line, for logs and failure messages.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut next = err.source();
    while let Some(e) = next {
        let s = e.to_string();
        if !out.ends_with(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        next = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bug_reaches_the_customer_as_a_code_and_the_log_as_its_detail() {
        let failure = Failure::from(&PipelineError::Internal(
            "an encoder panicked: index out of bounds in a format".into(),
        ));
        assert_eq!(failure.code, FailureCode::InternalError);
        assert!(
            !failure.message.contains("index out of bounds"),
            "the panic is for the log, not the customer: {}",
            failure.message
        );
    }

    #[test]
    fn data_errors_keep_their_place_and_limits_their_reason() {
        let failure = Failure::from(&PipelineError::Corrupt {
            file: "p/tasks/f.ndjson.gz".into(),
            line: 7,
            message: "invalid gzip header".into(),
        });
        assert_eq!(
            (failure.code, failure.file.as_deref(), failure.line),
            (
                FailureCode::SourceCorrupt,
                Some("p/tasks/f.ndjson.gz"),
                Some(7)
            )
        );
        let failure = Failure::from(&PipelineError::Output("too many parts".into()));
        assert_eq!(
            failure,
            Failure::new(FailureCode::OutputLimit, "too many parts")
        );
    }
}
