//! CSV cells written straight into an output buffer (RFC 4180) by the `csv` crate's
//! allocation-free core, `csv-core`, with [`QuoteStyle::Necessary`]: a cell is quoted
//! only when it holds the delimiter, `"`, `\r` or `\n`, with inner quotes doubled. Every
//! delimited format writes through these, so a cell means the same everywhere.
//!
//! Only the writer's quoting decision and its escaping are used, not its record state:
//! the formats write delimiters and line ends themselves (CRLF and a byte order mark for
//! Excel), and the record state would write `""` for an empty cell it took for a row's
//! only field, where labelport has always written nothing (docs/csv-writer.md).

use csv_core::{QuoteStyle, Terminator, WriteResult, Writer, WriterBuilder};
use std::borrow::Cow;
use std::sync::LazyLock;

/// The writer for `,`, built once: building one fills a 256-byte table.
static COMMA_WRITER: LazyLock<Writer> = LazyLock::new(|| build_writer(b','));
/// The writer for a tab, built once.
static TAB_WRITER: LazyLock<Writer> = LazyLock::new(|| build_writer(b'\t'));

/// A writer that quotes a cell holding `delimiter`, `"`, `\r` or `\n`: a `\n` record
/// terminator makes the writer quote both line-end bytes, as a reader ends a record at
/// either.
fn build_writer(delimiter: u8) -> Writer {
    WriterBuilder::new()
        .delimiter(delimiter)
        .terminator(Terminator::Any(b'\n'))
        .quote_style(QuoteStyle::Necessary)
        .double_quote(true)
        .build()
}

/// The writer for `delimiter`: a shared one for `,` and tab (every format's), else a
/// new one.
fn writer_for(delimiter: u8) -> Cow<'static, Writer> {
    match delimiter {
        b',' => Cow::Borrowed(&*COMMA_WRITER),
        b'\t' => Cow::Borrowed(&*TAB_WRITER),
        other => Cow::Owned(build_writer(other)),
    }
}

/// Whether a cell holding `s` must be quoted when cells are separated by `delimiter`.
pub fn needs_quotes(s: &str, delimiter: u8) -> bool {
    writer_for(delimiter).should_quote(s.as_bytes())
}

/// Writes one cell, quoted if it needs to be.
pub fn write_cell(out: &mut Vec<u8>, s: &str, delimiter: u8) {
    let writer = writer_for(delimiter);
    let cell = s.as_bytes();
    if !writer.should_quote(cell) {
        out.extend_from_slice(cell);
        return;
    }
    out.push(writer.get_quote());
    write_escaped(out, cell, &writer);
    out.push(writer.get_quote());
}

/// Writes `cell` with every quote doubled, without the surrounding quotes. `csv-core`
/// writes into a slice, so the buffer is grown by the worst case (every byte a quote)
/// and cut back to what was written.
fn write_escaped(out: &mut Vec<u8>, cell: &[u8], writer: &Writer) {
    let start = out.len();
    out.resize(start + 2 * cell.len(), 0);
    let (result, _, written) = csv_core::quote(
        cell,
        &mut out[start..],
        writer.get_quote(),
        writer.get_escape(),
        writer.get_double_quote(),
    );
    debug_assert!(matches!(result, WriteResult::InputEmpty));
    out.truncate(start + written);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const TRICKY: [&str; 9] = [
        "",
        "plain",
        "comma, inside",
        "quote \" inside",
        "\"starts and ends\"",
        "new\nline",
        "carriage\rreturn",
        "tab\there",
        "é 日本語 🙂",
    ];

    /// What the csv crate writes for the same row, with its default (necessary) quoting.
    fn reference(cells: &[&str], delimiter: u8) -> Vec<u8> {
        let mut writer = ::csv::WriterBuilder::new()
            .delimiter(delimiter)
            .terminator(::csv::Terminator::Any(b'\n'))
            .from_writer(Vec::new());
        writer.write_record(cells).unwrap();
        writer.into_inner().unwrap()
    }

    #[test]
    fn cells_match_the_csv_crate_for_comma_and_tab() {
        for delimiter in [b',', b'\t'] {
            let mut out = Vec::new();
            for (i, cell) in TRICKY.iter().enumerate() {
                if i > 0 {
                    out.push(delimiter);
                }
                write_cell(&mut out, cell, delimiter);
            }
            out.push(b'\n');
            // The csv crate quotes a lone empty field of a one-column row; not ours.
            assert_eq!(out, reference(&TRICKY, delimiter), "delimiter {delimiter}");
        }
    }

    #[test]
    fn a_cell_of_quotes_is_doubled_in_full() {
        let mut out = Vec::new();
        write_cell(&mut out, "\"\"\"", b',');
        assert_eq!(out, b"\"\"\"\"\"\"\"\"");
    }

    #[test]
    fn another_delimiter_is_quoted_and_the_usual_ones_are_not() {
        assert!(needs_quotes("a;b", b';'));
        assert!(!needs_quotes("a,b", b';'));
        assert!(!needs_quotes("a;b", b','));
        let mut out = b"x;".to_vec();
        write_cell(&mut out, "a;\"b\"", b';');
        assert_eq!(out, b"x;\"a;\"\"b\"\"\"");
    }
}
