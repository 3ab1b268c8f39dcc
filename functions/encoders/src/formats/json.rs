//! JSON: one JSON array of the JSON family's task objects, the same objects as NDJSON
//! (current or legacy structure), streamed: `[`, the objects separated by `,` and a
//! line end, `]`. A reader that loads whole documents (Python's `json.load`) reads it;
//! labelport never holds it.

use crate::formats::ndjson::NdjsonEncoder;
use crate::label_studio::LabelStudioJsonMin;
use crate::{
    Compat, ConfigError, Container, EncodeError, Encoder, FormatSpec, Out, Record, COMPAT,
};

/// JSON, one array.
pub static FORMAT: FormatSpec = FormatSpec {
    name: "JSON",
    summary: "one JSON array of the NDJSON task objects, streamed",
    modes: None,
    default_states: None,
    allowed_states: None,
    default_stages: Some(&["Complete"]),
    options: &[&crate::STRUCTURE, &COMPAT],
    build: |settings| match Compat::of(settings.options)? {
        Some(Compat::LabelStudio) => {
            if settings.options.0.contains_key(crate::STRUCTURE.key) {
                return Err(ConfigError::new(
                    "structure",
                    "\"compat\": \"label-studio\" writes Label Studio's JSON_MIN records, which have no structure to choose",
                ));
            }
            Ok(Box::new(LabelStudioJsonMin::new(settings, FORMAT.name)?))
        }
        None => Ok(Box::new(JsonEncoder {
            lines: NdjsonEncoder::from_settings(settings)?,
        })),
    },
};

/// Writes the array; each element is an NDJSON line without its line end.
pub struct JsonEncoder {
    lines: NdjsonEncoder,
}

impl Encoder for JsonEncoder {
    fn container(&self) -> Container {
        Container::File {
            extension: "json",
            content_type: "application/json",
        }
    }

    fn header(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(crate::json_text::ARRAY_OPEN);
    }

    fn separator(&self) -> &'static [u8] {
        crate::json_text::ARRAY_SEPARATOR
    }

    fn encode(&self, record: &Record<'_, '_>, out: &mut Out) -> Result<(), EncodeError> {
        let out = out.record();
        self.lines.line(record.task, out)?;
        out.pop(); // the line end: the separator or the footer follows
        Ok(())
    }

    fn footer(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(crate::json_text::ARRAY_CLOSE);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::formats::testing;
    use crate::{FieldToggles, Structure};

    const TASK: &str =
        r#"{"id":"t1","asset":{"url":"u"},"state":"annotated","stage":"Complete","createdAt":"x"}"#;

    fn encoder() -> JsonEncoder {
        JsonEncoder {
            lines: NdjsonEncoder::new(FieldToggles::default(), Structure::Current),
        }
    }

    #[test]
    fn the_file_is_one_array_of_the_ndjson_objects() {
        let file = testing::file(&encoder(), &[TASK, TASK, TASK]);
        let parsed: serde_json::Value = serde_json::from_str(&file).unwrap();
        let ndjson = testing::file(&encoder().lines, &[TASK]);
        let line: serde_json::Value = serde_json::from_str(&ndjson).unwrap();
        assert_eq!(parsed, serde_json::json!([line, line, line]));
        assert!(
            file.starts_with("[\n{") && file.ends_with("}\n]\n"),
            "{file}"
        );
    }

    #[test]
    fn an_empty_export_is_an_empty_array() {
        let file = testing::file(&encoder(), &[]);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&file).unwrap(),
            serde_json::json!([])
        );
    }
}
