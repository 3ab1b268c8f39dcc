//! The sweeper: ends jobs that nothing will end. A job waits QUEUED forever if its
//! queue message was lost (the API died between writing the record and enqueueing), and
//! RUNNING forever if its last worker died and its message went to the dead-letter queue.
//! Run on a schedule, the sweeper fails such jobs with a reason and asks the notifier to
//! tell the customer, as a worker would have.

use crate::error::{chain, Failure};
use crate::job::{ActiveJob, Job, JobError, JobState, JobStore, NotificationState};
use crate::messages::NotifyMessage;
use crate::ports::{ObjectStore, Queue};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// How long a job may wait in each state before it counts as abandoned.
#[derive(Debug, Clone)]
pub struct SweepSettings {
    /// A QUEUED job not started this long after it was requested (or requeued). Above
    /// the longest backlog the worker's concurrency is expected to leave.
    pub queued_for: Duration,
    /// A RUNNING job whose attempt started this long ago. Above the export queue's
    /// visibility timeout plus the worker's lease: by then a live retry would have
    /// started a new attempt.
    pub running_for: Duration,
}

impl Default for SweepSettings {
    fn default() -> Self {
        SweepSettings {
            queued_for: Duration::from_secs(6 * 3600),
            running_for: Duration::from_secs(2 * 3600),
        }
    }
}

/// What a sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    /// Jobs marked active when the sweep began.
    pub active: u64,
    /// Jobs the sweep failed, by id.
    pub ended: Vec<String>,
    /// Markers removed because their job had ended or was never written.
    pub cleared: u64,
    /// Jobs that could not be checked (a store error or a corrupt record); logged.
    pub unchecked: u64,
    /// Replaced exports whose files the sweep deleted, by id.
    pub retired: Vec<String>,
}

/// Ends abandoned jobs.
pub struct Sweeper {
    jobs: JobStore,
    store: Arc<dyn ObjectStore>,
    notify: Arc<dyn Queue>,
    settings: SweepSettings,
}

impl Sweeper {
    /// Sweeps the job records in `store`; ended jobs are announced on `notify`.
    pub fn new(
        store: Arc<dyn ObjectStore>,
        notify: Arc<dyn Queue>,
        settings: SweepSettings,
    ) -> Self {
        Sweeper {
            jobs: JobStore::new(store.clone()),
            store,
            notify,
            settings,
        }
    }

    /// Checks every active job as of now.
    pub async fn sweep(&self) -> Result<SweepReport, JobError> {
        self.sweep_at(Utc::now()).await
    }

    /// Checks every active job as of `now`. Only a failed listing is an error: one job
    /// that cannot be read does not keep the others from being swept.
    pub async fn sweep_at(&self, now: DateTime<Utc>) -> Result<SweepReport, JobError> {
        let active = self.jobs.active(None).await?;
        let mut report = SweepReport {
            active: active.len() as u64,
            ..SweepReport::default()
        };
        for entry in active {
            match self.check(&entry, now).await {
                Ok(Checked::Live) => {}
                Ok(Checked::Ended) => report.ended.push(entry.id),
                Ok(Checked::Cleared) => report.cleared += 1,
                Err(e) => {
                    report.unchecked += 1;
                    tracing::error!(export_id = %entry.id, project = %entry.project, error = %chain(&e), "could not sweep the export");
                }
            }
        }
        match self.retire(now).await {
            Ok(retired) => report.retired = retired,
            Err(e) => {
                report.unchecked += 1;
                tracing::error!(error = %chain(&e), "could not list the replaced exports");
            }
        }
        if !report.ended.is_empty() || report.cleared > 0 || !report.retired.is_empty() {
            tracing::info!(
                active = report.active,
                ended = report.ended.len(),
                cleared = report.cleared,
                "sweep ended abandoned exports"
            );
        }
        Ok(report)
    }

    async fn check(&self, entry: &ActiveJob, now: DateTime<Utc>) -> Result<Checked, SweepError> {
        let job = match self.jobs.get(&entry.id).await {
            Ok(v) => v.job,
            Err(JobError::NotFound(_)) => {
                if entry.may_still_be_written(now) {
                    return Ok(Checked::Live); // being created right now
                }
                self.jobs.clear_marker(entry).await?;
                return Ok(Checked::Cleared);
            }
            Err(e) => return Err(e.into()),
        };
        if job.state.is_terminal() {
            // Still marked: its end was recorded but what follows may not have been. A
            // notification nobody has claimed is asked for again (the notifier's claim
            // makes a second ask harmless); only then does the marker go.
            if job.notification.state == NotificationState::Pending {
                self.ask_to_notify(&job).await?;
            }
            self.jobs.clear_active(&job).await?;
            return Ok(Checked::Cleared);
        }
        let Some(failure) = self.abandoned(&job, now) else {
            return Ok(Checked::Live);
        };
        let seen = (job.state, job.attempts);
        // The marker stays until the customer has been asked to be told: a failed ask
        // leaves the job marked, and the next sweep asks again.
        let ended = self
            .jobs
            .update_keeping_marker(&job.id, |current| current.fail(seen, &failure, now))
            .await?;
        if ended.is_none() {
            return Ok(Checked::Live);
        }
        tracing::warn!(export_id = %job.id, project = %job.project, code = %failure.code, error = %failure.message, "abandoned export ended");
        self.ask_to_notify(&job).await?;
        self.jobs.clear_active(&job).await?;
        Ok(Checked::Ended)
    }

    async fn ask_to_notify(&self, job: &Job) -> Result<(), SweepError> {
        let body = serde_json::to_string(&NotifyMessage {
            export_id: job.id.clone(),
            correlation_id: job.correlation_id.clone(),
        })
        .map_err(|e| SweepError::Notify(Box::new(e)))?;
        self.notify.send(body).await.map_err(SweepError::Notify)
    }

    /// Deletes the files of replaced exports whose grace period has passed. Only files
    /// in the platform bucket: a customer's bucket is theirs to tidy.
    async fn retire(&self, now: DateTime<Utc>) -> Result<Vec<String>, JobError> {
        let mut retired = Vec::new();
        for entry in self.jobs.retiring().await? {
            let job = match self.jobs.get(&entry.id).await {
                Ok(v) => v.job,
                Err(JobError::NotFound(_)) => {
                    self.jobs.clear_retiring(&entry.project, &entry.id).await?;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(export_id = %entry.id, error = %chain(&e), "could not read a replaced export");
                    continue;
                }
            };
            if job.replaced_by.is_some() && !job.replaced_and_gone(now) {
                continue; // still in its grace period
            }
            if job.replaced_by.is_some() {
                if let Err(e) = self.delete_files(&job).await {
                    tracing::warn!(export_id = %job.id, error = %chain(&e), "the replaced export's files were not deleted; the next sweep tries again");
                    continue;
                }
                tracing::info!(export_id = %job.id, replaced_by = ?job.replaced_by, "replaced export's files deleted");
                retired.push(job.id.clone());
            }
            self.jobs.clear_retiring(&entry.project, &entry.id).await?;
        }
        Ok(retired)
    }

    async fn delete_files(&self, job: &Job) -> Result<(), crate::ports::StoreError> {
        let Some(result) = &job.result else {
            return Ok(());
        };
        let keys = result
            .files
            .iter()
            .filter(|f| f.bucket.is_none())
            .map(|f| f.key.clone())
            .chain(
                result
                    .files
                    .iter()
                    .all(|f| f.bucket.is_none())
                    .then(|| result.manifest_key.clone()),
            );
        for key in keys {
            self.store.delete(&key).await?;
        }
        Ok(())
    }

    fn abandoned(&self, job: &Job, now: DateTime<Utc>) -> Option<Failure> {
        match job.state {
            JobState::Queued => {
                // A retried job is QUEUED again from its last attempt's start.
                let since = job.started_at.unwrap_or(job.created_at).max(job.created_at);
                (age(now, since) > self.settings.queued_for).then(|| {
                    Failure::new(
                        crate::error::FailureCode::NotStarted,
                        format!(
                            "no worker started the export within {} of its request (the queue was backed up or the request was lost); request it again",
                            hours(self.settings.queued_for)
                        ),
                    )
                })
            }
            JobState::Running => {
                let since = job.started_at.unwrap_or(job.created_at);
                (age(now, since) > self.settings.running_for).then(|| {
                    Failure::new(
                        crate::error::FailureCode::Abandoned,
                        format!(
                            "attempt {} of the export stopped without finishing and no retry followed within {}; request it again, or contact support with the export id",
                            job.attempts,
                            hours(self.settings.running_for)
                        ),
                    )
                })
            }
            JobState::Succeeded | JobState::Failed | JobState::Cancelled | JobState::Expired => {
                None
            }
        }
    }
}

enum Checked {
    Live,
    Ended,
    Cleared,
}

#[derive(Debug, thiserror::Error)]
enum SweepError {
    #[error("job record")]
    Job(#[from] JobError),
    #[error("enqueueing the notification")]
    Notify(#[source] crate::ports::BoxError),
}

fn age(now: DateTime<Utc>, since: DateTime<Utc>) -> Duration {
    (now - since).to_std().unwrap_or_default()
}

/// `6 hours`, `90 minutes`: how a person says a limit.
fn hours(limit: Duration) -> String {
    let minutes = limit.as_secs() / 60;
    match minutes {
        m if m % 60 == 0 && m >= 60 => format!("{} hour{}", m / 60, if m == 60 { "" } else { "s" }),
        m => format!("{m} minutes"),
    }
}

#[cfg(test)]
mod tests {
    use super::hours;
    use std::time::Duration;

    #[test]
    fn limits_read_as_a_person_says_them() {
        assert_eq!(hours(Duration::from_secs(3600)), "1 hour");
        assert_eq!(hours(Duration::from_secs(6 * 3600)), "6 hours");
        assert_eq!(hours(Duration::from_secs(90 * 60)), "90 minutes");
    }
}
