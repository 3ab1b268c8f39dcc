//! The task record, version 1: one JSON object per line of a task file.
//!
//! Strings are `Cow<'a, str>` so that a record parsed from a line buffer borrows
//! from it (no allocation per string unless the JSON escapes it), while the
//! generator can build records from owned data. Unknown fields are ignored so that
//! a platform may carry more than this model knows.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// The version of the task record and project manifest this crate reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

/// One task: an asset, where it is in the workflow, and every submission made on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task<'a> {
    /// The task's unique identifier within its project.
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    /// What is being labelled.
    #[serde(borrow)]
    pub asset: Asset<'a>,
    /// The task's state (CSV keeps only annotated and validated tasks).
    pub state: TaskState,
    /// The workflow stage the task is in now (`Complete` once it left the workflow).
    #[serde(borrow)]
    pub stage: Cow<'a, str>,
    /// A preview task made by a manager to try the project; never exported.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub preview: bool,
    /// E-mail of the contributor the task is assigned to, if any.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<Cow<'a, str>>,
    /// When the task was created (RFC 3339).
    #[serde(borrow)]
    pub created_at: Cow<'a, str>,
    /// When the task last changed (RFC 3339).
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Cow<'a, str>>,
    /// Who changed the task last.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub updated_by: Option<Cow<'a, str>>,
    /// Total time spent on the task over all submissions, in milliseconds.
    #[serde(default)]
    pub duration_ms: u64,
    /// Number of comments left on the task.
    #[serde(default)]
    pub comment_count: u32,
    /// Where the task and its element can be opened.
    #[serde(default, borrow)]
    pub links: Links<'a>,
    /// Batches the task belongs to.
    #[serde(default, borrow, skip_serializing_if = "Vec::is_empty")]
    pub batches: Vec<Cow<'a, str>>,
    /// Every submission, oldest first. The last one holds the task's current annotations.
    #[serde(default, borrow)]
    pub submissions: Vec<Submission<'a>>,
}

impl<'a> Task<'a> {
    /// The submission whose annotations are the task's current ones: the latest.
    pub fn final_submission(&self) -> Option<&Submission<'a>> {
        self.submissions.last()
    }

    /// The task's current annotations (empty when nobody submitted yet).
    pub fn annotations(&self) -> &[Annotation<'a>] {
        self.final_submission()
            .map(|s| s.annotations.as_slice())
            .unwrap_or(&[])
    }

    /// The task's current relations.
    pub fn relations(&self) -> &[Relation<'a>] {
        self.final_submission()
            .map(|s| s.relations.as_slice())
            .unwrap_or(&[])
    }
}

/// A task's state in the workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Not worked on yet.
    Pending,
    /// A contributor submitted annotations.
    Annotated,
    /// A reviewer accepted the annotations.
    Validated,
    /// A reviewer sent the task back.
    Rejected,
    /// The contributor skipped the task.
    Skipped,
}

impl TaskState {
    /// Every state, in workflow order.
    pub const ALL: [TaskState; 5] = [
        TaskState::Pending,
        TaskState::Annotated,
        TaskState::Validated,
        TaskState::Rejected,
        TaskState::Skipped,
    ];

    /// The name used in files, requests and CSV cells.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Pending => "pending",
            TaskState::Annotated => "annotated",
            TaskState::Validated => "validated",
            TaskState::Rejected => "rejected",
            TaskState::Skipped => "skipped",
        }
    }
}

/// The thing being labelled: an image, a text, a document, a table row, a video.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Asset<'a> {
    /// Where the asset lives (`s3://`, `https://`).
    #[serde(borrow)]
    pub url: Cow<'a, str>,
    /// The platform customer's own identifier for the asset.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<Cow<'a, str>>,
    /// The data source the asset was imported from (a connected bucket, an upload), by
    /// the name the platform gives it; exports can keep one source only.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub data_source: Option<Cow<'a, str>>,
    /// The text, for text, entity and transcription assets small enough to inline.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub text: Option<Cow<'a, str>>,
    /// The tokens, for token labeling.
    #[serde(default, borrow, skip_serializing_if = "Vec::is_empty")]
    pub tokens: Vec<Cow<'a, str>>,
    /// The cells, for row labeling, as (column, value) pairs in column order.
    #[serde(default, borrow, skip_serializing_if = "Vec::is_empty")]
    pub row: Vec<Cell<'a>>,
    /// Number of frames, for video.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_count: Option<u32>,
    /// Image or frame width in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Image or frame height in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
}

/// One cell of a row-labeling asset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell<'a> {
    /// The column name.
    #[serde(borrow)]
    pub column: Cow<'a, str>,
    /// The cell's text.
    #[serde(borrow)]
    pub value: Cow<'a, str>,
}

/// Links a person can open.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Links<'a> {
    /// The task's annotation page.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub task: Option<Cow<'a, str>>,
    /// The element on the third-party provider.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub element: Option<Cow<'a, str>>,
}

/// One submission of annotations on a task, by a person or a model, in one stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Submission<'a> {
    /// The submission's identifier.
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    /// The workflow stage it was made in.
    #[serde(borrow)]
    pub stage: Cow<'a, str>,
    /// A person or a model.
    pub origin: Origin,
    /// E-mail of the labeler, for a human submission.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub labeler: Option<Cow<'a, str>>,
    /// Name and version of the model, for a machine submission.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub model: Option<Cow<'a, str>>,
    /// When work on it started (RFC 3339).
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Cow<'a, str>>,
    /// When it was submitted (RFC 3339).
    #[serde(borrow)]
    pub completed_at: Cow<'a, str>,
    /// Time spent, in milliseconds.
    #[serde(default)]
    pub duration_ms: u64,
    /// The annotations of this submission.
    #[serde(default, borrow)]
    pub annotations: Vec<Annotation<'a>>,
    /// Relations between this submission's annotations.
    #[serde(default, borrow, skip_serializing_if = "Vec::is_empty")]
    pub relations: Vec<Relation<'a>>,
}

/// Who made a submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// A person (see `labeler`).
    Human,
    /// A model (see `model`).
    Machine,
}

/// What an annotation is. The kind decides which of the annotation's optional
/// fields are set (see [`Annotation::check`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnnotationKind {
    /// A class for the whole asset (classification, row and document labeling). `label`.
    Class,
    /// An axis-aligned box. `label`, `bbox`.
    Box,
    /// A polygon. `label`, `points`.
    Polygon,
    /// A point. `label`, `points` (one).
    Point,
    /// A group of elements. `label`, `members`.
    Group,
    /// An entity: a span of text (`start`/`end`, characters) or of tokens
    /// (`tokenStart`/`tokenEnd`). `label`.
    Span,
    /// A transcription of the asset or of one element. `text`, optional `element`.
    Transcription,
    /// The answer to one field of a form. `field`, `text`.
    Answer,
}

impl AnnotationKind {
    /// The name used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            AnnotationKind::Class => "class",
            AnnotationKind::Box => "box",
            AnnotationKind::Polygon => "polygon",
            AnnotationKind::Point => "point",
            AnnotationKind::Group => "group",
            AnnotationKind::Span => "span",
            AnnotationKind::Transcription => "transcription",
            AnnotationKind::Answer => "answer",
        }
    }

    /// Whether this kind marks a region of an image or frame (an "element").
    pub fn is_element(self) -> bool {
        matches!(
            self,
            AnnotationKind::Box | AnnotationKind::Polygon | AnnotationKind::Point
        )
    }
}

/// One annotation. A flat struct with a `type` discriminant rather than a tagged
/// enum: serde parses it in one pass, borrowing, where an internally tagged enum
/// would buffer every annotation first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Annotation<'a> {
    /// The annotation's identifier (an object id, stable across submissions).
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    /// What the annotation is.
    #[serde(rename = "type")]
    pub kind: AnnotationKind,
    /// The class or entity label (a name of the project's label schema).
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub label: Option<Cow<'a, str>>,
    /// Box geometry, in pixels (a rotated box carries its rotation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bbox: Option<BoundingBox>,
    /// Polygon vertices or a point, as `[x, y]` pixels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub points: Vec<[f64; 2]>,
    /// First character of a text span (inclusive, in Unicode scalar values).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<u32>,
    /// End of a text span (exclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<u32>,
    /// First token of a token span (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_start: Option<u32>,
    /// End of a token span (exclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_end: Option<u32>,
    /// Transcribed text, an answer's text, or a span's covered text.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub text: Option<Cow<'a, str>>,
    /// The form field an answer belongs to.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub field: Option<Cow<'a, str>>,
    /// The labeling tool it was made with, where the source names its tools (one of
    /// the manifest's `labels.tools`: a Label Studio control tag's `name`).
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub tool: Option<Cow<'a, str>>,
    /// The element a transcription belongs to (absent: the assigned element itself).
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub element: Option<Cow<'a, str>>,
    /// Ids of the annotations a group holds.
    #[serde(default, borrow, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<Cow<'a, str>>,
    /// Video: the frame this annotation is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame: Option<u32>,
    /// Video: whether a person set this frame (true) or it was interpolated (false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_frame: Option<bool>,
    /// Video: the object this annotation follows across frames.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub track: Option<Cow<'a, str>>,
    /// The confidence of a machine annotation, 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// Attribute values, each with an optional confidence.
    #[serde(default, borrow, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<Attribute<'a>>,
    /// When the annotation was made (milliseconds since the Unix epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
    /// Who made it.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<Cow<'a, str>>,
}

impl<'a> Annotation<'a> {
    /// An annotation of `kind` with nothing else set yet.
    pub fn new(id: Cow<'a, str>, kind: AnnotationKind) -> Self {
        Annotation {
            id,
            kind,
            label: None,
            bbox: None,
            points: Vec::new(),
            start: None,
            end: None,
            token_start: None,
            token_end: None,
            text: None,
            field: None,
            tool: None,
            element: None,
            members: Vec::new(),
            frame: None,
            key_frame: None,
            track: None,
            confidence: None,
            attributes: Vec::new(),
            created_at: None,
            created_by: None,
        }
    }

    /// A record that parses may still be incomplete for its kind: a box without
    /// geometry, an answer without a field. Returns the missing field.
    pub fn check(&self) -> Result<(), &'static str> {
        let need = |ok: bool, field: &'static str| if ok { Ok(()) } else { Err(field) };
        match self.kind {
            AnnotationKind::Class | AnnotationKind::Group => need(self.label.is_some(), "label"),
            AnnotationKind::Box => {
                need(self.label.is_some(), "label")?;
                need(self.bbox.is_some(), "bbox")
            }
            AnnotationKind::Polygon => {
                need(self.label.is_some(), "label")?;
                need(self.points.len() >= 3, "points")
            }
            AnnotationKind::Point => {
                need(self.label.is_some(), "label")?;
                need(self.points.len() == 1, "points")
            }
            AnnotationKind::Span => {
                need(self.label.is_some(), "label")?;
                need(
                    (self.start.is_some() && self.end.is_some())
                        || (self.token_start.is_some() && self.token_end.is_some()),
                    "start",
                )
            }
            AnnotationKind::Transcription => need(self.text.is_some(), "text"),
            AnnotationKind::Answer => {
                need(self.field.is_some(), "field")?;
                need(self.text.is_some(), "text")
            }
        }
    }
}

/// A box in pixels: `x`, `y` is its top-left corner before rotation. A rotated box
/// (`rotation`, degrees clockwise on screen, where y points down) turns about that
/// corner, as annotation tools draw it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BoundingBox {
    /// Left edge.
    pub x: f64,
    /// Top edge.
    pub y: f64,
    /// Width.
    pub width: f64,
    /// Height.
    pub height: f64,
    /// Clockwise rotation about (`x`, `y`), in degrees; absent or 0: axis-aligned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<f64>,
}

impl BoundingBox {
    /// Whether the box is turned (by anything but a multiple of 360 degrees).
    pub fn is_rotated(&self) -> bool {
        self.rotation.is_some_and(|r| r % 360.0 != 0.0)
    }

    /// The four corners, clockwise from (`x`, `y`), rotation applied.
    pub fn corners(&self) -> [[f64; 2]; 4] {
        let (w, h) = (self.width, self.height);
        let local = [[0.0, 0.0], [w, 0.0], [w, h], [0.0, h]];
        let (sin, cos) = if self.is_rotated() {
            self.rotation.unwrap_or(0.0).to_radians().sin_cos()
        } else {
            (0.0, 1.0)
        };
        local.map(|[dx, dy]| [self.x + dx * cos - dy * sin, self.y + dx * sin + dy * cos])
    }
}

/// One attribute value of an annotation ("occluded": "yes").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attribute<'a> {
    /// The attribute's name.
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    /// Its value.
    #[serde(borrow)]
    pub value: Cow<'a, str>,
    /// How sure the labeler or model was, 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
}

/// A directed relation between two annotations of the same submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Relation<'a> {
    /// The relation's identifier.
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    /// The relation's label ("works_for").
    #[serde(borrow)]
    pub label: Cow<'a, str>,
    /// Id of the annotation the relation starts at.
    #[serde(borrow)]
    pub from: Cow<'a, str>,
    /// Id of the annotation it points to.
    #[serde(borrow)]
    pub to: Cow<'a, str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_line_parses_borrowing_its_strings_and_ignoring_unknown_fields() {
        let line = r#"{"id":"t1","asset":{"url":"s3://b/1.jpg"},"state":"annotated","stage":"Complete","createdAt":"2024-01-01T00:00:00Z","future":{"x":1}}"#;
        let task: Task<'_> = serde_json::from_str(line).expect("parses");
        assert!(matches!(task.id, Cow::Borrowed("t1")));
        assert_eq!(task.state, TaskState::Annotated);
        assert!(task.annotations().is_empty());
    }

    #[test]
    fn an_unknown_state_is_an_error_naming_the_value() {
        let line =
            r#"{"id":"t1","asset":{"url":"u"},"state":"done","stage":"Complete","createdAt":"x"}"#;
        let err = serde_json::from_str::<Task<'_>>(line).expect_err("refused");
        assert!(err.to_string().contains("unknown variant `done`"), "{err}");
    }

    #[test]
    fn check_names_the_missing_field_for_the_kind() {
        let line = r#"{"id":"a","type":"box","label":"car"}"#;
        let a: Annotation<'_> = serde_json::from_str(line).expect("parses");
        assert_eq!(a.check(), Err("bbox"));
        let line = r#"{"id":"a","type":"answer","field":"name","text":"Ada"}"#;
        let a: Annotation<'_> = serde_json::from_str(line).expect("parses");
        assert_eq!(a.check(), Ok(()));
    }
}
