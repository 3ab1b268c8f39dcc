//! A project's exports, newest first, a page at a time.

use super::{Caller, ExportService, ServiceError};
use crate::job::{Job, JobError, JobState, INDEX_PREFIX};

/// The most exports a page holds.
pub const MAX_PAGE: usize = 100;
/// Index entries read per request at most when a state filter skips most of them; the
/// cursor then continues from there.
const MAX_SCANNED: usize = 1000;

/// One export of a page, with the state it shows (EXPIRED past the retention).
pub struct ListedExport {
    /// The state shown.
    pub state: JobState,
    /// The record.
    pub job: Job,
}

/// A page of a project's exports.
pub struct ExportPage {
    /// The exports, newest first.
    pub exports: Vec<ListedExport>,
    /// The cursor of the next page; `None` on the last.
    pub next_cursor: Option<String>,
}

impl ExportService {
    /// At most `limit` of `project`'s exports in `state` (any, if `None`), newest first,
    /// after `cursor` (a page's `next_cursor`).
    pub async fn list(
        &self,
        caller: &Caller,
        project: &str,
        state: Option<JobState>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<ExportPage, ServiceError> {
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(ServiceError::BadParameter {
                parameter: "limit",
                message: format!("must be 1 to {MAX_PAGE}"),
            });
        }
        self.authorize(caller, project).await?;
        let prefix = format!("{INDEX_PREFIX}{project}/");
        let mut after = match cursor {
            None => None,
            Some(cursor) => Some(
                decode_cursor(cursor)
                    .filter(|k| k.starts_with(&prefix))
                    .ok_or_else(|| ServiceError::BadParameter {
                        parameter: "cursor",
                        message: "not a cursor this route gave".into(),
                    })?,
            ),
        };
        let mut exports = Vec::new();
        let mut scanned = 0;
        let mut exhausted = false;
        while exports.len() < limit && scanned < MAX_SCANNED {
            let page = self
                .jobs
                .index_page(project, after.as_deref(), limit.max(25))
                .await
                .map_err(|e| ServiceError::unavailable("listing the exports", e))?;
            if page.is_empty() {
                exhausted = true;
                break;
            }
            // The page's records are read at once: a hundred small GETs, not one after another.
            let read =
                futures::future::join_all(page.iter().map(|entry| self.jobs.get(&entry.id))).await;
            for (entry, job) in page.iter().zip(read) {
                scanned += 1;
                after = Some(entry.key.clone());
                let job = match job {
                    Ok(v) => v.job,
                    Err(JobError::NotFound(_)) => continue, // its request died before writing it
                    Err(e) => return Err(ServiceError::unavailable("reading an export", e)),
                };
                let shown = self.shown_state(&job, chrono::Utc::now());
                if state.is_none_or(|state| state == shown) {
                    exports.push(ListedExport { state: shown, job });
                    if exports.len() == limit {
                        break;
                    }
                }
            }
        }
        let next_cursor = (!exhausted)
            .then(|| after.as_deref().map(encode_cursor))
            .flatten();
        Ok(ExportPage {
            exports,
            next_cursor,
        })
    }
}

fn encode_cursor(key: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
}

fn decode_cursor(cursor: &str) -> Option<String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    String::from_utf8(bytes).ok()
}
