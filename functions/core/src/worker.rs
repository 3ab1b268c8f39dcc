//! export-worker: takes one export message, claims the job, streams the project's
//! tasks through the pipeline into a multipart upload, records the outcome and asks
//! the notifier to tell the customer.

pub use crate::error::RedeliverAfter;
use crate::error::{chain, Failure, FailureCode};
use crate::job::{ExportResult, Job, JobError, JobState, JobStore, ResultFile};
use crate::messages::{ExportMessage, NotifyMessage};
use crate::ports::{
    BoxError, Buckets, ExportEnded, Metrics, NoBuckets, NoMetrics, ObjectStore, Queue, Upload,
    MIN_PART_SIZE,
};
use crate::project::{load_project, ProjectError};
use bytes::{Bytes, BytesMut};
use chrono::Utc;
use labelport_engine::assembly::Files;
use labelport_engine::import::ImportError;
use labelport_engine::pipeline::{Options, Output};
use labelport_engine::plan::Plan;
use labelport_engine::progress::Progress;
use labelport_engine::source;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

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

    async fn export(&self, job: &Job) -> Result<(ExportResult, Progress), Attempt> {
        let permanent = |failure| Attempt {
            failure,
            retryable: false,
        };
        let retryable = |failure| Attempt {
            failure,
            retryable: true,
        };
        let project = load_project(self.store.as_ref(), &job.project)
            .await
            .map_err(|e| match e {
                ProjectError::Store(_) => retryable(e.to_failure()),
                _ => permanent(e.to_failure()),
            })?;
        let request = &job.request;
        // An import reads the tool's export with its settings instead of the task files.
        let (project, files, decoder) = match &request.source {
            Some(import) => {
                let import =
                    import
                        .open(self.store.as_ref(), &project)
                        .await
                        .map_err(|e| match e {
                            ImportError::Store { .. } => {
                                retryable(Failure::storage("reading the import", &e))
                            }
                            ImportError::Invalid { field, .. } => {
                                let code = match field {
                                    "source.export" => FailureCode::ImportNotFound,
                                    _ => FailureCode::InvalidImport,
                                };
                                permanent(Failure::new(code, e.to_string()))
                            }
                        })?;
                (import.project, vec![import.export], Some(import.decoder))
            }
            None => {
                let files = source::list_task_files(self.store.as_ref(), &job.project)
                    .await
                    .map_err(|e| {
                        retryable(Failure::storage("listing the project's task files", &e))
                    })?;
                (project, files, None)
            }
        };
        let plan = Plan::new(&request.spec(), &project, self.settings.threads)
            .map_err(|e| permanent(Failure::new(FailureCode::InvalidRequest, e.to_string())))?;
        if files.is_empty() {
            return Err(permanent(Failure::new(
                FailureCode::NoTaskFiles,
                format!(
                    "project {} has no task files under {} (*.ndjson, *.jsonl or *.json, optionally .gz or .zst); there is nothing to export",
                    job.project,
                    source::tasks_prefix(&job.project)
                ),
            )));
        }

        let base = job.base_name();
        let (destination, folder, manifest_key, bucket) = match request.delivery.target() {
            // The customer's bucket, under their path: the file names are unique per
            // export, and so is the manifest's, which is written last.
            Some((target, path)) => {
                let store = self.buckets.open(&target).await.map_err(|e| {
                    // The SDK's text (request ids, endpoints, role sessions) goes to the
                    // log; the customer is told what it means for them.
                    tracing::warn!(export_id = %job.id, error = %chain(e.as_ref()), "the customer's bucket could not be opened");
                    retryable(Failure::new(
                        FailureCode::DestinationUnavailable,
                        format!("s3://{}/{path} could not be opened (the role could not be assumed, or the bucket did not answer); the export is retried automatically, and ends with this message only if it keeps happening", target.bucket),
                    ))
                })?;
                let manifest = join_key(&path, &format!("{base}.manifest.json"));
                (store, path, manifest, Some(target.bucket))
            }
            // Each attempt writes under its own folder: an attempt that lost its lease
            // and finishes late can never overwrite the files a newer attempt recorded.
            None => {
                let folder = format!(
                    "{}/{}/{}/attempt-{}",
                    self.settings.exports_prefix, job.project, job.id, job.attempts
                );
                let manifest = join_key(&folder, "manifest.json");
                (self.destination.clone(), folder, manifest, None)
            }
        };
        let (chunks_tx, chunks_rx) = mpsc::channel::<Chunk>(4);
        let (progress_tx, progress_rx) = watch::channel(Progress::default());
        let (cancel_tx, cancel_rx) = watch::channel(false);
        let cancel_flag = plan.options.cancel.clone();
        // The upload's lines carry the message's span (its correlation_id) too.
        let uploading = tokio::spawn(tracing::Instrument::instrument(
            upload_files(destination.clone(), folder.clone(), chunks_rx, cancel_rx),
            tracing::Span::current(),
        ));
        let store = self.store.clone();
        let handle = tokio::runtime::Handle::current();
        let modified = u64::try_from(job.created_at.timestamp()).unwrap_or(0);
        let encoding = tokio::task::spawn_blocking(move || {
            let sources = source::open_with(store, files, handle, decoder);
            let mut files = ChannelFiles {
                chunks: chunks_tx.clone(),
                pending: Vec::with_capacity(CHUNK),
            };
            let output = Output {
                files: &mut files,
                base: &base,
                modified_unix_secs: modified,
            };
            let mut on_progress = |p: &Progress| {
                progress_tx.send_replace(p.clone());
            };
            let mut summary = plan.run(sources, output, &mut on_progress);
            if summary.is_ok() {
                if let Err(e) = files.flush() {
                    summary = Err(labelport_engine::pipeline::PipelineError::Sink(e));
                } else {
                    let _ = chunks_tx.blocking_send(Chunk::End);
                }
            }
            summary
        });
        let (encoded, ()) = tokio::join!(
            encoding,
            self.report_progress(job, progress_rx, cancel_tx, cancel_flag)
        );
        // The pipeline has ended (its sender is gone), so the uploader ends too: it
        // completed the uploads, or aborted every one of them.
        let uploading = uploading.await;
        let stopped = matches!(&uploading, Ok(Err(f)) if f.code == FailureCode::Cancelled)
            || matches!(
                &encoded,
                Ok(Err(labelport_engine::pipeline::PipelineError::Cancelled))
            );
        if stopped {
            // Cancelled: the uploader aborted every upload, or never completed one.
            if let Ok(Ok(uploaded)) = uploading {
                for file in uploaded {
                    let _ = destination.delete(&file.key).await;
                }
            }
            return Err(permanent(Failure::cancelled()));
        }
        let summary = match encoded {
            Ok(Ok(summary)) => summary,
            Ok(Err(e)) => {
                return Err(Attempt {
                    failure: Failure::from(&e),
                    retryable: e.is_retryable(),
                });
            }
            Err(join) => {
                return Err(permanent(Failure::internal(
                    "exporting",
                    &format!("the export task ended abnormally: {join}"),
                )));
            }
        };
        let uploaded = match uploading {
            Ok(Ok(uploaded)) => uploaded,
            Ok(Err(failure)) => return Err(retryable(failure)),
            Err(join) => {
                return Err(permanent(Failure::internal(
                    "uploading the export",
                    &format!("the upload task ended abnormally: {join}"),
                )))
            }
        };
        let files: Vec<ResultFile> = uploaded
            .into_iter()
            .zip(&summary.written.files)
            .map(|(file, started)| ResultFile {
                bucket: bucket.clone(),
                name: file.name,
                key: file.key,
                bytes: file.bytes,
                sha256: file.sha256,
                content_type: started.content_type.clone(),
                role: started.role,
            })
            .collect();
        let manifest = Manifest {
            schema_version: 1,
            task_schema_version: labelport_model::SCHEMA_VERSION,
            export_id: &job.id,
            project: &job.project,
            format: request.format.as_str(),
            options: &request.options,
            compression: request.compression,
            states: request.spec().effective_states(),
            stages: request.spec().effective_stages(),
            fields: request.fields,
            counts: &summary.progress,
            files: &files,
            skipped_lines: &summary.skipped,
            created_at: job.created_at,
            finished_at: Utc::now(),
        };
        let mut manifest = serde_json::to_value(&manifest)
            .map_err(|e| permanent(Failure::internal("writing the manifest", &e.to_string())))?;
        let body = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| permanent(Failure::internal("writing the manifest", &e.to_string())))?;
        // The record keeps the file list once, in `result.files`: an export of many
        // parts would otherwise carry it twice.
        if let Some(fields) = manifest.as_object_mut() {
            fields.remove("files");
        }
        destination
            .put(
                &manifest_key,
                Bytes::from(body),
                "application/json",
                crate::ports::Condition::None,
            )
            .await
            .map_err(|e| retryable(Failure::storage("writing the manifest", &e)))?;
        let result = ExportResult {
            files,
            manifest_key,
            manifest,
            skipped_lines: summary.skipped,
        };
        Ok((result, summary.progress))
    }

    /// Writes progress to the job record every `progress_interval` until the pipeline
    /// ends, and raises `cancel` when a manager has asked to cancel the job.
    async fn report_progress(
        &self,
        job: &Job,
        mut progress: watch::Receiver<Progress>,
        cancel: watch::Sender<bool>,
        cancel_flag: Arc<std::sync::atomic::AtomicBool>,
    ) {
        let attempt = job.attempts;
        loop {
            let deadline = tokio::time::sleep(self.settings.progress_interval);
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    () = &mut deadline => break,
                    changed = progress.changed() => if changed.is_err() { return },
                }
            }
            let latest = progress.borrow_and_update().clone();
            let mut cancel_requested = false;
            let written = self
                .jobs
                .update(&job.id, |j| {
                    cancel_requested = j.cancel_requested_at.is_some();
                    (j.state == JobState::Running && j.attempts == attempt).then(|| {
                        let mut next = j.clone();
                        next.progress = latest.clone();
                        next
                    })
                })
                .await;
            if let Err(e) = written {
                tracing::warn!(export_id = %job.id, error = %chain(&e), "progress not recorded");
            }
            if cancel_requested {
                tracing::info!(export_id = %job.id, "cancel requested; stopping");
                // The reader stops at its next read, the uploader at its next chunk.
                cancel_flag.store(true, std::sync::atomic::Ordering::Relaxed);
                cancel.send_replace(true);
            }
        }
    }
}

/// `folder/name`, or `name` at the bucket's root.
fn join_key(folder: &str, name: &str) -> String {
    if folder.is_empty() {
        name.to_owned()
    } else {
        format!("{folder}/{name}")
    }
}

/// What the pipeline hands the uploader: a file, its bytes, the next file, ..., then
/// `End` only when it succeeded.
enum Chunk {
    Start { name: String, content_type: String },
    Data(Vec<u8>),
    End,
}

/// The pipeline's [`Files`], on its blocking thread: chunks of about 1 MiB over a
/// bounded channel to the async uploader (a ZIP writes many small pieces per entry).
struct ChannelFiles {
    chunks: mpsc::Sender<Chunk>,
    pending: Vec<u8>,
}

/// Bytes gathered before they cross to the uploader.
const CHUNK: usize = 1 << 20;

impl Files for ChannelFiles {
    fn start(&mut self, name: &str, content_type: &str) -> Result<(), BoxError> {
        self.flush()?;
        self.send(Chunk::Start {
            name: name.to_owned(),
            content_type: content_type.to_owned(),
        })
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), BoxError> {
        if self.pending.is_empty() && bytes.len() >= CHUNK {
            return self.send(Chunk::Data(bytes.to_vec()));
        }
        self.pending.extend_from_slice(bytes);
        if self.pending.len() >= CHUNK {
            self.flush()?;
        }
        Ok(())
    }
}

impl ChannelFiles {
    fn send(&self, chunk: Chunk) -> Result<(), BoxError> {
        self.chunks
            .blocking_send(chunk)
            .map_err(|_| "the upload stopped".into())
    }

    /// Sends what is gathered.
    fn flush(&mut self) -> Result<(), BoxError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.pending, Vec::with_capacity(CHUNK));
        self.send(Chunk::Data(chunk))
    }
}

/// One uploaded file.
struct Uploaded {
    name: String,
    key: String,
    bytes: u64,
    sha256: String,
}

/// A file being uploaded: its multipart upload, the part being filled, its hash.
struct Uploading {
    upload: Box<dyn Upload>,
    file: Uploaded,
    hasher: Sha256,
    part: BytesMut,
}

impl Uploading {
    async fn write(&mut self, chunk: &[u8]) -> Result<(), Failure> {
        self.hasher.update(chunk);
        self.file.bytes += chunk.len() as u64;
        self.part.extend_from_slice(chunk);
        if self.part.len() >= MIN_PART_SIZE {
            self.upload
                .put_part(self.part.split().freeze())
                .await
                .map_err(|e| Failure::storage("uploading the export", &e))?;
        }
        Ok(())
    }

    /// Uploads the last part (an empty file still needs one), leaving the upload to
    /// complete with the others.
    async fn close(mut self) -> Result<(Box<dyn Upload>, Uploaded), (Box<dyn Upload>, Failure)> {
        if !self.part.is_empty() || self.file.bytes == 0 {
            if let Err(e) = self.upload.put_part(self.part.split().freeze()).await {
                return Err((self.upload, Failure::storage("uploading the export", &e)));
            }
        }
        self.file.sha256 = hex::encode(self.hasher.finalize());
        Ok((self.upload, self.file))
    }
}

/// The uploads of one export: those closed (waiting to complete together), the one
/// being written, and any that failed (to abort).
#[derive(Default)]
struct Uploads {
    closed: Vec<(Box<dyn Upload>, Uploaded)>,
    current: Option<Uploading>,
    abandoned: Vec<Box<dyn Upload>>,
}

impl Uploads {
    /// Closes the file being written, if any: its last part goes up; its upload waits
    /// to complete with the others.
    async fn close_current(&mut self) -> Result<(), Failure> {
        if let Some(open) = self.current.take() {
            match open.close().await {
                Ok(done) => self.closed.push(done),
                Err((upload, failure)) => {
                    self.abandoned.push(upload);
                    return Err(failure);
                }
            }
        }
        Ok(())
    }
}

/// Uploads each file the pipeline starts as its own multipart upload under `folder`,
/// cutting parts and hashing as it goes. Every upload is completed only after `End`,
/// so no file of the export is visible before all are written; a stream that stops
/// without `End` (the pipeline failed) or a failed part aborts them all.
async fn upload_files(
    destination: Arc<dyn ObjectStore>,
    folder: String,
    mut chunks: mpsc::Receiver<Chunk>,
    mut cancel: watch::Receiver<bool>,
) -> Result<Vec<Uploaded>, Failure> {
    let mut uploads = Uploads::default();
    let outcome: Result<(), Failure> = async {
        loop {
            // Between chunks, never inside an S3 call: a request in flight when dropped
            // could leave an upload nobody knows to abort.
            let next = tokio::select! {
                biased;
                () = cancelled(&mut cancel) => return Err(Failure::cancelled()),
                next = chunks.recv() => next,
            };
            match next {
                Some(Chunk::Start { name, content_type }) => {
                    uploads.close_current().await?;
                    let key = join_key(&folder, &name);
                    let upload = destination
                        .create_upload(&key, &content_type)
                        .await
                        .map_err(|e| Failure::storage("starting the upload", &e))?;
                    uploads.current = Some(Uploading {
                        upload,
                        file: Uploaded {
                            name,
                            key,
                            bytes: 0,
                            sha256: String::new(),
                        },
                        hasher: Sha256::new(),
                        part: BytesMut::with_capacity(MIN_PART_SIZE + (1 << 20)),
                    });
                }
                Some(Chunk::Data(chunk)) => match uploads.current.as_mut() {
                    Some(open) => open.write(&chunk).await?,
                    None => {
                        return Err(Failure::new(
                            FailureCode::InternalError,
                            "the export wrote bytes before starting a file",
                        ))
                    }
                },
                Some(Chunk::End) => break,
                None => {
                    return Err(Failure::new(
                        FailureCode::InternalError,
                        "the export stopped before its end",
                    ))
                }
            }
        }
        uploads.close_current().await
    }
    .await;
    let Uploads {
        closed,
        current,
        mut abandoned,
    } = uploads;
    if let Err(failure) = outcome {
        abandoned.extend(current.map(|open| open.upload));
        abandoned.extend(closed.into_iter().map(|(upload, _)| upload));
        for upload in abandoned {
            if let Err(e) = upload.abort().await {
                tracing::warn!(error = %chain(&e), "aborting an upload failed; the bucket's lifecycle rule removes its parts");
            }
        }
        return Err(failure);
    }
    let mut uploaded = Vec::with_capacity(closed.len());
    for (upload, file) in closed {
        upload
            .complete()
            .await
            .map_err(|e| Failure::storage("completing the upload", &e))?;
        uploaded.push(file);
    }
    Ok(uploaded)
}

/// Resolves once `cancel` is raised; never if its sender goes away unraised.
async fn cancelled(cancel: &mut watch::Receiver<bool>) {
    loop {
        if *cancel.borrow_and_update() {
            return;
        }
        if cancel.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Manifest<'a> {
    schema_version: u32,
    task_schema_version: u32,
    export_id: &'a str,
    project: &'a str,
    format: &'a str,
    #[serde(flatten)]
    options: &'a labelport_encoders::FormatOptions,
    compression: labelport_encoders::Compression,
    #[serde(skip_serializing_if = "Option::is_none")]
    states: Option<Vec<labelport_model::TaskState>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stages: Option<Vec<String>>,
    fields: labelport_encoders::FieldToggles,
    counts: &'a Progress,
    files: &'a [ResultFile],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    skipped_lines: &'a [labelport_engine::progress::SkippedLine],
    created_at: chrono::DateTime<Utc>,
    finished_at: chrono::DateTime<Utc>,
}
