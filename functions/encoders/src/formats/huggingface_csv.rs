//! HUGGINGFACE_CSV: the table of a row or document project (`crate::table`) as a CSV
//! that Hugging Face `datasets.load_dataset("csv", ...)` and pandas load as is: one
//! header line, comma-separated, RFC 4180 quoting, UTF-8 without a byte order mark
//! (so the first column is `id`, not `\u{feff}id`). Several labels share the `label`
//! cell as the tabular formats write them (`a|b`). It is training data, not a
//! spreadsheet: every text is written as it is, a leading `=` or `-` included (the
//! spreadsheet formats' formula guard would change what a model trains on).

use crate::formats::tsv::DelimitedTable;
use crate::table::{Table, MODES};
use crate::tabular::TableStyle;
use crate::FormatSpec;

/// The table as a dataset CSV.
pub static FORMAT: FormatSpec = FormatSpec {
    name: "HUGGINGFACE_CSV",
    summary: "one row per task: id, the row's columns or the document's text, label; a CSV datasets loads as is",
    modes: Some(MODES),
    default_states: None,
    allowed_states: None,
    default_stages: Some(&["Complete"]),
    options: &[],
    build: |settings| {
        settings.fields.refuse_all(FORMAT.name)?;
        Ok(Box::new(DelimitedTable {
            table: Table::new(settings.project, FORMAT.name)?,
            style: TableStyle {
                delimiter: b',',
                safe: false,
                excel: false,
            },
            extension: "csv",
            content_type: "text/csv; charset=utf-8",
        }))
    },
};

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::formats::testing;

    fn build(options: serde_json::Value, mode: &str) -> Result<String, crate::ConfigError> {
        let (mut project, task) = testing::tricky_row(&["product", "review"]);
        project.mode = mode.parse().unwrap();
        let task = task.replace("\"row\":", "\"text\":\"Dear Sir,\\nتحية\",\"row\":");
        let encoder = testing::build("HUGGINGFACE_CSV", &project, options)?;
        Ok(testing::file(encoder.as_ref(), &[&task]))
    }

    #[test]
    fn a_comma_separated_table_without_a_byte_order_mark_its_texts_as_they_are() {
        assert_eq!(
            build(serde_json::json!({}), "row").unwrap(),
            "id,product,review,label\n\
             t1,\"Crème, \"\"fraîche\"\"\tx\",\"=HYPERLINK(\"\"http://x\"\")\nبسيط\",spam\\|ham|-neutral\n"
        );
        assert_eq!(
            build(serde_json::json!({}), "document").unwrap(),
            "id,text,label\nt1,\"Dear Sir,\nتحية\",spam\\|ham|-neutral\n"
        );
        for option in ["excel", "cells"] {
            let refused = build(serde_json::json!({option: true}), "row").unwrap_err();
            assert_eq!(refused.field, option);
        }
    }
}
