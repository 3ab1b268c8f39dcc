//! Rules every tabular format shares (CSV, TSV, XLSX and the table layouts), so a cell
//! means the same in each.
//!
//! - **Safe cells** (the default; `"cells": "raw"` turns it off): a text cell that
//!   starts with `=`, `+`, `-`, `@`, a tab or a carriage return is what a spreadsheet
//!   runs as a formula, and a label is text anyone with labelling access typed. Such a
//!   cell gets a `'` in front (OWASP's rule for CSV injection). A cell that already
//!   starts with `'` gets one too, so the rule can be undone: drop one leading `'` from
//!   a cell that starts with `'` and you have the value. Numbers labelport writes
//!   itself (counts, durations) are never touched.
//! - **Multi-value cells** (several classes, several answers): the values joined by
//!   `|`, each with `\` and `|` escaped by a `\`. Split on a `|` that has no `\` before
//!   it, then turn `\|` into `|` and `\\` into `\`. A label holding `|` comes back whole.
//! - **`"excel": true`**: a UTF-8 byte order mark and CRLF line ends, so Excel opens
//!   non-ASCII text as UTF-8. Off by default: most readers want neither.

use crate::csv_text::{needs_quotes, write_cell};
use crate::{ConfigError, FormatOption, Settings};
use serde::Deserialize;

/// `cells`: whether text cells are neutralised against formula injection.
pub static CELLS: FormatOption = FormatOption {
    key: "cells",
    schema: <Cells as utoipa::PartialSchema>::schema,
};

/// `excel`: a byte order mark and CRLF line ends, for Excel.
pub static EXCEL: FormatOption = FormatOption {
    key: "excel",
    schema: <bool as utoipa::PartialSchema>::schema,
};

/// The separator between the values of a multi-value cell.
pub const VALUE_SEPARATOR: u8 = b'|';
/// The escape before a `|` or `\` inside a value.
pub const VALUE_ESCAPE: u8 = b'\\';

/// What text cells hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Cells {
    /// A cell a spreadsheet would run as a formula gets a leading `'`.
    #[default]
    Safe,
    /// Every cell exactly as the value, for machine consumers.
    Raw,
}

/// How one tabular export writes its cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableStyle {
    /// The cell delimiter (`,` or a tab).
    pub delimiter: u8,
    /// Whether text cells are neutralised.
    pub safe: bool,
    /// Byte order mark and CRLF.
    pub excel: bool,
}

impl TableStyle {
    /// The style a request asks for, with `delimiter` between cells.
    pub fn from_settings(settings: &Settings<'_>, delimiter: u8) -> Result<Self, ConfigError> {
        let cells: Cells = settings.options.get("cells")?.unwrap_or_default();
        let excel: bool = settings.options.get("excel")?.unwrap_or_default();
        Ok(TableStyle {
            delimiter,
            safe: cells == Cells::Safe,
            excel,
        })
    }

    /// Writes what a file starts with: the byte order mark, for Excel.
    pub fn start(&self, out: &mut Vec<u8>) {
        if self.excel {
            out.extend_from_slice("\u{feff}".as_bytes());
        }
    }

    /// Ends a line.
    pub fn end_line(&self, out: &mut Vec<u8>) {
        if self.excel {
            out.extend_from_slice(b"\r\n");
        } else {
            out.push(b'\n');
        }
    }

    /// Writes the delimiter between two cells.
    pub fn next(&self, out: &mut Vec<u8>) {
        out.push(self.delimiter);
    }

    /// Writes one text cell.
    pub fn text(&self, out: &mut Vec<u8>, s: &str) {
        if !(self.safe && is_formula_like(s)) {
            return write_cell(out, s, self.delimiter);
        }
        let quote = needs_quotes(s, self.delimiter);
        if quote {
            out.push(b'"');
        }
        out.push(b'\'');
        write_part(out, s, quote, false);
        if quote {
            out.push(b'"');
        }
    }

    /// Writes an RFC 3339 timestamp as UTC (`…Z`). One with an offset is converted;
    /// one that does not parse is written as the text it is.
    pub fn timestamp(&self, out: &mut Vec<u8>, s: &str) {
        if s.ends_with('Z') {
            return self.text(out, s);
        }
        match chrono::DateTime::parse_from_rfc3339(s) {
            Ok(at) => {
                let utc = at.with_timezone(&chrono::Utc);
                let text = utc.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
                out.extend_from_slice(text.as_bytes());
            }
            Err(_) => self.text(out, s),
        }
    }

    /// Writes `values` as one multi-value cell: joined by `|`, each value's `\` and `|`
    /// escaped.
    pub fn values<'s>(&self, out: &mut Vec<u8>, values: impl Iterator<Item = &'s str> + Clone) {
        self.parts(out, values, VALUE_SEPARATOR, true);
    }

    /// Writes `parts` joined by `separator` as one text cell (a joined transcription):
    /// unlike [`TableStyle::values`], the parts are not escaped, as the cell is text.
    pub fn joined<'s>(
        &self,
        out: &mut Vec<u8>,
        parts: impl Iterator<Item = &'s str> + Clone,
        separator: u8,
    ) {
        self.parts(out, parts, separator, false);
    }

    /// One cell of `parts` joined by `separator`, escaped or not. Whether it is quoted is
    /// decided in a first pass over the parts, so nothing is collected per record.
    fn parts<'s>(
        &self,
        out: &mut Vec<u8>,
        parts: impl Iterator<Item = &'s str> + Clone,
        separator: u8,
        escape: bool,
    ) {
        let quote = parts.clone().any(|p| needs_quotes(p, self.delimiter));
        if quote {
            out.push(b'"');
        }
        for (i, part) in parts.enumerate() {
            if i > 0 {
                out.push(separator);
            } else if self.safe && is_formula_like(part) {
                out.push(b'\'');
            }
            write_part(out, part, quote, escape);
        }
        if quote {
            out.push(b'"');
        }
    }
}

/// Writes one part of a cell: `"` doubled inside a quoted cell, and `\` and `|` escaped
/// in a multi-value cell.
fn write_part(out: &mut Vec<u8>, part: &str, quoted: bool, escape: bool) {
    let mut rest = part.as_bytes();
    while let Some(at) = rest.iter().position(|&b| {
        (b == b'"' && quoted) || (escape && matches!(b, VALUE_SEPARATOR | VALUE_ESCAPE))
    }) {
        out.extend_from_slice(&rest[..at]);
        match rest[at] {
            b'"' => out.extend_from_slice(b"\"\""),
            escaped => out.extend_from_slice(&[VALUE_ESCAPE, escaped]),
        }
        rest = &rest[at + 1..];
    }
    out.extend_from_slice(rest);
}

/// Column names for `names` after the `taken` ones: each name as it is, or with
/// `prefix` put before it (again, until it is free) when a taken column, an earlier
/// column or another name already has it (a form field `id` becomes `form:id`).
pub fn column_names(taken: &[&str], names: &[String], prefix: &str) -> Vec<String> {
    let mut columns: Vec<String> = Vec::with_capacity(names.len());
    for name in names {
        let mut column = name.clone();
        while taken.contains(&column.as_str())
            || columns.contains(&column)
            || (column != *name && names.contains(&column))
        {
            column.insert_str(0, prefix);
        }
        columns.push(column);
    }
    columns
}

/// Writes `values` joined by `|`, each with `\` and `|` escaped: the text of a
/// multi-value cell before any quoting (what a workbook cell holds).
pub fn write_values<'s>(out: &mut Vec<u8>, values: impl Iterator<Item = &'s str>) {
    for (i, value) in values.enumerate() {
        if i > 0 {
            out.push(VALUE_SEPARATOR);
        }
        write_part(out, value, false, true);
    }
}

/// Whether a spreadsheet would treat a cell starting like `s` as a formula (or the
/// cell starts with the `'` the rule adds, which must then be doubled to be undone).
pub fn is_formula_like(s: &str) -> bool {
    matches!(
        s.as_bytes().first(),
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r' | b'\'')
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SAFE: TableStyle = TableStyle {
        delimiter: b',',
        safe: true,
        excel: false,
    };
    const RAW: TableStyle = TableStyle {
        safe: false,
        ..SAFE
    };

    /// The reader's side of the rules, as the module's documentation states them.
    fn undo_safe(cell: &str) -> &str {
        cell.strip_prefix('\'').unwrap_or(cell)
    }

    fn split_values(cell: &str) -> Vec<String> {
        let mut values = vec![String::new()];
        let mut chars = cell.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => values.last_mut().unwrap().extend(chars.next()),
                '|' => values.push(String::new()),
                c => values.last_mut().unwrap().push(c),
            }
        }
        values
    }

    fn read_back(line: &[u8]) -> Vec<String> {
        let mut reader = ::csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(line);
        let record = reader.records().next().unwrap().unwrap();
        record.iter().map(str::to_owned).collect()
    }

    #[test]
    fn formula_like_cells_are_neutralised_and_the_rule_undoes() {
        for value in [
            "=HYPERLINK(\"http://x\")",
            "+1",
            "-2",
            "@SUM(A1)",
            "\tlead",
            "\rlead",
            "'quoted",
            "''",
            "plain",
            "a=b",
            "",
            "é, \"x\"",
        ] {
            let mut line = Vec::new();
            SAFE.text(&mut line, value);
            line.push(b',');
            RAW.text(&mut line, value);
            line.push(b'\n');
            let cells = read_back(&line);
            let neutral = !value.is_empty() && "=+-@\t\r'".contains(value.chars().next().unwrap());
            assert_eq!(cells[0].starts_with('\''), neutral, "{value:?}");
            assert_eq!(undo_safe(&cells[0]), value, "safe {value:?}");
            assert_eq!(cells[1], value, "raw {value:?}");
        }
    }

    #[test]
    fn multi_value_cells_split_back_into_their_values() {
        for values in [
            &["cat", "dog"][..],
            &["a|b", "c\\d", "e\\|f"],
            &["pet, small", "a \"b\""],
            &["=cmd", "-x"],
            &["x"],
            &["", "|"],
            &["\\"],
        ] {
            for style in [SAFE, RAW] {
                let mut line = Vec::new();
                style.values(&mut line, values.iter().copied());
                line.extend_from_slice(b",end\n");
                let cells = read_back(&line);
                let cell = if style.safe {
                    undo_safe(&cells[0])
                } else {
                    &cells[0]
                };
                assert_eq!(split_values(cell), values, "{values:?} safe={}", style.safe);
                assert_eq!(cells[1], "end");
            }
        }
    }

    #[test]
    fn timestamps_are_written_in_utc() {
        for (given, written) in [
            ("2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z"),
            ("2024-01-01T02:30:00+02:00", "2024-01-01T00:30:00Z"),
            ("2023-12-31T23:00:00.250-01:00", "2024-01-01T00:00:00.250Z"),
            ("not a time", "not a time"),
        ] {
            let mut out = Vec::new();
            SAFE.timestamp(&mut out, given);
            assert_eq!(String::from_utf8(out).unwrap(), written);
        }
    }

    #[test]
    fn excel_starts_with_a_byte_order_mark_and_ends_lines_with_crlf() {
        let excel = TableStyle {
            excel: true,
            ..SAFE
        };
        let mut out = Vec::new();
        excel.start(&mut out);
        excel.text(&mut out, "Zoë");
        excel.end_line(&mut out);
        assert_eq!(out, "\u{feff}Zoë\r\n".as_bytes());
        let mut plain = Vec::new();
        SAFE.start(&mut plain);
        SAFE.text(&mut plain, "Zoë");
        SAFE.end_line(&mut plain);
        assert_eq!(plain, "Zoë\n".as_bytes());
    }
}
