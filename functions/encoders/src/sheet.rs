//! Rows for a workbook container: the cells an encoder writes into [`Out::record`]
//! (one record is one row) and the header row, in a small binary form that the
//! assembler reads back on its own thread and hands to the workbook writer. Each cell
//! is a flag byte (1: a formula-like text to show as text, 0: text), a little-endian
//! `u32` length and the UTF-8 text.
//!
//! [`Out::record`]: crate::Out::record

/// Appends one cell.
pub fn write_cell(out: &mut Vec<u8>, text: &str, quoted: bool) {
    out.push(u8::from(quoted));
    let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&text.as_bytes()[..len as usize]);
}

/// Starts a cell whose text the caller writes next, straight into `out`; returns where
/// its length goes, for [`end_cell`].
pub fn begin_cell(out: &mut Vec<u8>, quoted: bool) -> usize {
    out.push(u8::from(quoted));
    out.extend_from_slice(&[0; 4]);
    out.len()
}

/// Ends a cell begun at `start`: writes its length.
pub fn end_cell(out: &mut [u8], start: usize) {
    let len = u32::try_from(out.len() - start).unwrap_or(u32::MAX);
    out[start - 4..start].copy_from_slice(&len.to_le_bytes());
}

/// The cells of one row as [`write_cell`] wrote them: (text, quoted). A malformed row
/// (which only a bug could write) ends early.
pub fn cells(row: &[u8]) -> impl Iterator<Item = (&str, bool)> {
    let mut rest = row;
    std::iter::from_fn(move || {
        let (&flag, tail) = rest.split_first()?;
        let len = u32::from_le_bytes(tail.get(..4)?.try_into().ok()?) as usize;
        let text = std::str::from_utf8(tail.get(4..4 + len)?).ok()?;
        rest = &tail[4 + len..];
        Some((text, flag == 1))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cells_read_back_as_written() {
        let mut row = Vec::new();
        let written = [
            ("id", false),
            ("", false),
            ("=SUM(A1)", true),
            ("é\n\"|", false),
        ];
        for (text, quoted) in written {
            write_cell(&mut row, text, quoted);
        }
        assert_eq!(cells(&row).collect::<Vec<_>>(), written);
        assert_eq!(
            cells(&row[..row.len() - 1]).count(),
            3,
            "a cut row ends early"
        );
        let mut streamed = Vec::new();
        let at = begin_cell(&mut streamed, true);
        streamed.extend_from_slice("a|b".as_bytes());
        end_cell(&mut streamed, at);
        assert_eq!(cells(&streamed).collect::<Vec<_>>(), [("a|b", true)]);
    }
}
