//! AMAZON_COMPREHEND_CSV: training files for Amazon Comprehend's custom models, as the
//! Amazon Comprehend Developer Guide specifies them ("Plain-text annotation files" for
//! custom entity recognition, "Multi-class mode" and "Multi-label mode" for custom
//! classification).
//!
//! **Token and entity projects**: a ZIP of two files, to upload side by side and name
//! as the recognizer's `Documents` (input format `ONE_DOC_PER_LINE`) and `Annotations`:
//! - `documents.txt`: one document per line, the lines PLAIN writes (an entity
//!   project's text with each line break turned into a space, a token project's tokens
//!   joined by single spaces);
//! - `annotations.csv`: a header `File,Line,Begin Offset,End Offset,Type`, then one row
//!   per span: `documents.txt`, the document's line from 0, the span's first character
//!   and the character after its last, counted from the start of the line, and its
//!   entity type.
//!
//! Entity types are the labels as Comprehend names them: upper case, each run of other
//! characters than letters and digits one `_`, at most 64 characters (`date of birth`:
//! `DATE_OF_BIRTH`). Comprehend takes no overlapping annotations, so a span that
//! overlaps an earlier one goes to the errors report, as do relations. Comprehend
//! trains on at most 25 entity types.
//!
//! **Row and document projects**: one CSV without a header, a row per task: the
//! task's classes as Comprehend names them, several joined by `|` (its default label
//! delimiter, for multi-label mode), then the text (document projects) or the
//! `textColumns` cells, quoted, on one line. With `classification: single-label`
//! (multi-class mode) a task with several classes is left out and reported.

use crate::cloud_ml::{
    character_spans, classes, write_document_text, Classification, DocumentText, Naming,
    CLASSIFICATION, CLASSIFICATION_MODES, TEXT_COLUMNS,
};
use crate::json_text::write_int;
use crate::out::shift_number;
use crate::{ConfigError, Container, EncodeError, Encoder, FormatSpec, Out, Record, Settings};
use labelport_model::{Mode, Task};

/// Comprehend's training files.
pub static FORMAT: FormatSpec = FormatSpec {
    name: "AMAZON_COMPREHEND_CSV",
    summary: "Amazon Comprehend training files: entity annotations with their documents file (a ZIP), or the classifier's CSV",
    modes: Some(&[Mode::Token, Mode::Entity, Mode::Row, Mode::Document]),
    default_states: None,
    allowed_states: None,
    default_stages: Some(&["Complete"]),
    options: &[&CLASSIFICATION, &TEXT_COLUMNS],
    build,
};

/// Comprehend's names for entity types and classes.
const NAMING: Naming = Naming {
    service: "Amazon Comprehend",
    upper_case: true,
    max_chars: 64,
    min_chars: 1,
};

/// The documents file, as the annotations' `File` column names it.
const DOCUMENTS: &str = "documents.txt";
const ANNOTATIONS: &str = "annotations.csv";
const HEADER: &[u8] = b"File,Line,Begin Offset,End Offset,Type\n";
/// Held-back sections of the entity ZIP.
const DOCUMENTS_SECTION: usize = 0;
const ANNOTATIONS_SECTION: usize = 1;

fn build(settings: &Settings<'_>) -> Result<Box<dyn Encoder>, ConfigError> {
    settings.fields.refuse_all(FORMAT.name)?;
    NAMING.check(settings.project, FORMAT.name)?;
    if CLASSIFICATION_MODES.contains(&settings.project.mode) {
        Ok(Box::new(ComprehendClassifier {
            text: DocumentText::from_settings(settings)?,
            classification: Classification::from_settings(settings)?,
        }))
    } else {
        for key in ["classification", "textColumns"] {
            if settings.options.get::<serde_json::Value>(key)?.is_some() {
                return Err(ConfigError::new(
                    key,
                    "only for row and document projects (classification files)",
                ));
            }
        }
        Ok(Box::new(ComprehendEntities))
    }
}

/// The classifier's CSV.
struct ComprehendClassifier {
    text: DocumentText,
    classification: Classification,
}

impl Encoder for ComprehendClassifier {
    fn container(&self) -> Container {
        Container::File {
            extension: "csv",
            content_type: "text/csv; charset=utf-8",
        }
    }

    fn encode(&self, record: &Record<'_, '_>, out: &mut Out) -> Result<(), EncodeError> {
        let Some(classes) = classes(record.task, self.classification, out) else {
            return Ok(());
        };
        let line = out.record();
        for (i, class) in classes.enumerate() {
            if i > 0 {
                line.push(b'|');
            }
            NAMING.write(class, line);
        }
        line.push(b',');
        self.text.write_csv(record.task, line, true);
        line.push(b'\n');
        Ok(())
    }
}

/// The entity recognizer's documents and annotations, as one ZIP.
struct ComprehendEntities;

impl Encoder for ComprehendEntities {
    fn container(&self) -> Container {
        Container::Zip
    }

    fn held_sections(&self) -> usize {
        2
    }

    fn section_entry(&self, section: usize) -> &'static str {
        if section == DOCUMENTS_SECTION {
            DOCUMENTS
        } else {
            ANNOTATIONS
        }
    }

    fn section_opening(&self, section: usize, out: &mut Vec<u8>) {
        if section == ANNOTATIONS_SECTION {
            out.extend_from_slice(HEADER);
        }
    }

    fn encode(&self, record: &Record<'_, '_>, out: &mut Out) -> Result<(), EncodeError> {
        let task = record.task;
        // The document's line, counted from the block's first; `renumber_section`
        // adds the lines of the blocks before.
        let line_in_block = out.held_bytes(DOCUMENTS_SECTION).1;
        write_document(task, out.held(DOCUMENTS_SECTION));
        let mut kept_end = 0;
        character_spans(task, out, |out, begin, end, a| {
            if begin < kept_end {
                out.refuse(&a.id, "Amazon Comprehend annotations cannot overlap");
                return;
            }
            if !NAMING.accepts(a.label.as_deref().unwrap_or("")) {
                out.refuse(&a.id, "a label Amazon Comprehend has no name for");
                return;
            }
            let row = out.held(ANNOTATIONS_SECTION);
            row.extend_from_slice(DOCUMENTS.as_bytes());
            row.push(b',');
            write_int(row, line_in_block);
            row.push(b',');
            write_int(row, begin);
            row.push(b',');
            write_int(row, end);
            row.push(b',');
            NAMING.write(a.label.as_deref().unwrap_or(""), row);
            row.push(b'\n');
            kept_end = end;
        });
        Ok(())
    }

    fn renumbers_section(&self, section: usize) -> bool {
        section == ANNOTATIONS_SECTION
    }

    fn renumber_section(
        &self,
        section: usize,
        bytes: &[u8],
        before: &[u64],
        out: &mut Vec<u8>,
    ) -> bool {
        let base = before.get(DOCUMENTS_SECTION).copied().unwrap_or(0);
        if section != ANNOTATIONS_SECTION || base == 0 {
            return false;
        }
        // Each row is `documents.txt,LINE,...`: LINE counts from the block's start.
        let prefix = DOCUMENTS.len() + 1;
        out.reserve(bytes.len() + bytes.len() / 8);
        for row in bytes.split_inclusive(|b| *b == b'\n') {
            let rest = shift_number(row, &row[..prefix], base, out);
            out.extend_from_slice(rest);
        }
        true
    }
}

/// The task's line of `documents.txt`: the text or the tokens, on one line.
fn write_document(task: &Task<'_>, line: &mut Vec<u8>) {
    write_document_text(task, line, true);
    line.push(b'\n');
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::formats::testing;
    use serde_json::json;

    fn entity_task(id: &str, text: &str, spans: &[(&str, &str, u32, u32)]) -> String {
        let annotations: Vec<_> = spans
            .iter()
            .map(|(id, label, s, e)| json!({"id": id, "type": "span", "label": label, "start": s, "end": e}))
            .collect();
        json!({"id": id, "asset": {"url": "u", "text": text}, "state": "validated",
            "stage": "Complete", "createdAt": "x", "submissions": [{"id": "s", "stage": "L",
            "origin": "human", "completedAt": "x", "annotations": annotations}]})
        .to_string()
    }

    #[test]
    fn entities_point_into_their_documents_line() {
        let project = testing::project("entity", json!({"classes": ["PER", "date of birth"]}));
        let encoder = testing::build("AMAZON_COMPREHEND_CSV", &project, json!({})).unwrap();
        assert_eq!(encoder.container(), Container::Zip);
        let tasks = [
            entity_task(
                "t1",
                "Zoë\r\nmet Ada",
                &[("a", "PER", 0, 3), ("b", "PER", 9, 12)],
            ),
            entity_task("t2", "", &[]),
            entity_task(
                "t3",
                "Born 1815 in London",
                &[("c", "date of birth", 5, 9), ("d", "PER", 6, 12)],
            ),
        ];
        let tasks: Vec<&str> = tasks.iter().map(String::as_str).collect();
        let out = testing::records(encoder.as_ref(), &tasks);
        let documents = std::str::from_utf8(out.held_bytes(0).0).unwrap();
        assert_eq!(documents, "Zoë  met Ada\n\nBorn 1815 in London\n");
        let annotations = std::str::from_utf8(out.held_bytes(1).0).unwrap();
        assert_eq!(
            annotations,
            "documents.txt,0,0,3,PER\ndocuments.txt,0,9,12,PER\ndocuments.txt,2,5,9,DATE_OF_BIRTH\n"
        );
        let line: Vec<char> = documents.lines().next().unwrap().chars().collect();
        assert_eq!(line[9..12].iter().collect::<String>(), "Ada");
        let refused = testing::refusals(encoder.as_ref(), tasks[2]);
        assert_eq!(
            refused,
            [(
                "d".to_owned(),
                "Amazon Comprehend annotations cannot overlap".to_owned()
            )]
        );

        // A later block's rows are renumbered after the lines before it.
        let mut renumbered = Vec::new();
        assert!(encoder.renumber_section(1, annotations.as_bytes(), &[10, 3], &mut renumbered));
        assert_eq!(
            std::str::from_utf8(&renumbered).unwrap(),
            "documents.txt,10,0,3,PER\ndocuments.txt,10,9,12,PER\ndocuments.txt,12,5,9,DATE_OF_BIRTH\n"
        );
    }

    #[test]
    fn token_spans_become_character_offsets() {
        let project = testing::project("token", json!({"classes": ["LOC"]}));
        let encoder = testing::build("AMAZON_COMPREHEND_CSV", &project, json!({})).unwrap();
        let task = r#"{"id":"t","asset":{"url":"u","tokens":["In","São","Paulo","."]},"state":"validated","stage":"Complete","createdAt":"x",
            "submissions":[{"id":"s","stage":"L","origin":"human","completedAt":"x","annotations":[
              {"id":"a","type":"span","label":"LOC","tokenStart":1,"tokenEnd":3}]}]}"#;
        let out = testing::records(encoder.as_ref(), &[task]);
        assert_eq!(
            std::str::from_utf8(out.held_bytes(0).0).unwrap(),
            "In São Paulo .\n"
        );
        assert_eq!(
            std::str::from_utf8(out.held_bytes(1).0).unwrap(),
            "documents.txt,0,3,12,LOC\n"
        );
    }

    #[test]
    fn classifier_rows_name_the_classes_and_quote_the_text() {
        let (project, task) = testing::tricky_row(&["product", "review"]);
        let encoder = testing::build("AMAZON_COMPREHEND_CSV", &project, json!({})).unwrap();
        let file = testing::file(encoder.as_ref(), &[&task]);
        assert_eq!(
            file,
            "SPAM_HAM|NEUTRAL,\"Crème, \"\"fraîche\"\"\tx =HYPERLINK(\"\"http://x\"\") بسيط\"\n"
        );
        let single = testing::build(
            "AMAZON_COMPREHEND_CSV",
            &project,
            json!({"classification": "single-label", "textColumns": ["review"]}),
        )
        .unwrap();
        let out = testing::records(single.as_ref(), &[&task]);
        assert!(out.bytes().is_empty(), "two classes: left out");
        let Err(e) = testing::build(
            "AMAZON_COMPREHEND_CSV",
            &project,
            json!({"textColumns": ["nope"]}),
        ) else {
            panic!("an unknown text column is refused");
        };
        assert_eq!(e.field, "textColumns[0]");
    }
}
