//! The buffer an encoder writes a block of records into: the bytes, cut into pieces
//! (a record of the file, or a named entry of a ZIP), and the annotations it refused.
//! One `Out` per pipeline thread, cleared and reused block after block, so encoding
//! allocates nothing per record once the buffers have grown.

use crate::json_text::write_str;
use std::ops::Range;

/// A run of bytes in an [`Out`]: one record of the file, or one named entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// The piece's bytes in [`Out::bytes`] (a separator before it is not included).
    pub bytes: Range<usize>,
    /// The entry's name in [`Out::names`]; `None` for a record of the file.
    pub name: Option<Range<usize>>,
}

/// Where an encoder writes. See the module documentation.
///
/// ```
/// use labelport_encoders::Out;
/// let mut out = Out::new(b",");
/// for text in ["a", "b"] {
///     out.begin_record();
///     out.record().extend_from_slice(text.as_bytes());
///     out.end_record();
/// }
/// assert_eq!(out.bytes(), b"a,b");
/// assert_eq!(out.pieces().len(), 2);
/// ```
#[derive(Debug, Default)]
pub struct Out {
    bytes: Vec<u8>,
    pieces: Vec<Piece>,
    names: String,
    refusals: Vec<u8>,
    separator: &'static [u8],
    records: usize,
    /// The held-back sections' bytes in this block ([`Out::held`]).
    held: Vec<Held>,
    /// Undo marks for [`Out::abort_record`]: lengths when the record began.
    mark: (usize, usize, usize, usize),
    held_marks: Vec<(usize, usize)>,
    open: bool,
    /// The current record was left out ([`Out::leave_out`]).
    left_out: bool,
    /// Annotations omitted by design in this block ([`Out::omit`]), one entry each.
    omitted: Vec<&'static str>,
    /// `omitted`'s length when the record began.
    omitted_mark: usize,
    /// Why the format stopped the export ([`Out::stop_export`]).
    stopped: Option<String>,
}

/// One held-back section's bytes in a block, and how many elements they hold.
#[derive(Debug, Default)]
struct Held {
    bytes: Vec<u8>,
    elements: usize,
}

impl Out {
    /// An empty buffer whose file records are separated by `separator`.
    pub fn new(separator: &'static [u8]) -> Self {
        Out {
            separator,
            ..Out::default()
        }
    }

    /// An empty buffer with room for `capacity` bytes before it grows.
    pub fn with_capacity(separator: &'static [u8], capacity: usize) -> Self {
        Out {
            separator,
            bytes: Vec::with_capacity(capacity),
            ..Out::default()
        }
    }

    /// Starts the next record. Called by the pipeline.
    pub fn begin_record(&mut self) {
        self.close_piece();
        self.mark = (
            self.bytes.len(),
            self.pieces.len(),
            self.names.len(),
            self.refusals.len(),
        );
        self.held_marks.clear();
        self.held_marks
            .extend(self.held.iter().map(|h| (h.bytes.len(), h.elements)));
        self.left_out = false;
        self.omitted_mark = self.omitted.len();
    }

    /// Ends the current record. Called by the pipeline.
    pub fn end_record(&mut self) {
        self.close_piece();
    }

    /// Forgets everything written since [`Out::begin_record`] (the record failed).
    pub fn abort_record(&mut self) {
        let (bytes, pieces, names, refusals) = self.mark;
        self.records -= self.pieces[pieces..]
            .iter()
            .filter(|p| p.name.is_none())
            .count();
        self.bytes.truncate(bytes);
        self.pieces.truncate(pieces);
        self.names.truncate(names);
        self.refusals.truncate(refusals);
        self.omitted.truncate(self.omitted_mark);
        for (i, held) in self.held.iter_mut().enumerate() {
            let (len, elements) = self.held_marks.get(i).copied().unwrap_or((0, 0));
            held.bytes.truncate(len);
            held.elements = elements;
        }
        self.open = false;
    }

    /// The buffer for this record's bytes in the file (the separator is written first
    /// when a record precedes it in this block). Calling it again in the same record
    /// returns the same buffer.
    pub fn record(&mut self) -> &mut Vec<u8> {
        let open_record = self.open && self.pieces.last().is_some_and(|p| p.name.is_none());
        if !open_record {
            self.close_piece();
            if self.records > 0 {
                self.bytes.extend_from_slice(self.separator);
            }
            self.records += 1;
            self.pieces.push(Piece {
                bytes: self.bytes.len()..self.bytes.len(),
                name: None,
            });
            self.open = true;
        }
        &mut self.bytes
    }

    /// The buffer for one element of held-back section `section` (COCO's annotations,
    /// written after every image): the separator is written first when an element of
    /// the section precedes it in this block. Each call starts a new element. The
    /// section is spooled and written, after the file's records and
    /// [`Encoder::section_opening`](crate::Encoder::section_opening), at the end.
    pub fn held(&mut self, section: usize) -> &mut Vec<u8> {
        if self.held.len() <= section {
            self.held.resize_with(section + 1, Held::default);
        }
        let held = &mut self.held[section];
        if held.elements > 0 {
            held.bytes.extend_from_slice(self.separator);
        }
        held.elements += 1;
        &mut held.bytes
    }

    /// The bytes of held-back section `section` in this block, and its element count.
    pub fn held_bytes(&self, section: usize) -> (&[u8], usize) {
        self.held
            .get(section)
            .map_or((&[][..], 0), |h| (h.bytes.as_slice(), h.elements))
    }

    /// Starts a named entry (a ZIP member) and returns the buffer for its bytes.
    pub fn entry(&mut self, name: &str) -> &mut Vec<u8> {
        self.entry_of(&[name])
    }

    /// Starts an entry named by `parts` joined (`["labels/", stem, ".txt"]`), without
    /// building the name first.
    pub fn entry_of(&mut self, parts: &[&str]) -> &mut Vec<u8> {
        self.close_piece();
        let start = self.names.len();
        for part in parts {
            self.names.push_str(part);
        }
        self.pieces.push(Piece {
            bytes: self.bytes.len()..self.bytes.len(),
            name: Some(start..self.names.len()),
        });
        self.open = true;
        &mut self.bytes
    }

    /// The buffer of the entry started last, to write more of it after other calls on
    /// `self` (a refusal between two lines of a label file).
    pub fn open_entry(&mut self) -> &mut Vec<u8> {
        debug_assert!(
            self.open && self.pieces.last().is_some_and(|p| p.name.is_some()),
            "no entry is open"
        );
        &mut self.bytes
    }

    /// Records that the format cannot express annotation `annotation_id` of the current
    /// record, and why. It goes to the export's errors report; the rest of the record is
    /// exported.
    pub fn refuse(&mut self, annotation_id: &str, reason: &str) {
        // A fragment of the report line: the pipeline adds where the record came from.
        self.refusals.extend_from_slice(b"\"annotationId\":");
        write_str(&mut self.refusals, annotation_id);
        self.refusals.extend_from_slice(b",\"reason\":");
        write_str(&mut self.refusals, reason);
        self.refusals.push(b'\n');
    }

    /// Counts an annotation of a kind the format has no place for by design (a
    /// relation in an IOB file), for `reason`. Unlike [`Out::refuse`], which lists each
    /// annotation the data made inexpressible, these are counted per reason: the errors
    /// report gets one line per reason with the count, not millions of alike lines.
    pub fn omit(&mut self, reason: &'static str) {
        self.omitted.push(reason);
    }

    /// What [`Out::omit`] counted in this block, one entry per annotation.
    pub fn omitted(&self) -> &[&'static str] {
        &self.omitted
    }

    /// Leaves the current record out of the export: forgets what it wrote, and counts
    /// it as left out. With a `reason` (a classification file's task with no class, a
    /// program that failed on it), the task goes to the errors report; without one
    /// (a CUSTOM program that chose to output nothing), it is only counted.
    pub fn leave_out(&mut self, reason: Option<&str>) {
        self.abort_record();
        self.left_out = true;
        if let Some(reason) = reason {
            self.refusals.extend_from_slice(b"\"reason\":");
            write_str(&mut self.refusals, reason);
            self.refusals.push(b'\n');
        }
    }

    /// Whether the current record was left out ([`Out::leave_out`]).
    pub fn record_left_out(&self) -> bool {
        self.left_out
    }

    /// Stops the export, with the error the encoder returns alongside: the format met
    /// one of its own output bounds, which no fault of this task's data caused, so
    /// skipping the task (`"invalidLines": "skip"`) would not help. The pipeline ends the
    /// export `OUTPUT_LIMIT` with `why`.
    pub fn stop_export(&mut self, why: String) {
        self.stopped = Some(why);
    }

    /// Why the format stopped the export, if it did ([`Out::stop_export`]).
    pub fn take_stop(&mut self) -> Option<String> {
        self.stopped.take()
    }

    /// The refusals of the current record, as JSON object members (one per line of
    /// the returned bytes), since `begin_record`.
    pub fn record_refusals(&self) -> &[u8] {
        &self.refusals[self.mark.3..]
    }

    /// Every byte written since the last [`Out::clear`].
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The pieces, in order.
    pub fn pieces(&self) -> &[Piece] {
        &self.pieces
    }

    /// The name of an entry piece.
    pub fn name(&self, piece: &Piece) -> Option<&str> {
        piece.name.clone().map(|r| &self.names[r])
    }

    /// Records of the file written since the last clear.
    pub fn records(&self) -> usize {
        self.records
    }

    /// Empties the buffer, keeping its capacity.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.pieces.clear();
        self.names.clear();
        self.refusals.clear();
        for held in &mut self.held {
            held.bytes.clear();
            held.elements = 0;
        }
        self.records = 0;
        self.mark = (0, 0, 0, 0);
        self.open = false;
        self.left_out = false;
        self.omitted.clear();
        self.omitted_mark = 0;
    }

    fn close_piece(&mut self) {
        if std::mem::take(&mut self.open) {
            if let Some(piece) = self.pieces.last_mut() {
                piece.bytes.end = self.bytes.len();
            }
        }
    }
}

/// Copies `prefix` and the number after it, plus `by`, from the start of `line`; returns
/// the rest of the line. What [`Encoder::renumber_section`](crate::Encoder::renumber_section)
/// implementations do to each element of a block.
pub(crate) fn shift_number<'l>(
    line: &'l [u8],
    prefix: &[u8],
    by: u64,
    out: &mut Vec<u8>,
) -> &'l [u8] {
    let Some(after) = line.strip_prefix(prefix) else {
        return line;
    };
    let digits = after.iter().take_while(|b| b.is_ascii_digit()).count();
    let n = after[..digits]
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    out.extend_from_slice(prefix);
    crate::json_text::write_int(out, n + by);
    &after[digits..]
}

/// `name` if it is safe as one path segment of an entry or file name, else a safe
/// variant of it made unique by the record's `ordinal`: unsafe characters as `_`, then
/// `-{ordinal}`.
pub(crate) fn safe_name<'s>(name: &'s str, ordinal: &str) -> std::borrow::Cow<'s, str> {
    let safe = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '+');
    if !name.is_empty() && !name.starts_with('.') && name.len() <= 100 && name.chars().all(safe) {
        return std::borrow::Cow::Borrowed(name);
    }
    let mut cleaned: String = name
        .chars()
        .take(100)
        .map(|c| if safe(c) { c } else { '_' })
        .collect();
    cleaned.push('-');
    cleaned.push_str(ordinal);
    std::borrow::Cow::Owned(cleaned)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn records_are_separated_and_pieces_exclude_the_separator() {
        let mut out = Out::new(b",\n");
        for text in ["{1}", "{2}", "{3}"] {
            out.begin_record();
            out.record().extend_from_slice(text.as_bytes());
            out.record().push(b' ');
            out.end_record();
        }
        assert_eq!(out.bytes(), b"{1} ,\n{2} ,\n{3} ");
        let texts: Vec<&[u8]> = out
            .pieces()
            .iter()
            .map(|p| &out.bytes()[p.bytes.clone()])
            .collect();
        assert_eq!(texts, [&b"{1} "[..], b"{2} ", b"{3} "]);
    }

    #[test]
    fn an_aborted_record_leaves_no_trace() {
        let mut out = Out::new(b",");
        out.begin_record();
        out.record().extend_from_slice(b"a");
        out.end_record();
        out.begin_record();
        out.record().extend_from_slice(b"half");
        out.entry("x.txt").extend_from_slice(b"entry");
        out.refuse("a1", "no");
        out.abort_record();
        out.begin_record();
        out.record().extend_from_slice(b"b");
        out.end_record();
        assert_eq!(out.bytes(), b"a,b");
        assert_eq!(out.pieces().len(), 2);
        assert_eq!(out.records(), 2);
        assert!(out.record_refusals().is_empty());
    }

    #[test]
    fn entries_carry_their_names_and_refusals_are_json_members() {
        let mut out = Out::new(b"");
        out.begin_record();
        out.entry("a/1.json").extend_from_slice(b"one");
        out.entry("b/1.json").extend_from_slice(b"two");
        out.refuse("ann \"7\"", "a point has no area");
        let refusal = format!(
            "{{{}}}",
            String::from_utf8_lossy(out.record_refusals()).trim_end()
        );
        out.end_record();
        let names: Vec<_> = out.pieces().iter().map(|p| out.name(p).unwrap()).collect();
        assert_eq!(names, ["a/1.json", "b/1.json"]);
        assert_eq!(&out.bytes()[out.pieces()[1].bytes.clone()], b"two");
        let parsed: serde_json::Value = serde_json::from_str(&refusal).unwrap();
        assert_eq!(parsed["annotationId"], "ann \"7\"");
        assert_eq!(parsed["reason"], "a point has no area");
    }

    #[test]
    fn held_sections_separate_their_elements_and_forget_an_aborted_record() {
        let mut out = Out::new(b",");
        for (i, text) in ["a", "b", "c"].iter().enumerate() {
            out.begin_record();
            out.record().extend_from_slice(text.as_bytes());
            out.held(1).extend_from_slice(format!("{text}1").as_bytes());
            out.held(1).extend_from_slice(format!("{text}2").as_bytes());
            if i == 1 {
                out.abort_record();
            } else {
                out.end_record();
            }
        }
        assert_eq!(out.bytes(), b"a,c");
        assert_eq!(out.held_bytes(1), (&b"a1,a2,c1,c2"[..], 4));
        assert_eq!(out.held_bytes(0), (&b""[..], 0));
        out.clear();
        assert_eq!(out.held_bytes(1), (&b""[..], 0));
    }
}
