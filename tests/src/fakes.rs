//! What the emulator cannot do, injected in front of the real adapters: uploads that
//! fail or stall at their end, task files read slowly, and metrics kept in memory.

use labelport_aws::S3Store;
use labelport_core::ports::{
    Condition, ExportEnded, Metrics, Object, ObjectInfo, ObjectStore, StoreError, Upload,
};
use std::sync::{Arc, Mutex};

pub type BoxUpload = Box<dyn Upload>;
type StoreResult<T> = Result<T, StoreError>;

/// The real S3 store with what the emulator cannot do injected: every upload it starts
/// wrapped by `wrap_upload` (an outage mid-export, a slow attempt), and task files read
/// slowly when `slow_reads` (an export long enough to be cancelled while it runs).
pub struct Injected<F> {
    s3: Arc<S3Store>,
    wrap_upload: F,
    slow_reads: bool,
}

/// Every upload wrapped by `wrap_upload`.
pub fn wrapped_uploads<F>(s3: Arc<S3Store>, wrap_upload: F) -> Injected<F> {
    Injected {
        s3,
        wrap_upload,
        slow_reads: false,
    }
}

/// Task files read 2 KiB every 40 ms.
pub fn slow_reads(s3: Arc<S3Store>) -> impl ObjectStore {
    Injected {
        s3,
        wrap_upload: |upload: BoxUpload| upload,
        slow_reads: true,
    }
}

/// Upload parts fail: a storage outage mid-export.
pub fn parts_fail(s3: Arc<S3Store>) -> impl ObjectStore {
    wrapped_uploads(s3, |upload: BoxUpload| -> BoxUpload {
        Box::new(FailingUpload(upload))
    })
}

/// An upload whose every part fails with a 503, as S3 answers when it sheds load.
pub struct FailingUpload(pub BoxUpload);

#[async_trait::async_trait]
impl Upload for FailingUpload {
    async fn put_part(&mut self, _: bytes::Bytes) -> StoreResult<()> {
        Err(StoreError::Backend {
            operation: "upload part",
            key: "injected".into(),
            source: "503 Slow Down (injected)".into(),
        })
    }
    async fn complete(self: Box<Self>) -> StoreResult<()> {
        self.0.complete().await
    }
    async fn abort(self: Box<Self>) -> StoreResult<()> {
        self.0.abort().await
    }
}

/// An upload that, before completing, says so and waits to be let go: an attempt that
/// stalls at its very end while another takes the job over.
pub struct GatedUpload {
    pub upload: BoxUpload,
    /// Told when the upload is about to complete.
    pub reached: Arc<tokio::sync::Notify>,
    /// Waited on before completing.
    pub gate: Arc<tokio::sync::Notify>,
}

#[async_trait::async_trait]
impl Upload for GatedUpload {
    async fn put_part(&mut self, part: bytes::Bytes) -> StoreResult<()> {
        self.upload.put_part(part).await
    }
    async fn complete(self: Box<Self>) -> StoreResult<()> {
        self.reached.notify_one();
        self.gate.notified().await;
        self.upload.complete().await
    }
    async fn abort(self: Box<Self>) -> StoreResult<()> {
        self.upload.abort().await
    }
}

#[async_trait::async_trait]
impl<F> ObjectStore for Injected<F>
where
    F: Fn(BoxUpload) -> BoxUpload + Send + Sync + 'static,
{
    async fn get(&self, key: &str) -> StoreResult<Object> {
        self.s3.get(key).await
    }
    async fn put(
        &self,
        key: &str,
        body: bytes::Bytes,
        content_type: &str,
        condition: Condition,
    ) -> StoreResult<String> {
        self.s3.put(key, body, content_type, condition).await
    }
    async fn delete(&self, key: &str) -> StoreResult<()> {
        self.s3.delete(key).await
    }
    async fn list(&self, prefix: &str) -> StoreResult<Vec<ObjectInfo>> {
        self.s3.list(prefix).await
    }
    async fn open(&self, key: &str) -> StoreResult<Box<dyn tokio::io::AsyncRead + Send + Unpin>> {
        if !self.slow_reads {
            return self.s3.open(key).await;
        }
        use futures::StreamExt;
        let body = self.s3.get(key).await?.body;
        let pieces: Vec<bytes::Bytes> = body
            .chunks(2048)
            .map(bytes::Bytes::copy_from_slice)
            .collect();
        let slow = futures::stream::iter(pieces).then(|piece| async move {
            tokio::time::sleep(std::time::Duration::from_millis(40)).await;
            Ok::<_, std::io::Error>(piece)
        });
        Ok(Box::new(tokio_util::io::StreamReader::new(Box::pin(slow))))
    }
    async fn create_upload(&self, key: &str, content_type: &str) -> StoreResult<BoxUpload> {
        let upload = self.s3.create_upload(key, content_type).await?;
        Ok((self.wrap_upload)(upload))
    }
}

/// One export attempt as metrics saw it: outcome, code, tasks, attempt.
pub type Attempted = (String, Option<String>, u64, u32);

/// Metrics kept in memory.
#[derive(Default)]
pub struct Recorded(pub Mutex<Vec<Attempted>>);

impl Metrics for Recorded {
    fn export_ended(&self, ended: &ExportEnded<'_>) {
        self.0.lock().unwrap().push((
            ended.outcome.to_owned(),
            ended.code.map(str::to_owned),
            ended.tasks,
            ended.attempt,
        ));
    }
}
