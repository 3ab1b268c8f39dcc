//! The S3 request drop: a request file written to `requests/{project}/{name}.json` in
//! the platform bucket asks for an export as a POST would, and is answered with a
//! response file beside it.

use super::{Api, ApiError, At};
use crate::error::chain;
use crate::ports::{Condition, StoreError};
use crate::project::is_project_id;
use crate::service::{Accepted, Caller};
use axum::http::StatusCode;
use bytes::Bytes;

impl Api {
    /// Handles a request file dropped at `requests/{project}/{name}.json` in the
    /// platform bucket: the same export as a POST, by the identity in the object's
    /// `requested-by` metadata. The outcome is written to `responses/{project}/{name}.json`
    /// and the request file is deleted (it may hold a webhook secret in clear).
    ///
    /// `writer` is the principal that put the object, as S3's event names it
    /// (`userIdentity.principalId`, `AWS:AROA...:session`): only the deployment's request
    /// writers may drop requests, whatever IAM let through.
    ///
    /// `event_id` identifies the S3 event (its `sequencer`, or the object's version id):
    /// S3 reporting one put twice is one export, while dropping the same file again,
    /// the same bytes with the same ETag, is a new put and a new export.
    ///
    /// A refusal (a 4xx) is an outcome; a server error (the store or the queue did not
    /// answer) is an error, so that Lambda retries the event.
    pub async fn accept_dropped_request(
        &self,
        key: &str,
        event_id: &str,
        writer: &str,
    ) -> Result<DropOutcome, DropError> {
        let Some((project, name)) = parse_drop_key(key) else {
            return Ok(DropOutcome::Ignored(format!(
                "{key} is not requests/{{project}}/{{name}}.json"
            )));
        };
        let outcome = if self.is_request_writer(writer) {
            let object = match self.exports.store().get(key).await {
                Ok(o) => o,
                // A delete that raced the event, or a duplicate event after cleanup.
                Err(StoreError::NotFound(_)) => {
                    return Ok(DropOutcome::Ignored(format!("{key} is gone")))
                }
                Err(e) => return Err(e.into()),
            };
            self.create_dropped(key, project, &object, event_id).await
        } else {
            tracing::warn!(
                key,
                writer,
                "a request file written by a principal that is not a request writer"
            );
            Err(ApiError {
                status: StatusCode::FORBIDDEN,
                code: "NOT_A_REQUEST_WRITER",
                at: Some(At::Parameter("userIdentity.principalId".to_owned())),
                message: "this principal may not drop export requests; the deployment names its request writers (RequestWriterRoleIds)".into(),
                retry_after: None,
            })
        };
        let (body, result) = match outcome {
            Ok(accepted) => (
                serde_json::json!({ "export": accepted }),
                DropOutcome::Accepted(accepted.id),
            ),
            Err(e) if e.status.is_server_error() => return Err(DropError::Unavailable(e)),
            Err(e) => (
                serde_json::json!({ "error": e.problem() }),
                DropOutcome::Refused(e),
            ),
        };
        let response_key = format!("responses/{project}/{name}.json");
        let body = serde_json::to_vec_pretty(&body).unwrap_or_default();
        self.exports
            .store()
            .put(
                &response_key,
                Bytes::from(body),
                "application/json",
                Condition::None,
            )
            .await?;
        // Answered: the request file has done its work. A delete that fails is left to
        // the bucket's lifecycle rule on requests/.
        if let Err(e) = self.exports.store().delete(key).await {
            tracing::warn!(key, error = %chain(&e), "a handled request file was not deleted");
        }
        Ok(result)
    }

    /// Whether S3's `principalId` of a writer (`AWS:AROA...:session`, `AWS:AIDA...`) is
    /// one of the deployment's request writers, named by their unique ids.
    fn is_request_writer(&self, principal: &str) -> bool {
        let principal = principal.strip_prefix("AWS:").unwrap_or(principal);
        let unique_id = principal.split(':').next().unwrap_or_default();
        !unique_id.is_empty()
            && self
                .settings
                .request_writers
                .iter()
                .any(|writer| writer == unique_id)
    }

    /// The export a dropped request file asks for, as its `requested-by` manager.
    async fn create_dropped(
        &self,
        key: &str,
        project: &str,
        object: &crate::ports::Object,
        event_id: &str,
    ) -> Result<Accepted, ApiError> {
        let Some(email) = object.metadata.get("requested-by") else {
            return Err(ApiError {
                status: StatusCode::UNAUTHORIZED,
                code: "UNAUTHENTICATED",
                at: Some(At::Parameter("x-amz-meta-requested-by".to_owned())),
                message: "a dropped request names its requester in the requested-by metadata"
                    .into(),
                retry_after: None,
            });
        };
        // A request writer put the file: it vouches for the address.
        let caller = Caller::person(email.clone(), true);
        // One put is one export, however often S3 reports it.
        let key_for_object = format!("s3-drop:{key}:{event_id}");
        Ok(self
            .exports
            .create(&caller, project, &object.body, Some(&key_for_object), None)
            .await?)
    }
}

/// Why a dropped request must be handled again (Lambda retries the event, then sends it
/// to the function's on-failure destination).
#[derive(Debug, thiserror::Error)]
pub enum DropError {
    /// The platform bucket did not answer.
    #[error("the platform bucket")]
    Store(#[from] StoreError),
    /// Creating the export met a server error (the store or the queue).
    #[error("creating the export: {} {}", .0.code, .0.message)]
    Unavailable(ApiError),
}

/// What a dropped request led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropOutcome {
    /// An export was queued (or already was, for this object).
    Accepted(String),
    /// The request was refused; the response file says why.
    Refused(ApiError),
    /// The key is not a request file.
    Ignored(String),
}

fn parse_drop_key(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix("requests/")?;
    let (project, file) = rest.split_once('/')?;
    let name = file.strip_suffix(".json")?;
    let valid_name = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !name.starts_with('.');
    (is_project_id(project) && valid_name).then_some((project, name))
}

#[cfg(test)]
mod tests {
    use super::parse_drop_key;

    #[test]
    fn drop_keys_name_a_project_and_a_file() {
        assert_eq!(
            parse_drop_key("requests/demo/nightly-1.json"),
            Some(("demo", "nightly-1"))
        );
        assert_eq!(parse_drop_key("requests/demo/a/b.json"), None);
        assert_eq!(parse_drop_key("requests/../b.json"), None);
        assert_eq!(parse_drop_key("requests/demo/x.txt"), None);
        assert_eq!(parse_drop_key("other/demo/x.json"), None);
    }
}
