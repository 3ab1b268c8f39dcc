//! The bodies of the queue messages between the functions.

use serde::{Deserialize, Serialize};

/// export-api → export-worker: run this export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExportMessage {
    /// The export to run.
    pub export_id: String,
    /// The export's correlation id (see [`correlation_id`]), so the worker's log lines
    /// carry it from the start of its handling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

/// export-worker → export-notifier: this export ended; tell the customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotifyMessage {
    /// The export that ended.
    pub export_id: String,
    /// The export's correlation id (see [`correlation_id`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

/// The header a caller may name its own correlation id in.
pub const CORRELATION_HEADER: &str = "x-correlation-id";

/// The id that follows one export through the API's, the worker's and the notifier's
/// log lines (`correlation_id`): `candidate` (the `x-correlation-id` header, else the
/// API Gateway request id) when it is well-formed, 1 to 128 characters of letters,
/// digits and `-_.:=+/`; else a new one.
pub fn correlation_id<'a>(candidates: impl IntoIterator<Item = Option<&'a str>>) -> String {
    candidates
        .into_iter()
        .flatten()
        .find(|c| is_well_formed(c))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// Whether `id` may be used as a correlation id as it is.
pub fn is_well_formed(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:=+/".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_well_formed_candidate_is_the_correlation_id() {
        assert_eq!(correlation_id([Some("abc-1"), Some("req")]), "abc-1");
        assert_eq!(
            correlation_id([Some("bad id\n"), Some("JTHoQiM4oAMEVTQ=")]),
            "JTHoQiM4oAMEVTQ="
        );
        assert_eq!(correlation_id([None, Some("req")]), "req");
        let long = "a".repeat(129);
        let new = correlation_id([Some(long.as_str()), Some("")]);
        assert!(uuid::Uuid::parse_str(&new).is_ok(), "{new}");
    }

    #[test]
    fn messages_without_a_correlation_id_still_read() {
        let old: ExportMessage =
            serde_json::from_str(r#"{"exportId":"x"}"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(old.correlation_id, None);
        let new = NotifyMessage {
            export_id: "x".into(),
            correlation_id: Some("c".into()),
        };
        assert_eq!(
            serde_json::to_string(&new).unwrap_or_default(),
            r#"{"exportId":"x","correlationId":"c"}"#
        );
    }
}
