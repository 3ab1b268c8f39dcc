//! The registry: every format labelport writes. A format is one file in this folder
//! exporting `pub static FORMAT: FormatSpec`, and one line in the list below.

macro_rules! register {
    ($($format:ident),* $(,)?) => {
        $(mod $format;)*
        /// Every format, in the order `labelport formats` lists them.
        pub(crate) static REGISTRY: &[&crate::FormatSpec] = &[$(&$format::FORMAT),*];
    };
}

register! {
    csv,
    ndjson,
    json,
    ndjson_split,
    native,
    json_simple,
    tsv,
    json_tabular,
    huggingface_csv,
    xlsx,
    long_csv,
    wide_csv,
    tsv_iob,
    tsv_non_iob,
    conll2003,
    json_advanced,
    plain,
    amazon_comprehend_csv,
    azure_automl_csv,
    gcp_vertex_ai_csv,
    gcp_vertex_ai_jsonl,
    custom,
    coco,
    yolo,
    voc,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod testing {
    //! Helpers the format tests share.
    use crate::{Encoder, Out, Record};
    use labelport_model::{Project, Task};

    /// A project of `mode` with `labels` (a JSON object) as its label schema.
    pub fn project(mode: &str, labels: serde_json::Value) -> Project {
        serde_json::from_value(serde_json::json!({
            "schemaVersion": 1, "id": "p1", "name": "Project", "mode": mode,
            "state": "running", "labels": labels,
        }))
        .unwrap()
    }

    /// Encodes `tasks` (JSON texts) as one file would hold them: header, records, footer.
    pub fn file(encoder: &dyn Encoder, tasks: &[&str]) -> String {
        let mut bytes = Vec::new();
        encoder.header(&mut bytes);
        let out = records(encoder, tasks);
        bytes.extend_from_slice(out.bytes());
        encoder.footer(&mut bytes);
        String::from_utf8(bytes).unwrap()
    }

    /// The encoder of format `name` for `project`, with `options` (a JSON object).
    pub fn build(
        name: &str,
        project: &Project,
        options: serde_json::Value,
    ) -> Result<Box<dyn Encoder>, crate::ConfigError> {
        let options: crate::FormatOptions = serde_json::from_value(options).unwrap();
        name.parse::<crate::Format>()
            .unwrap()
            .build(&crate::Settings {
                project,
                fields: crate::FieldToggles::default(),
                compression: Default::default(),
                options: &options,
            })
    }

    /// What encoding `task` sent to the errors report: (annotation id, reason) pairs.
    pub fn refusals(encoder: &dyn Encoder, task: &str) -> Vec<(String, String)> {
        let parsed: Task<'_> = serde_json::from_str(task).unwrap();
        let mut out = Out::new(encoder.separator());
        out.begin_record();
        encoder
            .encode(
                &Record {
                    task: &parsed,
                    raw: Some(task),
                    ordinal: 0,
                },
                &mut out,
            )
            .unwrap();
        std::str::from_utf8(out.record_refusals())
            .unwrap()
            .lines()
            .map(|line| {
                let v: serde_json::Value = serde_json::from_str(&format!("{{{line}}}")).unwrap();
                (
                    v["annotationId"].as_str().unwrap().to_owned(),
                    v["reason"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// A row project with `columns`, and one of its tasks whose cells and labels hold
    /// what tables trip over: delimiters, quotes, line breaks, formula-like text,
    /// non-ASCII and right-to-left text, the multi-value separator; plus a cell of a
    /// column the project does not list and an annotation that is not a class.
    pub fn tricky_row(columns: &[&str]) -> (Project, String) {
        let project = serde_json::from_value(serde_json::json!({
            "schemaVersion": 1, "id": "p1", "name": "Project", "mode": "row",
            "state": "running", "columns": columns,
        }))
        .unwrap();
        let task = serde_json::json!({
            "id": "t1", "asset": {"url": "s3://b/rows.csv", "row": [
                {"column": "product", "value": "Crème, \"fraîche\"\tx"},
                {"column": "review", "value": "=HYPERLINK(\"http://x\")\nبسيط"},
                {"column": "extra", "value": "dropped"},
            ]},
            "state": "validated", "stage": "Complete", "createdAt": "2024-01-01T00:00:00Z",
            "submissions": [{"id": "s1", "stage": "Review", "origin": "human", "completedAt": "x",
                "annotations": [
                    {"id": "a1", "type": "class", "label": "spam|ham"},
                    {"id": "a2", "type": "class", "label": "-neutral"},
                    {"id": "a3", "type": "span", "label": "PER", "start": 0, "end": 2},
                ]}],
        });
        (project, task.to_string())
    }

    /// Encodes `tasks` into one `Out`, as the pipeline does for a block.
    pub fn records(encoder: &dyn Encoder, tasks: &[&str]) -> Out {
        let mut out = Out::new(encoder.separator());
        for (ordinal, text) in tasks.iter().enumerate() {
            let task: Task<'_> = serde_json::from_str(text).unwrap();
            out.begin_record();
            let record = Record {
                task: &task,
                raw: Some(text),
                ordinal: ordinal as u64,
            };
            encoder.encode(&record, &mut out).unwrap();
            out.end_record();
        }
        out
    }
}
