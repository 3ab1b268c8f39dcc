//! What a run counts and reports as it goes: the counts, and the malformed lines it
//! skipped.

use serde::{Deserialize, Serialize};

/// At most this many skipped lines are listed in a result (the errors report has all).
pub const MAX_LISTED_SKIPS: usize = 100;

/// Counts kept while the export runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Task files read so far.
    pub files_read: u64,
    /// Task lines read.
    pub tasks_read: u64,
    /// Tasks written to the output.
    pub tasks_exported: u64,
    /// Tasks left out by the filters (state, stage, preview).
    pub tasks_filtered: u64,
    /// Malformed lines skipped (only with `invalidLines: skip`), each in the errors report.
    pub lines_skipped: u64,
    /// Annotations the format could not express, each in the errors report.
    #[serde(default)]
    pub annotations_refused: u64,
    /// Tasks the format left out: a classification file's task without a class (in
    /// the errors report), a CUSTOM program's task it output nothing for (counted
    /// only) or failed on (in the errors report).
    #[serde(default)]
    pub tasks_left_out: u64,
    /// Annotations of a kind the format has no place for by design (relations in an
    /// IOB file): counted, and summed per reason in the errors report.
    #[serde(default)]
    pub annotations_omitted: u64,
    /// Bytes held back in temporary files (a ZIP's directory, the errors report).
    #[serde(default)]
    pub bytes_spooled: u64,
    /// Source bytes read (uncompressed).
    pub bytes_read: u64,
}

/// A malformed line that was skipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SkippedLine {
    /// The source file.
    pub file: String,
    /// The 1-based line.
    pub line: u64,
    /// Why it was refused.
    pub message: String,
}
