//! The error answers routes share, declared once for the OpenAPI document: a route
//! lists them by name beside its own (`responses((status = 200, ..), CallerErrors,
//! ProjectNotFound)`). Each is `application/problem+json` with a [`Problem`] body.

use super::Problem;

/// The errors every authenticated route can answer.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // read by the document only
pub(super) enum CallerErrors {
    /// A path, query or body value is refused: `pointer` or `parameter` names it.
    #[response(status = 400, content_type = "application/problem+json")]
    Refused(Problem),
    /// No valid bearer token.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthenticated(Problem),
    /// The caller's e-mail is not verified, or the caller is not a manager of the project.
    #[response(status = 403, content_type = "application/problem+json")]
    NotAManager(Problem),
    /// Storage or the queue did not answer; try again.
    #[response(status = 500, content_type = "application/problem+json")]
    Unavailable(Problem),
}

/// No such project, or the caller is not a member of it.
#[derive(utoipa::IntoResponses)]
#[response(status = 404, content_type = "application/problem+json")]
#[allow(dead_code)] // read by the document only
pub(super) struct ProjectNotFound(Problem);

/// No such export, or the caller is not a member of its project.
#[derive(utoipa::IntoResponses)]
#[response(status = 404, content_type = "application/problem+json")]
#[allow(dead_code)] // read by the document only
pub(super) struct ExportNotFound(Problem);
