//! CSV cells written straight into an output buffer (RFC 4180): a cell is quoted only
//! when it holds the delimiter, `"`, `\r` or `\n`, with inner quotes doubled. Every
//! delimited format writes through these, so a cell means the same everywhere.

/// Whether a cell holding `s` must be quoted when cells are separated by `delimiter`.
pub fn needs_quotes(s: &str, delimiter: u8) -> bool {
    s.bytes()
        .any(|b| b == delimiter || matches!(b, b'"' | b'\r' | b'\n'))
}

/// Writes `s` with every `"` doubled, without the surrounding quotes.
pub(crate) fn write_quoted_inner(out: &mut Vec<u8>, s: &str) {
    let mut rest = s.as_bytes();
    while let Some(i) = memchr_quote(rest) {
        out.extend_from_slice(&rest[..=i]);
        out.push(b'"');
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
}

fn memchr_quote(s: &[u8]) -> Option<usize> {
    s.iter().position(|&b| b == b'"')
}

/// Writes one cell, quoted if it needs to be.
pub fn write_cell(out: &mut Vec<u8>, s: &str, delimiter: u8) {
    if needs_quotes(s, delimiter) {
        out.push(b'"');
        write_quoted_inner(out, s);
        out.push(b'"');
    } else {
        out.extend_from_slice(s.as_bytes());
    }
}

/// Writes `parts` joined by `separator` as one cell. The cell is quoted if any part
/// needs it (the separator itself never may), decided in a first pass over the parts,
/// so nothing is collected per record.
pub fn write_joined<'s>(
    out: &mut Vec<u8>,
    parts: impl Iterator<Item = &'s str> + Clone,
    separator: u8,
    delimiter: u8,
) {
    debug_assert!(separator != delimiter && !matches!(separator, b'"' | b'\r' | b'\n'));
    let quote = parts.clone().any(|p| needs_quotes(p, delimiter));
    if quote {
        out.push(b'"');
    }
    for (i, part) in parts.enumerate() {
        if i > 0 {
            out.push(separator);
        }
        if quote {
            write_quoted_inner(out, part);
        } else {
            out.extend_from_slice(part.as_bytes());
        }
    }
    if quote {
        out.push(b'"');
    }
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
    fn joined_cells_read_back_as_the_joined_text() {
        for parts in [&["cat", "dog"][..], &["pet, small", "a \"b\""], &[], &["x"]] {
            let mut out = Vec::new();
            write_joined(&mut out, parts.iter().copied(), b'|', b',');
            out.extend_from_slice(b",end\n");
            let mut reader = ::csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(out.as_slice());
            let record = reader.records().next().unwrap().unwrap();
            assert_eq!(&record[0], parts.join("|"));
            assert_eq!(&record[1], "end");
        }
    }
}
