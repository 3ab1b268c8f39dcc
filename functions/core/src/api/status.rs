//! The status body of an export: its state, progress, files with their signed links,
//! and why it failed.

use super::{Api, ApiError};
use crate::job::{Job, JobState, ResultFile};
use crate::request::ExportRequest;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use labelport_engine::progress::{Progress, SkippedLine};
use serde::Serialize;

/// The most files a status lists at once: an export may have up to
/// [`labelport_encoders::MAX_PARTS`] parts, and every listed file carries a signed link.
pub(super) const FILES_PAGE: usize = 100;

/// An export: its state, progress, files and links.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Status<'a> {
    /// The export id.
    id: &'a str,
    /// The project.
    project: &'a str,
    /// `EXPIRED` once the files are past the deployment's retention.
    state: JobState,
    /// The output format.
    format: &'a str,
    /// Who asked for it.
    requested_by: &'a str,
    /// The request as accepted: defaults filled in, secrets left out.
    #[schema(value_type = Object)]
    request: ExportRequest,
    created_at: chrono::DateTime<chrono::Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finished_at: Option<chrono::DateTime<chrono::Utc>>,
    attempts: u32,
    progress: &'a Progress,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<StatusResult<'a>>,
    /// Each attempt to reach the customer (webhooks), oldest first.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    delivery_attempts: &'a [crate::job::DeliveryAttempt],
    /// Why the delivery failed for good.
    #[serde(skip_serializing_if = "Option::is_none")]
    delivery_error: Option<&'a str>,
    /// A signed link to the first file, once it succeeded (none when delivered to the
    /// customer's bucket).
    #[serde(skip_serializing_if = "Option::is_none")]
    download_url: Option<String>,
    /// The export that replaced this one (the project replaces previous exports).
    #[serde(skip_serializing_if = "Option::is_none")]
    replaced_by: Option<&'a str>,
    /// When a manager asked to cancel it.
    #[serde(skip_serializing_if = "Option::is_none")]
    cancel_requested_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Why it failed, with file and line where one applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a crate::error::Failure>,
    /// Whether the customer was told.
    notification: crate::job::NotificationState,
}

/// What the export produced, each file with its signed link.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct StatusResult<'a> {
    /// The files, in order (parts in part order), the errors report last: at most
    /// 100 from `filesFrom`.
    files: Vec<StatusFile<'a>>,
    /// How many files the export has.
    files_total: usize,
    /// Pass as `filesFrom` for the next files; absent after the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_files_from: Option<usize>,
    /// The manifest's key.
    manifest_key: &'a str,
    /// The manifest: format, filters, counts (its file list is `files`).
    #[schema(value_type = Object)]
    manifest: &'a serde_json::Value,
    /// The first malformed lines skipped (`invalidLines: skip`), at most 100.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    skipped_lines: &'a [SkippedLine],
}

/// One file of an export.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct StatusFile<'a> {
    #[serde(flatten)]
    file: &'a ResultFile,
    /// A signed link, for files in the platform bucket.
    #[serde(skip_serializing_if = "Option::is_none")]
    download_url: Option<String>,
    /// `s3://bucket/key`, for files delivered into the customer's bucket.
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<String>,
}

impl Api {
    /// The status body of `job`, with signed links to its first files.
    pub(super) async fn status_response(&self, job: &Job) -> Result<Response, ApiError> {
        self.status_page(job, 0).await
    }

    /// The status body of `job`, with its files from the `files_from`th.
    pub(super) async fn status_page(
        &self,
        job: &Job,
        files_from: usize,
    ) -> Result<Response, ApiError> {
        let now = chrono::Utc::now();
        let mut download_url = None;
        let mut result = None;
        let shown = self.exports.shown_state(job, now);
        let expired = shown == JobState::Expired;
        let live = job.state == JobState::Succeeded && !job.replaced_and_gone(now) && !expired;
        if let (true, Some(r)) = (live, job.result.as_ref()) {
            let page = r.files.iter().skip(files_from).take(FILES_PAGE);
            let mut files = Vec::with_capacity(FILES_PAGE.min(r.files.len()));
            for file in page {
                let (link, location) = match &file.bucket {
                    Some(bucket) => (None, Some(format!("s3://{bucket}/{}", file.key))),
                    None => (
                        Some(
                            self.exports
                                .signed_link(&job.id, Some(&file.name), now)
                                .await?,
                        ),
                        None,
                    ),
                };
                files.push(StatusFile {
                    file,
                    download_url: link,
                    location,
                });
            }
            if r.files.first().is_some_and(|f| f.bucket.is_none()) {
                download_url = Some(self.exports.signed_link(&job.id, None, now).await?);
            }
            let next = files_from.saturating_add(FILES_PAGE);
            result = Some(StatusResult {
                files,
                files_total: r.files.len(),
                next_files_from: (next < r.files.len()).then_some(next),
                manifest_key: &r.manifest_key,
                manifest: &r.manifest,
                skipped_lines: &r.skipped_lines,
            });
        }
        let status = Status {
            id: &job.id,
            project: &job.project,
            state: shown,
            format: job.request.format.as_str(),
            requested_by: &job.requested_by,
            request: job.request.shown(),
            created_at: job.created_at,
            started_at: job.started_at,
            finished_at: job.finished_at,
            attempts: job.attempts,
            progress: &job.progress,
            result,
            delivery_attempts: &job.notification.attempts,
            delivery_error: job.notification.error.as_deref(),
            download_url,
            replaced_by: job.replaced_by.as_deref(),
            cancel_requested_at: job.cancel_requested_at,
            error: job.error.as_ref(),
            notification: job.notification.state,
        };
        Ok(([(header::CACHE_CONTROL, "no-store")], Json(status)).into_response())
    }
}
