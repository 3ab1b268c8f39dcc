//! Asking for an export: validated against the project, authorized, made idempotent
//! by key, held to the limits, recorded and queued.

use super::{Accepted, Caller, ExportService, ServiceError};
use crate::delivery::{Prepare, Requested};
use crate::error::{chain, Failure, FailureCode, RequestError};
use crate::job::{Job, JobError, JobState};
use crate::ports::{Condition, StoreError};
use crate::request::ExportRequest;
use bytes::Bytes;
use labelport_model::ProjectState;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What an idempotency key recorded: the export it made, for which request.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IdempotencyRecord {
    export_id: String,
    request_sha256: String,
}

/// What a key's record says about a request.
enum Recorded {
    /// The key is new: this request makes export `id`.
    New(String),
    /// The key made an export for this same request already.
    Earlier(Box<Job>),
    /// The key made export `id` for this request, whose record was never written.
    Unfinished(String),
}

impl ExportService {
    /// Validates, authorizes and queues an export. With an idempotency key, a repeated
    /// request returns the first export (and a different request under the same key is
    /// refused). Shared by the HTTP route and the S3 drop.
    pub async fn create(
        &self,
        caller: &Caller,
        project: &str,
        body: &[u8],
        idempotency_key: Option<&str>,
        correlation_id: Option<&str>,
    ) -> Result<Accepted, ServiceError> {
        let manifest = self.authorize(caller, project).await?;
        match manifest.state {
            ProjectState::Created => {
                return Err(ServiceError::Conflict {
                    code: "PROJECT_NOT_STARTED",
                    message: format!(
                        "project {project} has not started; there is nothing to export yet"
                    ),
                })
            }
            ProjectState::Archived => {
                return Err(ServiceError::Conflict {
                    code: "PROJECT_ARCHIVED",
                    message: format!(
                        "project {project} is archived; archived projects cannot be exported"
                    ),
                })
            }
            ProjectState::Running | ProjectState::Paused | ProjectState::Completed => {}
        }
        let request = ExportRequest::parse(body)?;
        // An import is validated against the project its settings describe.
        let shown_project = match &request.source {
            Some(source) => {
                source.check_keys(project).map_err(RequestError::from)?;
                source
                    .open(self.store.as_ref(), &manifest)
                    .await
                    .map_err(RequestError::from)?
                    .project
            }
            None => manifest.clone(),
        };
        let mut request = request;
        request
            .spec()
            .check(&shown_project)
            .map_err(RequestError::from)?;
        request.delivery = request.delivery.accept(&Requested {
            project: &shown_project,
            requester: &caller.email,
            policy: &self.settings.delivery,
        })?;
        request.delivery = request
            .delivery
            .prepare(&Prepare {
                project,
                tenant: manifest.tenant(),
                policy: &self.settings.delivery,
                sealer: &self.sealer,
                buckets: self.buckets.as_ref(),
                external_ids: self.external_ids.as_deref(),
            })
            .await?;

        let id = match idempotency_key {
            None => uuid::Uuid::now_v7().to_string(),
            Some(key) => match self.record_key(caller, project, key, &request).await? {
                Recorded::New(id) | Recorded::Unfinished(id) => id,
                Recorded::Earlier(job) => {
                    if job.state == JobState::Queued {
                        // The first request may have died before enqueueing: enqueue
                        // again; the worker runs a job once however often it is asked.
                        self.enqueue(&job.id, job.correlation_id.as_deref()).await?;
                    }
                    return self.accepted(&job, false).await;
                }
            },
        };
        self.within_limits(project, manifest.tenant()).await?;
        let mut job = Job::new(
            id.clone(),
            project.to_owned(),
            caller.email.clone(),
            request,
        );
        job.tenant = Some(manifest.tenant().to_owned());
        let correlation_id = crate::messages::correlation_id([correlation_id]);
        job.correlation_id = Some(correlation_id.clone());
        match self.jobs.create(&job).await {
            Ok(_) | Err(JobError::Conflict(_)) => {}
            Err(e) => return Err(ServiceError::unavailable("writing the export", e)),
        }
        if let Err(e) = self.enqueue(&id, job.correlation_id.as_deref()).await {
            // Without an idempotency key nobody can resume this job (a retry is a new
            // export), so it must not sit QUEUED forever: end it, saying why.
            if idempotency_key.is_none() {
                let not_queued = Failure::new(
                    FailureCode::NotQueued,
                    "the export could not be queued; request it again (with an Idempotency-Key, a retry resumes it instead)",
                );
                let ended = self
                    .jobs
                    .update(&id, |j| {
                        j.fail((JobState::Queued, 0), &not_queued, chrono::Utc::now())
                    })
                    .await;
                if let Err(e) = ended {
                    tracing::error!(export_id = %id, error = %chain(&e), "an export that could not be queued stays QUEUED");
                }
            }
            return Err(e);
        }
        tracing::info!(export_id = %id, project, format = job.request.format.as_str(), correlation_id, "export queued");
        self.accepted(&job, true).await
    }

    /// Records `key` (per caller) for `request`, or reads what it recorded before.
    async fn record_key(
        &self,
        caller: &Caller,
        project: &str,
        key: &str,
        request: &ExportRequest,
    ) -> Result<Recorded, ServiceError> {
        // Sealed secrets are left out: sealing is random, and a retry is the same request.
        let canonical = serde_json::to_vec(&request.shown())
            .map_err(|e| ServiceError::unavailable("encoding the request", e))?;
        let request_sha256 = hex::encode(Sha256::digest(&canonical));
        let record_key = format!(
            "idempotency/{project}/{}.json",
            hex::encode(Sha256::digest(format!(
                "{}\n{key}",
                caller.email.to_lowercase()
            )))
        );
        let id = uuid::Uuid::now_v7().to_string();
        let record = IdempotencyRecord {
            export_id: id.clone(),
            request_sha256: request_sha256.clone(),
        };
        let body = serde_json::to_vec(&record)
            .map_err(|e| ServiceError::unavailable("encoding the key", e))?;
        match self
            .store
            .put(
                &record_key,
                Bytes::from(body),
                "application/json",
                Condition::IfAbsent,
            )
            .await
        {
            Ok(_) => Ok(Recorded::New(id)),
            Err(StoreError::PreconditionFailed(_)) => {
                let existing = self
                    .store
                    .get(&record_key)
                    .await
                    .map_err(|e| ServiceError::unavailable("reading the idempotency key", e))?;
                let existing: IdempotencyRecord = serde_json::from_slice(&existing.body)
                    .map_err(|e| ServiceError::unavailable("reading the idempotency key", e))?;
                if existing.request_sha256 != request_sha256 {
                    return Err(ServiceError::KeyReused);
                }
                match self.jobs.get(&existing.export_id).await {
                    Ok(v) => Ok(Recorded::Earlier(Box::new(v.job))),
                    // It died before the job was written: finish its work.
                    Err(JobError::NotFound(_)) => Ok(Recorded::Unfinished(existing.export_id)),
                    Err(e) => Err(ServiceError::unavailable("reading the export", e)),
                }
            }
            Err(e) => Err(ServiceError::unavailable(
                "recording the idempotency key",
                e,
            )),
        }
    }
}
