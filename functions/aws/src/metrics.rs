//! Metrics in CloudWatch's embedded metric format: one JSON line per export attempt on
//! stdout, which CloudWatch Logs turns into metrics. No API call, no extra permission,
//! nothing lost when the function ends.

use labelport_core::ports::{ExportEnded, Metrics};

/// Writes an EMF document for each export attempt that ends.
#[derive(Debug, Clone)]
pub struct EmfMetrics {
    namespace: String,
}

impl EmfMetrics {
    /// Metrics under `namespace` (`labelport`).
    pub fn new(namespace: impl Into<String>) -> Self {
        EmfMetrics {
            namespace: namespace.into(),
        }
    }

    /// The EMF document for one export attempt, stamped `timestamp_ms`. Dimensions are
    /// the format and the outcome (few values each); the export and project ids ride
    /// along as properties, searchable in Logs Insights without becoming dimensions.
    pub fn document(&self, ended: &ExportEnded<'_>, timestamp_ms: i64) -> serde_json::Value {
        serde_json::json!({
            "_aws": {
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [["Format", "Outcome"]],
                    "Metrics": [
                        {"Name": "Exports", "Unit": "Count"},
                        {"Name": "Tasks", "Unit": "Count"},
                        {"Name": "BytesRead", "Unit": "Bytes"},
                        {"Name": "BytesWritten", "Unit": "Bytes"},
                        {"Name": "Duration", "Unit": "Milliseconds"},
                        {"Name": "Attempts", "Unit": "Count"}
                    ]
                }]
            },
            "Format": ended.format,
            "Outcome": ended.outcome,
            "Exports": 1,
            "Tasks": ended.tasks,
            "BytesRead": ended.bytes_read,
            "BytesWritten": ended.bytes_written,
            "Duration": u64::try_from(ended.duration.as_millis()).unwrap_or(u64::MAX),
            "Attempts": ended.attempt,
            "exportId": ended.export_id,
            "project": ended.project,
            "code": ended.code,
        })
    }
}

impl Metrics for EmfMetrics {
    fn export_ended(&self, ended: &ExportEnded<'_>) {
        let now = chrono::Utc::now().timestamp_millis();
        // stdout, one line: the shape CloudWatch Logs extracts metrics from.
        println!("{}", self.document(ended, now));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_export_is_one_emf_document_with_its_dimensions_and_metrics() {
        let ended = ExportEnded {
            export_id: "01a2",
            project: "demo",
            format: "NDJSON",
            outcome: "SUCCEEDED",
            code: None,
            tasks: 1200,
            bytes_read: 5_000_000,
            bytes_written: 2_000_000,
            duration: std::time::Duration::from_millis(3456),
            attempt: 1,
        };
        let doc = EmfMetrics::new("labelport").document(&ended, 1_700_000_000_000);
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "labelport");
        assert_eq!(
            directive["Dimensions"],
            serde_json::json!([["Format", "Outcome"]])
        );
        // Every metric and dimension the directive names is a top-level member.
        for metric in directive["Metrics"].as_array().unwrap() {
            let name = metric["Name"].as_str().unwrap();
            assert!(doc[name].is_number(), "{name}");
        }
        assert_eq!(
            (doc["Format"].as_str(), doc["Outcome"].as_str()),
            (Some("NDJSON"), Some("SUCCEEDED"))
        );
        assert_eq!(
            (doc["Tasks"].as_u64(), doc["Duration"].as_u64()),
            (Some(1200), Some(3456))
        );
        assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000_i64);
    }
}
