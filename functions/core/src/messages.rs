//! The bodies of the queue messages between the functions.

use serde::{Deserialize, Serialize};

/// export-api → export-worker: run this export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExportMessage {
    /// The export to run.
    pub export_id: String,
}

/// export-worker → export-notifier: this export ended; tell the customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotifyMessage {
    /// The export that ended.
    pub export_id: String,
}
