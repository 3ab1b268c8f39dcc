//! What the cloud-ML import formats (AMAZON_COMPREHEND_CSV, AZURE_AUTOML_CSV,
//! GCP_VERTEX_AI_CSV, GCP_VERTEX_AI_JSONL) share:
//!
//! - **The document's text.** A document project's text; a row project's cells of the
//!   `textColumns` (every project column by default), in that order, joined by a space.
//! - **The classes.** A classification file trains on the task's classes: with
//!   `classification: multi-label` (the default) all of them, with `single-label`
//!   exactly one. A task that has none (or several, single-label) has nothing to train
//!   on and is left out, with the reason in the errors report.
//! - **Label names.** Each service restricts them, so each format maps a project's
//!   labels to names the service accepts ([`Naming`]), the same way every time. Two
//!   labels that would get the same name, or a label that cannot get one, refuse the
//!   export at request time rather than merge classes.

use crate::{ConfigError, FormatOption, Out, Settings};
use labelport_model::{Annotation, AnnotationKind, Mode, Project, Task};
use serde::Deserialize;
use std::cell::RefCell;

/// `textColumns`: a row project's columns that make a document's text.
pub static TEXT_COLUMNS: FormatOption = FormatOption {
    key: "textColumns",
    schema: <TextColumns as utoipa::PartialSchema>::schema,
};

/// `classification`: one class per document, or any number.
pub static CLASSIFICATION: FormatOption = FormatOption {
    key: "classification",
    schema: <Classification as utoipa::PartialSchema>::schema,
};

/// A row project's columns whose cells, in this order and joined by a space, make
/// the document's text; every column of the project by default.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[schema(min_items = 1)]
pub struct TextColumns(pub Vec<String>);

/// One class per document (the service's single-label or multi-class mode: a task
/// with several classes is left out), or any number (multi-label, the default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Classification {
    /// Exactly one class per document.
    SingleLabel,
    /// Any number of classes per document.
    #[default]
    MultiLabel,
}

impl Classification {
    /// The request's choice.
    pub fn from_settings(settings: &Settings<'_>) -> Result<Self, ConfigError> {
        Ok(settings.options.get("classification")?.unwrap_or_default())
    }
}

/// Where a classified document's text comes from.
pub struct DocumentText {
    /// Row mode: the columns, in order; document mode: `None` (the asset's text).
    columns: Option<Vec<String>>,
}

impl DocumentText {
    /// For `settings`' project, refusing `textColumns` that name no column.
    pub fn from_settings(settings: &Settings<'_>) -> Result<Self, ConfigError> {
        let project = settings.project;
        let asked: Option<TextColumns> = settings.options.get("textColumns")?;
        if project.mode != Mode::Row {
            if asked.is_some() {
                return Err(ConfigError::new(
                    "textColumns",
                    format!(
                        "only row projects have columns; {} is a {} project",
                        project.id, project.mode
                    ),
                ));
            }
            return Ok(DocumentText { columns: None });
        }
        let columns = match asked {
            Some(TextColumns(columns)) => {
                if columns.is_empty() {
                    return Err(ConfigError::new("textColumns", "name at least one column"));
                }
                if let Some((i, missing)) = columns
                    .iter()
                    .enumerate()
                    .find(|(_, c)| !project.columns.is_empty() && !project.columns.contains(c))
                {
                    return Err(ConfigError::new(
                        format!("textColumns[{i}]"),
                        format!(
                            "project {} has no column `{missing}`; it has {}",
                            project.id,
                            project.columns.join(", ")
                        ),
                    ));
                }
                columns
            }
            None => project.columns.clone(),
        };
        Ok(DocumentText {
            columns: Some(columns),
        })
    }

    /// Hands `piece` the parts of `task`'s text in order: the asset's text, or each
    /// text column's cell with a `" "` between two cells. A row project that lists no
    /// columns gives every cell.
    pub fn pieces<'t>(&self, task: &'t Task<'t>, mut piece: impl FnMut(&'t str)) {
        let Some(columns) = &self.columns else {
            piece(task.asset.text.as_deref().unwrap_or(""));
            return;
        };
        let mut first = true;
        let mut cell = |value: &'t str| {
            if !first {
                piece(" ");
            }
            first = false;
            piece(value);
        };
        if columns.is_empty() {
            task.asset.row.iter().for_each(|c| cell(&c.value));
            return;
        }
        for column in columns {
            if let Some(c) = task.asset.row.iter().find(|c| c.column == *column) {
                cell(&c.value);
            }
        }
    }

    /// Writes the text as one CSV field, always quoted, line breaks kept or turned
    /// into spaces.
    pub fn write_csv(&self, task: &Task<'_>, out: &mut Vec<u8>, one_line: bool) {
        out.push(b'"');
        self.pieces(task, |piece| {
            for &b in piece.as_bytes() {
                match b {
                    b'"' => out.extend_from_slice(b"\"\""),
                    b'\n' | b'\r' if one_line => out.push(b' '),
                    _ => out.push(b),
                }
            }
        });
        out.push(b'"');
    }
}

/// The modes a classification import file fits.
pub const CLASSIFICATION_MODES: &[Mode] = &[Mode::Row, Mode::Document];

/// The classes a classification file trains on, after sending every annotation that
/// is not a class to the errors report. `None`: the task is left out (no class, or
/// several when single-label), with the reason in the errors report.
pub fn classes<'t>(
    task: &'t Task<'t>,
    classification: Classification,
    out: &mut Out,
) -> Option<impl Iterator<Item = &'t str> + Clone> {
    let annotations = task.annotations();
    let mut count = 0;
    for a in annotations {
        if a.kind == AnnotationKind::Class && a.label.is_some() {
            count += 1;
        } else {
            out.refuse(
                &a.id,
                "a classification import file holds the task's classes only",
            );
        }
    }
    let reason = match (count, classification) {
        (0, _) => Some("the task has no class to train on"),
        (1, _) | (_, Classification::MultiLabel) => None,
        (_, Classification::SingleLabel) => {
            Some("single-label: the task has several classes (ask for classification: multi-label)")
        }
    };
    if let Some(reason) = reason {
        out.leave_out(Some(reason));
        return None;
    }
    Some(
        annotations
            .iter()
            .filter(|a| a.kind == AnnotationKind::Class)
            .filter_map(|a: &'t Annotation<'t>| a.label.as_deref()),
    )
}

/// A span as characters of the document text: begin, end, and its annotation's index.
type CharSpan = (usize, usize, usize);

thread_local! {
    /// The record's spans and its tokens' first characters: reused, so a record
    /// allocates nothing.
    static SPANS: RefCell<(Vec<CharSpan>, Vec<usize>)> =
        const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Hands `visit` each span of an entity or token `task` as characters of its document
/// text (the text, or the tokens joined by single spaces): begin, end (exclusive) and
/// the annotation, by begin. Other annotations and spans outside the text go to the
/// errors report; relations, which the files have no place for, are counted.
pub fn character_spans<'t>(
    task: &'t Task<'t>,
    out: &mut Out,
    mut visit: impl FnMut(&mut Out, usize, usize, &'t Annotation<'t>),
) {
    for _ in task.relations() {
        out.omit("relations: the service's import files hold entities only");
    }
    SPANS.with(|cell| {
        let (spans, token_starts) = &mut *cell.borrow_mut();
        spans.clear();
        token_starts.clear();
        let tokens = &task.asset.tokens;
        let mut at = 0;
        for token in tokens {
            token_starts.push(at);
            at += token.chars().count() + 1;
        }
        let chars = if tokens.is_empty() {
            task.asset.text.as_deref().map_or(0, |t| t.chars().count())
        } else {
            at - 1
        };
        let annotations = task.annotations();
        for (i, a) in annotations.iter().enumerate() {
            if a.kind != AnnotationKind::Span {
                out.refuse(&a.id, "the service's import files hold entities only");
                continue;
            }
            let range = if tokens.is_empty() {
                a.start
                    .zip(a.end)
                    .map(|(s, e)| (s as usize, e as usize))
                    .filter(|&(s, e)| s < e && e <= chars)
            } else {
                a.token_start.zip(a.token_end).and_then(|(s, e)| {
                    let (s, e) = (s as usize, e as usize);
                    (s < e && e <= tokens.len()).then(|| {
                        (
                            token_starts[s],
                            token_starts[e - 1] + tokens[e - 1].chars().count(),
                        )
                    })
                })
            };
            match range {
                Some((begin, end)) => spans.push((begin, end, i)),
                None => out.refuse(
                    &a.id,
                    "a span outside its text (or without the offsets this project uses)",
                ),
            }
        }
        spans.sort_unstable();
        for &(begin, end, i) in spans.iter() {
            visit(out, begin, end, &annotations[i]);
        }
    });
}

/// Writes the document text of an entity or token task, the text `character_spans`
/// counts in: the text, or the tokens joined by single spaces; `one_line` turns each
/// line break into a space (character offsets stay the same).
pub fn write_document_text(task: &Task<'_>, out: &mut Vec<u8>, one_line: bool) {
    let map = |b: u8| {
        if one_line && matches!(b, b'\n' | b'\r') {
            b' '
        } else {
            b
        }
    };
    if task.asset.tokens.is_empty() {
        out.extend(task.asset.text.as_deref().unwrap_or("").bytes().map(map));
    } else {
        for (i, token) in task.asset.tokens.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            out.extend(token.bytes().map(map));
        }
    }
}

/// A service's rules for label names, and how a project's labels are mapped to them:
/// each run of characters the service does not allow becomes one `_`, and `_` at
/// either end is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Naming {
    /// The service, for messages.
    pub service: &'static str,
    /// Letters are upper-cased (Amazon Comprehend's entity types).
    pub upper_case: bool,
    /// At most this many characters: longer names are cut.
    pub max_chars: usize,
    /// At least this many characters: a shorter name refuses the export.
    pub min_chars: usize,
}

impl Naming {
    /// Writes the service's name for `label` into `out`; `false` (and nothing
    /// written) when the label has no name the service accepts.
    pub fn write(&self, label: &str, out: &mut Vec<u8>) -> bool {
        let start = out.len();
        let mut chars = 0;
        let mut gap = false;
        for c in label.chars() {
            if chars == self.max_chars {
                break;
            }
            if !c.is_alphanumeric() {
                gap = true;
                continue;
            }
            if gap && chars > 0 {
                if chars + 1 == self.max_chars {
                    break;
                }
                out.push(b'_');
                chars += 1;
            }
            gap = false;
            let mut buffer = [0u8; 4];
            if self.upper_case {
                for upper in c.to_uppercase() {
                    out.extend_from_slice(upper.encode_utf8(&mut buffer).as_bytes());
                }
            } else {
                out.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
            }
            chars += 1;
        }
        if chars < self.min_chars.max(1) {
            out.truncate(start);
            return false;
        }
        true
    }

    /// Whether the service has a name for `label` (without writing it).
    pub fn accepts(&self, label: &str) -> bool {
        let mut chars = 0;
        let mut gap = false;
        for c in label.chars() {
            if !c.is_alphanumeric() {
                gap = true;
                continue;
            }
            chars += 1 + usize::from(gap && chars > 0);
            gap = false;
        }
        chars.min(self.max_chars) >= self.min_chars.max(1)
    }

    /// The name of `label`, or `None`.
    pub fn name(&self, label: &str) -> Option<String> {
        let mut out = Vec::new();
        self.write(label, &mut out)
            .then(|| String::from_utf8(out).unwrap_or_default())
    }

    /// Refuses a project whose labels would lose their identity: one with no name the
    /// service accepts, or two that get the same name.
    pub fn check(&self, project: &Project, format: &str) -> Result<(), ConfigError> {
        let mut named: Vec<(String, &str)> = Vec::new();
        for label in &project.labels.classes {
            let Some(name) = self.name(label) else {
                return Err(ConfigError::new(
                    "format",
                    format!(
                        "{format}: class `{label}` of project {} has no name {} accepts ({} to {} letters or digits)",
                        project.id, self.service, self.min_chars.max(1), self.max_chars
                    ),
                ));
            };
            if let Some((_, other)) = named.iter().find(|(n, _)| *n == name) {
                return Err(ConfigError::new(
                    "format",
                    format!(
                        "{format}: classes `{other}` and `{label}` of project {} would both be named `{name}` for {}; rename one of them",
                        project.id, self.service
                    ),
                ));
            }
            named.push((name, label));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const COMPREHEND: Naming = Naming {
        service: "Amazon Comprehend",
        upper_case: true,
        max_chars: 64,
        min_chars: 1,
    };
    const VERTEX: Naming = Naming {
        service: "Vertex AI",
        upper_case: false,
        max_chars: 30,
        min_chars: 2,
    };

    #[test]
    fn names_keep_letters_and_digits_and_join_the_rest_with_one_underscore() {
        for label in ["PER", "a b", "--", "x", "ab", "é é"] {
            assert_eq!(
                VERTEX.accepts(label),
                VERTEX.name(label).is_some(),
                "{label}"
            );
        }
        assert_eq!(COMPREHEND.name("PER").unwrap(), "PER");
        assert_eq!(COMPREHEND.name("date of birth").unwrap(), "DATE_OF_BIRTH");
        assert_eq!(
            COMPREHEND.name("spam | promotional, ads").unwrap(),
            "SPAM_PROMOTIONAL_ADS"
        );
        assert_eq!(COMPREHEND.name(" -reçu fiscal- ").unwrap(), "REÇU_FISCAL");
        assert_eq!(COMPREHEND.name("--"), None);
        assert_eq!(VERTEX.name("report, annual").unwrap(), "report_annual");
        assert_eq!(VERTEX.name("x"), None, "Vertex AI wants two characters");
        let long = "a".repeat(29) + " b";
        assert_eq!(
            VERTEX.name(&long).unwrap(),
            "a".repeat(29),
            "no `_` left at the end"
        );
        assert_eq!(VERTEX.name(&"é".repeat(40)).unwrap().chars().count(), 30);
    }

    #[test]
    fn a_project_whose_labels_collide_is_refused_by_name() {
        let project: Project = serde_json::from_value(serde_json::json!({
            "schemaVersion": 1, "id": "p1", "name": "P", "mode": "row", "state": "running",
            "labels": {"classes": ["spam ads", "spam-ads"]},
        }))
        .unwrap();
        let e = COMPREHEND
            .check(&project, "AMAZON_COMPREHEND_CSV")
            .unwrap_err();
        assert_eq!(e.field, "format");
        assert!(e.message.contains("`spam ads` and `spam-ads`"), "{e}");
        assert!(e.message.contains("SPAM_ADS"), "{e}");
    }
}
