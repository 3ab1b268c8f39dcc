//! CSV cells written straight into an output buffer (RFC 4180): a cell is quoted only
//! when it holds the delimiter, `"`, `\r` or `\n`, with inner quotes doubled. Every
//! delimited format writes through these, so a cell means the same everywhere.

/// Whether a cell holding `s` must be quoted when cells are separated by `delimiter`.
pub fn needs_quotes(s: &str, delimiter: u8) -> bool {
    s.bytes()
        .any(|b| b == delimiter || matches!(b, b'"' | b'\r' | b'\n'))
}

/// Writes `s` with every `"` doubled, without the surrounding quotes.
fn write_quoted_inner(out: &mut Vec<u8>, s: &str) {
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
}
