//! The task object of the JSON family (JSON, NDJSON, NDJSON_SPLIT), in the current
//! structure or the legacy one, written by hand straight into the output buffer: a
//! fixed key order, strings escaped and floats printed exactly as `serde_json` does
//! ([`crate::json_text`]), nothing allocated per task except on error.
//!
//! The current structure, keys in this order (`?`: omitted when absent):
//!
//! ```text
//! {"asset", "externalId" (string or null), "metadata": {"width"?, "height"?, "frameCount"?},
//!  "batches": [..], "task": {"taskId", "state", "stage", "createdAt", "updatedAt"?,
//!  "updatedBy"?, "assignee"?, "totalDuration", "commentCount", "tools": [..],
//!  "classifications": [..], "relations": [..], "stageHistory"?: [..]}}
//! ```
//!
//! The legacy structure has a `tasks` list holding that one task, with `objects` for
//! `tools`, `duration` for `totalDuration`, and a `stageHistory` of stage metadata
//! only (stage, who, when, how long) instead of each stage's annotations.
//!
//! Tools are box, polygon, point, group and span annotations; classifications are
//! class, answer (`"tool": "text"`) and transcription annotations.

use crate::json_text::{write_finite, write_key, write_opt_str, write_str, write_str_array};
use crate::{EncodeError, FieldToggles, Structure};
use labelport_model::{Annotation, AnnotationKind, Attribute, Relation, Submission, Task};

/// Writes the task object of the JSON family.
#[derive(Debug, Clone, Copy)]
pub struct TaskJson {
    /// The field toggles.
    pub fields: FieldToggles,
    /// Current or legacy.
    pub structure: Structure,
}

impl TaskJson {
    /// Whether `a` is exported: with `onlyKeyFrames`, interpolated frames are not.
    fn keeps(&self, a: &Annotation<'_>) -> bool {
        !(self.fields.only_key_frames && a.key_frame == Some(false))
    }

    /// Appends the task's object (no line end). On error the buffer may hold part of
    /// it: the caller truncates.
    pub fn write(&self, task: &Task<'_>, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let mut n = itoa::Buffer::new();

        out.extend_from_slice(b"{\"asset\":");
        write_str(out, &task.asset.url);
        out.extend_from_slice(b",\"externalId\":");
        match task.asset.external_id.as_deref() {
            Some(id) => write_str(out, id),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"metadata\":{");
        let mut first = true;
        let dimensions = [
            ("width", task.asset.width),
            ("height", task.asset.height),
            ("frameCount", task.asset.frame_count),
        ];
        for (key, value) in dimensions {
            if let Some(value) = value {
                write_key(out, &mut first, key);
                out.extend_from_slice(n.format(value).as_bytes());
            }
        }
        out.extend_from_slice(b"},\"batches\":");
        write_str_array(out, task.batches.iter().map(|b| b.as_ref()));

        let legacy = self.structure == Structure::Legacy;
        out.extend_from_slice(if legacy {
            b",\"tasks\":[{\"taskId\":"
        } else {
            b",\"task\":{\"taskId\":"
        });
        write_str(out, &task.id);
        out.extend_from_slice(b",\"state\":\"");
        out.extend_from_slice(task.state.as_str().as_bytes());
        out.extend_from_slice(b"\",\"stage\":");
        write_str(out, &task.stage);
        out.extend_from_slice(b",\"createdAt\":");
        write_str(out, &task.created_at);
        if let Some(at) = task.updated_at.as_deref() {
            out.extend_from_slice(b",\"updatedAt\":");
            write_str(out, at);
        }
        if let Some(by) = task.updated_by.as_deref() {
            out.extend_from_slice(b",\"updatedBy\":");
            write_str(out, by);
        }
        if let Some(assignee) = task.assignee.as_deref() {
            out.extend_from_slice(b",\"assignee\":");
            write_str(out, assignee);
        }
        out.extend_from_slice(if legacy {
            b",\"duration\":"
        } else {
            b",\"totalDuration\":"
        });
        out.extend_from_slice(n.format(task.duration_ms).as_bytes());
        out.extend_from_slice(b",\"commentCount\":");
        out.extend_from_slice(n.format(task.comment_count).as_bytes());
        out.push(b',');
        self.write_annotations(out, task.annotations(), task.relations())?;
        if self.fields.stage_history {
            out.extend_from_slice(b",\"stageHistory\":[");
            for (i, submission) in task.submissions.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                self.write_stage(out, submission)?;
            }
            out.push(b']');
        }
        out.extend_from_slice(if legacy { b"}]}" } else { b"}}" });
        Ok(())
    }

    /// One stageHistory entry: a submission with its annotations.
    fn write_stage(&self, out: &mut Vec<u8>, s: &Submission<'_>) -> Result<(), EncodeError> {
        out.extend_from_slice(b"{\"stage\":");
        write_str(out, &s.stage);
        out.extend_from_slice(match s.origin {
            labelport_model::Origin::Human => b",\"origin\":\"human\"",
            labelport_model::Origin::Machine => b",\"origin\":\"machine\"",
        });
        if let Some(by) = s.labeler.as_deref().or(s.model.as_deref()) {
            out.extend_from_slice(b",\"completedBy\":");
            write_str(out, by);
        }
        if let Some(at) = s.started_at.as_deref() {
            out.extend_from_slice(b",\"startedAt\":");
            write_str(out, at);
        }
        out.extend_from_slice(b",\"completedAt\":");
        write_str(out, &s.completed_at);
        out.extend_from_slice(b",\"duration\":");
        out.extend_from_slice(itoa::Buffer::new().format(s.duration_ms).as_bytes());
        if self.structure == Structure::Current {
            out.push(b',');
            self.write_annotations(out, &s.annotations, &s.relations)?;
        }
        out.push(b'}');
        Ok(())
    }

    /// `"tools":[..],"classifications":[..],"relations":[..]`, without braces.
    fn write_annotations(
        &self,
        out: &mut Vec<u8>,
        annotations: &[Annotation<'_>],
        relations: &[Relation<'_>],
    ) -> Result<(), EncodeError> {
        out.extend_from_slice(match self.structure {
            Structure::Current => b"\"tools\":[",
            Structure::Legacy => b"\"objects\":[",
        });
        let mut first = true;
        for a in annotations
            .iter()
            .filter(|a| is_tool(a.kind) && self.keeps(a))
        {
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            self.write_tool(out, a)?;
        }
        out.extend_from_slice(b"],\"classifications\":[");
        let mut first = true;
        for a in annotations
            .iter()
            .filter(|a| !is_tool(a.kind) && self.keeps(a))
        {
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            self.write_classification(out, a)?;
        }
        out.extend_from_slice(b"],\"relations\":[");
        for (i, r) in relations.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"objectId\":");
            write_str(out, &r.id);
            out.extend_from_slice(b",\"title\":");
            write_str(out, &r.label);
            out.extend_from_slice(b",\"from\":");
            write_str(out, &r.from);
            out.extend_from_slice(b",\"to\":");
            write_str(out, &r.to);
            out.push(b'}');
        }
        out.push(b']');
        Ok(())
    }

    /// A tool: `{"objectId","title",<geometry>,"frame"?,"keyFrame"?,"track"?,
    /// "classifications","metadata"?}`.
    fn write_tool(&self, out: &mut Vec<u8>, a: &Annotation<'_>) -> Result<(), EncodeError> {
        check(a)?;
        let mut n = itoa::Buffer::new();
        out.extend_from_slice(b"{\"objectId\":");
        write_str(out, &a.id);
        out.extend_from_slice(b",\"title\":");
        write_opt_str(out, a.label.as_deref());
        match a.kind {
            AnnotationKind::Box => {
                if let Some(b) = &a.bbox {
                    out.extend_from_slice(b",\"bounding-box\":{\"x\":");
                    write_coordinate(out, a, b.x)?;
                    out.extend_from_slice(b",\"y\":");
                    write_coordinate(out, a, b.y)?;
                    out.extend_from_slice(b",\"height\":");
                    write_coordinate(out, a, b.height)?;
                    out.extend_from_slice(b",\"width\":");
                    write_coordinate(out, a, b.width)?;
                    if let Some(rotation) = b.rotation {
                        out.extend_from_slice(b",\"rotation\":");
                        write_coordinate(out, a, rotation)?;
                    }
                    out.push(b'}');
                }
            }
            AnnotationKind::Polygon => {
                out.extend_from_slice(b",\"polygon\":[");
                for (i, point) in a.points.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_point(out, a, point)?;
                }
                out.push(b']');
            }
            AnnotationKind::Point => {
                if let Some(point) = a.points.first() {
                    out.extend_from_slice(b",\"point\":");
                    write_point(out, a, point)?;
                }
            }
            AnnotationKind::Group => {
                out.extend_from_slice(b",\"group\":");
                write_str_array(out, a.members.iter().map(|m| m.as_ref()));
            }
            AnnotationKind::Span => {
                if let (Some(start), Some(end)) = (a.start, a.end) {
                    out.extend_from_slice(b",\"span\":{\"start\":");
                    out.extend_from_slice(n.format(start).as_bytes());
                    out.extend_from_slice(b",\"end\":");
                    out.extend_from_slice(n.format(end).as_bytes());
                    if let Some(text) = a.text.as_deref() {
                        out.extend_from_slice(b",\"text\":");
                        write_str(out, text);
                    }
                    out.push(b'}');
                }
                if let (Some(start), Some(end)) = (a.token_start, a.token_end) {
                    out.extend_from_slice(b",\"tokens\":{\"start\":");
                    out.extend_from_slice(n.format(start).as_bytes());
                    out.extend_from_slice(b",\"end\":");
                    out.extend_from_slice(n.format(end).as_bytes());
                    out.push(b'}');
                }
            }
            AnnotationKind::Class | AnnotationKind::Transcription | AnnotationKind::Answer => {}
        }
        if let Some(frame) = a.frame {
            out.extend_from_slice(b",\"frame\":");
            out.extend_from_slice(n.format(frame).as_bytes());
        }
        if let Some(key_frame) = a.key_frame {
            out.extend_from_slice(if key_frame {
                b",\"keyFrame\":true"
            } else {
                b",\"keyFrame\":false"
            });
        }
        if let Some(track) = a.track.as_deref() {
            out.extend_from_slice(b",\"track\":");
            write_str(out, track);
        }
        self.write_attributes_and_metadata(out, a)?;
        out.push(b'}');
        Ok(())
    }

    /// A classification: `{"objectId","tool","title","answer","element"?,
    /// "classifications","metadata"?}`.
    fn write_classification(
        &self,
        out: &mut Vec<u8>,
        a: &Annotation<'_>,
    ) -> Result<(), EncodeError> {
        check(a)?;
        let (tool, title, answer): (&[u8], Option<&str>, Option<&str>) = match a.kind {
            AnnotationKind::Class => (b"class", a.label.as_deref(), a.label.as_deref()),
            AnnotationKind::Answer => (b"text", a.field.as_deref(), a.text.as_deref()),
            AnnotationKind::Transcription => {
                (b"transcription", Some("transcription"), a.text.as_deref())
            }
            AnnotationKind::Box
            | AnnotationKind::Polygon
            | AnnotationKind::Point
            | AnnotationKind::Group
            | AnnotationKind::Span => (b"", None, None),
        };
        out.extend_from_slice(b"{\"objectId\":");
        write_str(out, &a.id);
        out.extend_from_slice(b",\"tool\":\"");
        out.extend_from_slice(tool);
        out.extend_from_slice(b"\",\"title\":");
        write_opt_str(out, title);
        out.extend_from_slice(b",\"answer\":");
        write_opt_str(out, answer);
        if let Some(element) = a.element.as_deref() {
            out.extend_from_slice(b",\"element\":");
            write_str(out, element);
        }
        self.write_attributes_and_metadata(out, a)?;
        out.push(b'}');
        Ok(())
    }

    /// `,"classifications":[attributes]` and, with the toggle, `,"metadata":{..}`.
    fn write_attributes_and_metadata(
        &self,
        out: &mut Vec<u8>,
        a: &Annotation<'_>,
    ) -> Result<(), EncodeError> {
        out.extend_from_slice(b",\"classifications\":[");
        for (i, attribute) in a.attributes.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_attribute(out, a, attribute)?;
        }
        out.push(b']');
        if self.fields.annotation_metadata {
            out.extend_from_slice(b",\"metadata\":{");
            let mut first = true;
            if let Some(at) = a.created_at {
                write_key(out, &mut first, "createdAt");
                out.extend_from_slice(itoa::Buffer::new().format(at).as_bytes());
            }
            if let Some(by) = a.created_by.as_deref() {
                write_key(out, &mut first, "createdBy");
                write_str(out, by);
            }
            if let Some(confidence) = a.confidence {
                write_key(out, &mut first, "confidence");
                write_confidence(out, a, confidence)?;
            }
            out.push(b'}');
        }
        Ok(())
    }
}

/// Whether an annotation of `kind` is exported under `tools` (else `classifications`).
fn is_tool(kind: AnnotationKind) -> bool {
    match kind {
        AnnotationKind::Box
        | AnnotationKind::Polygon
        | AnnotationKind::Point
        | AnnotationKind::Group
        | AnnotationKind::Span => true,
        AnnotationKind::Class | AnnotationKind::Transcription | AnnotationKind::Answer => false,
    }
}

/// Refuses an annotation that lacks a field its kind needs (a box without `bbox`):
/// its JSON would not have the shape a reader expects.
fn check(a: &Annotation<'_>) -> Result<(), EncodeError> {
    a.check().map_err(|field| {
        EncodeError(format!(
            "annotation {}: a {} needs `{field}`",
            a.id,
            a.kind.as_str()
        ))
    })
}

/// `{"title": name, "answer": value, "confidence"?}`.
fn write_attribute(
    out: &mut Vec<u8>,
    a: &Annotation<'_>,
    attribute: &Attribute<'_>,
) -> Result<(), EncodeError> {
    out.extend_from_slice(b"{\"title\":");
    write_str(out, &attribute.name);
    out.extend_from_slice(b",\"answer\":");
    write_str(out, &attribute.value);
    if let Some(confidence) = attribute.confidence {
        out.extend_from_slice(b",\"confidence\":");
        write_confidence(out, a, confidence)?;
    }
    out.push(b'}');
    Ok(())
}

/// `[x,y]`.
fn write_point(out: &mut Vec<u8>, a: &Annotation<'_>, point: &[f64; 2]) -> Result<(), EncodeError> {
    out.push(b'[');
    write_coordinate(out, a, point[0])?;
    out.push(b',');
    write_coordinate(out, a, point[1])?;
    out.push(b']');
    Ok(())
}

/// A coordinate of `a`'s geometry; JSON has no NaN or infinity.
fn write_coordinate(out: &mut Vec<u8>, a: &Annotation<'_>, v: f64) -> Result<(), EncodeError> {
    if !v.is_finite() {
        return Err(EncodeError(format!(
            "annotation {}: non-finite coordinate",
            a.id
        )));
    }
    write_finite(out, v);
    Ok(())
}

/// A confidence of `a` or of one of its attributes.
fn write_confidence(out: &mut Vec<u8>, a: &Annotation<'_>, v: f64) -> Result<(), EncodeError> {
    if !v.is_finite() {
        return Err(EncodeError(format!(
            "annotation {}: non-finite confidence",
            a.id
        )));
    }
    write_finite(out, v);
    Ok(())
}
