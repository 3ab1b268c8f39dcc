//! The project's source files: where they are and how to read them.

use crate::pipeline::{PipelineError, Source};
use crate::ports::{ObjectInfo, ObjectStore, StoreError};
use std::io::{BufReader, Read};
use std::sync::Arc;
use tokio::runtime::Handle;

/// `projects/{project}/project.json`.
pub fn manifest_key(project: &str) -> String {
    format!("projects/{project}/project.json")
}

/// `projects/{project}/tasks/`.
pub fn tasks_prefix(project: &str) -> String {
    format!("projects/{project}/tasks/")
}

/// Whether a key is a task file this version reads.
pub fn is_task_file(key: &str) -> bool {
    [
        ".ndjson",
        ".ndjson.gz",
        ".ndjson.zst",
        ".jsonl",
        ".jsonl.gz",
        ".jsonl.zst",
    ]
    .iter()
    .any(|ext| key.ends_with(ext))
}

/// Lists the project's task files in key order (the export's order).
pub async fn list_task_files(
    store: &dyn ObjectStore,
    project: &str,
) -> Result<Vec<ObjectInfo>, StoreError> {
    let mut files = store.list(&tasks_prefix(project)).await?;
    files.retain(|f| is_task_file(&f.key));
    Ok(files)
}

/// Wraps a raw reader in the decompressor its name calls for.
pub fn decompress(
    name: &str,
    raw: Box<dyn Read + Send>,
) -> Result<Box<dyn Read + Send>, std::io::Error> {
    // 256 KiB reads keep S3 and the decompressor busy with few calls.
    let raw = BufReader::with_capacity(256 * 1024, raw);
    Ok(if name.ends_with(".gz") {
        Box::new(flate2::bufread::MultiGzDecoder::new(raw))
    } else if name.ends_with(".zst") {
        Box::new(zstd::stream::read::Decoder::with_buffer(raw)?)
    } else {
        Box::new(raw)
    })
}

/// Opens the files one at a time, as the pipeline reaches them, from a blocking thread.
pub fn open_all(
    store: Arc<dyn ObjectStore>,
    files: Vec<ObjectInfo>,
    handle: Handle,
) -> impl Iterator<Item = Result<Source, PipelineError>> + Send {
    files.into_iter().map(move |file| {
        let read_error = |source: std::io::Error| PipelineError::Read {
            file: file.key.clone(),
            source,
        };
        let reader = handle
            .block_on(store.open(&file.key))
            .map_err(|e| read_error(std::io::Error::other(e)))?;
        let bridge = tokio_util::io::SyncIoBridge::new_with_handle(reader, handle.clone());
        let reader = decompress(&file.key, Box::new(bridge)).map_err(read_error)?;
        Ok(Source {
            name: file.key.clone(),
            reader,
        })
    })
}
