//! XLSX: the table of a row or document project (`crate::table`) as an Excel workbook,
//! written in constant memory (`Container::Workbook`). Cells are text, exactly the
//! values; a formula-like one is marked with Excel's quote prefix unless
//! `"cells": "raw"`, so it shows and stays text. Several labels share the `label` cell
//! as in every tabular format (`a|b`, `\` escaping). A sheet holds at most
//! `maxRowsPerSheet` tasks (default and most: 1,048,575, Excel's limit); past it the
//! rows continue on a new sheet named by the rows it holds.

use crate::sheet::{begin_cell, end_cell, write_cell};
use crate::table::{class_labels, Table, TableCell, MODES};
use crate::tabular::{is_formula_like, write_values, TableStyle, CELLS};
use crate::{ConfigError, Container, EncodeError, Encoder, FormatOption, FormatSpec, Out, Record};

/// Excel's limit of rows under a header.
pub const MAX_ROWS_PER_SHEET: u32 = 1_048_575;

/// `maxRowsPerSheet`: where a sheet ends.
static MAX_ROWS: FormatOption = FormatOption {
    key: "maxRowsPerSheet",
    schema: || {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Integer)
            .minimum(Some(1))
            .maximum(Some(MAX_ROWS_PER_SHEET))
            .description(Some(
                "Tasks per sheet; past it, a new sheet (default and most: 1,048,575).",
            ))
            .into()
    },
};

/// The table as a workbook.
pub static FORMAT: FormatSpec = FormatSpec {
    name: "XLSX",
    summary: "one row per task: id, the row's columns or the document's text, label; an Excel workbook, a new sheet every 1,048,575 rows",
    modes: Some(MODES),
    default_states: None,
    allowed_states: None,
    default_stages: Some(&["Complete"]),
    options: &[&CELLS, &MAX_ROWS],
    build: |settings| {
        settings.fields.refuse_all(FORMAT.name)?;
        let max_rows: u32 = settings
            .options
            .get("maxRowsPerSheet")?
            .unwrap_or(MAX_ROWS_PER_SHEET);
        if !(1..=MAX_ROWS_PER_SHEET).contains(&max_rows) {
            return Err(ConfigError::new(
                "maxRowsPerSheet",
                format!("must be 1 to {MAX_ROWS_PER_SHEET}, Excel's limit"),
            ));
        }
        Ok(Box::new(XlsxEncoder {
            table: Table::new(settings.project, FORMAT.name)?,
            safe: TableStyle::from_settings(settings, b',')?.safe,
            max_rows,
        }))
    },
};

/// Writes the rows.
pub struct XlsxEncoder {
    table: Table,
    safe: bool,
    max_rows: u32,
}

impl Encoder for XlsxEncoder {
    fn container(&self) -> Container {
        Container::Workbook {
            max_rows_per_sheet: self.max_rows,
        }
    }

    fn header(&self, out: &mut Vec<u8>) {
        for column in self.table.header() {
            write_cell(out, column, self.safe && is_formula_like(column));
        }
    }

    fn encode(&self, record: &Record<'_, '_>, out: &mut Out) -> Result<(), EncodeError> {
        let safe = self.safe;
        self.table.row(record.task, out, |out, _, cell| match cell {
            TableCell::Text(text) => write_cell(out.record(), text, safe && is_formula_like(text)),
            TableCell::Labels(annotations) => {
                let labels = class_labels(annotations);
                let quoted = safe && labels.clone().next().is_some_and(is_formula_like);
                let buffer = out.record();
                let cell = begin_cell(buffer, quoted);
                write_values(buffer, labels);
                end_cell(buffer, cell);
            }
        });
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::formats::testing;
    use crate::sheet::cells;
    use crate::{Container, Encoder};

    fn encoder(options: serde_json::Value) -> Result<Box<dyn Encoder>, crate::ConfigError> {
        let (project, _) = testing::tricky_row(&["product", "review"]);
        testing::build("XLSX", &project, options)
    }

    fn row(options: serde_json::Value) -> Vec<(String, bool)> {
        let (_, task) = testing::tricky_row(&[]);
        let out = testing::records(encoder(options).unwrap().as_ref(), &[&task]);
        cells(out.bytes()).map(|(t, q)| (t.to_owned(), q)).collect()
    }

    #[test]
    fn cells_are_exact_values_and_formula_like_ones_are_quoted() {
        let owned = |cells: &[(&str, bool)]| -> Vec<(String, bool)> {
            cells.iter().map(|(t, q)| ((*t).to_owned(), *q)).collect()
        };
        assert_eq!(
            row(serde_json::json!({})),
            owned(&[
                ("t1", false),
                ("Crème, \"fraîche\"\tx", false),
                ("=HYPERLINK(\"http://x\")\nبسيط", true),
                ("spam\\|ham|-neutral", false),
            ])
        );
        let raw = row(serde_json::json!({"cells": "raw"}));
        assert!(raw.iter().all(|(_, quoted)| !quoted), "{raw:?}");
        let mut header = Vec::new();
        encoder(serde_json::json!({})).unwrap().header(&mut header);
        let names: Vec<&str> = cells(&header).map(|(t, _)| t).collect();
        assert_eq!(names, ["id", "product", "review", "label"]);
    }

    #[test]
    fn sheets_end_where_asked_within_excels_limit() {
        let container = encoder(serde_json::json!({"maxRowsPerSheet": 1000}))
            .unwrap()
            .container();
        assert_eq!(
            container,
            Container::Workbook {
                max_rows_per_sheet: 1000
            }
        );
        let refused = encoder(serde_json::json!({"maxRowsPerSheet": 1_048_576}))
            .err()
            .unwrap();
        assert_eq!(refused.field, "maxRowsPerSheet");
        assert_eq!(
            encoder(serde_json::json!({})).unwrap().container(),
            Container::Workbook {
                max_rows_per_sheet: 1_048_575
            }
        );
    }
}
