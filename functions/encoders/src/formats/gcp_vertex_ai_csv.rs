//! GCP_VERTEX_AI_CSV: a Vertex AI text classification import file, as "Prepare text
//! training data for classification" specifies its CSV: one line per document, no
//! header, the document inline (quoted) and its label, or its labels one per column for
//! a multi-label dataset: `"text",label1,label2`. The optional `ml_use` column is left
//! out, so Vertex AI splits training, validation and test itself.
//!
//! Labels are Vertex AI names: each run of other characters than letters, digits and
//! `_` one `_`, 2 to 30 characters (`report, annual`: `report_annual`). A task with no
//! class, or with several for `classification: single-label`, is left out and
//! reported. The text is the document's (or the `textColumns` cells), line breaks kept
//! inside the quotes.
//!
//! Vertex AI imports entity extraction from JSON Lines only: for token and entity
//! projects use GCP_VERTEX_AI_JSONL.

use crate::cloud_ml::{
    classes, Classification, DocumentText, Naming, CLASSIFICATION, CLASSIFICATION_MODES,
    TEXT_COLUMNS,
};
use crate::{ConfigError, Container, EncodeError, Encoder, FormatSpec, Out, Record, Settings};

/// Vertex AI's classification CSV.
pub static FORMAT: FormatSpec = FormatSpec {
    name: "GCP_VERTEX_AI_CSV",
    summary: "Vertex AI text classification import CSV (single- or multi-label), text inline",
    modes: Some(CLASSIFICATION_MODES),
    default_states: None,
    allowed_states: None,
    default_stages: Some(&["Complete"]),
    options: &[&CLASSIFICATION, &TEXT_COLUMNS],
    build,
};

/// Vertex AI's names for labels.
pub(crate) const VERTEX_NAMING: Naming = Naming {
    service: "Vertex AI",
    upper_case: false,
    max_chars: 30,
    min_chars: 2,
};

fn build(settings: &Settings<'_>) -> Result<Box<dyn Encoder>, ConfigError> {
    settings.fields.refuse_all(FORMAT.name)?;
    VERTEX_NAMING.check(settings.project, FORMAT.name)?;
    Ok(Box::new(VertexCsv {
        text: DocumentText::from_settings(settings)?,
        classification: Classification::from_settings(settings)?,
    }))
}

struct VertexCsv {
    text: DocumentText,
    classification: Classification,
}

impl Encoder for VertexCsv {
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
        if classes.clone().any(|l| !VERTEX_NAMING.accepts(l)) {
            out.leave_out(Some(
                "a class Vertex AI has no name for (2 to 30 letters or digits)",
            ));
            return Ok(());
        }
        let line = out.record();
        self.text.write_csv(record.task, line, false);
        for class in classes {
            line.push(b',');
            VERTEX_NAMING.write(class, line);
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
    fn one_line_per_document_text_then_labels() {
        let (project, task) = testing::tricky_row(&["product", "review"]);
        let encoder = testing::build("GCP_VERTEX_AI_CSV", &project, json!({})).unwrap();
        let file = testing::file(encoder.as_ref(), &[&task]);
        assert_eq!(
            file,
            "\"Crème, \"\"fraîche\"\"\tx =HYPERLINK(\"\"http://x\"\")\nبسيط\",spam_ham,neutral\n"
        );
        let token = testing::project("token", json!({}));
        assert!(testing::build("GCP_VERTEX_AI_CSV", &token, json!({})).is_err());
        let short = testing::project("row", json!({"classes": ["A", "ok"]}));
        let Err(e) = testing::build("GCP_VERTEX_AI_CSV", &short, json!({})) else {
            panic!("a one-letter class has no Vertex AI name");
        };
        assert!(e.message.contains("class `A`"), "{e}");
    }
}
