//! Why the export service refused or failed, in its own terms: the HTTP API turns each
//! into problem details in one place (`api::problem`), the S3 drop into a response file.

use crate::error::RequestError;
use crate::ports::BoxError;

/// Why the export service refused a call, or could not answer it.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A field of the request is refused.
    #[error(transparent)]
    Invalid(#[from] RequestError),
    /// A path, query or header parameter is refused.
    #[error("{parameter}: {message}")]
    BadParameter {
        /// The parameter (`project`, `cursor`, `Idempotency-Key`).
        parameter: &'static str,
        /// Why.
        message: String,
    },
    /// No such thing, or the caller may not know it exists.
    #[error("{message}")]
    NotFound {
        /// `PROJECT_NOT_FOUND`, `EXPORT_NOT_FOUND`, `NO_EXPORT_YET`.
        code: &'static str,
        /// Why.
        message: String,
    },
    /// The caller is a member of the project but not a manager.
    #[error("{0}")]
    NotAManager(String),
    /// The project or export is in a state that does not allow it.
    #[error("{message}")]
    Conflict {
        /// `PROJECT_NOT_STARTED`, `PROJECT_ARCHIVED`, `EXPORT_ENDED`.
        code: &'static str,
        /// Why.
        message: String,
    },
    /// It existed, and is gone.
    #[error("{message}")]
    Gone {
        /// `EXPORT_EXPIRED`.
        code: &'static str,
        /// Why.
        message: String,
    },
    /// The idempotency key was used for a different request.
    #[error("this key was used for a different request")]
    KeyReused,
    /// The project (or its tenant) has as many unfinished exports as it may.
    #[error("{0}")]
    TooManyExports(String),
    /// Storage or the queue did not answer while `doing` something.
    #[error("{doing}")]
    Unavailable {
        /// What was being done, for the caller (`reading the export`).
        doing: &'static str,
        /// The backend's error, for the log only.
        #[source]
        source: BoxError,
    },
}

impl ServiceError {
    /// Storage or the queue failed while `doing` something.
    pub fn unavailable(doing: &'static str, source: impl Into<BoxError>) -> Self {
        ServiceError::Unavailable {
            doing,
            source: source.into(),
        }
    }
}
