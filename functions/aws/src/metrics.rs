//! Metrics in CloudWatch's embedded metric format: one JSON line on stdout per export
//! attempt (worker), per request (API) and per notify message (notifier), which
//! CloudWatch Logs turns into metrics. No API call, no extra permission, nothing lost
//! when the function ends.

use labelport_core::ports::{DeliveryEnded, ExportEnded, Metrics, RequestServed};

/// Writes an EMF document for each export attempt that ends, each request the API
/// answers and each notify message the notifier handles.
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

    /// `fields` (dimension values, metric values, properties) with the `_aws` block
    /// that tells CloudWatch which are dimensions (`dimensions`, sets of names) and which
    /// metrics (`metrics`, name and unit), stamped `timestamp_ms`.
    fn emf(
        &self,
        timestamp_ms: i64,
        dimensions: serde_json::Value,
        metrics: &[(&str, &str)],
        mut fields: serde_json::Value,
    ) -> serde_json::Value {
        let metrics: Vec<serde_json::Value> = metrics
            .iter()
            .map(|(name, unit)| serde_json::json!({"Name": name, "Unit": unit}))
            .collect();
        fields["_aws"] = serde_json::json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": self.namespace,
                "Dimensions": dimensions,
                "Metrics": metrics,
            }]
        });
        fields
    }

    /// The EMF document for one export attempt, stamped `timestamp_ms`. Dimensions are
    /// the format and the outcome (few values each); the export and project ids ride
    /// along as properties, searchable in Logs Insights without becoming dimensions.
    pub fn document(&self, ended: &ExportEnded<'_>, timestamp_ms: i64) -> serde_json::Value {
        self.emf(
            timestamp_ms,
            serde_json::json!([["Format", "Outcome"]]),
            &[
                ("Exports", "Count"),
                ("Tasks", "Count"),
                ("BytesRead", "Bytes"),
                ("BytesWritten", "Bytes"),
                ("Duration", "Milliseconds"),
                ("Attempts", "Count"),
            ],
            serde_json::json!({
                "Format": ended.format,
                "Outcome": ended.outcome,
                "Exports": 1,
                "Tasks": ended.tasks,
                "BytesRead": ended.bytes_read,
                "BytesWritten": ended.bytes_written,
                "Duration": millis(ended.duration),
                "Attempts": ended.attempt,
                "export_id": ended.export_id,
                "project": ended.project,
                "code": ended.code,
            }),
        )
    }

    /// The EMF document for one API request: `Requests` (1) and `Latency`, by route and
    /// status class (`2xx`) and by status class alone; the exact code rides along.
    pub fn request_document(
        &self,
        served: &RequestServed<'_>,
        timestamp_ms: i64,
    ) -> serde_json::Value {
        self.emf(
            timestamp_ms,
            serde_json::json!([["Route", "Status"], ["Status"]]),
            &[("Requests", "Count"), ("Latency", "Milliseconds")],
            serde_json::json!({
                "Route": served.route,
                "Status": format!("{}xx", served.status / 100),
                "Requests": 1,
                "Latency": millis(served.duration),
                "statusCode": served.status,
            }),
        )
    }

    /// The EMF document for one notify message: `Deliveries` (1) by method and outcome,
    /// and by outcome alone.
    pub fn delivery_document(
        &self,
        ended: &DeliveryEnded<'_>,
        timestamp_ms: i64,
    ) -> serde_json::Value {
        self.emf(
            timestamp_ms,
            serde_json::json!([["Method", "Outcome"], ["Outcome"]]),
            &[("Deliveries", "Count")],
            serde_json::json!({
                "Method": ended.method,
                "Outcome": ended.outcome,
                "Deliveries": 1,
                "export_id": ended.export_id,
            }),
        )
    }
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Writes one EMF document to stdout, one line: the shape CloudWatch Logs extracts
/// metrics from.
fn emit(document: &serde_json::Value) {
    println!("{document}");
}

impl Metrics for EmfMetrics {
    fn export_ended(&self, ended: &ExportEnded<'_>) {
        emit(&self.document(ended, chrono::Utc::now().timestamp_millis()));
    }

    fn request_served(&self, served: &RequestServed<'_>) {
        emit(&self.request_document(served, chrono::Utc::now().timestamp_millis()));
    }

    fn delivery_ended(&self, ended: &DeliveryEnded<'_>) {
        emit(&self.delivery_document(ended, chrono::Utc::now().timestamp_millis()));
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

    /// Every dimension and metric the directive names is a top-level member of `doc`.
    fn complete(doc: &serde_json::Value) -> &serde_json::Value {
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        for set in directive["Dimensions"].as_array().unwrap() {
            for name in set.as_array().unwrap() {
                let name = name.as_str().unwrap();
                assert!(doc[name].is_string(), "dimension {name}");
            }
        }
        for metric in directive["Metrics"].as_array().unwrap() {
            let name = metric["Name"].as_str().unwrap();
            assert!(doc[name].is_number(), "metric {name}");
        }
        directive
    }

    #[test]
    fn a_request_is_one_emf_document_by_route_and_status() {
        let served = RequestServed {
            route: "POST /v1/projects/{project}/exports",
            status: 202,
            duration: std::time::Duration::from_millis(87),
        };
        let doc = EmfMetrics::new("labelport").request_document(&served, 1_700_000_000_000);
        let directive = complete(&doc);
        assert_eq!(directive["Namespace"], "labelport");
        assert_eq!(
            directive["Dimensions"],
            serde_json::json!([["Route", "Status"], ["Status"]])
        );
        assert_eq!(
            (doc["Route"].as_str(), doc["Status"].as_str()),
            (Some("POST /v1/projects/{project}/exports"), Some("2xx"))
        );
        assert_eq!(
            (doc["Requests"].as_u64(), doc["Latency"].as_u64()),
            (Some(1), Some(87))
        );
        assert_eq!(doc["statusCode"], 202);
        assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000_i64);
        let not_found = RequestServed {
            route: "UNMATCHED",
            status: 404,
            ..served
        };
        let doc = EmfMetrics::new("labelport").request_document(&not_found, 0);
        assert_eq!(doc["Status"], "4xx");
    }

    #[test]
    fn a_delivery_is_one_emf_document_by_method_and_outcome() {
        let ended = DeliveryEnded {
            export_id: Some("01a2"),
            method: "EMAIL",
            outcome: "EMAILED",
        };
        let doc = EmfMetrics::new("labelport").delivery_document(&ended, 1_700_000_000_000);
        let directive = complete(&doc);
        assert_eq!(directive["Namespace"], "labelport");
        assert_eq!(
            directive["Dimensions"],
            serde_json::json!([["Method", "Outcome"], ["Outcome"]])
        );
        assert_eq!(
            directive["Metrics"],
            serde_json::json!([{"Name": "Deliveries", "Unit": "Count"}])
        );
        assert_eq!(
            (doc["Method"].as_str(), doc["Outcome"].as_str()),
            (Some("EMAIL"), Some("EMAILED"))
        );
        assert_eq!(doc["Deliveries"], 1);
        assert_eq!(doc["export_id"], "01a2");
    }
}
