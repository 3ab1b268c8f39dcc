//! A task as tagged tokens, for the token formats (TSV_IOB, TSV_NON_IOB, CONLL2003).
//!
//! - **Token projects** carry their tokens (`asset.tokens`) and spans over token
//!   indices.
//! - **Entity projects** carry text and spans over characters, so the text is
//!   tokenized here, and the span boundaries take part:
//!   - whitespace separates tokens;
//!   - each punctuation mark, the hyphen of a hyphenated word included, is a token;
//!   - each character of a script written without spaces (Chinese, Japanese, Thai,
//!     Lao, Khmer, Myanmar) is a token;
//!   - a token is split wherever a span starts or ends inside it.
//!
//!   So every span is a whole number of tokens.
//! - **Sentences** end after `.`, `!`, `?`, `。`, `！` or `？`, and at the end of the
//!   task.
//! - **What IOB cannot express** goes to the errors report with its id, never dropped:
//!   a span that overlaps or nests in an earlier one, or one outside its text.
//!   Relations, which these formats have no place for at all, are counted per export
//!   (one line of the errors report) rather than listed one by one.

use crate::{ConfigError, Container, EncodeError, Encoder, FormatOption, Out, Record, Settings};
use labelport_model::{AnnotationKind, Task};
use serde::Deserialize;
use std::cell::RefCell;

/// `tagging`: IOB2 (the default, as Hugging Face's conll2003 uses) or IOB1.
pub static TAGGING: FormatOption = FormatOption {
    key: "tagging",
    schema: <Tagging as utoipa::PartialSchema>::schema,
};

/// How a span's tokens are tagged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Tagging {
    /// `B-` starts every span, `I-` continues it.
    #[default]
    Iob2,
    /// `I-` for every token of a span; `B-` only starts a span that directly follows
    /// one of the same label.
    Iob1,
}

impl Tagging {
    /// The request's choice.
    pub fn from_settings(settings: &Settings<'_>) -> Result<Self, ConfigError> {
        Ok(settings.options.get("tagging")?.unwrap_or_default())
    }

    /// The prefix of a token's tag, `B` or `I`.
    pub fn prefix(self, token: &Token<'_>) -> u8 {
        let begins = match self {
            Tagging::Iob2 => token.first_of_span,
            Tagging::Iob1 => token.first_of_span && token.follows_same_label,
        };
        if begins {
            b'B'
        } else {
            b'I'
        }
    }
}

/// One token and its place in the spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token<'t> {
    /// The token's text.
    pub text: &'t str,
    /// The label of the span it is in, if any.
    pub label: Option<&'t str>,
    /// The first token of its span.
    pub first_of_span: bool,
    /// Its span starts right after a span of the same label (IOB1 marks it `B-`).
    pub follows_same_label: bool,
    /// The last token of its sentence.
    pub ends_sentence: bool,
}

/// A span kept for tagging: where it lies (tokens or characters) and its annotation.
#[derive(Debug, Clone, Copy)]
struct Kept {
    start: usize,
    end: usize,
    annotation: usize,
}

thread_local! {
    /// The spans of the record being tagged: reused, so tagging does not allocate per record.
    static SPANS: RefCell<Vec<Kept>> = const { RefCell::new(Vec::new()) };
}

/// Hands `visit` the tokens of `task` in order; what IOB cannot express goes to `out`'s
/// errors report.
pub fn tokens<'t>(task: &'t Task<'t>, out: &mut Out, mut visit: impl FnMut(&mut Out, Token<'t>)) {
    SPANS.with(|cell| {
        let mut spans = cell.borrow_mut();
        spans.clear();
        let by_tokens = !task.asset.tokens.is_empty() || task.asset.text.is_none();
        for _ in task.relations() {
            out.omit("relations: token-per-line formats have no place for them");
        }
        let annotations = task.annotations();
        let limit = if by_tokens {
            task.asset.tokens.len()
        } else {
            task.asset.text.as_deref().map_or(0, |t| t.chars().count())
        };
        for (i, a) in annotations.iter().enumerate() {
            if a.kind != AnnotationKind::Span {
                continue;
            }
            let range = if by_tokens {
                a.token_start.zip(a.token_end)
            } else {
                a.start.zip(a.end)
            };
            match range {
                Some((s, e)) if s < e && (e as usize) <= limit => spans.push(Kept {
                    start: s as usize,
                    end: e as usize,
                    annotation: i,
                }),
                _ => out.refuse(
                    &a.id,
                    "a span outside its text (or without the offsets this project uses)",
                ),
            }
        }
        spans.sort_by_key(|s| (s.start, s.end));
        // A span that overlaps or nests in the one before it has no IOB tags.
        let mut kept_end = 0;
        let mut keep = 0;
        for i in 0..spans.len() {
            let span = spans[i];
            if i > 0 && span.start < kept_end {
                out.refuse(
                    &annotations[span.annotation].id,
                    "an overlapping or nested span: IOB tags cannot express it",
                );
                continue;
            }
            kept_end = span.end;
            spans[keep] = span;
            keep += 1;
        }
        spans.truncate(keep);
        let label = |span: &Kept| annotations[span.annotation].label.as_deref();
        let mut tagger = Tagger {
            spans: &spans,
            next: 0,
            previous: None,
        };
        let mut tag = |text: &'t str, start: usize, end: usize| {
            let (span, first) = tagger.at(start, end);
            // IOB1's `B-`: a span right after a span of the same label.
            let follows = first
                && span
                    .zip(tagger.previous)
                    .is_some_and(|(s, p)| label(&s) == label(&p));
            tagger.previous = span;
            Token {
                text,
                label: span.and_then(|s| label(&s)),
                first_of_span: first,
                follows_same_label: follows,
                ends_sentence: ends_sentence(text),
            }
        };
        if by_tokens {
            let count = task.asset.tokens.len();
            for (i, text) in task.asset.tokens.iter().enumerate() {
                let mut token = tag(text, i, i + 1);
                token.ends_sentence |= i + 1 == count;
                visit(out, token);
            }
        } else if let Some(text) = task.asset.text.as_deref() {
            let mut pieces = Pieces::new(text, &spans);
            let mut pending: Option<Token<'t>> = None;
            while let Some((piece, start, end)) = pieces.next() {
                let token = tag(piece, start, end);
                if let Some(before) = pending.replace(token) {
                    visit(out, before);
                }
            }
            if let Some(mut last) = pending {
                last.ends_sentence = true;
                visit(out, last);
            }
        }
    });
}

/// Walks the kept spans alongside the tokens.
struct Tagger<'s> {
    spans: &'s [Kept],
    next: usize,
    /// The span of the token before.
    previous: Option<Kept>,
}

impl Tagger<'_> {
    /// The span a token `[start, end)` lies in, and whether the token starts it.
    fn at(&mut self, start: usize, end: usize) -> (Option<Kept>, bool) {
        while self.next < self.spans.len() && self.spans[self.next].end <= start {
            self.next += 1;
        }
        match self.spans.get(self.next) {
            Some(span) if span.start <= start && end <= span.end => {
                (Some(*span), span.start == start)
            }
            _ => (None, false),
        }
    }
}

/// How a token line is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    /// `token<TAB>tag` (TSV_IOB, or TSV_NON_IOB without a tagging).
    Tsv,
    /// `token -X- -X- tag`, each task opened by `-DOCSTART- -X- -X- O` (CONLL2003).
    Conll,
    /// `token -X- _ tag`, one `-DOCSTART- -X- O` atop the file, a blank line after
    /// each task and none between its sentences: Label Studio's converter's CoNLL
    /// (CONLL2003 with `"compat": "label-studio"`).
    ConllLabelStudio,
    /// `token tag`, one space between (Azure AutoML's NER files).
    Space,
}

/// The encoder of the token-per-line formats: tagged token lines, a blank line after
/// each sentence. With no `tagging`, a tag is the bare label (TSV_NON_IOB).
pub struct TaggedLines {
    /// How a line is laid out.
    pub lines: Lines,
    /// The tag scheme; `None` for bare labels.
    pub tagging: Option<Tagging>,
}

impl Encoder for TaggedLines {
    fn container(&self) -> Container {
        match self.lines {
            Lines::Tsv => Container::File {
                extension: "tsv",
                content_type: "text/tab-separated-values; charset=utf-8",
            },
            Lines::Conll | Lines::ConllLabelStudio => Container::File {
                extension: "conll",
                content_type: "text/plain; charset=utf-8",
            },
            Lines::Space => Container::File {
                extension: "txt",
                content_type: "text/plain; charset=utf-8",
            },
        }
    }

    fn header(&self, out: &mut Vec<u8>) {
        if self.lines == Lines::ConllLabelStudio {
            out.extend_from_slice(b"-DOCSTART- -X- O\n");
        }
    }

    fn encode(&self, record: &Record<'_, '_>, out: &mut Out) -> Result<(), EncodeError> {
        let (lines, tagging) = (self.lines, self.tagging);
        if lines == Lines::Conll {
            out.record().extend_from_slice(b"-DOCSTART- -X- -X- O\n\n");
        }
        tokens(record.task, out, |out, token| {
            let line = out.record();
            write_column(line, token.text, lines);
            line.extend_from_slice(match lines {
                Lines::Tsv => b"\t",
                Lines::Conll => b" -X- -X- ",
                Lines::ConllLabelStudio => b" -X- _ ",
                Lines::Space => b" ",
            });
            match (token.label, tagging) {
                (None, _) => line.push(b'O'),
                (Some(label), Some(tagging)) => {
                    line.push(tagging.prefix(&token));
                    line.push(b'-');
                    write_column(line, label, lines);
                }
                (Some(label), None) => write_column(line, label, lines),
            }
            line.push(b'\n');
            if token.ends_sentence && lines != Lines::ConllLabelStudio {
                line.push(b'\n');
            }
        });
        if lines == Lines::ConllLabelStudio {
            out.record().push(b'\n');
        }
        Ok(())
    }
}

/// Writes a token or label so it never holds the line's separators, which would shift
/// the columns: in TSV a tab or line break becomes a space; in the space-separated
/// layouts any whitespace becomes `_`.
fn write_column(line: &mut Vec<u8>, text: &str, lines: Lines) {
    for c in text.chars() {
        match (c, lines) {
            ('\t' | '\n' | '\r', Lines::Tsv) => line.push(b' '),
            (c, Lines::Conll | Lines::ConllLabelStudio | Lines::Space) if c.is_whitespace() => {
                line.push(b'_')
            }
            (c, _) => {
                let mut buffer = [0; 4];
                line.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
            }
        }
    }
}

/// Whether a token ends its sentence.
fn ends_sentence(token: &str) -> bool {
    matches!(token, "." | "!" | "?" | "。" | "！" | "？")
}

/// Whether `c` belongs to a script written without spaces between words.
fn unspaced_script(c: char) -> bool {
    matches!(c as u32,
        0x0E00..=0x0EFF // Thai, Lao
        | 0x1000..=0x109F // Myanmar
        | 0x1780..=0x17FF // Khmer
        | 0x3040..=0x30FF // Hiragana, Katakana
        | 0x3400..=0x4DBF // CJK extension A
        | 0x4E00..=0x9FFF // CJK
        | 0xF900..=0xFAFF // CJK compatibility
        | 0xFF66..=0xFF9F // half-width Katakana
    )
}

/// The tokens of a text, cut at the spans' boundaries: (text, first char, end char).
struct Pieces<'t, 's> {
    text: &'t str,
    chars: std::iter::Peekable<std::str::CharIndices<'t>>,
    index: usize,
    spans: &'s [Kept],
    boundary: usize,
}

impl<'t, 's> Pieces<'t, 's> {
    fn new(text: &'t str, spans: &'s [Kept]) -> Self {
        Pieces {
            text,
            chars: text.char_indices().peekable(),
            index: 0,
            spans,
            boundary: 0,
        }
    }

    /// Whether a span starts or ends at char `index`.
    fn is_boundary(&mut self, index: usize) -> bool {
        // Span boundaries in order: each span's start, then its end.
        loop {
            let Some(span) = self.spans.get(self.boundary / 2) else {
                return false;
            };
            let at = if self.boundary.is_multiple_of(2) {
                span.start
            } else {
                span.end
            };
            if at < index {
                self.boundary += 1;
            } else {
                return at == index;
            }
        }
    }

    fn next(&mut self) -> Option<(&'t str, usize, usize)> {
        // Skip whitespace.
        while let Some(&(_, c)) = self.chars.peek() {
            if !c.is_whitespace() {
                break;
            }
            self.chars.next();
            self.index += 1;
        }
        let (begin, first) = self.chars.next()?;
        let start = self.index;
        self.index += 1;
        let mut end_byte = begin + first.len_utf8();
        if first.is_alphanumeric() && !unspaced_script(first) {
            while let Some(&(at, c)) = self.chars.peek() {
                if !c.is_alphanumeric() || unspaced_script(c) || self.is_boundary(self.index) {
                    break;
                }
                self.chars.next();
                self.index += 1;
                end_byte = at + c.len_utf8();
            }
        }
        Some((&self.text[begin..end_byte], start, self.index))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn tagged(task: &str, tagging: Tagging) -> (Vec<String>, Vec<String>) {
        let task: Task<'_> = serde_json::from_str(task).unwrap();
        let mut out = Out::new(b"");
        out.begin_record();
        let mut tags = Vec::new();
        tokens(&task, &mut out, |_, t| {
            let tag = match t.label {
                None => "O".to_owned(),
                Some(l) => format!("{}-{l}", tagging.prefix(&t) as char),
            };
            let end = if t.ends_sentence { "|" } else { "" };
            tags.push(format!("{}/{tag}{end}", t.text));
        });
        let refused = std::str::from_utf8(out.record_refusals())
            .unwrap()
            .lines()
            .map(|l| l.split('"').nth(3).unwrap().to_owned())
            .collect();
        (tags, refused)
    }

    fn text_task(text: &str, spans: &[(&str, &str, u32, u32)]) -> String {
        let annotations: Vec<serde_json::Value> = spans
            .iter()
            .map(|(id, label, s, e)| serde_json::json!({"id": id, "type": "span", "label": label, "start": s, "end": e}))
            .collect();
        serde_json::json!({
            "id": "t", "asset": {"url": "u", "text": text}, "state": "validated", "stage": "Complete",
            "createdAt": "x", "submissions": [{"id": "s", "stage": "L", "origin": "human",
            "completedAt": "x", "annotations": annotations}],
        })
        .to_string()
    }

    #[test]
    fn text_is_cut_at_spaces_punctuation_and_span_boundaries() {
        // "New York-based" with a span over "New York": the hyphen splits it off.
        let (tags, refused) = tagged(
            &text_task(
                "Ada moved to New York-based Initech. Done!",
                &[("a", "LOC", 13, 21), ("b", "ORG", 28, 35)],
            ),
            Tagging::Iob2,
        );
        assert_eq!(
            tags,
            [
                "Ada/O",
                "moved/O",
                "to/O",
                "New/B-LOC",
                "York/I-LOC",
                "-/O",
                "based/O",
                "Initech/B-ORG",
                "./O|",
                "Done/O",
                "!/O|"
            ]
        );
        assert!(refused.is_empty());
        // A span that starts inside a word splits it.
        let (tags, _) = tagged(&text_task("unhappy", &[("a", "X", 2, 7)]), Tagging::Iob2);
        assert_eq!(tags, ["un/O", "happy/B-X|"]);
    }

    #[test]
    fn scripts_without_spaces_are_one_token_per_character() {
        let (tags, _) = tagged(
            &text_task("東京に行く。", &[("a", "LOC", 0, 2)]),
            Tagging::Iob2,
        );
        assert_eq!(
            tags,
            ["東/B-LOC", "京/I-LOC", "に/O", "行/O", "く/O", "。/O|"]
        );
    }

    #[test]
    fn adjacent_spans_of_one_label_and_iob1() {
        let task = text_task("Ada Bob Cy", &[("a", "PER", 0, 3), ("b", "PER", 4, 7)]);
        let (iob2, _) = tagged(&task, Tagging::Iob2);
        assert_eq!(iob2, ["Ada/B-PER", "Bob/B-PER", "Cy/O|"]);
        let (iob1, _) = tagged(&task, Tagging::Iob1);
        assert_eq!(iob1, ["Ada/I-PER", "Bob/B-PER", "Cy/O|"]);
    }

    #[test]
    fn overlapping_nested_and_outside_spans_are_refused_by_id() {
        let task = text_task(
            "Bank of America",
            &[("a", "ORG", 0, 15), ("b", "LOC", 8, 15), ("c", "X", 10, 99)],
        );
        let (tags, refused) = tagged(&task, Tagging::Iob2);
        assert_eq!(tags, ["Bank/B-ORG", "of/I-ORG", "America/I-ORG|"]);
        assert_eq!(refused, ["c", "b"]);
    }

    #[test]
    fn empty_documents_give_no_lines_and_relations_are_counted() {
        for text in ["", "   \n\t "] {
            let (tags, refused) = tagged(&text_task(text, &[]), Tagging::Iob2);
            assert!(tags.is_empty() && refused.is_empty(), "{text:?}: {tags:?}");
        }
        let no_text = r#"{"id":"t","asset":{"url":"u"},"state":"validated","stage":"Complete","createdAt":"x"}"#;
        assert!(tagged(no_text, Tagging::Iob2).0.is_empty());
        // Two documents around an empty one: one blank line after each sentence, no more.
        let lines = TaggedLines {
            lines: Lines::Tsv,
            tagging: Some(Tagging::Iob2),
        };
        let file = crate::formats::testing::file(
            &lines,
            &[&text_task("Hi.", &[]), no_text, &text_task("Yo", &[])],
        );
        assert_eq!(file, "Hi\tO\n.\tO\n\nYo\tO\n\n");
        let mut task: serde_json::Value =
            serde_json::from_str(&text_task("Ada", &[("a", "PER", 0, 3)])).unwrap();
        task["submissions"][0]["relations"] =
            serde_json::json!([{"id": "r1", "label": "knows", "from": "a", "to": "a"}]);
        let text = task.to_string();
        let task: Task<'_> = serde_json::from_str(&text).unwrap();
        let mut out = Out::new(b"");
        out.begin_record();
        tokens(&task, &mut out, |_, _| {});
        assert!(out.record_refusals().is_empty());
        assert_eq!(out.omitted().len(), 1, "the relation is counted");
    }

    #[test]
    fn token_projects_keep_their_tokens() {
        let task = serde_json::json!({
            "id": "t", "asset": {"url": "u", "tokens": ["José", "Álvarez", "works", "."]},
            "state": "validated", "stage": "Complete", "createdAt": "x",
            "submissions": [{"id": "s", "stage": "L", "origin": "human", "completedAt": "x",
              "annotations": [{"id": "a1", "type": "span", "label": "PER", "tokenStart": 0, "tokenEnd": 2}]}],
        })
        .to_string();
        let (tags, _) = tagged(&task, Tagging::Iob2);
        assert_eq!(tags, ["José/B-PER", "Álvarez/I-PER", "works/O", "./O|"]);
    }
}
