//! Input decoders: how a source file is cut into records and how one record becomes a
//! task of the model. The native task record is the first decoder; another tool's
//! export (one JSON array, say) is a new decoder beside it, chosen by file name in
//! [`crate::source`].

pub mod label_studio;
pub mod label_studio_config;

use labelport_model::Task;
use std::ops::Range;

/// How a source is cut into records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One record per line (`\n`, optionally `\r\n`); blank lines are not records.
    Lines,
    /// The elements of one top-level JSON array, however they are laid out on lines
    /// (a tool's whole-project export): read element by element, never whole.
    JsonArray,
}

/// Why one record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// Why, for a person.
    pub message: String,
    /// The 1-based column in the record's line, when the decoder knows it.
    pub column: Option<u64>,
    /// The task's id, when the record got far enough to have one.
    pub task_id: Option<String>,
}

/// Turns records of one kind of source into tasks.
pub trait Decoder: Send + Sync {
    /// How the source is cut into records.
    fn framing(&self) -> Framing;
    /// Decodes one record, borrowing from its text where the model allows. `text` is
    /// the record as UTF-8 when the block it came from was valid UTF-8 (checked once
    /// per block), else `None`, and `bytes` must be decoded instead.
    fn decode<'a>(&self, text: Option<&'a str>, bytes: &'a [u8]) -> Result<Task<'a>, DecodeError>;
    /// Whether a record of this source is a task record v1 as it stands, so a format
    /// that re-emits records (NATIVE) may copy its text and keep every field.
    fn is_native(&self) -> bool;
}

/// A registered decoder (a `static`), shared as a source's decoder.
impl Decoder for &'static dyn Decoder {
    fn framing(&self) -> Framing {
        (**self).framing()
    }

    fn decode<'a>(&self, text: Option<&'a str>, bytes: &'a [u8]) -> Result<Task<'a>, DecodeError> {
        (**self).decode(text, bytes)
    }

    fn is_native(&self) -> bool {
        (**self).is_native()
    }
}

/// The task record v1, one per line (`*.ndjson`, `*.jsonl`).
///
/// ```
/// use labelport_engine::decode::{Decoder, NativeDecoder};
/// let line = r#"{"id":"t1","asset":{"url":"u"},"state":"annotated","stage":"Complete","createdAt":"x"}"#;
/// let task = NativeDecoder.decode(Some(line), line.as_bytes()).unwrap();
/// assert_eq!(task.id, "t1");
/// let bad = r#"{"id":"t2","asset":{"url":"u"},"state":"done"}"#;
/// let error = NativeDecoder.decode(Some(bad), bad.as_bytes()).unwrap_err();
/// assert_eq!(error.column, Some(45));
/// ```
pub struct NativeDecoder;

impl Decoder for NativeDecoder {
    fn framing(&self) -> Framing {
        Framing::Lines
    }

    fn decode<'a>(&self, text: Option<&'a str>, bytes: &'a [u8]) -> Result<Task<'a>, DecodeError> {
        let parsed: Result<Task<'a>, _> = match text {
            Some(text) => serde_json::from_str(text),
            None => serde_json::from_slice(bytes),
        };
        let task = parsed.map_err(|e| {
            let message = e.to_string();
            // A line is one JSON document: "line 1" is noise, the column is not.
            DecodeError {
                message: message.replace(" at line 1 column ", " at column "),
                column: (e.column() > 0).then_some(e.column() as u64),
                task_id: None,
            }
        })?;
        for submission in &task.submissions {
            for annotation in &submission.annotations {
                annotation.check().map_err(|field| DecodeError {
                    message: format!(
                        "task {}: annotation {} of type {} has no valid `{field}`",
                        task.id,
                        annotation.id,
                        annotation.kind.as_str()
                    ),
                    column: None,
                    task_id: Some(task.id.to_string()),
                })?;
            }
        }
        Ok(task)
    }

    fn is_native(&self) -> bool {
        true
    }
}

/// The task record v1, as the elements of one JSON array (`*.json`): a platform's dump
/// of its tasks. Read element by element ([`ArrayScanner`]), in flat memory.
pub struct NativeArrayDecoder;

impl Decoder for NativeArrayDecoder {
    fn framing(&self) -> Framing {
        Framing::JsonArray
    }

    fn decode<'a>(&self, text: Option<&'a str>, bytes: &'a [u8]) -> Result<Task<'a>, DecodeError> {
        NativeDecoder.decode(text, bytes)
    }

    fn is_native(&self) -> bool {
        true
    }
}

/// The bytes that end a run of plain bytes inside a string.
const STRING_STOPS: [bool; 256] = stops(b"\"\\");
/// The bytes that matter inside an array or object element, outside its strings.
const ELEMENT_STOPS: [bool; 256] = stops(b"\"{}[]");

const fn stops(bytes: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut k = 0;
    while k < bytes.len() {
        table[bytes[k] as usize] = true;
        k += 1;
    }
    table
}

/// The first position from `i` whose byte is in `stops`, or the end.
fn skip(data: &[u8], mut i: usize, stops: &[bool; 256]) -> usize {
    while i < data.len() && !stops[data[i] as usize] {
        i += 1;
    }
    i
}

/// Where an [`ArrayScanner`] is in the array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Before the opening `[`.
    Before,
    /// Inside the array, between elements (after `[` or `,`).
    Between,
    /// Inside an element.
    Element,
    /// After an element, before `,` or `]`.
    AfterElement,
    /// After the closing `]`.
    After,
}

/// Finds the elements of a top-level JSON array in a byte stream that arrives in
/// pieces, without parsing them: it tracks only strings, escapes and nesting depth.
/// The reader thread feeds it each block; elements are then decoded on every core.
///
/// ```
/// use labelport_engine::decode::ArrayScanner;
/// let mut scanner = ArrayScanner::default();
/// let data = br#" [ {"a": "]"}, 2 ,{"b":[1,{}]"#;
/// let mut found = Vec::new();
/// scanner.scan(data, &mut found).unwrap();
/// let texts: Vec<&[u8]> = found.iter().map(|r| &data[r.clone()]).collect();
/// assert_eq!(texts, [&br#"{"a": "]"}"#[..], b"2"]);
/// assert_eq!(scanner.pending_from(), Some(18)); // `{"b":[1,{}]` is not closed yet
/// ```
#[derive(Debug, Clone)]
pub struct ArrayScanner {
    place: Place,
    depth: u32,
    in_string: bool,
    escape: bool,
    /// Where the current element starts, in the buffer being scanned.
    start: usize,
    /// How far the buffer has been scanned.
    scanned: usize,
}

impl Default for ArrayScanner {
    fn default() -> Self {
        ArrayScanner {
            place: Place::Before,
            depth: 0,
            in_string: false,
            escape: false,
            start: 0,
            scanned: 0,
        }
    }
}

impl ArrayScanner {
    /// Scans `data` from where the last call stopped (the caller only appends to it),
    /// and pushes the range of every element completed. An error is a byte that cannot
    /// be there, with its offset.
    pub fn scan(
        &mut self,
        data: &[u8],
        found: &mut Vec<Range<usize>>,
    ) -> Result<(), (usize, String)> {
        let mut i = self.scanned;
        while i < data.len() {
            let b = data[i];
            if self.place == Place::Element {
                // Most bytes change nothing: a plain loop over a table skips them, as
                // fast as memchr for the short runs between a task's quotes.
                if self.in_string {
                    if self.escape {
                        self.escape = false;
                        i += 1;
                        continue;
                    }
                    i = skip(data, i, &STRING_STOPS);
                    let Some(&stop) = data.get(i) else { continue };
                    if stop == b'\\' {
                        self.escape = true;
                    } else {
                        self.in_string = false;
                        if self.depth == 0 {
                            self.close(i + 1, found);
                        }
                    }
                } else if self.depth > 0 {
                    i = skip(data, i, &ELEMENT_STOPS);
                    let Some(&stop) = data.get(i) else { continue };
                    match stop {
                        b'"' => self.in_string = true,
                        b'{' | b'[' => self.depth += 1,
                        _ => {
                            self.depth -= 1;
                            if self.depth == 0 {
                                self.close(i + 1, found);
                            }
                        }
                    }
                } else {
                    match b {
                        b'"' => self.in_string = true,
                        // A scalar element ends where the array goes on.
                        b',' | b']' => {
                            let end = trim_end(data, self.start, i);
                            found.push(self.start..end);
                            self.place = Place::AfterElement;
                            continue; // the `,` or `]` is the array's
                        }
                        b' ' | b'\t' | b'\r' | b'\n' => self.close(i, found),
                        _ => {}
                    }
                }
                i += 1;
                continue;
            }
            match (self.place, b) {
                (_, b' ' | b'\t' | b'\r' | b'\n') => {}
                (Place::Before, b'[') => self.place = Place::Between,
                (Place::Between, b']') | (Place::AfterElement, b']') => self.place = Place::After,
                (Place::AfterElement, b',') => self.place = Place::Between,
                (Place::Between, b',') => return Err((i, "an empty array element".into())),
                (Place::Between, _) => {
                    self.place = Place::Element;
                    self.start = i;
                    self.depth = 0;
                    match b {
                        b'"' => self.in_string = true,
                        b'{' | b'[' => self.depth = 1,
                        _ => {}
                    }
                }
                (Place::Before, _) => {
                    return Err((i, "expected `[`: the file is not a JSON array".into()))
                }
                (Place::AfterElement, _) => {
                    return Err((i, "expected `,` or `]` after an array element".into()))
                }
                (Place::After, _) => return Err((i, "text after the end of the array".into())),
                (Place::Element, _) => {}
            }
            i += 1;
        }
        self.scanned = data.len();
        Ok(())
    }

    fn close(&mut self, end: usize, found: &mut Vec<Range<usize>>) {
        found.push(self.start..end);
        self.place = Place::AfterElement;
    }

    /// Where the element not yet complete starts (`None`: every byte so far belongs to
    /// complete elements or to the array's punctuation).
    pub fn pending_from(&self) -> Option<usize> {
        (self.place == Place::Element).then_some(self.start)
    }

    /// The caller dropped the first `cut` bytes of its buffer: shift positions.
    pub fn rebase(&mut self, cut: usize) {
        self.scanned = self.scanned.saturating_sub(cut);
        self.start = self.start.saturating_sub(cut);
    }

    /// At the end of the source: the array must have been closed.
    pub fn finish(&self) -> Result<(), String> {
        match self.place {
            Place::After => Ok(()),
            Place::Before => Err("the file is empty, not a JSON array".into()),
            _ => Err("the file ends inside the JSON array".into()),
        }
    }
}

/// `end` moved back over trailing whitespace, not before `start`.
fn trim_end(data: &[u8], start: usize, mut end: usize) -> usize {
    while end > start && data[end - 1].is_ascii_whitespace() {
        end -= 1;
    }
    end
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Feeds `text` to a scanner `step` bytes at a time, as blocks arrive.
    fn elements(text: &str, step: usize) -> Result<Vec<String>, String> {
        let data = text.as_bytes();
        let mut scanner = ArrayScanner::default();
        let mut found = Vec::new();
        let mut end = 0;
        while end < data.len() {
            end = (end + step).min(data.len());
            scanner
                .scan(&data[..end], &mut found)
                .map_err(|(at, m)| format!("{at}: {m}"))?;
        }
        scanner.finish()?;
        Ok(found.iter().map(|r| text[r.clone()].to_owned()).collect())
    }

    #[test]
    fn elements_are_found_whatever_the_layout_and_however_the_bytes_arrive() {
        let text = "[\n  {\"id\": \"a,]}\\\"\", \"n\": [1, [2]]},\n  \"s\\\\\" , -1.5e3,\ntrue ,null,[],{}\n]\n";
        let want = [
            r#"{"id": "a,]}\"", "n": [1, [2]]}"#,
            r#""s\\""#,
            "-1.5e3",
            "true",
            "null",
            "[]",
            "{}",
        ];
        for step in [1, 2, 3, 7, 1000] {
            assert_eq!(elements(text, step).unwrap(), want, "step {step}");
        }
        for text in ["[]", " [ ] ", "[\n]\n"] {
            assert!(elements(text, 1).unwrap().is_empty(), "{text:?}");
        }
        // Objects in arrays in objects and the reverse, and brackets of both kinds
        // inside strings, where they count for nothing.
        let text = r#"[{"a":[{"b":"}]"},[]],"c":{}},[{"d":["]"]},[[{}]]],{"e":"{{"}]"#;
        let want = [
            r#"{"a":[{"b":"}]"},[]],"c":{}}"#,
            r#"[{"d":["]"]},[[{}]]]"#,
            r#"{"e":"{{"}"#,
        ];
        for step in [1, 5, 1000] {
            assert_eq!(elements(text, step).unwrap(), want, "step {step}");
        }
    }

    #[test]
    fn what_is_not_one_array_is_an_error_with_its_offset() {
        assert_eq!(
            elements("{\"a\":1}", 4).unwrap_err(),
            "0: expected `[`: the file is not a JSON array"
        );
        assert_eq!(
            elements("[1,,2]", 4).unwrap_err(),
            "3: an empty array element"
        );
        assert_eq!(
            elements("[{} {}]", 4).unwrap_err(),
            "4: expected `,` or `]` after an array element"
        );
        assert_eq!(
            elements("[1] x", 4).unwrap_err(),
            "4: text after the end of the array"
        );
        assert_eq!(
            elements("[{\"a\":1}", 4).unwrap_err(),
            "the file ends inside the JSON array"
        );
        assert_eq!(
            elements("  ", 4).unwrap_err(),
            "the file is empty, not a JSON array"
        );
    }

    #[test]
    fn pending_and_rebase_let_the_reader_carry_a_partial_element() {
        let mut scanner = ArrayScanner::default();
        let mut found = Vec::new();
        let mut buffer = br#"[{"a":1},{"b":"#.to_vec();
        scanner.scan(&buffer, &mut found).unwrap();
        assert_eq!(found, vec![Range { start: 1, end: 8 }]);
        let cut = scanner.pending_from().unwrap();
        assert_eq!(cut, 9);
        buffer.drain(..cut);
        scanner.rebase(cut);
        buffer.extend_from_slice(br#"2}]"#);
        found.clear();
        scanner.scan(&buffer, &mut found).unwrap();
        assert_eq!(found, vec![Range { start: 0, end: 7 }]);
        assert_eq!(&buffer[0..7], br#"{"b":2}"#);
        scanner.finish().unwrap();
    }
}
