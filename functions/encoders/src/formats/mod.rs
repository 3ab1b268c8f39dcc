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
