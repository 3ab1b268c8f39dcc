//! NDJSON_SPLIT: the NDJSON export cut into parts, `{base}-00001.ndjson`, ..., each at
//! most `split.maxFileBytes` bytes before compression (default 100 MB) and
//! `split.maxTasksPerFile` tasks. Parts end at line ends, so concatenated in order
//! they are the NDJSON export byte for byte; a part holds at least one task, even
//! one longer than the limit.

use crate::formats::ndjson::NdjsonEncoder;
use crate::{
    ConfigError, Container, EncodeError, Encoder, FormatOption, FormatSpec, Out, Record, STRUCTURE,
};
use serde::Deserialize;

/// The default part size: 100 MB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 100_000_000;

/// NDJSON in parts.
pub static FORMAT: FormatSpec = FormatSpec {
    name: "NDJSON_SPLIT",
    summary: "NDJSON in parts of at most split.maxFileBytes (100 MB) or split.maxTasksPerFile tasks",
    modes: None,
    default_states: None,
    allowed_states: None,
    default_stages: Some(&["Complete"]),
    options: &[&STRUCTURE, &SPLIT],
    build: |settings| {
        let split: Split = settings.options.get("split")?.unwrap_or_default();
        let max_bytes = split.max_file_bytes.unwrap_or(DEFAULT_MAX_FILE_BYTES);
        let max_records = split.max_tasks_per_file.unwrap_or(u64::MAX);
        if max_bytes == 0 {
            return Err(ConfigError::new("split.maxFileBytes", "must be at least 1"));
        }
        if max_records == 0 {
            return Err(ConfigError::new("split.maxTasksPerFile", "must be at least 1"));
        }
        Ok(Box::new(SplitEncoder {
            lines: NdjsonEncoder::from_settings(settings)?,
            max_bytes,
            max_records,
        }))
    },
};

/// `split`: where NDJSON_SPLIT cuts its parts.
static SPLIT: FormatOption = FormatOption {
    key: "split",
    schema: <Split as utoipa::PartialSchema>::schema,
};

/// Where parts are cut: whichever limit a part reaches first.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Split {
    /// The most bytes in a part, before compression (default 100 MB).
    #[schema(minimum = 1)]
    max_file_bytes: Option<u64>,
    /// The most tasks in a part (default: no limit).
    #[schema(minimum = 1)]
    max_tasks_per_file: Option<u64>,
}

/// NDJSON lines in a `Parts` container.
pub struct SplitEncoder {
    lines: NdjsonEncoder,
    max_bytes: u64,
    max_records: u64,
}

impl Encoder for SplitEncoder {
    fn container(&self) -> Container {
        Container::Parts {
            extension: "ndjson",
            content_type: "application/x-ndjson",
            max_bytes: self.max_bytes,
            max_records: self.max_records,
        }
    }

    fn encode(&self, record: &Record<'_, '_>, out: &mut Out) -> Result<(), EncodeError> {
        self.lines.line(record.task, out.record())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::formats::testing;
    use crate::{Format, FormatOptions, Settings};

    fn build(options: serde_json::Value) -> Result<Box<dyn Encoder>, ConfigError> {
        let project = testing::project("token", serde_json::json!({}));
        let options: FormatOptions = serde_json::from_value(options).unwrap();
        Format::by_name("NDJSON_SPLIT").unwrap().build(&Settings {
            project: &project,
            fields: Default::default(),
            compression: Default::default(),
            options: &options,
        })
    }

    #[test]
    fn limits_default_and_are_checked() {
        let container = build(serde_json::json!({})).unwrap().container();
        assert_eq!(
            container,
            Container::Parts {
                extension: "ndjson",
                content_type: "application/x-ndjson",
                max_bytes: DEFAULT_MAX_FILE_BYTES,
                max_records: u64::MAX
            }
        );
        let e = build(serde_json::json!({"split": {"maxTasksPerFile": 0}})).err().unwrap();
        assert_eq!(e.field, "split.maxTasksPerFile");
        let e = build(serde_json::json!({"split": {"maxFileByte": 10}})).err().unwrap();
        assert_eq!(e.field, "split.maxFileByte");
        let e = build(serde_json::json!({"split": {"maxFileBytes": -1}})).err().unwrap();
        assert_eq!(e.field, "split.maxFileBytes");
    }
}
