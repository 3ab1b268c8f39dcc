//! AZURE_AUTOML_CSV: training data for Azure Machine Learning's automated ML NLP tasks,
//! as "Set up AutoML to train a natural language processing model" (section "Preparing
//! data" and its data validation checks) specifies it.
//!
//! **Token and entity projects** (NER): the CoNLL text file AutoML asks for: one
//! `token tag` line per token with exactly one space between, tags `B-`/`I-` plus the
//! label, or `O` (IOB2), one empty line after each sentence, so the file neither starts
//! with an empty line nor has two in a row, and ends with exactly one. Whitespace inside
//! a token or a label becomes `_`. Tokens and sentences are those of TSV_IOB; a span
//! IOB cannot express (overlapping, nested) goes to the errors report.
//!
//! **Row and document projects** (text classification): a CSV with the header
//! `text,labels`; `text` is the document's text (or the `textColumns` cells), `labels`
//! the task's classes as a Python list with quotes (`['label1','label2']`, `[]` for
//! none), AutoML's format that keeps any character of a label; a task with no class is
//! kept with `[]`, as multi-label training allows. With `classification:
//! single-label` (multi-class), `labels` is the one class, and a task with none or
//! several is left out and reported.

use crate::cloud_ml::{
    classes, Classification, DocumentText, CLASSIFICATION, CLASSIFICATION_MODES, TEXT_COLUMNS,
};
use crate::csv_text::write_cell;
use crate::tokens::{Lines, TaggedLines, Tagging};
use crate::{ConfigError, Container, EncodeError, Encoder, FormatSpec, Out, Record, Settings};
use labelport_model::{AnnotationKind, Mode};

/// Azure AutoML's NER and text classification files.
pub static FORMAT: FormatSpec = FormatSpec {
    name: "AZURE_AUTOML_CSV",
    summary: "Azure automated ML NLP data: the NER CoNLL file, or the text classification CSV (multi-label)",
    modes: Some(&[Mode::Token, Mode::Entity, Mode::Row, Mode::Document]),
    default_states: None,
    allowed_states: None,
    default_stages: Some(&["Complete"]),
    options: &[&CLASSIFICATION, &TEXT_COLUMNS],
    build,
};

fn build(settings: &Settings<'_>) -> Result<Box<dyn Encoder>, ConfigError> {
    settings.fields.refuse_all(FORMAT.name)?;
    if CLASSIFICATION_MODES.contains(&settings.project.mode) {
        return Ok(Box::new(AzureClassifier {
            text: DocumentText::from_settings(settings)?,
            classification: Classification::from_settings(settings)?,
        }));
    }
    for key in ["classification", "textColumns"] {
        if settings.options.get::<serde_json::Value>(key)?.is_some() {
            return Err(ConfigError::new(
                key,
                "only for row and document projects (text classification files)",
            ));
        }
    }
    Ok(Box::new(TaggedLines {
        lines: Lines::Space,
        tagging: Some(Tagging::Iob2),
    }))
}

/// The text classification CSV.
struct AzureClassifier {
    text: DocumentText,
    classification: Classification,
}

impl Encoder for AzureClassifier {
    fn container(&self) -> Container {
        Container::File {
            extension: "csv",
            content_type: "text/csv; charset=utf-8",
        }
    }

    fn header(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"text,labels\n");
    }

    fn encode(&self, record: &Record<'_, '_>, out: &mut Out) -> Result<(), EncodeError> {
        let task = record.task;
        let has_class = task
            .annotations()
            .iter()
            .any(|a| a.kind == AnnotationKind::Class && a.label.is_some());
        let multi_label = self.classification == Classification::MultiLabel;
        // Multi-label training takes a document with no class (`[]`).
        let labels = if multi_label && !has_class {
            for a in task.annotations() {
                out.refuse(
                    &a.id,
                    "a classification import file holds the task's classes only",
                );
            }
            None
        } else {
            match classes(task, self.classification, out) {
                Some(classes) => Some(classes),
                None => return Ok(()),
            }
        };
        let line = out.record();
        self.text.write_csv(task, line, false);
        line.push(b',');
        match (labels, multi_label) {
            (Some(mut classes), false) => write_cell(line, classes.next().unwrap_or(""), b','),
            (labels, _) => {
                // `['a','b']` in a quoted CSV field: the field's quotes double, the
                // list's own quotes and backslashes are escaped as Python reads them.
                line.extend_from_slice(b"\"[");
                for (i, class) in labels.into_iter().flatten().enumerate() {
                    if i > 0 {
                        line.push(b',');
                    }
                    line.push(b'\'');
                    for &b in class.as_bytes() {
                        match b {
                            b'\\' => line.extend_from_slice(b"\\\\"),
                            b'\'' => line.extend_from_slice(b"\\'"),
                            b'"' => line.extend_from_slice(b"\"\""),
                            b'\n' => line.extend_from_slice(b"\\n"),
                            b'\r' => line.extend_from_slice(b"\\r"),
                            _ => line.push(b),
                        }
                    }
                    line.push(b'\'');
                }
                line.extend_from_slice(b"]\"");
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
    use serde_json::json;

    #[test]
    fn ner_lines_are_token_space_tag() {
        let project = testing::project("entity", json!({"classes": ["date of birth"]}));
        let encoder = testing::build("AZURE_AUTOML_CSV", &project, json!({})).unwrap();
        let task = r#"{"id":"t","asset":{"url":"u","text":"Born 10 Dec 1815. Ok"},"state":"validated","stage":"Complete","createdAt":"x",
            "submissions":[{"id":"s","stage":"L","origin":"human","completedAt":"x","annotations":[
              {"id":"a","type":"span","label":"date of birth","start":5,"end":16}]}]}"#;
        let empty = r#"{"id":"e","asset":{"url":"u","text":""},"state":"validated","stage":"Complete","createdAt":"x"}"#;
        let file = testing::file(encoder.as_ref(), &[empty, task, empty]);
        assert_eq!(
            file,
            "Born O\n10 B-date_of_birth\nDec I-date_of_birth\n1815 I-date_of_birth\n. O\n\nOk O\n\n"
        );
    }

    #[test]
    fn classification_rows_hold_a_python_list_of_labels() {
        let (project, task) = testing::tricky_row(&["product", "review"]);
        let encoder = testing::build("AZURE_AUTOML_CSV", &project, json!({})).unwrap();
        let unlabelled = r#"{"id":"u","asset":{"url":"u","row":[{"column":"review","value":"it's"}]},"state":"validated","stage":"Complete","createdAt":"x"}"#;
        let file = testing::file(encoder.as_ref(), &[&task, unlabelled]);
        assert_eq!(
            file,
            "text,labels\n\"Crème, \"\"fraîche\"\"\tx =HYPERLINK(\"\"http://x\"\")\nبسيط\",\"['spam|ham','-neutral']\"\n\"it's\",\"[]\"\n"
        );
        let single = testing::build(
            "AZURE_AUTOML_CSV",
            &project,
            json!({"classification": "single-label"}),
        )
        .unwrap();
        let one = r#"{"id":"o","asset":{"url":"u","row":[{"column":"review","value":"ok"}]},"state":"validated","stage":"Complete","createdAt":"x",
            "submissions":[{"id":"s","stage":"L","origin":"human","completedAt":"x","annotations":[{"id":"a","type":"class","label":"it's, \"good\""}]}]}"#;
        let file = testing::file(single.as_ref(), &[&task, unlabelled, one]);
        assert_eq!(file, "text,labels\n\"ok\",\"it's, \"\"good\"\"\"\n");
    }
}
