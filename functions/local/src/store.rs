//! The filesystem store: a folder stands in for a bucket. Keys are relative paths;
//! entity tags are content hashes, so conditional writes behave as on S3 within
//! one process (a lock serializes them; two processes on one folder are not
//! coordinated).

use async_trait::async_trait;
use bytes::Bytes;
use labelport_core::ports::{Condition, Object, ObjectInfo, ObjectStore, StoreError, Upload};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tokio::io::{AsyncRead, AsyncWriteExt};
use tokio::sync::Mutex;

/// A folder as an [`ObjectStore`].
pub struct FsStore {
    root: PathBuf,
    writes: Mutex<()>,
}

fn io_error(operation: &'static str, key: &str, e: std::io::Error) -> StoreError {
    if e.kind() == std::io::ErrorKind::NotFound {
        StoreError::NotFound(key.to_owned())
    } else {
        StoreError::Backend {
            operation,
            key: key.to_owned(),
            source: Box::new(e),
        }
    }
}

fn etag(bytes: &[u8]) -> String {
    format!("\"{}\"", hex::encode(&Sha256::digest(bytes)[..16]))
}

impl FsStore {
    /// Uses `root` (created if missing).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FsStore {
            root: root.into(),
            writes: Mutex::new(()),
        }
    }

    /// The file behind a key; refuses keys that would leave the folder.
    pub fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        let valid = !key.is_empty()
            && !key.starts_with('/')
            && !key.contains('\\')
            && key
                .split('/')
                .all(|seg| !seg.is_empty() && seg != "." && seg != "..");
        if !valid {
            return Err(StoreError::Backend {
                operation: "resolve",
                key: key.to_owned(),
                source: "not a valid relative key".into(),
            });
        }
        Ok(self.root.join(key))
    }

    async fn write_atomically(
        &self,
        key: &str,
        path: &Path,
        body: &[u8],
    ) -> Result<(), StoreError> {
        let parent = path.parent().unwrap_or(&self.root);
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| io_error("put", key, e))?;
        let tmp = parent.join(format!(".{}.tmp", uuid::Uuid::new_v4()));
        tokio::fs::write(&tmp, body)
            .await
            .map_err(|e| io_error("put", key, e))?;
        tokio::fs::rename(&tmp, path)
            .await
            .map_err(|e| io_error("put", key, e))
    }
}

#[async_trait]
impl ObjectStore for FsStore {
    async fn get(&self, key: &str) -> Result<Object, StoreError> {
        let body = tokio::fs::read(self.path(key)?)
            .await
            .map_err(|e| io_error("get", key, e))?;
        Ok(Object {
            etag: etag(&body),
            body: Bytes::from(body),
            metadata: Default::default(),
        })
    }

    async fn put(
        &self,
        key: &str,
        body: Bytes,
        _content_type: &str,
        condition: Condition,
    ) -> Result<String, StoreError> {
        let path = self.path(key)?;
        let _guard = self.writes.lock().await;
        let current = match tokio::fs::read(&path).await {
            Ok(bytes) => Some(etag(&bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_error("put", key, e)),
        };
        let allowed = match (&condition, &current) {
            (Condition::None, _) => true,
            (Condition::IfAbsent, current) => current.is_none(),
            (Condition::IfMatch(expected), Some(current)) => expected == current,
            (Condition::IfMatch(_), None) => false,
        };
        if !allowed {
            return Err(StoreError::PreconditionFailed(key.to_owned()));
        }
        self.write_atomically(key, &path, &body).await?;
        Ok(etag(&body))
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path(key)?;
        let _guard = self.writes.lock().await;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error("delete", key, e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        // List the deepest folder the prefix names, then filter by the full prefix.
        let folder = match prefix.rfind('/') {
            Some(i) => &prefix[..i],
            None => "",
        };
        let start = if folder.is_empty() {
            self.root.clone()
        } else {
            self.path(folder)?
        };
        let mut found = Vec::new();
        let mut pending = vec![start];
        while let Some(dir) = pending.pop() {
            let mut entries = match tokio::fs::read_dir(&dir).await {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error("list", prefix, e)),
            };
            while let Some(entry) = entries
                .next_entry()
                .await
                .map_err(|e| io_error("list", prefix, e))?
            {
                let kind = entry
                    .file_type()
                    .await
                    .map_err(|e| io_error("list", prefix, e))?;
                let name = entry.file_name();
                if name.to_string_lossy().starts_with('.') {
                    continue; // temporary files and uploads in progress
                }
                if kind.is_dir() {
                    pending.push(entry.path());
                } else if let Ok(rel) = entry.path().strip_prefix(&self.root) {
                    let key = rel.to_string_lossy().replace('\\', "/");
                    if key.starts_with(prefix) {
                        let size = entry
                            .metadata()
                            .await
                            .map_err(|e| io_error("list", prefix, e))?
                            .len();
                        found.push(ObjectInfo { key, size });
                    }
                }
            }
        }
        found.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(found)
    }

    async fn open(&self, key: &str) -> Result<Box<dyn AsyncRead + Send + Unpin>, StoreError> {
        let file = tokio::fs::File::open(self.path(key)?)
            .await
            .map_err(|e| io_error("open", key, e))?;
        Ok(Box::new(file))
    }

    fn open_blocking(
        &self,
        key: &str,
    ) -> Option<Result<Box<dyn std::io::Read + Send>, StoreError>> {
        // A plain file read beats bridging tokio's file, which hops threads per read.
        let opened = self
            .path(key)
            .and_then(|path| std::fs::File::open(path).map_err(|e| io_error("open", key, e)));
        Some(opened.map(|file| Box::new(file) as Box<dyn std::io::Read + Send>))
    }

    async fn create_upload(
        &self,
        key: &str,
        _content_type: &str,
    ) -> Result<Box<dyn Upload>, StoreError> {
        let path = self.path(key)?;
        let parent = path.parent().unwrap_or(&self.root).to_path_buf();
        tokio::fs::create_dir_all(&parent)
            .await
            .map_err(|e| io_error("create upload", key, e))?;
        let tmp = parent.join(format!(".upload-{}", uuid::Uuid::new_v4()));
        let file = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| io_error("create upload", key, e))?;
        Ok(Box::new(FsUpload {
            key: key.to_owned(),
            tmp,
            path,
            file,
        }))
    }
}

/// An upload is a hidden temporary file renamed into place on completion, so a
/// failed export leaves nothing visible, as a multipart upload on S3.
struct FsUpload {
    key: String,
    tmp: PathBuf,
    path: PathBuf,
    file: tokio::fs::File,
}

#[async_trait]
impl Upload for FsUpload {
    async fn put_part(&mut self, part: Bytes) -> Result<(), StoreError> {
        self.file
            .write_all(&part)
            .await
            .map_err(|e| io_error("upload part", &self.key, e))
    }

    async fn complete(mut self: Box<Self>) -> Result<(), StoreError> {
        self.file
            .flush()
            .await
            .map_err(|e| io_error("complete upload", &self.key, e))?;
        tokio::fs::rename(&self.tmp, &self.path)
            .await
            .map_err(|e| io_error("complete upload", &self.key, e))
    }

    async fn abort(self: Box<Self>) -> Result<(), StoreError> {
        tokio::fs::remove_file(&self.tmp)
            .await
            .map_err(|e| io_error("abort upload", &self.key, e))
    }
}

/// Customers' buckets on a laptop: `{root}/buckets/{bucket}/`, so an
/// EXTERNAL_OBJECT_STORAGE export can be tried without AWS (roles and keys are not used).
pub struct FolderBuckets {
    root: PathBuf,
}

impl FolderBuckets {
    /// Buckets under `root/buckets/`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FolderBuckets { root: root.into() }
    }
}

#[async_trait]
impl labelport_core::ports::Buckets for FolderBuckets {
    async fn open(
        &self,
        target: &labelport_core::ports::BucketTarget,
    ) -> Result<std::sync::Arc<dyn ObjectStore>, labelport_core::ports::BoxError> {
        let folder = self.root.join("buckets").join(&target.bucket);
        if !folder.is_dir() {
            return Err(format!(
                "NoSuchBucket: create {} to stand for bucket {}",
                folder.display(),
                target.bucket
            )
            .into());
        }
        Ok(std::sync::Arc::new(FsStore::new(folder)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn conditional_writes_behave_like_s3() {
        let dir = std::env::temp_dir().join(format!("labelport-store-{}", uuid::Uuid::new_v4()));
        let store = FsStore::new(&dir);
        let first = store
            .put(
                "jobs/a.json",
                Bytes::from_static(b"1"),
                "",
                Condition::IfAbsent,
            )
            .await
            .unwrap();
        let again = store
            .put(
                "jobs/a.json",
                Bytes::from_static(b"2"),
                "",
                Condition::IfAbsent,
            )
            .await;
        assert!(matches!(again, Err(StoreError::PreconditionFailed(_))));
        let second = store
            .put(
                "jobs/a.json",
                Bytes::from_static(b"2"),
                "",
                Condition::IfMatch(first.clone()),
            )
            .await
            .unwrap();
        let stale = store
            .put(
                "jobs/a.json",
                Bytes::from_static(b"3"),
                "",
                Condition::IfMatch(first),
            )
            .await;
        assert!(matches!(stale, Err(StoreError::PreconditionFailed(_))));
        assert_eq!(store.get("jobs/a.json").await.unwrap().etag, second);
        assert!(store.path("../etc/passwd").is_err());
        assert!(store.path("a//b").is_err());
        let listed = store.list("jobs/").await.unwrap();
        assert_eq!(
            listed,
            vec![ObjectInfo {
                key: "jobs/a.json".into(),
                size: 1
            }]
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn an_aborted_upload_leaves_nothing() {
        let dir = std::env::temp_dir().join(format!("labelport-store-{}", uuid::Uuid::new_v4()));
        let store = FsStore::new(&dir);
        let mut upload = store
            .create_upload("exports/x.csv", "text/csv")
            .await
            .unwrap();
        upload.put_part(Bytes::from_static(b"half")).await.unwrap();
        upload.abort().await.unwrap();
        assert!(store.list("exports/").await.unwrap().is_empty());
        assert!(std::fs::read_dir(dir.join("exports"))
            .unwrap()
            .next()
            .is_none());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
