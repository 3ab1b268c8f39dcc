//! NDJSON_SPLIT: the NDJSON export cut into parts, `{base}-00001.ndjson`, ..., each at
//! most `split.maxFileBytes` bytes before compression (default 100 MB) and
//! `split.maxTasksPerFile` tasks. Parts end at line ends, so concatenated in order
//! they are the NDJSON export byte for byte; a part holds at least one task, even
//! one longer than the limit. An export that would need more than [`MAX_PARTS`] parts
//! fails, naming the options that make the parts larger.

use crate::formats::ndjson::NdjsonEncoder;
use crate::{
    ConfigError, Container, EncodeError, Encoder, FormatOption, FormatSpec, Out, Record, MAX_PARTS,
    STRUCTURE,
};
use serde::Deserialize;

/// The default part size: 100 MB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 100_000_000;

/// The smallest part size a request may ask for: 1 MB. Smaller parts only make more
/// files to list and download, and reach [`MAX_PARTS`] at 1 GB of export.
pub const MIN_FILE_BYTES: u64 = 1_000_000;

/// NDJSON in parts.
pub static FORMAT: FormatSpec = FormatSpec {
    name: "NDJSON_SPLIT",
    summary:
        "NDJSON in parts of at most split.maxFileBytes (100 MB) or split.maxTasksPerFile tasks",
    modes: None,
    default_states: None,
    allowed_states: None,
    default_stages: Some(&["Complete"]),
    options: &[&STRUCTURE, &SPLIT],
    build: |settings| {
        let split: Split = settings.options.get("split")?.unwrap_or_default();
        let max_bytes = split.max_file_bytes.unwrap_or(DEFAULT_MAX_FILE_BYTES);
        let max_records = split.max_tasks_per_file.unwrap_or(u64::MAX);
        if max_bytes < MIN_FILE_BYTES {
            return Err(ConfigError::new(
                "split.maxFileBytes",
                format!("must be at least {MIN_FILE_BYTES} (1 MB): smaller parts only make more files; use maxTasksPerFile for parts of a few tasks"),
            ));
        }
        if max_records == 0 {
            return Err(ConfigError::new(
                "split.maxTasksPerFile",
                "must be at least 1",
            ));
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
    /// The most bytes in a part, before compression (default 100 MB, at least 1 MB).
    // MIN_FILE_BYTES, written out: the attribute takes only a literal.
    #[schema(minimum = 1_000_000)]
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

    fn too_many_parts(&self) -> String {
        let tasks = (self.max_records != u64::MAX)
            .then(|| format!("split.maxTasksPerFile (now {})", self.max_records));
        let bytes = format!("split.maxFileBytes (now {})", self.max_bytes);
        let raise: Vec<String> = tasks.into_iter().chain([bytes]).collect();
        format!(
            "NDJSON_SPLIT would write more than {MAX_PARTS} parts; raise {}, or export fewer tasks",
            raise.join(" or ")
        )
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
        let e = build(serde_json::json!({"split": {"maxTasksPerFile": 0}}))
            .err()
            .unwrap();
        assert_eq!(e.field, "split.maxTasksPerFile");
        let e = build(serde_json::json!({"split": {"maxFileByte": 10}}))
            .err()
            .unwrap();
        assert_eq!(e.field, "split.maxFileByte");
        let e = build(serde_json::json!({"split": {"maxFileBytes": -1}}))
            .err()
            .unwrap();
        assert_eq!(e.field, "split.maxFileBytes");
    }

    #[test]
    fn a_part_holds_at_least_a_megabyte() {
        for too_small in [0, 1, 20_000, MIN_FILE_BYTES - 1] {
            let e = build(serde_json::json!({"split": {"maxFileBytes": too_small}}))
                .err()
                .unwrap();
            assert_eq!(e.field, "split.maxFileBytes");
            assert!(
                e.message.starts_with("must be at least 1000000 (1 MB)"),
                "{}",
                e.message
            );
        }
        let smallest = build(serde_json::json!({"split": {"maxFileBytes": MIN_FILE_BYTES}}));
        assert!(matches!(
            smallest.unwrap().container(),
            Container::Parts {
                max_bytes: MIN_FILE_BYTES,
                ..
            }
        ));
        // The API's schema says the same.
        let schema = serde_json::to_value(<Split as utoipa::PartialSchema>::schema()).unwrap();
        assert_eq!(
            schema["properties"]["maxFileBytes"]["minimum"],
            MIN_FILE_BYTES
        );
    }

    #[test]
    fn too_many_parts_names_the_options_that_make_parts_larger_and_their_values() {
        let one_task = build(serde_json::json!({"split": {"maxTasksPerFile": 1}})).unwrap();
        assert_eq!(
            one_task.too_many_parts(),
            "NDJSON_SPLIT would write more than 1000 parts; raise split.maxTasksPerFile (now 1) \
             or split.maxFileBytes (now 100000000), or export fewer tasks"
        );
        // No task limit was asked for: only the size can be raised.
        let by_size = build(serde_json::json!({"split": {"maxFileBytes": 2_000_000}})).unwrap();
        assert_eq!(
            by_size.too_many_parts(),
            "NDJSON_SPLIT would write more than 1000 parts; raise split.maxFileBytes \
             (now 2000000), or export fewer tasks"
        );
    }
}
