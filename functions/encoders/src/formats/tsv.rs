//! TSV: the table of a row or document project (`crate::table`), cells separated by
//! tabs. A cell holding a tab, a line break or `"` is quoted as in CSV, so Python's
//! `csv` module (`delimiter="\t"`) and pandas read it back whole; cells are safe to open
//! in a spreadsheet unless `"cells": "raw"` (`crate::tabular`).

use crate::table::{class_labels, Table, TableCell, MODES};
use crate::tabular::{TableStyle, CELLS, EXCEL};
use crate::{ConfigError, Container, EncodeError, Encoder, FormatSpec, Out, Record, Settings};

/// The table, tab-separated.
pub static FORMAT: FormatSpec = FormatSpec {
    name: "TSV",
    summary: "one row per task: id, the row's columns or the document's text, label; tab-separated",
    modes: Some(MODES),
    default_states: None,
    allowed_states: None,
    default_stages: Some(&["Complete"]),
    options: &[&CELLS, &EXCEL],
    build: |settings| {
        DelimitedTable::build(
            settings,
            FORMAT.name,
            b'\t',
            "tsv",
            "text/tab-separated-values; charset=utf-8",
        )
    },
};

/// The table as delimited text (TSV, HUGGINGFACE_CSV).
pub struct DelimitedTable {
    pub(crate) table: Table,
    pub(crate) style: TableStyle,
    pub(crate) extension: &'static str,
    pub(crate) content_type: &'static str,
}

impl DelimitedTable {
    /// The table of `settings`' project for format `name`, its cells separated by
    /// `delimiter` and written by the request's `cells` and `excel` options; every field
    /// toggle is refused (a table has one row per task and no room for them).
    pub(crate) fn build(
        settings: &Settings<'_>,
        name: &'static str,
        delimiter: u8,
        extension: &'static str,
        content_type: &'static str,
    ) -> Result<Box<dyn Encoder>, ConfigError> {
        settings.fields.refuse_all(name)?;
        Ok(Box::new(DelimitedTable {
            table: Table::new(settings.project, name)?,
            style: TableStyle::from_settings(settings, delimiter)?,
            extension,
            content_type,
        }))
    }
}

impl Encoder for DelimitedTable {
    fn container(&self) -> Container {
        Container::File {
            extension: self.extension,
            content_type: self.content_type,
        }
    }

    fn header(&self, out: &mut Vec<u8>) {
        self.style.start(out);
        for (i, column) in self.table.header().iter().enumerate() {
            if i > 0 {
                self.style.next(out);
            }
            self.style.text(out, column);
        }
        self.style.end_line(out);
    }

    fn encode(&self, record: &Record<'_, '_>, out: &mut Out) -> Result<(), EncodeError> {
        let style = &self.style;
        let mut first = true;
        self.table.row(record.task, out, |out, _, cell| {
            let out = out.record();
            if !std::mem::take(&mut first) {
                style.next(out);
            }
            match cell {
                TableCell::Text(text) => style.text(out, text),
                TableCell::Labels(annotations) => style.values(out, class_labels(annotations)),
            }
        });
        style.end_line(out.record());
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::formats::testing;

    fn tsv(options: serde_json::Value) -> String {
        let (project, task) = testing::tricky_row(&["product", "review", "id"]);
        let encoder = testing::build("TSV", &project, options).unwrap();
        testing::file(encoder.as_ref(), &[&task])
    }

    #[test]
    fn the_table_is_tab_separated_quoted_where_needed_and_safe() {
        assert_eq!(
            tsv(serde_json::json!({})),
            "id\tproduct\treview\tcolumn:id\tlabel\n\
             t1\t\"Crème, \"\"fraîche\"\"\tx\"\t\"'=HYPERLINK(\"\"http://x\"\")\nبسيط\"\t\tspam\\|ham|-neutral\n"
        );
        // Read back by the csv crate, cells are the values.
        let raw = tsv(serde_json::json!({"cells": "raw"}));
        let mut reader = ::csv::ReaderBuilder::new()
            .delimiter(b'\t')
            .from_reader(raw.as_bytes());
        let row = reader.records().next().unwrap().unwrap();
        assert_eq!(
            row.iter().collect::<Vec<_>>(),
            [
                "t1",
                "Crème, \"fraîche\"\tx",
                "=HYPERLINK(\"http://x\")\nبسيط",
                "",
                "spam\\|ham|-neutral"
            ]
        );
        assert!(tsv(serde_json::json!({"excel": true})).starts_with("\u{feff}id\t"));
    }

    #[test]
    fn what_has_no_column_goes_to_the_errors_report() {
        let (project, task) = testing::tricky_row(&["product", "review"]);
        let encoder = testing::build("TSV", &project, serde_json::json!({})).unwrap();
        let refused: Vec<String> = testing::refusals(encoder.as_ref(), &task)
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(refused, ["extra", "a3"]);
    }
}
