//! Log lines in the shape Powertools for AWS Lambda writes, so the queries and dashboards
//! its users already have work unchanged: one JSON object per line with `level`,
//! `message`, `timestamp`, `service`, `coldStart`, and the invocation's `requestId` and
//! `xrayTraceId` at the top level, next to the event's own fields in camelCase
//! (`exportId`, `project`).
//!
//! The invocation fields come from the span the Lambda runtime opens around each
//! invocation (`requestId`, `xrayTraceId`); any other span's fields are lifted the same
//! way, the innermost winning.

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
                        line.insert(camel_case(&name), value);
                    }
                }
            }
        }
        if let Some(Value::String(request_id)) = line.get("requestId") {
            let first = self.first_request.get_or_init(|| request_id.clone());
            line.insert("coldStart".into(), Value::from(first == request_id));
        }
        event.record(&mut Fields(&mut line));
        let text = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

/// Collects an event's fields into the line, names in camelCase.
struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(camel_case(field.name()), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(camel_case(field.name()), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(camel_case(field.name()), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(camel_case(field.name()), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(camel_case(field.name()), Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(
            camel_case(field.name()),
            Value::from(labelport_core::error::chain(value)),
        );
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(camel_case(field.name()), Value::from(format!("{value:?}")));
    }
}

/// `export_id` → `exportId`; names without `_` are kept.
fn camel_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = !out.is_empty();
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
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
        assert!(lines[0].get("requestId").is_none());

        let first = &lines[1];
        assert_eq!(first["level"], "INFO");
        assert_eq!(first["message"], "export succeeded");
        assert_eq!(first["service"], "labelport-export-worker");
        assert_eq!(first["requestId"], "req-1");
        assert_eq!(first["xrayTraceId"], "Root=1-abc");
        assert_eq!(first["coldStart"], true);
        assert_eq!(first["exportId"], "0192f0c5");
        assert_eq!(first["project"], "demo");
        assert_eq!(first["tasks"], 7);
        assert!(first.get("export_id").is_none());
        assert!(first["timestamp"].as_str().unwrap().ends_with('Z'));

        let second = &lines[2];
        assert_eq!(second["level"], "WARN");
        assert_eq!(second["requestId"], "req-2");
        assert_eq!(second["coldStart"], false);
        assert_eq!(second["error"], "boom");
    }

    #[test]
    fn field_names_become_camel_case() {
        assert_eq!(camel_case("export_id"), "exportId");
        assert_eq!(camel_case("bytes_spooled_total"), "bytesSpooledTotal");
        assert_eq!(camel_case("requestId"), "requestId");
        assert_eq!(camel_case("message"), "message");
        assert_eq!(camel_case("_private"), "private");
    }
}
