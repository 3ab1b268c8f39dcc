//! The export service: asking for an export, following, cancelling and listing them,
//! as plain functions of a caller and their arguments that return domain errors
//! ([`ServiceError`]). The HTTP API (`api`) and the S3 request drop are two doors to it;
//! neither holds a rule of its own about who may export what.

mod create;
mod error;
mod limits;
mod list;

pub use error::ServiceError;
pub use limits::RETRY_AFTER_LIMIT;
pub use list::{ExportPage, ListedExport};

use crate::delivery::DeliveryPolicy;
use crate::job::{is_export_id, Job, JobError, JobState, JobStore};
use crate::links::LinkSigner;
use crate::messages::ExportMessage;
use crate::ports::{Buckets, NoBuckets, ObjectStore, Queue};
use crate::project::{is_project_id, load_project, ProjectError};
use crate::seal::Sealer;
use crate::tenancy::ExternalIds;
use labelport_model::{Project, Role};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The caller's e-mail, as the identity provider asserts it; for a service,
    /// `service:{client id}` (what its exports record as their requester).
    pub email: String,
    /// Whether the identity provider verified that the caller owns that address.
    /// Membership keys on the address, so an unverified one is refused (403).
    pub email_verified: bool,
    /// The OAuth client id of a service calling with its own token; `None` for a person.
    pub service: Option<String>,
}

impl Caller {
    /// A person, by e-mail.
    pub fn person(email: impl Into<String>, email_verified: bool) -> Self {
        Caller {
            email: email.into(),
            email_verified,
            service: None,
        }
    }

    /// A service, by the client id its client-credentials token carries.
    pub fn service(client_id: impl Into<String>) -> Self {
        let client_id = client_id.into();
        Caller {
            email: format!("service:{client_id}"),
            email_verified: true,
            service: Some(client_id),
        }
    }
}

/// The rules the service applies.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// The API's public base URL, for status URLs.
    pub public_url: String,
    /// At most this many unfinished exports per project (0: no limit).
    pub max_active_per_project: u32,
    /// At most this many unfinished exports per tenant, across its projects (0: none).
    pub max_active_per_tenant: u32,
    /// What deliveries may do (the e-mail allow-list).
    pub delivery: DeliveryPolicy,
    /// How long an export's files are kept; past it an export shows EXPIRED.
    pub retention: Option<Duration>,
}

/// The answer to a create: the export, and whether this request made it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Accepted {
    /// The export id.
    pub id: String,
    /// Its state now.
    pub state: JobState,
    /// The project.
    pub project: String,
    /// Where to poll.
    pub status_url: String,
    /// Where to download once it succeeded (none when delivered to the customer's bucket).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub download_url: Option<String>,
    /// False when an idempotency key returned an earlier export.
    #[serde(skip)]
    pub created: bool,
}

/// The export service and what it needs.
pub struct ExportService {
    store: Arc<dyn ObjectStore>,
    jobs: JobStore,
    queue: Arc<dyn Queue>,
    links: Arc<LinkSigner>,
    sealer: Sealer,
    buckets: Arc<dyn Buckets>,
    external_ids: Option<Arc<ExternalIds>>,
    settings: ServiceSettings,
}

impl ExportService {
    /// Assembles the service. Download links are signed by `links`, secrets sealed with
    /// its keys.
    pub fn new(
        store: Arc<dyn ObjectStore>,
        queue: Arc<dyn Queue>,
        links: Arc<LinkSigner>,
        settings: ServiceSettings,
    ) -> Self {
        ExportService {
            jobs: JobStore::new(store.clone()),
            store,
            queue,
            sealer: Sealer::new(links.keys()),
            links,
            buckets: Arc::new(NoBuckets),
            external_ids: None,
            settings,
        }
    }

    /// Checks access to customers' buckets through `buckets` (EXTERNAL_OBJECT_STORAGE).
    pub fn with_buckets(mut self, buckets: Arc<dyn Buckets>) -> Self {
        self.buckets = buckets;
        self
    }

    /// Assumes customers' roles with the external ids `ids` issues to their tenants.
    pub fn with_external_ids(mut self, ids: Arc<ExternalIds>) -> Self {
        self.external_ids = Some(ids);
        self
    }

    /// The job records.
    pub fn jobs(&self) -> &JobStore {
        &self.jobs
    }

    /// The platform bucket.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The signer of download links.
    pub fn links(&self) -> &LinkSigner {
        &self.links
    }

    /// The rules the service applies.
    pub fn settings(&self) -> &ServiceSettings {
        &self.settings
    }

    /// The external id of `tenant`, where customer roles are set up.
    pub async fn external_id(&self, tenant: &str) -> Result<Option<String>, ServiceError> {
        match &self.external_ids {
            Some(ids) => ids
                .of(tenant)
                .await
                .map(Some)
                .map_err(|e| ServiceError::unavailable("reading the external id key", e)),
            None => Ok(None),
        }
    }

    /// Checks that `caller` manages `project`, and returns the project.
    pub async fn authorize(&self, caller: &Caller, project: &str) -> Result<Project, ServiceError> {
        if !is_project_id(project) {
            return Err(ServiceError::BadParameter {
                parameter: "project",
                message: "must be 1 to 64 lower-case letters, digits, '-', '_' or '.'".into(),
            });
        }
        let manifest = load_project(self.store.as_ref(), project)
            .await
            .map_err(|e| match e {
                ProjectError::NotFound(_) => ServiceError::NotFound {
                    code: "PROJECT_NOT_FOUND",
                    message: e.to_string(),
                },
                other => ServiceError::unavailable("reading the project", other),
            })?;
        let role = match &caller.service {
            Some(client_id) => manifest.role_of_service(client_id),
            None => manifest.role_of(&caller.email),
        };
        match role {
            Some(Role::Manager) => Ok(manifest),
            // A project is not disclosed to anyone outside it: the same answer as for a
            // project that does not exist.
            None => Err(ServiceError::NotFound {
                code: "PROJECT_NOT_FOUND",
                message: ProjectError::NotFound(project.to_owned()).to_string(),
            }),
            Some(_) => Err(ServiceError::NotAManager(format!(
                "only managers of project {project} can export it"
            ))),
        }
    }

    /// The export `id`, if `caller` manages its project.
    pub async fn authorized_job(&self, caller: &Caller, id: &str) -> Result<Job, ServiceError> {
        if !is_export_id(id) {
            return Err(ServiceError::BadParameter {
                parameter: "id",
                message: "not an export id".into(),
            });
        }
        let job = self.job(id).await?;
        // Someone outside the project learns nothing of its exports, not even that
        // they exist.
        match self.authorize(caller, &job.project).await {
            Err(ServiceError::NotFound {
                code: "PROJECT_NOT_FOUND",
                ..
            }) => Err(export_not_found(id)),
            Err(e) => Err(e),
            Ok(_) => Ok(job),
        }
    }

    /// The export `id`, whoever asks (a signed link is its own permission).
    pub async fn job(&self, id: &str) -> Result<Job, ServiceError> {
        match self.jobs.get(id).await {
            Ok(v) => Ok(v.job),
            Err(JobError::NotFound(_)) => Err(export_not_found(id)),
            Err(e) => Err(ServiceError::unavailable("reading the export", e)),
        }
    }

    /// The project's latest export that succeeded.
    pub async fn latest(&self, caller: &Caller, project: &str) -> Result<Job, ServiceError> {
        self.authorize(caller, project).await?;
        let latest = self
            .jobs
            .latest(project)
            .await
            .map_err(|e| ServiceError::unavailable("reading the latest export", e))?;
        let Some(latest) = latest else {
            return Err(ServiceError::NotFound {
                code: "NO_EXPORT_YET",
                message: format!("project {project} has no export that succeeded yet"),
            });
        };
        match self.jobs.get(&latest.export_id).await {
            Ok(v) => Ok(v.job),
            // The pointer outlives the record it points to (records expire).
            Err(JobError::NotFound(_)) => Err(ServiceError::Gone {
                code: "EXPORT_EXPIRED",
                message: format!(
                    "the latest export of project {project}, {}, has expired and its record is gone; request the export again",
                    latest.export_id
                ),
            }),
            Err(e) => Err(ServiceError::unavailable("reading the latest export", e)),
        }
    }

    /// `caller` cancels export `id`: a queued export ends CANCELLED at once, a running
    /// one is asked to stop. Returns the export as it is now.
    pub async fn cancel(&self, caller: &Caller, id: &str) -> Result<Job, ServiceError> {
        self.authorized_job(caller, id).await?;
        let now = chrono::Utc::now();
        // The state the cancel met, read by the same swap that records it: an export that
        // ended a moment before is told as ended, not as cancelled.
        let mut met = None;
        self.jobs
            .update(id, |j| {
                met = Some(j.state);
                j.cancel(&caller.email, now)
            })
            .await
            .map_err(|e| ServiceError::unavailable("cancelling the export", e))?;
        if let Some(state) = met.filter(|s| s.is_terminal() && *s != JobState::Cancelled) {
            return Err(ServiceError::Conflict {
                code: "EXPORT_ENDED",
                message: format!(
                    "export {id} has ended ({}); there is nothing to cancel",
                    state.as_str()
                ),
            });
        }
        let job = self.job(id).await?;
        tracing::info!(export_id = %id, state = job.state.as_str(), "cancel requested");
        Ok(job)
    }

    /// A signed download link of `file` (the first when `None`) of export `id`.
    pub async fn signed_link(
        &self,
        id: &str,
        file: Option<&str>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<String, ServiceError> {
        self.links
            .download_link(id, file, now)
            .await
            .map_err(|e| ServiceError::unavailable("signing the download link", e))
    }

    /// The state an export shows: EXPIRED past the retention, else its own.
    pub fn shown_state(&self, job: &Job, now: chrono::DateTime<chrono::Utc>) -> JobState {
        if job.expired(self.settings.retention, now) {
            JobState::Expired
        } else {
            job.state
        }
    }

    /// The status URL of export `id`.
    pub fn status_url(&self, id: &str) -> String {
        let base = self.settings.public_url.trim_end_matches('/');
        format!("{base}/v1/exports/{id}")
    }

    async fn enqueue(&self, id: &str, correlation_id: Option<&str>) -> Result<(), ServiceError> {
        let message = serde_json::to_string(&ExportMessage {
            export_id: id.to_owned(),
            correlation_id: correlation_id.map(str::to_owned),
        })
        .map_err(|e| ServiceError::unavailable("encoding the message", e))?;
        self.queue
            .send(message)
            .await
            .map_err(|e| ServiceError::unavailable("queueing the export", e))
    }

    async fn accepted(&self, job: &Job, created: bool) -> Result<Accepted, ServiceError> {
        let download_url = match job.request.delivery.target() {
            Some(_) => None,
            None => Some(self.signed_link(&job.id, None, chrono::Utc::now()).await?),
        };
        Ok(Accepted {
            id: job.id.clone(),
            state: job.state,
            project: job.project.clone(),
            status_url: self.status_url(&job.id),
            download_url,
            created,
        })
    }
}

fn export_not_found(id: &str) -> ServiceError {
    ServiceError::NotFound {
        code: "EXPORT_NOT_FOUND",
        message: format!("no export {id}"),
    }
}
