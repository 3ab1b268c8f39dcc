//! PLAIN: the text of each task and no labels, one document per line, as Amazon
//! Comprehend reads a documents file (`ONE_DOC_PER_LINE`). A token project's tokens are
//! joined by single spaces; an entity project's text is written with each line break
//! character (`\n`, `\r`) turned into a space, so character offsets into the text stay
//! offsets into the line. Line N (from 0) is the Nth task exported.

use crate::{Container, EncodeError, Encoder, FormatSpec, Out, Record};
use labelport_model::Mode;

/// Text only.
pub static FORMAT: FormatSpec = FormatSpec {
    name: "PLAIN",
    summary: "the text only, no labels: one document per line (what Comprehend references)",
    modes: Some(&[Mode::Token, Mode::Entity]),
    default_states: None,
    allowed_states: None,
    default_stages: Some(&["Complete"]),
    options: &[],
    build: |settings| {
        settings.fields.refuse_all(FORMAT.name)?;
        Ok(Box::new(PlainEncoder))
    },
};

/// Writes the lines.
pub struct PlainEncoder;

impl Encoder for PlainEncoder {
    fn container(&self) -> Container {
        Container::File {
            extension: "txt",
            content_type: "text/plain; charset=utf-8",
        }
    }

    fn encode(&self, record: &Record<'_, '_>, out: &mut Out) -> Result<(), EncodeError> {
        let asset = &record.task.asset;
        let line = out.record();
        if asset.tokens.is_empty() {
            let text = asset.text.as_deref().unwrap_or("");
            let start = line.len();
            line.extend_from_slice(text.as_bytes());
            for b in &mut line[start..] {
                if matches!(*b, b'\n' | b'\r') {
                    *b = b' ';
                }
            }
        } else {
            for (i, token) in asset.tokens.iter().enumerate() {
                if i > 0 {
                    line.push(b' ');
                }
                line.extend(
                    token
                        .bytes()
                        .map(|b| if matches!(b, b'\n' | b'\r') { b' ' } else { b }),
                );
            }
        }
        line.push(b'\n');
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::formats::testing;

    #[test]
    fn one_document_per_line_offsets_kept() {
        let project = testing::project("entity", serde_json::json!({}));
        let encoder = testing::build("PLAIN", &project, serde_json::json!({})).unwrap();
        let text = r#"{"id":"t","asset":{"url":"u","text":"Zoë\r\nmet Ada"},"state":"validated","stage":"Complete","createdAt":"x"}"#;
        let tokens = r#"{"id":"u","asset":{"url":"u","tokens":["New","York","."]},"state":"validated","stage":"Complete","createdAt":"x"}"#;
        let empty = r#"{"id":"v","asset":{"url":"u"},"state":"validated","stage":"Complete","createdAt":"x"}"#;
        let file = testing::file(encoder.as_ref(), &[text, tokens, empty]);
        assert_eq!(file, "Zoë  met Ada\nNew York .\n\n");
        // "Ada" is characters 9..12 of the text, and of its line.
        let line: Vec<char> = file.lines().next().unwrap().chars().collect();
        assert_eq!(line[9..12].iter().collect::<String>(), "Ada");
    }
}
