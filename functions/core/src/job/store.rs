//! The job store: records at `jobs/{id}.json` changed only by compare-and-swap, the
//! markers of unfinished and retiring jobs, the per-project index and the latest
//! export pointer.

use super::{Job, RETIRING_PREFIX};
use crate::ports::{Condition, ObjectStore, StoreError};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use std::sync::Arc;

/// A job as read, with the entity tag its next write must match.
#[derive(Debug, Clone)]
pub struct Versioned {
    /// The record.
    pub job: Job,
    /// Its entity tag.
    pub etag: String,
}

/// Why a job operation failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// No job with that id.
    #[error("no export {0}")]
    NotFound(String),
    /// Someone else changed the job first.
    #[error("export {0} was changed concurrently")]
    Conflict(String),
    /// The record is not valid JSON of this layout.
    #[error("job record {key} is corrupt")]
    Corrupt {
        /// Its key.
        key: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

/// How often [`JobStore::update_patiently`] tries a write that must land.
pub const PATIENT_TRIES: u32 = 6;

/// Where unfinished jobs are marked.
pub const ACTIVE_PREFIX: &str = "active/";

/// Where unfinished jobs are marked by tenant: `tenants/{hash}/{project}/{id}`.
pub const TENANT_PREFIX: &str = "tenants/";

/// Where every job is listed by project, newest first: `index/{project}/{n}-{id}`, `n`
/// counting down with the creation time so that S3's ascending listing is newest first.
pub const INDEX_PREFIX: &str = "index/";

/// One entry of a project's index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// The index key (the cursor after it).
    pub key: String,
    /// The export.
    pub id: String,
}

/// The latest export of a project that succeeded: `latest/{project}.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Latest {
    /// The export.
    pub export_id: String,
    /// When it was requested: a pointer only moves to a newer one.
    pub created_at: DateTime<Utc>,
}

/// An unfinished job, as its marker names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveJob {
    /// Its project.
    pub project: String,
    /// Its id.
    pub id: String,
}

impl ActiveJob {
    /// When the job was created, from its id (a v7 UUID starts with its time).
    pub fn created_at(&self) -> Option<DateTime<Utc>> {
        let (secs, nanos) = uuid::Uuid::parse_str(&self.id)
            .ok()?
            .get_timestamp()?
            .to_unix();
        DateTime::from_timestamp(i64::try_from(secs).ok()?, nanos)
    }

    /// Whether a marker whose job record is missing may belong to a request still
    /// writing it (created within the last 15 minutes), rather than to one that died.
    pub fn may_still_be_written(&self, now: DateTime<Utc>) -> bool {
        self.created_at()
            .is_some_and(|created| now - created < chrono::Duration::minutes(15))
    }
}

/// Reads and writes job records in a store.
#[derive(Clone)]
pub struct JobStore {
    store: Arc<dyn ObjectStore>,
}

/// Validates an export id (a UUID, as the API makes them) before it becomes part of a key.
pub fn is_export_id(id: &str) -> bool {
    id.len() == 36
        && id.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit() && !b.is_ascii_uppercase(),
        })
}

impl JobStore {
    /// Job records live in `store` under `jobs/`.
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        JobStore { store }
    }

    fn key(id: &str) -> String {
        format!("jobs/{id}.json")
    }

    fn active_key(project: &str, id: &str) -> String {
        format!("{ACTIVE_PREFIX}{project}/{id}")
    }

    /// `tenants/{tenant}/{project}/{id}`, the tenant as a hash: its name is the
    /// platform's and need not be a safe key.
    fn tenant_prefix(tenant: &str) -> String {
        let digest = sha2::Sha256::digest(tenant.as_bytes());
        format!("{TENANT_PREFIX}{}/", hex::encode(&digest[..16]))
    }

    fn tenant_key(tenant: &str, project: &str, id: &str) -> String {
        format!("{}{project}/{id}", Self::tenant_prefix(tenant))
    }

    fn index_key(job: &Job) -> String {
        let millis = u64::try_from(job.created_at.timestamp_millis()).unwrap_or(0);
        format!(
            "{INDEX_PREFIX}{}/{:020}-{}",
            job.project,
            u64::MAX - millis,
            job.id
        )
    }

    /// Writes a new job, marked active and indexed; fails with `Conflict` if the id
    /// exists.
    pub async fn create(&self, job: &Job) -> Result<Versioned, JobError> {
        // The markers and the index entry first: a job is never unfinished without a
        // marker, never unlisted without an entry.
        let tenant = job
            .tenant
            .as_deref()
            .map(|tenant| Self::tenant_key(tenant, &job.project, &job.id));
        for key in [
            Some(Self::active_key(&job.project, &job.id)),
            tenant,
            Some(Self::index_key(job)),
        ]
        .into_iter()
        .flatten()
        {
            self.store
                .put(
                    &key,
                    Bytes::new(),
                    "application/octet-stream",
                    Condition::None,
                )
                .await
                .map_err(JobError::Store)?;
        }
        let etag = self.write(job, Condition::IfAbsent).await?;
        Ok(Versioned {
            job: job.clone(),
            etag,
        })
    }

    /// Reads a job.
    pub async fn get(&self, id: &str) -> Result<Versioned, JobError> {
        let key = Self::key(id);
        let object = self.store.get(&key).await.map_err(|e| match e {
            StoreError::NotFound(_) => JobError::NotFound(id.to_owned()),
            other => JobError::Store(other),
        })?;
        let job = serde_json::from_slice(&object.body).map_err(|source| JobError::Corrupt {
            key: key.clone(),
            source,
        })?;
        Ok(Versioned {
            job,
            etag: object.etag,
        })
    }

    /// Replaces `current` with `next` only if nobody changed it since it was read. A job
    /// that ends here loses its active marker.
    pub async fn swap(&self, current: &Versioned, next: Job) -> Result<Versioned, JobError> {
        self.swap_then(current, next, true).await
    }

    async fn swap_then(
        &self,
        current: &Versioned,
        next: Job,
        clear_marker: bool,
    ) -> Result<Versioned, JobError> {
        let etag = self
            .write(&next, Condition::IfMatch(current.etag.clone()))
            .await?;
        if clear_marker && next.state.is_terminal() && !current.job.state.is_terminal() {
            if let Err(e) = self.clear_active(&next).await {
                // The next count or sweep clears it.
                tracing::warn!(export_id = %next.id, error = %crate::error::chain(&e), "an ended export is still marked active");
            }
        }
        Ok(Versioned { job: next, etag })
    }

    /// The jobs marked active, of one project or of all.
    pub async fn active(&self, project: Option<&str>) -> Result<Vec<ActiveJob>, JobError> {
        let prefix = match project {
            Some(project) => format!("{ACTIVE_PREFIX}{project}/"),
            None => ACTIVE_PREFIX.to_owned(),
        };
        self.marks(ACTIVE_PREFIX, &prefix).await
    }

    /// The jobs marked by empty objects `{root}{project}/{id}`, those listed under
    /// `prefix` (`root` or a folder in it).
    async fn marks(&self, root: &str, prefix: &str) -> Result<Vec<ActiveJob>, JobError> {
        let listed = self.store.list(prefix).await.map_err(JobError::Store)?;
        Ok(listed
            .into_iter()
            .filter_map(|object| {
                let rest = object.key.strip_prefix(root)?;
                let (project, id) = rest.split_once('/')?;
                is_export_id(id).then(|| ActiveJob {
                    project: project.to_owned(),
                    id: id.to_owned(),
                })
            })
            .collect())
    }

    /// A page of a project's exports, newest first, after the index key `after`.
    pub async fn index_page(
        &self,
        project: &str,
        after: Option<&str>,
        max: usize,
    ) -> Result<Vec<IndexEntry>, JobError> {
        let prefix = format!("{INDEX_PREFIX}{project}/");
        let page = self
            .store
            .list_page(&prefix, after, max)
            .await
            .map_err(JobError::Store)?;
        Ok(page
            .into_iter()
            .filter_map(|object| {
                // `{20 digits}-{id}`
                let name = object.key.rsplit('/').next()?;
                let id = name.get(21..).filter(|id| is_export_id(id))?.to_owned();
                Some(IndexEntry {
                    id,
                    key: object.key,
                })
            })
            .collect())
    }

    /// The project's latest successful export, if any.
    pub async fn latest(&self, project: &str) -> Result<Option<Latest>, JobError> {
        let key = format!("latest/{project}.json");
        match self.store.get(&key).await {
            Ok(object) => serde_json::from_slice(&object.body)
                .map(Some)
                .map_err(|source| JobError::Corrupt { key, source }),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(JobError::Store(e)),
        }
    }

    /// Points the project's latest export at `job` unless a newer one is there already;
    /// returns the one it replaced.
    pub async fn set_latest(&self, job: &Job) -> Result<Option<Latest>, JobError> {
        let key = format!("latest/{}.json", job.project);
        let next = Latest {
            export_id: job.id.clone(),
            created_at: job.created_at,
        };
        let body = Bytes::from(
            serde_json::to_vec(&next).map_err(|source| JobError::Corrupt {
                key: key.clone(),
                source,
            })?,
        );
        // The first pointer is written without reading: no GET of a key that is not there.
        match self
            .store
            .put(&key, body.clone(), "application/json", Condition::IfAbsent)
            .await
        {
            Ok(_) => return Ok(None),
            Err(StoreError::PreconditionFailed(_)) => {}
            Err(e) => return Err(JobError::Store(e)),
        }
        for _ in 0..5 {
            let object = self.store.get(&key).await.map_err(JobError::Store)?;
            let current: Latest =
                serde_json::from_slice(&object.body).map_err(|source| JobError::Corrupt {
                    key: key.clone(),
                    source,
                })?;
            if current.created_at >= next.created_at {
                return Ok(None); // a newer export got there first: it stays the latest
            }
            match self
                .store
                .put(
                    &key,
                    body.clone(),
                    "application/json",
                    Condition::IfMatch(object.etag),
                )
                .await
            {
                Ok(_) => return Ok(Some(current)),
                Err(StoreError::PreconditionFailed(_)) => continue,
                Err(e) => return Err(JobError::Store(e)),
            }
        }
        Err(JobError::Conflict(job.id.clone()))
    }

    /// Marks `job` as waiting to have its files deleted once it is replaced.
    pub async fn mark_retiring(&self, job: &Job) -> Result<(), JobError> {
        self.store
            .put(
                &format!("{RETIRING_PREFIX}{}/{}", job.project, job.id),
                Bytes::new(),
                "application/octet-stream",
                Condition::None,
            )
            .await
            .map(|_| ())
            .map_err(JobError::Store)
    }

    /// The exports marked as waiting to have their files deleted.
    pub async fn retiring(&self) -> Result<Vec<ActiveJob>, JobError> {
        self.marks(RETIRING_PREFIX, RETIRING_PREFIX).await
    }

    /// Removes an export's retiring mark.
    pub async fn clear_retiring(&self, project: &str, id: &str) -> Result<(), JobError> {
        self.store
            .delete(&format!("{RETIRING_PREFIX}{project}/{id}"))
            .await
            .map_err(JobError::Store)
    }

    /// Removes a job's active markers: its project's, and its tenant's.
    pub async fn clear_active(&self, job: &Job) -> Result<(), JobError> {
        if let Some(tenant) = &job.tenant {
            self.store
                .delete(&Self::tenant_key(tenant, &job.project, &job.id))
                .await
                .map_err(JobError::Store)?;
        }
        self.clear_marker(&ActiveJob {
            project: job.project.clone(),
            id: job.id.clone(),
        })
        .await
    }

    /// Removes a project's active marker of a job whose record may be gone.
    pub async fn clear_marker(&self, entry: &ActiveJob) -> Result<(), JobError> {
        self.store
            .delete(&Self::active_key(&entry.project, &entry.id))
            .await
            .map_err(JobError::Store)
    }

    /// The jobs marked active for `tenant`, across its projects.
    pub async fn active_for_tenant(&self, tenant: &str) -> Result<Vec<ActiveJob>, JobError> {
        let prefix = Self::tenant_prefix(tenant);
        self.marks(&prefix, &prefix).await
    }

    /// Removes a tenant's active marker of a job whose record may be gone.
    pub async fn clear_tenant_marker(
        &self,
        tenant: &str,
        entry: &ActiveJob,
    ) -> Result<(), JobError> {
        self.store
            .delete(&Self::tenant_key(tenant, &entry.project, &entry.id))
            .await
            .map_err(JobError::Store)
    }

    /// Reads, changes and swaps, retrying when another writer got in between; `change`
    /// returns `None` to leave the job as it is.
    pub async fn update(
        &self,
        id: &str,
        change: impl FnMut(&Job) -> Option<Job>,
    ) -> Result<Option<Versioned>, JobError> {
        self.update_then(id, change, true).await
    }

    /// [`JobStore::update`] that leaves the job's active marker in place when it ends the
    /// job: the caller clears it once what must follow the end (the notification) is
    /// done, so a failure in between is found again by the next sweep.
    pub async fn update_keeping_marker(
        &self,
        id: &str,
        change: impl FnMut(&Job) -> Option<Job>,
    ) -> Result<Option<Versioned>, JobError> {
        self.update_then(id, change, false).await
    }

    async fn update_then(
        &self,
        id: &str,
        mut change: impl FnMut(&Job) -> Option<Job>,
        clear_marker: bool,
    ) -> Result<Option<Versioned>, JobError> {
        for _ in 0..5 {
            let current = self.get(id).await?;
            let Some(next) = change(&current.job) else {
                return Ok(None);
            };
            match self.swap_then(&current, next, clear_marker).await {
                Ok(v) => return Ok(Some(v)),
                Err(JobError::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(JobError::Conflict(id.to_owned()))
    }

    /// [`JobStore::update`] for a write that must land, an attempt's outcome: a storage
    /// error, or a race lost five times over, is tried again after 0.2 s, doubling, up to
    /// [`PATIENT_TRIES`] tries (about 6 s of waiting) before it is returned. A try whose
    /// write landed but whose answer was lost finds its own change on the next read;
    /// `change` must then answer `None`, and the caller re-reads to tell.
    pub async fn update_patiently(
        &self,
        id: &str,
        mut change: impl FnMut(&Job) -> Option<Job>,
    ) -> Result<Option<Versioned>, JobError> {
        let mut wait = std::time::Duration::from_millis(200);
        for _ in 1..PATIENT_TRIES {
            match self.update(id, &mut change).await {
                Err(e @ (JobError::Store(_) | JobError::Conflict(_))) => {
                    tracing::warn!(export_id = %id, error = %crate::error::chain(&e), wait_ms = wait.as_millis(), "job record not written; trying again");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                landed_or_final => return landed_or_final,
            }
        }
        self.update(id, change).await
    }

    async fn write(&self, job: &Job, condition: Condition) -> Result<String, JobError> {
        let body = serde_json::to_vec_pretty(job).map_err(|source| JobError::Corrupt {
            key: Self::key(&job.id),
            source,
        })?;
        self.store
            .put(
                &Self::key(&job.id),
                Bytes::from(body),
                "application/json",
                condition,
            )
            .await
            .map_err(|e| match e {
                StoreError::PreconditionFailed(_) => JobError::Conflict(job.id.clone()),
                other => JobError::Store(other),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_ids_are_lowercase_uuids_only() {
        assert!(is_export_id("0192f0c5-3b7a-7cc3-9a2e-1f2d3c4b5a69"));
        assert!(!is_export_id("0192F0C5-3B7A-7CC3-9A2E-1F2D3C4B5A69"));
        assert!(!is_export_id("../../projects/p/project.json"));
        assert!(!is_export_id("0192f0c5-3b7a-7cc3-9a2e-1f2d3c4b5a6"));
    }
}
