//! NATIVE: the task record itself, version 1 (the version is in the export's
//! manifest as `taskSchemaVersion`), one per line: what a platform re-imports. Every
//! field is kept, including fields this version of labelport does not know: a record
//! read from a native source is copied as it was read; a record from another source is
//! written from the model.

use crate::{Container, EncodeError, Encoder, FormatSpec, Out, Record};

/// The task record, every field kept.
pub static FORMAT: FormatSpec = FormatSpec {
    name: "NATIVE",
    summary:
        "the task record v1 itself, every field kept, one per line: what a platform re-imports",
    modes: None,
    default_states: None,
    allowed_states: None,
    default_stages: None,
    options: &[],
    build: |settings| {
        // Every field is always there: a toggle would only drop some.
        settings.fields.refuse_all(FORMAT.name)?;
        Ok(Box::new(NativeEncoder))
    },
};

/// Copies or writes task records.
pub struct NativeEncoder;

impl Encoder for NativeEncoder {
    fn container(&self) -> Container {
        Container::File {
            extension: "ndjson",
            content_type: "application/x-ndjson",
        }
    }

    fn encode(&self, record: &Record<'_, '_>, out: &mut Out) -> Result<(), EncodeError> {
        let out = out.record();
        match record.raw {
            Some(raw) => out.extend_from_slice(raw.trim().as_bytes()),
            None => serde_json::to_writer(&mut *out, record.task)
                .map_err(|e| EncodeError(format!("writing the task record: {e}")))?,
        }
        out.push(b'\n');
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::formats::testing;
    use labelport_model::Task;

    const TASK: &str = r#"{"id":"t1","asset":{"url":"u","future":[1,2]},"state":"annotated","stage":"Label","createdAt":"x","platformField":{"kept":true}}"#;

    #[test]
    fn a_native_record_is_copied_with_fields_labelport_does_not_know() {
        let file = testing::file(&NativeEncoder, &[&format!("  {TASK} "), TASK]);
        assert_eq!(file, format!("{TASK}\n{TASK}\n"));
    }

    #[test]
    fn a_record_from_another_source_is_written_from_the_model() {
        let task: Task<'_> = serde_json::from_str(TASK).unwrap();
        let mut out = Out::new(b"");
        out.begin_record();
        NativeEncoder
            .encode(
                &Record {
                    task: &task,
                    raw: None,
                    ordinal: 0,
                },
                &mut out,
            )
            .unwrap();
        out.end_record();
        let back: Task<'_> = serde_json::from_slice(out.bytes()).unwrap();
        assert_eq!(back, task);
    }
}
