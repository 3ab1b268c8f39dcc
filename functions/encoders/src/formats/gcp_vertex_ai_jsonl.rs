//! GCP_VERTEX_AI_JSONL: Vertex AI text import files in JSON Lines, as "Prepare text
//! training data for classification" and "Prepare text training data for entity
//! extraction" specify them, one document per line with its text inline
//! (`textContent`):
//!
//! - **Row and document projects**, classification: `{"classificationAnnotation":
//!   {"displayName"}, "textContent"}` with `classification: single-label`, or
//!   `{"classificationAnnotations": [{"displayName"}, ..], "textContent"}` (multi-label,
//!   the default). A task with no class, or several when single-label, is left out and
//!   reported.
//! - **Token and entity projects**, entity extraction: `{"textSegmentAnnotations":
//!   [{"startOffset", "endOffset", "displayName"}], "textContent"}`; offsets are
//!   characters of `textContent` (the text, or the tokens joined by single spaces), the
//!   end exclusive. Vertex AI takes a label over 1 to 10 words: a longer span goes to
//!   the errors report, as do relations.
//!
//! Labels are Vertex AI names, as in GCP_VERTEX_AI_CSV (`report, annual`:
//! `report_annual`, 2 to 30 characters). `dataItemResourceLabels` (the `ml_use` split)
//! is left out, so Vertex AI splits the data itself.

use super::gcp_vertex_ai_csv::VERTEX_NAMING;
use crate::cloud_ml::{
    character_spans, classes, Classification, DocumentText, CLASSIFICATION, CLASSIFICATION_MODES,
    TEXT_COLUMNS,
};
use crate::json_text::write_int;
use crate::{ConfigError, Container, EncodeError, Encoder, FormatSpec, Out, Record, Settings};
use labelport_model::{Mode, Task};

/// Vertex AI's JSON Lines.
pub static FORMAT: FormatSpec = FormatSpec {
    name: "GCP_VERTEX_AI_JSONL",
    summary: "Vertex AI text import JSON Lines: classification (single- or multi-label) or entity extraction",
    modes: Some(&[Mode::Row, Mode::Document, Mode::Token, Mode::Entity]),
    default_states: None,
    allowed_states: None,
    default_stages: Some(&["Complete"]),
    options: &[&CLASSIFICATION, &TEXT_COLUMNS],
    build,
};

/// Vertex AI's longest entity, in words.
const MAX_ENTITY_WORDS: usize = 10;

fn build(settings: &Settings<'_>) -> Result<Box<dyn Encoder>, ConfigError> {
    settings.fields.refuse_all(FORMAT.name)?;
    VERTEX_NAMING.check(settings.project, FORMAT.name)?;
    if CLASSIFICATION_MODES.contains(&settings.project.mode) {
        return Ok(Box::new(VertexJsonl {
            classify: Some((
                DocumentText::from_settings(settings)?,
                Classification::from_settings(settings)?,
            )),
        }));
    }
    for key in ["classification", "textColumns"] {
        if settings.options.get::<serde_json::Value>(key)?.is_some() {
            return Err(ConfigError::new(
                key,
                "only for row and document projects (classification files)",
            ));
        }
    }
    Ok(Box::new(VertexJsonl { classify: None }))
}

/// Classification (`Some`: the text and the classification) or entity extraction.
struct VertexJsonl {
    classify: Option<(DocumentText, Classification)>,
}

impl Encoder for VertexJsonl {
    fn container(&self) -> Container {
        Container::File {
            extension: "jsonl",
            content_type: "application/jsonl",
        }
    }

    fn encode(&self, record: &Record<'_, '_>, out: &mut Out) -> Result<(), EncodeError> {
        match &self.classify {
            Some((text, classification)) => {
                classification_line(record.task, text, *classification, out)
            }
            None => entity_line(record.task, out),
        }
        Ok(())
    }
}

fn classification_line(
    task: &Task<'_>,
    text: &DocumentText,
    classification: Classification,
    out: &mut Out,
) {
    let Some(classes) = classes(task, classification, out) else {
        return;
    };
    if classes.clone().any(|l| !VERTEX_NAMING.accepts(l)) {
        out.leave_out(Some(
            "a class Vertex AI has no name for (2 to 30 letters or digits)",
        ));
        return;
    }
    let line = out.record();
    line.extend_from_slice(match classification {
        Classification::SingleLabel => b"{\"classificationAnnotation\":",
        Classification::MultiLabel => b"{\"classificationAnnotations\":[",
    });
    for (i, class) in classes.enumerate() {
        if i > 0 {
            line.push(b',');
        }
        // Vertex AI names are letters, digits and `_`: nothing to escape.
        line.extend_from_slice(b"{\"displayName\":\"");
        VERTEX_NAMING.write(class, line);
        line.extend_from_slice(b"\"}");
    }
    if classification == Classification::MultiLabel {
        line.push(b']');
    }
    line.extend_from_slice(b",\"textContent\":");
    write_json_text(line, |piece| text.pieces(task, piece));
    line.extend_from_slice(b"}\n");
}

fn entity_line(task: &Task<'_>, out: &mut Out) {
    // The spans go first, so the line is opened before any is written.
    out.record()
        .extend_from_slice(b"{\"textSegmentAnnotations\":[");
    let mut first = true;
    let text = task.asset.text.as_deref().unwrap_or("");
    character_spans(task, out, |out, begin, end, a| {
        let label = a.label.as_deref().unwrap_or("");
        if !VERTEX_NAMING.accepts(label) {
            out.refuse(
                &a.id,
                "a label Vertex AI has no name for (2 to 30 letters or digits)",
            );
            return;
        }
        let words = if task.asset.tokens.is_empty() {
            words(text.chars().skip(begin).take(end - begin))
        } else {
            words(
                task.asset
                    .tokens
                    .iter()
                    .flat_map(|t| t.chars().chain([' ']))
                    .skip(begin)
                    .take(end - begin),
            )
        };
        if words > MAX_ENTITY_WORDS {
            out.refuse(&a.id, "Vertex AI takes entities of 1 to 10 words");
            return;
        }
        let line = out.record();
        if !std::mem::take(&mut first) {
            line.push(b',');
        }
        line.extend_from_slice(b"{\"startOffset\":");
        write_int(line, begin);
        line.extend_from_slice(b",\"endOffset\":");
        write_int(line, end);
        line.extend_from_slice(b",\"displayName\":\"");
        VERTEX_NAMING.write(label, line);
        line.extend_from_slice(b"\"}");
    });
    let line = out.record();
    line.extend_from_slice(b"],\"textContent\":");
    write_json_text(line, |piece| {
        if task.asset.tokens.is_empty() {
            piece(text);
        } else {
            for (i, token) in task.asset.tokens.iter().enumerate() {
                if i > 0 {
                    piece(" ");
                }
                piece(token);
            }
        }
    });
    line.extend_from_slice(b"}\n");
}

/// The words of a span: runs of non-whitespace.
fn words(chars: impl Iterator<Item = char>) -> usize {
    let mut count = 0;
    let mut in_word = false;
    for c in chars {
        let word = !c.is_whitespace();
        count += usize::from(word && !in_word);
        in_word = word;
    }
    count
}

/// Writes the pieces `pieces` hands over as one JSON string.
fn write_json_text<'t>(line: &mut Vec<u8>, pieces: impl FnOnce(&mut dyn FnMut(&'t str))) {
    line.push(b'"');
    pieces(&mut |piece: &str| {
        let start = line.len();
        crate::json_text::write_str(line, piece);
        // Drop the quotes write_str put around this piece.
        line.remove(start);
        line.pop();
    });
    line.push(b'"');
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::formats::testing;
    use serde_json::{json, Value};

    #[test]
    fn classification_lines_single_and_multi_label() {
        let (project, task) = testing::tricky_row(&["product", "review"]);
        let multi = testing::build("GCP_VERTEX_AI_JSONL", &project, json!({})).unwrap();
        let file = testing::file(multi.as_ref(), &[&task]);
        let line: Value = serde_json::from_str(file.trim_end()).unwrap();
        assert_eq!(
            line,
            json!({"classificationAnnotations": [{"displayName": "spam_ham"}, {"displayName": "neutral"}],
                "textContent": "Crème, \"fraîche\"\tx =HYPERLINK(\"http://x\")\nبسيط"})
        );
        let single = testing::build(
            "GCP_VERTEX_AI_JSONL",
            &project,
            json!({"classification": "single-label", "textColumns": ["review"]}),
        )
        .unwrap();
        let one = r#"{"id":"o","asset":{"url":"u","row":[{"column":"review","value":"ok"}]},"state":"validated","stage":"Complete","createdAt":"x",
            "submissions":[{"id":"s","stage":"L","origin":"human","completedAt":"x","annotations":[{"id":"a","type":"class","label":"good one"}]}]}"#;
        let file = testing::file(single.as_ref(), &[&task, one]);
        assert_eq!(file, "{\"classificationAnnotation\":{\"displayName\":\"good_one\"},\"textContent\":\"ok\"}\n");
    }

    #[test]
    fn entity_lines_count_characters_and_refuse_long_spans() {
        let project = testing::project("entity", json!({"classes": ["PER", "quote"]}));
        let encoder = testing::build("GCP_VERTEX_AI_JSONL", &project, json!({})).unwrap();
        let task = r#"{"id":"t","asset":{"url":"u","text":"Zoë met Ada:\n\"one two three four five six seven eight nine ten eleven\""},"state":"validated","stage":"Complete","createdAt":"x",
            "submissions":[{"id":"s","stage":"L","origin":"human","completedAt":"x","annotations":[
              {"id":"b","type":"span","label":"PER","start":8,"end":11},
              {"id":"a","type":"span","label":"PER","start":0,"end":3},
              {"id":"q","type":"span","label":"quote","start":13,"end":69}]}]}"#;
        let file = testing::file(encoder.as_ref(), &[task]);
        let line: Value = serde_json::from_str(file.trim_end()).unwrap();
        assert_eq!(
            line["textSegmentAnnotations"],
            json!([
            {"startOffset": 0, "endOffset": 3, "displayName": "PER"},
            {"startOffset": 8, "endOffset": 11, "displayName": "PER"}])
        );
        let text: Vec<char> = line["textContent"].as_str().unwrap().chars().collect();
        assert_eq!(text[8..11].iter().collect::<String>(), "Ada");
        let refused = testing::refusals(encoder.as_ref(), task);
        assert_eq!(
            refused,
            [(
                "q".to_owned(),
                "Vertex AI takes entities of 1 to 10 words".to_owned()
            )]
        );
    }
}
