//! Job records: one JSON object per export at `jobs/{id}.json`. Every change is a
//! compare-and-swap on the object's entity tag, so two deliveries of the same SQS
//! message can never both run an export or move a job backwards.
//!
//! An unfinished job is also marked by an empty object at `active/{project}/{id}`,
//! written before the record and deleted when the job ends, so that a project's running
//! exports (the API's limit) and the abandoned ones (the sweeper) are one listing away
//! instead of a scan of every job ever run. A marker whose delete failed, or whose
//! record was never written, is cleared by whoever reads it next.

mod lifecycle;
mod store;

pub use store::{
    is_export_id, ActiveJob, IndexEntry, JobError, JobStore, Latest, Versioned, ACTIVE_PREFIX,
    INDEX_PREFIX, PATIENT_TRIES, TENANT_PREFIX,
};

use crate::error::Failure;
use crate::request::ExportRequest;
use chrono::{DateTime, Utc};
use labelport_engine::progress::{Progress, SkippedLine};
use serde::{Deserialize, Serialize};

/// Version of the job record layout.
pub const JOB_SCHEMA_VERSION: u32 = 1;

/// Where an export is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobState {
    /// Accepted, waiting for a worker.
    Queued,
    /// A worker is writing it.
    Running,
    /// The file is complete and downloadable.
    Succeeded,
    /// It stopped; `error` says why.
    Failed,
    /// A manager cancelled it; nothing of it was kept.
    Cancelled,
    /// It succeeded, and its files have since expired (the deployment's retention).
    /// Never stored: the API derives it from the finish time.
    Expired,
}

impl JobState {
    /// The state's name, as the API shows it (`SUCCEEDED`).
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "QUEUED",
            JobState::Running => "RUNNING",
            JobState::Succeeded => "SUCCEEDED",
            JobState::Failed => "FAILED",
            JobState::Cancelled => "CANCELLED",
            JobState::Expired => "EXPIRED",
        }
    }

    /// Whether the job will not change state again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled | JobState::Expired
        )
    }
}

/// One file of a finished export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResultFile {
    /// The file name.
    pub name: String,
    /// The customer's bucket it was delivered to; none for the platform bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// Its key in the destination bucket.
    pub key: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
    /// Its MIME type as stored (`application/gzip` when compressed).
    pub content_type: String,
    /// The export itself, or its errors report.
    pub role: labelport_engine::assembly::FileRole,
}

/// What a finished export produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportResult {
    /// The export's files, in order (parts in part order), the errors report last.
    pub files: Vec<ResultFile>,
    /// Key of the manifest written next to them.
    pub manifest_key: String,
    /// The manifest itself (format, filters, counts, schema versions), so the status
    /// endpoint shows it without another read; its `files` are left out here, being
    /// `files` above.
    #[serde(default)]
    pub manifest: serde_json::Value,
    /// The first malformed lines skipped, if any (at most 100).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped_lines: Vec<SkippedLine>,
}

/// Whether the customer was told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NotificationState {
    /// Not yet.
    Pending,
    /// A notifier claimed it and is sending.
    Sending,
    /// Done.
    Sent,
    /// The delivery was refused for good (a webhook receiver answered 4xx, or its
    /// address is not allowed); `notification.error` says why.
    Failed,
}

/// One attempt to reach the customer (a webhook POST).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryAttempt {
    /// When it was made.
    pub at: DateTime<Utc>,
    /// What came back: `HTTP 200`, `HTTP 503`, `no answer within 10s`, `refused: ...`.
    pub outcome: String,
    /// How long it took.
    pub duration_ms: u64,
}

/// At most this many attempts are kept on a job (the latest).
pub const MAX_RECORDED_ATTEMPTS: usize = 20;

/// The notification's progress, for exactly-once e-mail over at-least-once SQS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// Where it is.
    pub state: NotificationState,
    /// When a notifier claimed it (a crashed notifier's claim expires).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_at: Option<DateTime<Utc>>,
    /// When it was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<DateTime<Utc>>,
    /// Each attempt to reach the customer, oldest first (webhooks).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<DeliveryAttempt>,
    /// Why the delivery failed for good.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The recipients an e-mail reached before a send failed part-way: a retry sends to
    /// the others only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sent_to: Vec<String>,
}

impl Notification {
    /// Adds attempts, keeping the latest [`MAX_RECORDED_ATTEMPTS`].
    pub fn record(&mut self, attempts: &[DeliveryAttempt]) {
        self.attempts.extend_from_slice(attempts);
        let excess = self.attempts.len().saturating_sub(MAX_RECORDED_ATTEMPTS);
        self.attempts.drain(..excess);
    }
}

/// The job record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    /// Layout version.
    pub schema_version: u32,
    /// The export id.
    pub id: String,
    /// The project exported.
    pub project: String,
    /// The e-mail of whoever asked.
    pub requested_by: String,
    /// The tenant the project belonged to when it was asked for (its exports count
    /// against the tenant's cap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The validated request.
    pub request: ExportRequest,
    /// Where the job is.
    pub state: JobState,
    /// When it was accepted.
    pub created_at: DateTime<Utc>,
    /// When a worker started it (the latest attempt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// How many workers started it (more than one after a crash).
    #[serde(default)]
    pub attempts: u32,
    /// Counts so far.
    #[serde(default)]
    pub progress: Progress,
    /// What it produced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ExportResult>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Failure>,
    /// Whether the customer was told.
    pub notification: Notification,
    /// When a manager asked to cancel it while it ran: the worker notices within its
    /// progress interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_requested_at: Option<DateTime<Utc>>,
    /// The export that replaced this one (the project replaces previous exports): its
    /// files are deleted [`REPLACED_FILES_KEPT`] after `replaced_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced_by: Option<String>,
    /// When it was replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced_at: Option<DateTime<Utc>>,
    /// The id the API's, the worker's and the notifier's log lines for this export carry
    /// (`correlation_id`): the request's `x-correlation-id`, else its API Gateway request
    /// id, else a new one. None on records written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

/// How long a replaced export's files stay after the export that replaces it has
/// succeeded: longer than a presigned URL handed out lives (5 minutes) and than its own
/// notification may wait in the queue through its retries (about half an hour), so
/// nobody is sent a link, or is half-way through a download, when the files go.
pub const REPLACED_FILES_KEPT: std::time::Duration = std::time::Duration::from_secs(3600);

/// Where exports waiting to have their files deleted are marked:
/// `retiring/{project}/{id}`, written before the export is marked replaced.
pub const RETIRING_PREFIX: &str = "retiring/";

impl Job {
    /// Whether the export was replaced long enough ago that its files are deleted (or
    /// about to be): past [`REPLACED_FILES_KEPT`].
    pub fn replaced_and_gone(&self, now: DateTime<Utc>) -> bool {
        self.replaced_by.is_some()
            && self.replaced_at.is_none_or(|at| {
                let kept = chrono::Duration::from_std(REPLACED_FILES_KEPT)
                    .unwrap_or(chrono::Duration::MAX);
                now - at > kept
            })
    }

    /// Whether the export's files have expired: it succeeded more than `retention` ago,
    /// into the platform bucket (a customer's bucket keeps what it is given).
    pub fn expired(&self, retention: Option<std::time::Duration>, now: DateTime<Utc>) -> bool {
        let (Some(retention), Some(finished)) = (retention, self.finished_at) else {
            return false;
        };
        let in_platform_bucket = self
            .result
            .as_ref()
            .and_then(|r| r.files.first())
            .is_some_and(|f| f.bucket.is_none());
        if !in_platform_bucket {
            return false;
        }
        let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
        self.state == JobState::Succeeded && now - finished > retention
    }

    /// The name the export's files start with:
    /// `{project}-{format}-{yyyymmddThhmmssZ}-{id8}`, the format in lower case with
    /// `-` for `_`, the time the export was requested, and the last eight characters of
    /// its id (the random ones: the first eight of a v7 id are its timestamp).
    pub fn base_name(&self) -> String {
        let format = self
            .request
            .format
            .as_str()
            .to_ascii_lowercase()
            .replace('_', "-");
        let id8 = &self.id[self.id.len().saturating_sub(8)..];
        format!(
            "{}-{format}-{}-{id8}",
            self.project,
            self.created_at.format("%Y%m%dT%H%M%SZ")
        )
    }

    /// A new queued job.
    pub fn new(id: String, project: String, requested_by: String, request: ExportRequest) -> Self {
        Job {
            schema_version: JOB_SCHEMA_VERSION,
            id,
            project,
            requested_by,
            tenant: None,
            request,
            state: JobState::Queued,
            created_at: Utc::now(),
            started_at: None,
            finished_at: None,
            attempts: 0,
            progress: Progress::default(),
            result: None,
            error: None,
            notification: Notification {
                state: NotificationState::Pending,
                claimed_at: None,
                sent_at: None,
                attempts: Vec::new(),
                error: None,
                sent_to: Vec::new(),
            },
            cancel_requested_at: None,
            correlation_id: None,
            replaced_by: None,
            replaced_at: None,
        }
    }
}
