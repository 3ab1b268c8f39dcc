//! Log lines in the shape Powertools for AWS Lambda (Python, TypeScript) writes, so the
//! queries and dashboards its users already have work unchanged: one JSON object per
//! line with `level`, `message`, `timestamp`, `service`, `function_name`, and within an
//! invocation `cold_start`, `function_request_id` and `xray_trace_id`, at the top level
//! next to the event's own fields, snake_case as they are written (`export_id`,
//! `project`, `correlation_id`).
//!
//! The invocation fields come from the span the Lambda runtime opens around each
//! invocation (its `requestId` and `xrayTraceId`, renamed); any other span's fields are
//! lifted as they are, the innermost winning: the `correlation_id` of the span opened
//! for an API request or a queue message is on each line of its handling.

use serde_json::{Map, Value};
use std::fmt;
use std::sync::OnceLock;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Formats events as Powertools-style JSON lines.
#[derive(Debug)]
pub struct PowertoolsJson {
    service: String,
    /// The first invocation's request id: lines of that invocation are the cold start.
    first_request: OnceLock<String>,
}

impl PowertoolsJson {
    /// Lines name `service` (the function's name on Lambda).
    pub fn new(service: impl Into<String>) -> Self {
        PowertoolsJson {
            service: service.into(),
            first_request: OnceLock::new(),
        }
    }
}

impl<S, N> FormatEvent<S, N> for PowertoolsJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = Map::new();
        line.insert(
            "level".into(),
            Value::from(event.metadata().level().as_str()),
        );
        line.insert(
            "timestamp".into(),
            Value::from(
                chrono::Utc::now()
                    .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                    .to_string(),
            ),
        );
        line.insert("service".into(), Value::from(self.service.as_str()));
        line.insert("function_name".into(), Value::from(self.service.as_str()));
        line.insert("location".into(), Value::from(event.metadata().target()));
        // Span fields were stored as JSON by `JsonFields`; outer spans first, so inner
        // ones override.
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                let Some(fields) = extensions.get::<FormattedFields<N>>() else {
                    continue;
                };
                if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(fields) {
                    for (name, value) in fields {
                        line.insert(powertools_name(&name).to_owned(), value);
                    }
                }
            }
        }
        if let Some(Value::String(request_id)) = line.get("function_request_id") {
            let first = self.first_request.get_or_init(|| request_id.clone());
            line.insert("cold_start".into(), Value::from(first == request_id));
        }
        event.record(&mut Fields(&mut line));
        let text = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

/// Collects an event's fields into the line, names as written.
struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(
            field.name().to_owned(),
            Value::from(labelport_core::error::chain(value)),
        );
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Value::from(format!("{value:?}")));
    }
}

/// Powertools' name for a field of the Lambda runtime's invocation span; other names
/// are kept.
fn powertools_name(name: &str) -> &str {
    match name {
        "requestId" => "function_request_id",
        "xrayTraceId" => "xray_trace_id",
        "tenantId" => "tenant_id",
        other => other,
    }
}

/// Installs the formatter as the global subscriber. The level is `RUST_LOG` for a
/// developer, else the one the function's `LoggingConfig` sets (`AWS_LAMBDA_LOG_LEVEL`),
/// else `info`.
pub fn init() {
    static SERVICE: OnceLock<String> = OnceLock::new();
    let service = SERVICE.get_or_init(|| {
        std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "labelport".into())
    });
    tracing_subscriber::fmt()
        .with_env_filter(level_filter())
        .fmt_fields(JsonFields::new())
        .event_format(PowertoolsJson::new(service.as_str()))
        .init();
}

fn level_filter() -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| {
            std::env::var("AWS_LAMBDA_LOG_LEVEL").map(|level| {
                let level = level.to_ascii_lowercase();
                tracing_subscriber::EnvFilter::new(if level == "fatal" { "error" } else { &level })
            })
        })
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn lines(captured: &Captured) -> Vec<Value> {
        let bytes = captured.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    #[test]
    fn lines_carry_the_invocation_and_the_event_at_the_top_level() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .fmt_fields(JsonFields::new())
            .event_format(PowertoolsJson::new("labelport-export-worker"))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("before any invocation");
            let mut context = lambda_runtime::Context::default();
            context.request_id = "req-1".into();
            context.xray_trace_id = Some("Root=1-abc".into());
            lambda_runtime::layers::trace::request_span(&context).in_scope(|| {
                let _message = tracing::info_span!("message", correlation_id = "corr-1").entered();
                tracing::info!(
                    export_id = "0192f0c5",
                    project = "demo",
                    tasks = 7u64,
                    "export succeeded"
                );
            });
            let mut context = lambda_runtime::Context::default();
            context.request_id = "req-2".into();
            lambda_runtime::layers::trace::request_span(&context).in_scope(|| {
                tracing::warn!(error = "boom", "export failed");
            });
        });
        let lines = lines(&captured);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(lines[0]["message"], "before any invocation");
        assert!(lines[0].get("function_request_id").is_none());
        assert!(lines[0].get("cold_start").is_none());

        let first = &lines[1];
        assert_eq!(first["level"], "INFO");
        assert_eq!(first["message"], "export succeeded");
        assert_eq!(first["service"], "labelport-export-worker");
        assert_eq!(first["function_name"], "labelport-export-worker");
        assert_eq!(first["function_request_id"], "req-1");
        assert_eq!(first["xray_trace_id"], "Root=1-abc");
        assert_eq!(first["cold_start"], true);
        assert_eq!(first["correlation_id"], "corr-1");
        assert_eq!(first["export_id"], "0192f0c5");
        assert_eq!(first["project"], "demo");
        assert_eq!(first["tasks"], 7);
        for camel in ["exportId", "requestId", "xrayTraceId", "coldStart"] {
            assert!(first.get(camel).is_none(), "{camel}: {first}");
        }
        assert!(first["timestamp"].as_str().unwrap().ends_with('Z'));

        let second = &lines[2];
        assert_eq!(second["level"], "WARN");
        assert_eq!(second["function_request_id"], "req-2");
        assert_eq!(second["cold_start"], false);
        assert!(second.get("correlation_id").is_none());
        assert_eq!(second["error"], "boom");
    }

    #[test]
    fn the_runtimes_fields_take_powertools_names() {
        assert_eq!(powertools_name("requestId"), "function_request_id");
        assert_eq!(powertools_name("xrayTraceId"), "xray_trace_id");
        assert_eq!(powertools_name("export_id"), "export_id");
    }
}
