//! The upload half of an attempt: the pipeline's files arrive as chunks over a channel
//! and become multipart uploads, completed together at the end or all aborted.

use crate::error::{chain, Failure, FailureCode};
use crate::ports::{BoxError, ObjectStore, Upload, MIN_PART_SIZE};
use bytes::BytesMut;
use labelport_engine::assembly::Files;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

/// What the pipeline hands the uploader: a file, its bytes, the next file, ..., then
/// `End` only when it succeeded.
pub(super) enum Chunk {
    Start { name: String, content_type: String },
    Data(Vec<u8>),
    End,
}

/// The pipeline's [`Files`], on its blocking thread: chunks of about 1 MiB over a
/// bounded channel to the async uploader (a ZIP writes many small pieces per entry).
pub(super) struct ChannelFiles {
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
    /// Files whose chunks go to `chunks`.
    pub(super) fn new(chunks: mpsc::Sender<Chunk>) -> Self {
        ChannelFiles {
            chunks,
            pending: Vec::with_capacity(CHUNK),
        }
    }

    fn send(&self, chunk: Chunk) -> Result<(), BoxError> {
        self.chunks
            .blocking_send(chunk)
            .map_err(|_| "the upload stopped".into())
    }

    /// Sends what is gathered.
    pub(super) fn flush(&mut self) -> Result<(), BoxError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.pending, Vec::with_capacity(CHUNK));
        self.send(Chunk::Data(chunk))
    }
}

/// One uploaded file.
pub(super) struct Uploaded {
    pub(super) name: String,
    pub(super) key: String,
    pub(super) bytes: u64,
    pub(super) sha256: String,
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
pub(super) async fn upload_files(
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

/// `folder/name`, or `name` at the bucket's root.
pub(super) fn join_key(folder: &str, name: &str) -> String {
    if folder.is_empty() {
        name.to_owned()
    } else {
        format!("{folder}/{name}")
    }
}
