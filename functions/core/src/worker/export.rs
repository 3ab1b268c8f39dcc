//! One attempt at an export: the sources (the project's task files, or an import),
//! the destination (the platform bucket or the customer's), the pipeline run beside
//! the upload, and the manifest written last.

use super::upload::{join_key, upload_files, ChannelFiles, Chunk, Uploaded};
use super::{Attempt, Worker};
use crate::error::{chain, Failure, FailureCode};
use crate::job::{ExportResult, Job, JobState, ResultFile};
use crate::ports::ObjectStore;
use crate::project::{load_project, ProjectError};
use bytes::Bytes;
use chrono::Utc;
use labelport_engine::decode::Decoder;
use labelport_engine::import::ImportError;
use labelport_engine::pipeline::{Output, PipelineError, Summary};
use labelport_engine::plan::Plan;
use labelport_engine::progress::Progress;
use labelport_engine::source;
use serde::Serialize;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

impl Worker {
    /// One attempt: sources, destination, the pipeline beside the upload, the manifest.
    pub(super) async fn export(&self, job: &Job) -> Result<(ExportResult, Progress), Attempt> {
        let sources = self.sources(job).await?;
        let plan = Plan::new(&job.request.spec(), &sources.project, self.settings.threads)
            .map_err(|e| {
                Attempt::permanent(Failure::new(FailureCode::InvalidRequest, e.to_string()))
            })?;
        if sources.files.is_empty() {
            return Err(Attempt::permanent(Failure::new(
                FailureCode::NoTaskFiles,
                format!(
                    "project {} has no task files under {} (*.ndjson, *.jsonl or *.json, optionally .gz or .zst); there is nothing to export",
                    job.project,
                    source::tasks_prefix(&job.project)
                ),
            )));
        }
        let destination = self.destination(job).await?;
        let (summary, uploaded) = self.run(job, plan, sources, &destination).await?;
        let files: Vec<ResultFile> = uploaded
            .into_iter()
            .zip(&summary.written.files)
            .map(|(file, started)| ResultFile {
                bucket: destination.bucket.clone(),
                name: file.name,
                key: file.key,
                bytes: file.bytes,
                sha256: file.sha256,
                content_type: started.content_type.clone(),
                role: started.role,
            })
            .collect();
        let result = write_manifest(job, &destination, files, &summary).await?;
        Ok((result, summary.progress))
    }

    /// What the attempt reads: the project's task files, or an import's export read with
    /// the tool's settings, and the project as they describe it.
    async fn sources(&self, job: &Job) -> Result<Sources, Attempt> {
        let project = load_project(self.store.as_ref(), &job.project)
            .await
            .map_err(|e| match e {
                ProjectError::Store(_) => Attempt::retryable(e.to_failure()),
                _ => Attempt::permanent(e.to_failure()),
            })?;
        let Some(import) = &job.request.source else {
            let files = source::list_task_files(self.store.as_ref(), &job.project)
                .await
                .map_err(|e| {
                    Attempt::retryable(Failure::storage("listing the project's task files", &e))
                })?;
            return Ok(Sources {
                project,
                files,
                decoder: None,
            });
        };
        let import = import
            .open(self.store.as_ref(), &project)
            .await
            .map_err(|e| match e {
                ImportError::Store { .. } => {
                    Attempt::retryable(Failure::storage("reading the import", &e))
                }
                ImportError::Invalid { field, .. } => {
                    let code = match field {
                        "source.export" => FailureCode::ImportNotFound,
                        _ => FailureCode::InvalidImport,
                    };
                    Attempt::permanent(Failure::new(code, e.to_string()))
                }
            })?;
        Ok(Sources {
            project: import.project,
            files: vec![import.export],
            decoder: Some(import.decoder),
        })
    }

    /// Where the attempt writes.
    async fn destination(&self, job: &Job) -> Result<Destination, Attempt> {
        match job.request.delivery.target() {
            // The customer's bucket, under their path: the file names are unique per
            // export, and so is the manifest's, which is written last.
            Some((target, path)) => {
                let store = self.buckets.open(&target).await.map_err(|e| {
                    // The SDK's text (request ids, endpoints, role sessions) goes to the
                    // log; the customer is told what it means for them.
                    tracing::warn!(export_id = %job.id, error = %chain(e.as_ref()), "the customer's bucket could not be opened");
                    Attempt::retryable(Failure::new(
                        FailureCode::DestinationUnavailable,
                        format!("s3://{}/{path} could not be opened (the role could not be assumed, or the bucket did not answer); the export is retried automatically, and ends with this message only if it keeps happening", target.bucket),
                    ))
                })?;
                let manifest_key = join_key(&path, &format!("{}.manifest.json", job.base_name()));
                Ok(Destination {
                    store,
                    folder: path,
                    manifest_key,
                    bucket: Some(target.bucket),
                })
            }
            // Each attempt writes under its own folder: an attempt that lost its lease
            // and finishes late can never overwrite the files a newer attempt recorded.
            None => {
                let folder = format!(
                    "{}/{}/{}/attempt-{}",
                    self.settings.exports_prefix, job.project, job.id, job.attempts
                );
                Ok(Destination {
                    store: self.destination.clone(),
                    manifest_key: join_key(&folder, "manifest.json"),
                    folder,
                    bucket: None,
                })
            }
        }
    }

    /// Runs the pipeline on a blocking thread while the uploads run beside it and the
    /// job's progress (and a manager's cancel) is followed; ends with both halves done.
    async fn run(
        &self,
        job: &Job,
        plan: Plan,
        sources: Sources,
        destination: &Destination,
    ) -> Result<(Summary, Vec<Uploaded>), Attempt> {
        let (chunks_tx, chunks_rx) = mpsc::channel::<Chunk>(4);
        let (progress_tx, progress_rx) = watch::channel(Progress::default());
        let (cancel_tx, cancel_rx) = watch::channel(false);
        let cancel_flag = plan.options.cancel.clone();
        // The upload's lines carry the message's span (its correlation_id) too.
        let uploading = tokio::spawn(tracing::Instrument::instrument(
            upload_files(
                destination.store.clone(),
                destination.folder.clone(),
                chunks_rx,
                cancel_rx,
            ),
            tracing::Span::current(),
        ));
        let store = self.store.clone();
        let handle = tokio::runtime::Handle::current();
        let modified = u64::try_from(job.created_at.timestamp()).unwrap_or(0);
        let base = job.base_name();
        let encoding = tokio::task::spawn_blocking(move || {
            let opened = source::open_with(store, sources.files, handle, sources.decoder);
            let mut files = ChannelFiles::new(chunks_tx.clone());
            let output = Output {
                files: &mut files,
                base: &base,
                modified_unix_secs: modified,
            };
            let mut on_progress = |p: &Progress| {
                progress_tx.send_replace(p.clone());
            };
            let mut summary = plan.run(opened, output, &mut on_progress);
            if summary.is_ok() {
                if let Err(e) = files.flush() {
                    summary = Err(PipelineError::Sink(e));
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
            || matches!(&encoded, Ok(Err(PipelineError::Cancelled)));
        if stopped {
            // Cancelled: the uploader aborted every upload, or never completed one.
            if let Ok(Ok(uploaded)) = uploading {
                for file in uploaded {
                    let _ = destination.store.delete(&file.key).await;
                }
            }
            return Err(Attempt::permanent(Failure::cancelled()));
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
                return Err(Attempt::permanent(Failure::internal(
                    "exporting",
                    &format!("the export task ended abnormally: {join}"),
                )));
            }
        };
        match uploading {
            Ok(Ok(uploaded)) => Ok((summary, uploaded)),
            Ok(Err(failure)) => Err(Attempt::retryable(failure)),
            Err(join) => Err(Attempt::permanent(Failure::internal(
                "uploading the export",
                &format!("the upload task ended abnormally: {join}"),
            ))),
        }
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

/// What an attempt reads.
struct Sources {
    /// The project (an import's, as its settings describe it).
    project: labelport_model::Project,
    /// The files, in export order.
    files: Vec<crate::ports::ObjectInfo>,
    /// The decoder of every file (an import's), else each file's own by its name.
    decoder: Option<Arc<dyn Decoder>>,
}

/// Where an attempt writes.
struct Destination {
    /// The bucket: the platform's, or the customer's through their role.
    store: Arc<dyn ObjectStore>,
    /// The folder the files go to.
    folder: String,
    /// The manifest's key, written last.
    manifest_key: String,
    /// The customer's bucket; `None` for the platform's.
    bucket: Option<String>,
}

/// Writes the manifest beside the files, last: what the export holds and how it was
/// made. The job record keeps it too, without its file list.
async fn write_manifest(
    job: &Job,
    destination: &Destination,
    files: Vec<ResultFile>,
    summary: &Summary,
) -> Result<ExportResult, Attempt> {
    let request = &job.request;
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
    let unwritable = |e: serde_json::Error| {
        Attempt::permanent(Failure::internal("writing the manifest", &e.to_string()))
    };
    let mut manifest = serde_json::to_value(&manifest).map_err(unwritable)?;
    let body = serde_json::to_vec_pretty(&manifest).map_err(unwritable)?;
    // The record keeps the file list once, in `result.files`: an export of many
    // parts would otherwise carry it twice.
    if let Some(fields) = manifest.as_object_mut() {
        fields.remove("files");
    }
    destination
        .store
        .put(
            &destination.manifest_key,
            Bytes::from(body),
            "application/json",
            crate::ports::Condition::None,
        )
        .await
        .map_err(|e| Attempt::retryable(Failure::storage("writing the manifest", &e)))?;
    Ok(ExportResult {
        files,
        manifest_key: destination.manifest_key.clone(),
        manifest,
        skipped_lines: summary.skipped.clone(),
    })
}

/// An export's manifest, written beside its files.
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
