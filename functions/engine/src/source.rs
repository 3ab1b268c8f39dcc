//! The project's source files: where they are, how each is framed and decoded, and
//! how to open them. The worker, `labelport export` and imports of another tool's
//! export list and open sources through here.

use crate::decode::{Decoder, Framing, NativeArrayDecoder, NativeDecoder};
use crate::pipeline::{PipelineError, Source, StorageReadError};
use crate::store::{ObjectInfo, ObjectStore, StoreError};
use std::io::{BufReader, Read};
use std::sync::Arc;
use tokio::runtime::Handle;

/// `projects/{project}/tasks/`.
pub fn tasks_prefix(project: &str) -> String {
    format!("projects/{project}/tasks/")
}

/// How a file is framed, by its name: the one rule for every source, native or
/// another tool's. The ending is compared without case, after any `.gz` or `.zst`:
/// `.ndjson` and `.jsonl` are one record per line, `.json` one array of records;
/// `None` for any other name.
pub fn framing_for(name: &str) -> Option<Framing> {
    let plain = strip_suffix_ignore_case(name, ".gz")
        .or_else(|| strip_suffix_ignore_case(name, ".zst"))
        .unwrap_or(name);
    let ends = |e: &str| strip_suffix_ignore_case(plain, e).is_some();
    if ends(".ndjson") || ends(".jsonl") {
        Some(Framing::Lines)
    } else if ends(".json") {
        Some(Framing::JsonArray)
    } else {
        None
    }
}

/// The native decoder of a task file, by its name ([`framing_for`]); `None` for a
/// file that is not a task file.
pub fn decoder_for(key: &str) -> Option<&'static dyn Decoder> {
    Some(match framing_for(key)? {
        Framing::Lines => &NativeDecoder,
        Framing::JsonArray => &NativeArrayDecoder,
    })
}

fn strip_suffix_ignore_case<'a>(s: &'a str, suffix: &str) -> Option<&'a str> {
    let cut = s.len().checked_sub(suffix.len())?;
    (s.is_char_boundary(cut) && s[cut..].eq_ignore_ascii_case(suffix)).then(|| &s[..cut])
}

/// Whether a key is a task file this version reads.
pub fn is_task_file(key: &str) -> bool {
    decoder_for(key).is_some()
}

/// Lists the project's task files in key order (the export's order).
pub async fn list_task_files(
    store: &dyn ObjectStore,
    project: &str,
) -> Result<Vec<ObjectInfo>, StoreError> {
    list_sources(store, &tasks_prefix(project)).await
}

/// Lists the task files under `prefix` in key order, by the same rule on S3 and on
/// disk: every key under it, in nested folders too, whose name is a task file's
/// ([`decoder_for`]), except where a path segment starts with `.` (temporary files,
/// uploads in progress).
pub async fn list_sources(
    store: &dyn ObjectStore,
    prefix: &str,
) -> Result<Vec<ObjectInfo>, StoreError> {
    let mut files = store.list(prefix).await?;
    files.retain(|f| {
        let hidden = f.key[prefix.len().min(f.key.len())..]
            .split('/')
            .any(|segment| segment.starts_with('.'));
        !hidden && is_task_file(&f.key)
    });
    Ok(files)
}

/// Marks the errors of the raw object stream as storage errors.
struct FromStorage<R>(R);

impl<R: Read> Read for FromStorage<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0
            .read(buf)
            .map_err(|e| std::io::Error::new(e.kind(), StorageReadError(e)))
    }
}

/// Wraps a raw reader in the decompressor its name calls for.
pub fn decompress(
    name: &str,
    raw: Box<dyn Read + Send>,
) -> Result<Box<dyn Read + Send>, std::io::Error> {
    // 256 KiB reads keep S3 and the decompressor busy with few calls.
    let raw = BufReader::with_capacity(256 * 1024, raw);
    Ok(if strip_suffix_ignore_case(name, ".gz").is_some() {
        Box::new(flate2::bufread::MultiGzDecoder::new(raw))
    } else if strip_suffix_ignore_case(name, ".zst").is_some() {
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
    open_with(store, files, handle, None)
}

/// [`open_all`], reading every file with `decoder` if given (another tool's export),
/// else with the decoder its name calls for.
pub fn open_with(
    store: Arc<dyn ObjectStore>,
    files: Vec<ObjectInfo>,
    handle: Handle,
    decoder: Option<Arc<dyn Decoder>>,
) -> impl Iterator<Item = Result<Source, PipelineError>> + Send {
    files.into_iter().map(move |file| {
        let read_error = |source: std::io::Error| PipelineError::Read {
            file: file.key.clone(),
            source,
        };
        let decoder: Arc<dyn Decoder> = match &decoder {
            Some(decoder) => decoder.clone(),
            None => Arc::new(decoder_for(&file.key).ok_or_else(|| {
                read_error(std::io::Error::other("not a task file this version reads"))
            })?),
        };
        let raw: Box<dyn Read + Send> = match store.open_blocking(&file.key) {
            Some(reader) => reader.map_err(|e| read_error(std::io::Error::other(e)))?,
            None => {
                let reader = handle
                    .block_on(store.open(&file.key))
                    .map_err(|e| read_error(std::io::Error::other(e)))?;
                Box::new(tokio_util::io::SyncIoBridge::new_with_handle(
                    reader,
                    handle.clone(),
                ))
            }
        };
        let reader = decompress(&file.key, Box::new(FromStorage(raw))).map_err(read_error)?;
        Ok(Source {
            name: file.key.clone(),
            reader,
            decoder,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_files_are_chosen_by_name_with_or_without_compression() {
        for key in [
            "p/tasks/a.ndjson",
            "a.jsonl.gz",
            "a.ndjson.zst",
            "A.NDJSON",
            "b.JsonL.GZ",
        ] {
            assert!(is_task_file(key), "{key}");
        }
        assert!(
            decoder_for("p/tasks/all.json.gz").is_some_and(|d| d.framing() == Framing::JsonArray)
        );
        for key in ["a.ndjson.bz2", "a.csv", "a.gz", "ndjson", "a.json.tmp"] {
            assert!(!is_task_file(key), "{key}");
        }
    }
}
