//! The object store: where task files are read from and exports written to, as one
//! small trait. The engine reads sources through it; the cloud adapter
//! (`labelport-aws`) and the local one (`labelport-local`) implement it.

use async_trait::async_trait;
use bytes::Bytes;
use std::collections::BTreeMap;
use tokio::io::AsyncRead;

/// A boxed error from an adapter, kept whole so `source()` chains survive.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What can go wrong talking to an object store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No object under that key.
    #[error("no object at {0}")]
    NotFound(String),
    /// A conditional write lost: the object exists (If-None-Match) or changed (If-Match).
    #[error("{0} changed since it was read")]
    PreconditionFailed(String),
    /// Anything else the backend reported.
    #[error("{operation} {key}")]
    Backend {
        /// What was being done (`get`, `put`, `upload part`).
        operation: &'static str,
        /// The key it was done to.
        key: String,
        /// The backend's error.
        #[source]
        source: BoxError,
    },
}

/// A small object read whole (job records, manifests, requests).
#[derive(Debug, Clone)]
pub struct Object {
    /// The bytes.
    pub body: Bytes,
    /// The entity tag, for a later conditional write.
    pub etag: String,
    /// User metadata (`x-amz-meta-*` on S3), names lower case.
    pub metadata: BTreeMap<String, String>,
}

/// One entry of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The full key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
}

/// The condition of a write: how job records become compare-and-swap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// Write whatever is there.
    None,
    /// Write only if no object exists (`If-None-Match: *`).
    IfAbsent,
    /// Write only if the object still has this entity tag (`If-Match`).
    IfMatch(String),
}

/// A bucket (or a folder standing in for one).
#[async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// Reads a small object whole.
    async fn get(&self, key: &str) -> Result<Object, StoreError>;
    /// Writes a small object; returns its new entity tag.
    async fn put(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
        condition: Condition,
    ) -> Result<String, StoreError>;
    /// Deletes an object; deleting one that is not there is not an error.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// Lists every object under `prefix`, in key order.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError>;
    /// Lists at most `max` objects under `prefix` whose keys come after `start_after`,
    /// in key order: one page. Backends that can page (S3's `StartAfter`) override it.
    async fn list_page(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        max: usize,
    ) -> Result<Vec<ObjectInfo>, StoreError> {
        let all = self.list(prefix).await?;
        Ok(all
            .into_iter()
            .filter(|o| start_after.is_none_or(|after| o.key.as_str() > after))
            .take(max)
            .collect())
    }
    /// Opens an object for streaming reads.
    async fn open(&self, key: &str) -> Result<Box<dyn AsyncRead + Send + Unpin>, StoreError>;
    /// Opens an object for blocking reads, where the backend has a faster way than
    /// bridging [`ObjectStore::open`] (a local file); `None` where it has not.
    fn open_blocking(
        &self,
        _key: &str,
    ) -> Option<Result<Box<dyn std::io::Read + Send>, StoreError>> {
        None
    }
    /// Starts an upload that becomes visible at `key` only when completed.
    async fn create_upload(
        &self,
        key: &str,
        content_type: &str,
    ) -> Result<Box<dyn Upload>, StoreError>;
}

/// A multipart upload in progress.
#[async_trait]
pub trait Upload: Send {
    /// Adds the next part. Every part but the last is at least
    /// [`MIN_PART_SIZE`] bytes (S3's rule).
    async fn put_part(&mut self, part: Bytes) -> Result<(), StoreError>;
    /// Makes the object visible.
    async fn complete(self: Box<Self>) -> Result<(), StoreError>;
    /// Discards every part; nothing becomes visible.
    async fn abort(self: Box<Self>) -> Result<(), StoreError>;
}

/// Parts are cut at 8 MiB: above S3's 5 MiB floor, and 10,000 parts of it reach 78 GiB.
pub const MIN_PART_SIZE: usize = 8 * 1024 * 1024;
