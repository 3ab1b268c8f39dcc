//! export-worker: takes one export message, claims the job, streams the project's
//! tasks through the pipeline into a multipart upload, records the outcome and asks
//! the notifier to tell the customer.

mod export;
mod upload;

use crate::error::{chain, Failure, FailureCode, RedeliverAfter};
use crate::job::{ExportResult, Job, JobError, JobState, JobStore};
use crate::messages::{ExportMessage, NotifyMessage};
use crate::ports::{Buckets, ExportEnded, Metrics, NoBuckets, NoMetrics, ObjectStore, Queue};
use crate::project::load_project;
use chrono::Utc;
use labelport_engine::pipeline::Options;
use labelport_engine::progress::Progress;
use std::sync::Arc;
use std::time::Duration;

/// A job whose worker stopped attempting this many times is failed for good.
pub const MAX_ATTEMPTS: u32 = 3;

/// How long after a lease ends a message held back by it comes again.
const LEASE_MARGIN: Duration = Duration::from_secs(5);

/// How the worker runs.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Exports are written under `{exports_prefix}/{project}/{export_id}/attempt-{n}/`.
    pub exports_prefix: String,
    /// A RUNNING job older than this is taken to be abandoned: the function's timeout
    /// and a margin, so a slow attempt is never taken over while it can still finish.
    pub lease: Duration,
    /// How often progress is written to the job record.
    pub progress_interval: Duration,
    /// Pipeline threads.
    pub threads: usize,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            exports_prefix: "exports".into(),
            lease: Duration::from_secs(16 * 60),
            progress_interval: Duration::from_secs(5),
            threads: Options::default().threads,
        }
    }
}

/// What happened to a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The export ran and ended in this state.
    Ran(JobState),
    /// The job had ended already (a repeated delivery); the notification was asked again.
    AlreadyDone(JobState),
    /// Another worker holds the job.
    HeldElsewhere,
}

/// Why a message must be retried (SQS redelivers it, then moves it to the DLQ).
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The message is not an export message.
    #[error("malformed export message")]
    Malformed(#[source] serde_json::Error),
    /// The job record could not be read or written.
    #[error("job record")]
    Job(#[from] JobError),
    /// The export failed in a way another attempt may not.
    #[error("export {export_id} will be retried: {failure}")]
    Retry {
        /// The export.
        export_id: String,
        /// What went wrong this time.
        failure: Failure,
    },
    /// The notify queue refused the message.
    #[error("enqueueing the notification")]
    Notify(#[source] crate::ports::BoxError),
    /// An attempt holds the job's lease. The message is not acknowledged: the holder may
    /// still fail to record its outcome, and then only this message can finish the job.
    #[error("export {export_id} is held by a running attempt")]
    Held {
        /// The export.
        export_id: String,
        /// When the holder's lease ends: the message should come back then.
        #[source]
        until: RedeliverAfter,
    },
}

/// The worker and the backends it needs.
pub struct Worker {
    store: Arc<dyn ObjectStore>,
    destination: Arc<dyn ObjectStore>,
    jobs: JobStore,
    notify: Arc<dyn Queue>,
    settings: WorkerSettings,
    metrics: Arc<dyn Metrics>,
    buckets: Arc<dyn Buckets>,
}

/// A failure, and whether another attempt may succeed.
struct Attempt {
    failure: Failure,
    retryable: bool,
}

impl Attempt {
    /// Another attempt would fail the same way.
    fn permanent(failure: Failure) -> Self {
        Attempt {
            failure,
            retryable: false,
        }
    }

    /// Another attempt may succeed (storage trouble).
    fn retryable(failure: Failure) -> Self {
        Attempt {
            failure,
            retryable: true,
        }
    }
}

impl Worker {
    /// Reads projects and job records from `store`, writes exports to `destination`.
    pub fn new(
        store: Arc<dyn ObjectStore>,
        destination: Arc<dyn ObjectStore>,
        notify: Arc<dyn Queue>,
        settings: WorkerSettings,
    ) -> Self {
        Worker {
            jobs: JobStore::new(store.clone()),
            store,
            destination,
            notify,
            settings,
            metrics: Arc::new(NoMetrics),
            buckets: Arc::new(NoBuckets),
        }
    }

    /// Writes exports for EXTERNAL_OBJECT_STORAGE into customers' buckets opened by
    /// `buckets`.
    pub fn with_buckets(mut self, buckets: Arc<dyn Buckets>) -> Self {
        self.buckets = buckets;
        self
    }

    /// Reports every export attempt's end to `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<dyn Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    fn report(&self, job: &Job, outcome: &str, code: Option<&str>, progress: &Progress) {
        let bytes_written = job
            .result
            .as_ref()
            .map_or(0, |r| r.files.iter().map(|f| f.bytes).sum());
        let duration = job
            .started_at
            .and_then(|started| (Utc::now() - started).to_std().ok())
            .unwrap_or_default();
        self.metrics.export_ended(&ExportEnded {
            export_id: &job.id,
            project: &job.project,
            format: job.request.format.as_str(),
            outcome,
            code,
            tasks: progress.tasks_exported,
            bytes_read: progress.bytes_read,
            bytes_written,
            duration,
            attempt: job.attempts,
        });
    }

    /// Handles one export message body.
    pub async fn handle(&self, body: &str) -> Result<Outcome, WorkerError> {
        let message: ExportMessage = serde_json::from_str(body).map_err(WorkerError::Malformed)?;
        let id = message.export_id;
        let current = self.jobs.get(&id).await?;
        if current.job.state.is_terminal() {
            // A repeated delivery, or the notify enqueue failed last time: ask again; the
            // notifier sends once whatever it is asked.
            self.enqueue_notification(&current.job).await?;
            return Ok(Outcome::AlreadyDone(current.job.state));
        }
        if current.job.state == JobState::Running {
            if let Some(left) = self.lease_left(&current.job) {
                // Back when the lease ends (and a little after): by then the holder has
                // recorded its outcome, or this message takes the job over.
                return Err(WorkerError::Held {
                    export_id: id,
                    until: RedeliverAfter(left + LEASE_MARGIN),
                });
            }
        }
        if current.job.attempts >= MAX_ATTEMPTS {
            // The last attempt died (a time-out or a crash) without ending the job: end it
            // now, as the attempt that holds it, and tell the customer. The queue's
            // receive count is above MAX_ATTEMPTS so that this delivery comes.
            let failure = Failure::new(
                FailureCode::TooManyAttempts,
                format!("the export stopped {MAX_ATTEMPTS} times without finishing (it ran out of time or crashed); try a smaller export or contact support with the export id"),
            );
            return self.finish(&id, current.job.attempts, Err(failure)).await;
        }
        if current.job.cancel_requested_at.is_some() {
            // Cancelled while running, then requeued by a crash: end it here.
            return self
                .finish(&id, current.job.attempts, Err(Failure::cancelled()))
                .await;
        }
        let claimed = match self
            .jobs
            .swap(&current, current.job.claim(Utc::now()))
            .await
        {
            Ok(v) => v,
            Err(JobError::Conflict(_)) => return Ok(Outcome::HeldElsewhere),
            Err(e) => return Err(e.into()),
        };
        let attempt = claimed.job.attempts;
        tracing::info!(export_id = %id, project = %claimed.job.project, attempt, "export started");
        match self.export(&claimed.job).await {
            Ok(result) => self.finish(&id, attempt, Ok(result)).await,
            Err(Attempt { failure, retryable }) if retryable && attempt < MAX_ATTEMPTS => {
                tracing::warn!(export_id = %id, attempt, error = %failure, "export attempt failed; will retry");
                self.report(
                    &claimed.job,
                    "RETRIED",
                    Some(failure.code.as_str()),
                    &Progress::default(),
                );
                self.jobs
                    .update_patiently(&id, |job| job.requeue(attempt, &failure))
                    .await?;
                Err(WorkerError::Retry {
                    export_id: id,
                    failure,
                })
            }
            Err(Attempt { failure, .. }) => self.finish(&id, attempt, Err(failure)).await,
        }
    }

    /// What is left of the lease of the attempt that started `job`, if any is.
    fn lease_left(&self, job: &Job) -> Option<Duration> {
        let started = job.started_at?;
        let lease = chrono::Duration::from_std(self.settings.lease).ok()?;
        (started + lease - Utc::now())
            .to_std()
            .ok()
            .filter(|left| !left.is_zero())
    }

    async fn finish(
        &self,
        id: &str,
        attempt: u32,
        outcome: Result<(ExportResult, Progress), Failure>,
    ) -> Result<Outcome, WorkerError> {
        let state = JobState::ending(&outcome);
        let now = Utc::now();
        // Only the attempt that holds the job may end it.
        let updated = self
            .jobs
            .update_patiently(id, |job| job.finish(attempt, &outcome, now))
            .await?;
        let done = match updated {
            Some(done) => done,
            None => {
                // Either another attempt or the sweeper ended the job, or this attempt's
                // own write landed and only its answer was lost: then the record holds
                // this outcome, and the work after it (the latest pointer, the
                // notification) must still be done.
                let current = self.jobs.get(id).await?;
                let ours = current.job.attempts == attempt
                    && current.job.state == state
                    && match &outcome {
                        Ok((result, _)) => current
                            .job
                            .result
                            .as_ref()
                            .is_some_and(|r| r.manifest_key == result.manifest_key),
                        Err(failure) => current
                            .job
                            .error
                            .as_ref()
                            .is_some_and(|f| f.code == failure.code),
                    };
                if !ours {
                    return Ok(Outcome::HeldElsewhere);
                }
                current
            }
        };
        let code = done.job.error.as_ref().map(|f| f.code.as_str());
        self.report(&done.job, state.as_str(), code, &done.job.progress);
        match &done.job.error {
            Some(failure) if state == JobState::Failed => {
                tracing::warn!(export_id = %id, code = %failure.code, error = %failure.message, "export failed")
            }
            _ => {
                tracing::info!(export_id = %id, tasks = done.job.progress.tasks_exported, "export succeeded")
            }
        }
        if state == JobState::Succeeded {
            self.after_success(&done.job).await;
        }
        self.enqueue_notification(&done.job).await?;
        Ok(Outcome::Ran(state))
    }

    /// Makes `job` the project's latest export and, if the project replaces previous
    /// exports, deletes the one it replaces: only now, with the new one complete. A
    /// failure here is logged; the export itself has succeeded.
    async fn after_success(&self, job: &Job) {
        let previous = match self.jobs.set_latest(job).await {
            Ok(previous) => previous,
            Err(e) => {
                tracing::warn!(export_id = %job.id, error = %chain(&e), "the latest export was not updated");
                return;
            }
        };
        let Some(previous) = previous else { return };
        let replaces = match load_project(self.store.as_ref(), &job.project).await {
            Ok(project) => project.exports.replace_previous,
            Err(e) => {
                tracing::warn!(export_id = %job.id, error = %e, "project not read; the previous export is kept");
                false
            }
        };
        if replaces {
            if let Err(e) = self.replace(&previous.export_id, job).await {
                tracing::warn!(export_id = %job.id, replaced = %previous.export_id, error = %e, "the previous export was not marked replaced");
            }
        }
    }

    /// Marks the export `by` replaces: its status says so at once, and the sweeper
    /// deletes its files once [`crate::job::REPLACED_FILES_KEPT`] has passed (a link
    /// handed out a moment ago still works until then).
    async fn replace(&self, previous: &str, by: &Job) -> Result<(), String> {
        let old = self.jobs.get(previous).await.map_err(|e| chain(&e))?;
        if old.job.state != JobState::Succeeded || old.job.replaced_by.is_some() {
            return Ok(());
        }
        // The mark first: a job marked replaced always has its files found again.
        self.jobs
            .mark_retiring(&old.job)
            .await
            .map_err(|e| chain(&e))?;
        let now = Utc::now();
        self.jobs
            .update(previous, |old| {
                (old.state == JobState::Succeeded && old.replaced_by.is_none()).then(|| {
                    let mut next = old.clone();
                    next.replaced_by = Some(by.id.clone());
                    next.replaced_at = Some(now);
                    next
                })
            })
            .await
            .map_err(|e| chain(&e))?;
        tracing::info!(export_id = %by.id, replaced = %previous, "previous export replaced; its files go after the grace period");
        Ok(())
    }

    async fn enqueue_notification(&self, job: &Job) -> Result<(), WorkerError> {
        let body = serde_json::to_string(&NotifyMessage {
            export_id: job.id.clone(),
            correlation_id: job.correlation_id.clone(),
        })
        .map_err(|e| WorkerError::Notify(Box::new(e)))?;
        self.notify.send(body).await.map_err(WorkerError::Notify)
    }
}
