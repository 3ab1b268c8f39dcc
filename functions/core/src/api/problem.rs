//! The API's errors, answered as RFC 9457 problem details
//! (`application/problem+json`): the standard members, plus a stable `code` and where
//! in the request the fault lies, a JSON Pointer into the body (`pointer`) or the name
//! of a path, query or header parameter (`parameter`).

use crate::error::{chain, RequestError};
use crate::service::{ServiceError, RETRY_AFTER_LIMIT};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::time::Duration;

/// The media type of an error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Where in a request the fault lies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum At {
    /// A field of the JSON body, as the parser names it: `filters.states[1]`, or
    /// `body` for the body as a whole.
    Body(String),
    /// A path, query or header parameter: `limit`, `Idempotency-Key`.
    Parameter(String),
}

/// An HTTP error: a status, a stable code and a message for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The status.
    pub status: StatusCode,
    /// A stable code.
    pub code: &'static str,
    /// The part of the request at fault.
    pub at: Option<At>,
    /// Why, for a person.
    pub message: String,
    /// When to try again (`Retry-After`), for a 429.
    pub retry_after: Option<Duration>,
}

impl ApiError {
    /// An error not tied to a part of the request.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            at: None,
            message: message.into(),
            retry_after: None,
        }
    }

    /// A 400 naming a path, query or header parameter.
    pub fn parameter(name: &str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "INVALID_REQUEST", message).at_parameter(name)
    }

    /// The same error, naming parameter `name` as the part at fault.
    pub fn at_parameter(mut self, name: &str) -> Self {
        self.at = Some(At::Parameter(name.to_owned()));
        self
    }

    /// A 500 whose cause is logged, not returned: internal error text is not for callers.
    pub fn internal(context: &str, err: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!(error = %chain(err), "{context}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            format!("{context}; try again later"),
        )
    }

    /// The problem details body.
    pub fn problem(&self) -> Problem {
        let (pointer, parameter) = match &self.at {
            None => (None, None),
            Some(At::Body(path)) => (Some(json_pointer(path)), None),
            Some(At::Parameter(name)) => (None, Some(name.clone())),
        };
        Problem {
            problem_type: "about:blank".to_owned(),
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            detail: self.message.clone(),
            code: self.code.to_owned(),
            pointer,
            parameter,
        }
    }
}

impl From<RequestError> for ApiError {
    fn from(e: RequestError) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "INVALID_REQUEST",
            at: Some(At::Body(e.field)),
            message: e.message,
            retry_after: None,
        }
    }
}

impl From<ServiceError> for ApiError {
    /// The one place a service error becomes an HTTP status and problem details.
    fn from(e: ServiceError) -> Self {
        let plain = |status, code, message| ApiError::new(status, code, message);
        match e {
            ServiceError::Invalid(e) => e.into(),
            ServiceError::BadParameter { parameter, message } => {
                ApiError::parameter(parameter, message)
            }
            ServiceError::NotFound { code, message } => plain(StatusCode::NOT_FOUND, code, message),
            ServiceError::NotAManager(message) => {
                plain(StatusCode::FORBIDDEN, "FORBIDDEN", message)
            }
            ServiceError::Conflict { code, message } => plain(StatusCode::CONFLICT, code, message),
            ServiceError::Gone { code, message } => plain(StatusCode::GONE, code, message),
            e @ ServiceError::KeyReused => ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: "IDEMPOTENCY_KEY_REUSED",
                at: Some(At::Parameter("Idempotency-Key".to_owned())),
                message: e.to_string(),
                retry_after: None,
            },
            ServiceError::TooManyExports(message) => ApiError {
                status: StatusCode::TOO_MANY_REQUESTS,
                code: "TOO_MANY_EXPORTS",
                at: Some(At::Parameter("project".to_owned())),
                message,
                retry_after: Some(RETRY_AFTER_LIMIT),
            },
            ServiceError::Unavailable { doing, source } => {
                ApiError::internal(doing, source.as_ref())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON))],
            body,
        )
            .into_response();
        if let Some(after) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(after.as_secs()));
        }
        response
    }
}

/// An error as RFC 9457 problem details. `type` is `about:blank` (so `title` is the
/// status's own phrase); `code` says which error it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(example = json!({
    "type": "about:blank", "title": "Bad Request", "status": 400,
    "detail": "`annotated` is not one of the states pending, annotated, ...",
    "code": "INVALID_REQUEST", "pointer": "/filters/states/1"
}))]
pub struct Problem {
    /// Always `about:blank`: the status and `code` say what happened.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// The status's phrase (`Bad Request`).
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong and what to do, for a person.
    pub detail: String,
    /// A stable code to branch on (`INVALID_REQUEST`, `EXPORT_NOT_FOUND`, ...).
    pub code: String,
    /// The body field at fault, as a JSON Pointer (RFC 6901) into the request body
    /// (or the dropped request file): `/filters/states/1`; `""` is the whole body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// The path, query or header parameter at fault: `limit`, `Idempotency-Key`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
}

/// Turns a parser's field path (`filters.states[1]`, `split.maxFileBytes`, `body`)
/// into a JSON Pointer (`/filters/states/1`, `/split/maxFileBytes`, ``).
pub fn json_pointer(path: &str) -> String {
    if path == "body" {
        return String::new();
    }
    let mut pointer = String::with_capacity(path.len() + 1);
    let mut segment_open = false;
    for c in path.chars() {
        match c {
            '.' | '[' => segment_open = false,
            ']' => {}
            c => {
                if !segment_open {
                    pointer.push('/');
                    segment_open = true;
                }
                match c {
                    '~' => pointer.push_str("~0"),
                    '/' => pointer.push_str("~1"),
                    c => pointer.push(c),
                }
            }
        }
    }
    pointer
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn field_paths_become_json_pointers() {
        for (path, pointer) in [
            ("body", ""),
            ("format", "/format"),
            ("filters.states[1]", "/filters/states/1"),
            ("delivery.recipients[0]", "/delivery/recipients/0"),
            ("split.maxFileBytes", "/split/maxFileBytes"),
            ("a/b~c", "/a~1b~0c"),
        ] {
            assert_eq!(json_pointer(path), pointer, "{path}");
        }
    }

    #[test]
    fn a_request_error_is_a_problem_naming_the_field() {
        let error = ApiError::from(RequestError::new("filters.states[1]", "no such state"));
        let body: serde_json::Value = serde_json::to_value(error.problem()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "type": "about:blank", "title": "Bad Request", "status": 400,
                "detail": "no such state", "code": "INVALID_REQUEST",
                "pointer": "/filters/states/1",
            })
        );
        let response = ApiError::parameter("limit", "must be 1 to 100").into_response();
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
    }
}
