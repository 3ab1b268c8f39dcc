//! NDJSON: one task per line, compact JSON, in the task structure of seed 003
//! (`asset`, `externalId`, `metadata`, `batches`, `task` with `tools`,
//! `classifications`, `relations` and, on request, `stageHistory`).
//!
//! The JSON is written by hand straight into the output buffer, in a fixed key order,
//! with strings escaped exactly as `serde_json` escapes them and numbers formatted by
//! `itoa` and `ryu`: nothing is allocated per task except on error.
//!
//! A line, keys in this order (`?`: omitted when absent):
//!
//! ```text
//! {"asset", "externalId" (string or null), "metadata": {"width"?, "height"?, "frameCount"?},
//!  "batches": [..], "task": {"taskId", "state", "stage", "createdAt", "updatedAt"?,
//!  "updatedBy"?, "assignee"?, "totalDuration", "commentCount", "tools": [..],
//!  "classifications": [..], "relations": [..], "stageHistory"?: [..]}}
//! ```
//!
//! Tools are box, polygon, point, group and span annotations; classifications are
//! class, answer (`"tool": "text"`) and transcription annotations.

use crate::{ConfigError, EncodeError, Encoder, FieldToggles, Format};
use labelport_model::{Annotation, AnnotationKind, Attribute, Project, Relation, Submission, Task};

/// Writes one task per line in the structure of seed 003.
///
/// ```
/// use labelport_encoders::{build, FieldToggles, Format};
/// use labelport_model::{Project, Task};
///
/// let project: Project = serde_json::from_str(
///     r#"{"schemaVersion":1,"id":"p","name":"P","mode":"element","state":"running"}"#,
/// ).unwrap();
/// let fields = FieldToggles { annotation_metadata: true, ..FieldToggles::default() };
/// let encoder = build(Format::Ndjson, fields, &project).unwrap();
/// assert_eq!(encoder.extension(), "ndjson");
///
/// let line = r#"{"id":"t1","asset":{"url":"s3://b/1.jpg","width":640},"state":"validated",
///     "stage":"Complete","createdAt":"2024-01-01T00:00:00Z","durationMs":18069,
///     "submissions":[{"id":"s1","stage":"Label","origin":"human","completedAt":"x",
///     "annotations":[{"id":"a1","type":"point","label":"eye","points":[[1.5,2]],
///                     "createdBy":"ada@example.com"}]}]}"#;
/// let task: Task<'_> = serde_json::from_str(line).unwrap();
///
/// let mut out = Vec::new();
/// encoder.encode(&task, &mut out).unwrap();
/// assert_eq!(
///     String::from_utf8(out).unwrap(),
///     concat!(
///         r#"{"asset":"s3://b/1.jpg","externalId":null,"metadata":{"width":640},"batches":[],"#,
///         r#""task":{"taskId":"t1","state":"validated","stage":"Complete","#,
///         r#""createdAt":"2024-01-01T00:00:00Z","totalDuration":18069,"commentCount":0,"#,
///         r#""tools":[{"objectId":"a1","title":"eye","point":[1.5,2.0],"classifications":[],"#,
///         r#""metadata":{"createdBy":"ada@example.com"}}],"classifications":[],"relations":[]}}"#,
///         "\n"
///     )
/// );
/// ```
pub struct NdjsonEncoder {
    fields: FieldToggles,
}

impl NdjsonEncoder {
    /// Builds the encoder. NDJSON honours every field toggle, for every mode.
    pub fn new(fields: FieldToggles, _project: &Project) -> Result<Self, ConfigError> {
        Ok(NdjsonEncoder { fields })
    }

    /// Whether `a` is exported: with `onlyKeyFrames`, interpolated frames are not.
    fn keeps(&self, a: &Annotation<'_>) -> bool {
        !(self.fields.only_key_frames && a.key_frame == Some(false))
    }

    fn write_task(&self, task: &Task<'_>, out: &mut Vec<u8>) -> Result<(), EncodeError> {
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
        out.extend_from_slice(b"},\"batches\":[");
        for (i, batch) in task.batches.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_str(out, batch);
        }

        out.extend_from_slice(b"],\"task\":{\"taskId\":");
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
        out.extend_from_slice(b",\"totalDuration\":");
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
        out.extend_from_slice(b"}}\n");
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
        out.push(b',');
        self.write_annotations(out, &s.annotations, &s.relations)?;
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
        out.extend_from_slice(b"\"tools\":[");
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
                out.extend_from_slice(b",\"group\":[");
                for (i, member) in a.members.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_str(out, member);
                }
                out.push(b']');
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

impl Encoder for NdjsonEncoder {
    fn format(&self) -> Format {
        Format::Ndjson
    }

    fn extension(&self) -> &'static str {
        "ndjson"
    }

    fn content_type(&self) -> &'static str {
        "application/x-ndjson"
    }

    fn header(&self, _out: &mut Vec<u8>) {}

    fn encode(&self, task: &Task<'_>, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        let result = self.write_task(task, out);
        if result.is_err() {
            // Leave no half-written line behind.
            out.truncate(start);
        }
        result
    }

    fn footer(&self, _out: &mut Vec<u8>) {}
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

/// `"key":`, preceded by a comma unless it is the object's first key. `key` is a
/// constant that needs no escaping.
fn write_key(out: &mut Vec<u8>, first: &mut bool, key: &str) {
    if !std::mem::take(first) {
        out.push(b',');
    }
    out.push(b'"');
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
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

/// A finite float, formatted as `serde_json` formats it (shortest round-trip, `2.0`).
fn write_finite(out: &mut Vec<u8>, v: f64) {
    out.extend_from_slice(ryu::Buffer::new().format_finite(v).as_bytes());
}

/// A string or `null`.
fn write_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => write_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

/// How each byte is written inside a JSON string: 0 as is, else the letter of its
/// short escape (`n` for `\n`), or `u` for `\u00XX`. The same choices as serde_json.
const ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

/// A JSON string, quoted and escaped. Bytes of multi-byte UTF-8 sequences are never
/// escaped, so runs of unescaped bytes are copied whole.
fn write_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    out.push(b'"');
    let mut start = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        let escape = ESCAPE[byte as usize];
        if escape == 0 {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        if escape == b'u' {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(byte >> 4) as usize],
                HEX[(byte & 0xf) as usize],
            ]);
        } else {
            out.extend_from_slice(&[b'\\', escape]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn project() -> Project {
        serde_json::from_value(json!({
            "schemaVersion": 1, "id": "p1", "name": "P", "mode": "video", "state": "running"
        }))
        .unwrap()
    }

    fn encoder(
        annotation_metadata: bool,
        stage_history: bool,
        only_key_frames: bool,
    ) -> NdjsonEncoder {
        let fields = FieldToggles {
            annotation_metadata,
            stage_history,
            only_key_frames,
        };
        NdjsonEncoder::new(fields, &project()).unwrap()
    }

    fn encode_value(encoder: &NdjsonEncoder, task: &Value) -> String {
        let text = task.to_string();
        let task: Task<'_> = serde_json::from_str(&text).unwrap();
        let mut out = Vec::new();
        encoder.encode(&task, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// Parses one encoded line, checking it is exactly one compact line.
    fn parse_line(line: &str) -> Value {
        assert!(line.ends_with('\n'));
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        serde_json::from_str(line).unwrap()
    }

    fn minimal_task() -> Value {
        json!({
            "id": "t1", "asset": {"url": "s3://b/1.jpg"}, "state": "annotated",
            "stage": "Label", "createdAt": "2024-01-01T00:00:00Z"
        })
    }

    #[test]
    fn a_minimal_task_is_one_exact_line() {
        let got = encode_value(&encoder(false, false, false), &minimal_task());
        assert_eq!(
            got,
            concat!(
                r#"{"asset":"s3://b/1.jpg","externalId":null,"metadata":{},"batches":[],"#,
                r#""task":{"taskId":"t1","state":"annotated","stage":"Label","#,
                r#""createdAt":"2024-01-01T00:00:00Z","totalDuration":0,"commentCount":0,"#,
                r#""tools":[],"classifications":[],"relations":[]}}"#,
                "\n"
            )
        );
        // With the history toggle and no submission, the history is empty.
        let got = encode_value(&encoder(true, true, true), &minimal_task());
        assert!(
            got.ends_with("\"relations\":[],\"stageHistory\":[]}}\n"),
            "{got}"
        );
    }

    /// A video task with two submissions: a model's, then a person's.
    fn rich_task() -> Value {
        json!({
            "id": "t\"7", "state": "validated", "stage": "Complete",
            "asset": {"url": "https://x/v.mp4", "externalId": "ext-7", "width": 1920,
                      "height": 1080, "frameCount": 300, "text": "ignored"},
            "assignee": "ada@example.com", "createdAt": "2024-01-01T00:00:00Z",
            "updatedAt": "2024-01-02T00:00:00Z", "updatedBy": "bob@example.com",
            "durationMs": 18069, "commentCount": 3, "batches": ["b1", "b2"],
            "submissions": [
                {"id": "s0", "stage": "Prelabel", "origin": "machine", "model": "det-v2",
                 "completedAt": "2024-01-01T00:01:00Z", "durationMs": 0,
                 "annotations": [
                    {"id": "m1", "type": "box", "label": "car", "confidence": 0.5,
                     "bbox": {"x": 1.0, "y": 2.0, "width": 3.0, "height": 4.0},
                     "frame": 0, "keyFrame": false, "track": "tr1"}
                 ]},
                {"id": "s1", "stage": "Label", "origin": "human", "labeler": "ada@example.com",
                 "startedAt": "2024-01-01T00:02:00Z", "completedAt": "2024-01-01T00:03:00Z",
                 "durationMs": 18069,
                 "annotations": [
                    {"id": "b1", "type": "box", "label": "car",
                     "bbox": {"x": 559.1259640102828, "y": 370.25,
                              "width": 462.72493573264785, "height": 243.03492884864167},
                     "frame": 0, "keyFrame": true, "track": "tr1",
                     "attributes": [{"name": "occluded", "value": "no", "confidence": 0.9},
                                    {"name": "color", "value": "red"}],
                     "createdAt": 1686656626604i64, "createdBy": "ada@example.com",
                     "confidence": 1.0},
                    {"id": "b2", "type": "box", "label": "car",
                     "bbox": {"x": 560, "y": 371, "width": 462, "height": 243},
                     "frame": 1, "keyFrame": false, "track": "tr1"},
                    {"id": "c1", "type": "class", "label": "day"},
                    {"id": "g1", "type": "group", "label": "fleet", "members": ["b1", "b2"]}
                 ]}
            ]
        })
    }

    #[test]
    fn a_rich_task_has_the_exact_structure_and_key_order() {
        let got = encode_value(&encoder(false, false, false), &rich_task());
        let want = concat!(
            r#"{"asset":"https://x/v.mp4","externalId":"ext-7","#,
            r#""metadata":{"width":1920,"height":1080,"frameCount":300},"batches":["b1","b2"],"#,
            r#""task":{"taskId":"t\"7","state":"validated","stage":"Complete","#,
            r#""createdAt":"2024-01-01T00:00:00Z","updatedAt":"2024-01-02T00:00:00Z","#,
            r#""updatedBy":"bob@example.com","assignee":"ada@example.com","#,
            r#""totalDuration":18069,"commentCount":3,"tools":["#,
            r#"{"objectId":"b1","title":"car","bounding-box":{"x":559.1259640102828,"#,
            r#""y":370.25,"height":243.03492884864167,"width":462.72493573264785},"#,
            r#""frame":0,"keyFrame":true,"track":"tr1","classifications":["#,
            r#"{"title":"occluded","answer":"no","confidence":0.9},{"title":"color","answer":"red"}]},"#,
            r#"{"objectId":"b2","title":"car","bounding-box":{"x":560.0,"y":371.0,"height":243.0,"#,
            r#""width":462.0},"frame":1,"keyFrame":false,"track":"tr1","classifications":[]},"#,
            r#"{"objectId":"g1","title":"fleet","group":["b1","b2"],"classifications":[]}],"#,
            r#""classifications":[{"objectId":"c1","tool":"class","title":"day","answer":"day","#,
            r#""classifications":[]}],"relations":[]}}"#,
            "\n"
        );
        assert_eq!(got, want);
        // The same bytes serde_json would write for the parsed value (key order kept
        // by comparing text, number formatting by comparing values).
        let parsed = parse_line(&got);
        assert_eq!(
            parsed["task"]["tools"][0]["bounding-box"]["x"],
            json!(559.1259640102828)
        );
    }

    #[test]
    fn annotation_metadata_adds_an_object_to_every_annotation() {
        let got = encode_value(&encoder(true, false, false), &rich_task());
        let v = parse_line(&got);
        let tools = v["task"]["tools"].as_array().unwrap();
        assert_eq!(
            tools[0]["metadata"],
            json!({"createdAt": 1686656626604i64, "createdBy": "ada@example.com", "confidence": 1.0})
        );
        assert!(got.contains(
            r#""metadata":{"createdAt":1686656626604,"createdBy":"ada@example.com","confidence":1.0}}"#
        ));
        assert_eq!(tools[1]["metadata"], json!({}));
        assert_eq!(v["task"]["classifications"][0]["metadata"], json!({}));
        // Without the toggle there is none.
        let v = parse_line(&encode_value(&encoder(false, false, false), &rich_task()));
        assert!(v["task"]["tools"][0].get("metadata").is_none());
    }

    #[test]
    fn stage_history_lists_every_submission_oldest_first() {
        let got = encode_value(&encoder(false, true, false), &rich_task());
        let v = parse_line(&got);
        let history = v["task"]["stageHistory"].as_array().unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(
            history[0],
            json!({
                "stage": "Prelabel", "origin": "machine", "completedBy": "det-v2",
                "completedAt": "2024-01-01T00:01:00Z", "duration": 0,
                "tools": [{"objectId": "m1", "title": "car",
                           "bounding-box": {"x": 1.0, "y": 2.0, "height": 4.0, "width": 3.0},
                           "frame": 0, "keyFrame": false, "track": "tr1", "classifications": []}],
                "classifications": [], "relations": []
            })
        );
        assert!(got.contains(
            r#""stageHistory":[{"stage":"Prelabel","origin":"machine","completedBy":"det-v2","completedAt":"2024-01-01T00:01:00Z","duration":0,"tools":[{"objectId":"m1""#
        ));
        assert!(got.contains(
            r#"{"stage":"Label","origin":"human","completedBy":"ada@example.com","startedAt":"2024-01-01T00:02:00Z","completedAt":"2024-01-01T00:03:00Z","duration":18069,"tools":[{"objectId":"b1""#
        ));
        // The final submission's stage entry holds the task's current annotations.
        assert_eq!(history[1]["tools"], v["task"]["tools"]);
        assert_eq!(history[1]["classifications"], v["task"]["classifications"]);
        // A submission by neither a labeler nor a model has no completedBy.
        let mut task = rich_task();
        task["submissions"][0]["model"] = Value::Null;
        let v = parse_line(&encode_value(&encoder(false, true, false), &task));
        assert!(v["task"]["stageHistory"][0].get("completedBy").is_none());
        // Without the toggle there is no history.
        let v = parse_line(&encode_value(&encoder(false, false, false), &rich_task()));
        assert!(v["task"].get("stageHistory").is_none());
    }

    #[test]
    fn only_key_frames_drops_interpolated_frames_everywhere() {
        let v = parse_line(&encode_value(&encoder(false, true, true), &rich_task()));
        let ids = |tools: &Value| -> Vec<String> {
            tools
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["objectId"].as_str().unwrap().to_owned())
                .collect()
        };
        // b2 (keyFrame false) goes; g1 (no keyFrame) and b1 (true) stay.
        assert_eq!(ids(&v["task"]["tools"]), ["b1", "g1"]);
        assert_eq!(ids(&v["task"]["stageHistory"][1]["tools"]), ["b1", "g1"]);
        assert_eq!(v["task"]["stageHistory"][0]["tools"], json!([]));
        // Without the toggle, every frame is there.
        let v = parse_line(&encode_value(&encoder(false, true, false), &rich_task()));
        assert_eq!(ids(&v["task"]["tools"]), ["b1", "b2", "g1"]);
        assert_eq!(ids(&v["task"]["stageHistory"][0]["tools"]), ["m1"]);
    }

    #[test]
    fn every_geometry_and_classification_kind() {
        let mut task = minimal_task();
        task["submissions"] = json!([{
            "id": "s1", "stage": "Label", "origin": "human", "completedAt": "x",
            "annotations": [
                {"id": "p", "type": "polygon", "label": "roof", "points": [[0, 0], [1.5, 0], [1, -2.25]]},
                {"id": "q", "type": "point", "label": "eye", "points": [[3, 4]]},
                {"id": "s", "type": "span", "label": "PER", "start": 0, "end": 3, "text": "Ada"},
                {"id": "k", "type": "span", "label": "ORG", "tokenStart": 4, "tokenEnd": 6},
                {"id": "st", "type": "span", "label": "LOC", "start": 7, "end": 9,
                 "tokenStart": 2, "tokenEnd": 3},
                {"id": "f", "type": "answer", "field": "name", "text": "Ada\nLovelace"},
                {"id": "tr", "type": "transcription", "text": "Dear Sir", "element": "e2"},
                {"id": "tr2", "type": "transcription", "text": "yours"}
            ],
            "relations": [{"id": "r1", "label": "works_for", "from": "s", "to": "k"}]
        }]);
        let got = encode_value(&encoder(false, false, false), &task);
        let want = concat!(
            r#""tools":["#,
            r#"{"objectId":"p","title":"roof","polygon":[[0.0,0.0],[1.5,0.0],[1.0,-2.25]],"classifications":[]},"#,
            r#"{"objectId":"q","title":"eye","point":[3.0,4.0],"classifications":[]},"#,
            r#"{"objectId":"s","title":"PER","span":{"start":0,"end":3,"text":"Ada"},"classifications":[]},"#,
            r#"{"objectId":"k","title":"ORG","tokens":{"start":4,"end":6},"classifications":[]},"#,
            r#"{"objectId":"st","title":"LOC","span":{"start":7,"end":9},"tokens":{"start":2,"end":3},"classifications":[]}],"#,
            r#""classifications":["#,
            r#"{"objectId":"f","tool":"text","title":"name","answer":"Ada\nLovelace","classifications":[]},"#,
            r#"{"objectId":"tr","tool":"transcription","title":"transcription","answer":"Dear Sir","element":"e2","classifications":[]},"#,
            r#"{"objectId":"tr2","tool":"transcription","title":"transcription","answer":"yours","classifications":[]}],"#,
            r#""relations":[{"objectId":"r1","title":"works_for","from":"s","to":"k"}]}}"#,
            "\n"
        );
        assert!(got.ends_with(want), "{got}");
        parse_line(&got);
    }

    #[test]
    fn strings_are_escaped_exactly_like_serde_json() {
        let mut samples: Vec<String> = (0u8..0x80).map(|b| char::from(b).to_string()).collect();
        samples.extend(
            [
                "",
                "plain",
                "quote \" backslash \\ slash /",
                "tab\tnl\ncr\rbs\u{8}ff\u{c}nul\u{0}us\u{1f}del\u{7f}",
                "ünïcödé — ✓ 日本語 🦀",
                "\u{2028}\u{2029}",
            ]
            .map(str::to_owned),
        );
        for s in &samples {
            let mut out = Vec::new();
            write_str(&mut out, s);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(s).unwrap(),
                "{s:?}"
            );
        }
    }

    #[test]
    fn floats_are_shortest_round_trip_and_read_back_exactly() {
        let cases = [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (0.1, "0.1"),
            (-2.25, "-2.25"),
            (123456789.125, "123456789.125"),
            (1e-7, "1e-7"),
            // serde_json writes `1.5e+300`; both are JSON for the same number.
            (1.5e300, "1.5e300"),
            (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
        ];
        for (v, want) in cases {
            let mut out = Vec::new();
            write_finite(&mut out, v);
            let text = String::from_utf8(out).unwrap();
            assert_eq!(text, want);
            let back: f64 = serde_json::from_str(&text).unwrap();
            assert_eq!(back.to_bits(), v.to_bits(), "{text}");
        }
    }

    #[test]
    fn the_seed_box_is_written_digit_for_digit() {
        // Set in Rust: serde_json without `float_roundtrip` reads 370.33893919793013
        // one unit in the last place off, which is the reader's business, not ours.
        let mut task_json = minimal_task();
        task_json["submissions"] = json!([{
            "id": "s1", "stage": "Consensus_2", "origin": "human", "completedAt": "x",
            "annotations": [{"id": "46977649fb0d3fe07aaf604", "type": "box", "label": "BB",
                             "bbox": {"x": 0, "y": 0, "width": 0, "height": 0}}]
        }]);
        let text = task_json.to_string();
        let mut task: Task<'_> = serde_json::from_str(&text).unwrap();
        task.submissions[0].annotations[0].bbox = Some(labelport_model::BoundingBox {
            x: 559.1259640102828,
            y: 370.33893919793013,
            height: 243.03492884864167,
            width: 462.72493573264785,
        });
        let mut out = Vec::new();
        encoder(false, false, false)
            .encode(&task, &mut out)
            .unwrap();
        let got = String::from_utf8(out).unwrap();
        assert!(
            got.contains(concat!(
                r#""tools":[{"objectId":"46977649fb0d3fe07aaf604","title":"BB","#,
                r#""bounding-box":{"x":559.1259640102828,"y":370.33893919793013,"#,
                r#""height":243.03492884864167,"width":462.72493573264785},"classifications":[]}]"#
            )),
            "{got}"
        );
    }

    #[test]
    fn non_finite_geometry_is_an_error_and_leaves_the_buffer_untouched() {
        let anns = [
            json!({"id": "bx", "type": "box", "label": "car",
                   "bbox": {"x": 0, "y": 0, "width": 1, "height": 1}}),
            json!({"id": "pg", "type": "polygon", "label": "roof",
                   "points": [[0, 0], [1, 0], [1, 1]]}),
        ];
        let enc = encoder(false, false, false);
        for (ann, id) in anns.iter().zip(["bx", "pg"]) {
            let mut task_json = minimal_task();
            task_json["submissions"] = json!([{
                "id": "s1", "stage": "Label", "origin": "human", "completedAt": "x",
                "annotations": [ann]
            }]);
            let text = task_json.to_string();
            for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
                let mut task: Task<'_> = serde_json::from_str(&text).unwrap();
                let a = &mut task.submissions[0].annotations[0];
                match a.bbox.as_mut() {
                    Some(b) => b.height = bad,
                    None => a.points[2][1] = bad,
                }
                let mut out = b"previous line\n".to_vec();
                let err = enc.encode(&task, &mut out).unwrap_err();
                assert_eq!(err.0, format!("annotation {id}: non-finite coordinate"));
                assert_eq!(out, b"previous line\n");
            }
        }
        // A non-finite confidence, only written with metadata, is refused too.
        let mut task_json = minimal_task();
        task_json["submissions"] = json!([{
            "id": "s1", "stage": "Label", "origin": "human", "completedAt": "x",
            "annotations": [{"id": "c", "type": "class", "label": "day"}]
        }]);
        let text = task_json.to_string();
        let mut task: Task<'_> = serde_json::from_str(&text).unwrap();
        task.submissions[0].annotations[0].confidence = Some(f64::NAN);
        let mut out = Vec::new();
        assert!(encoder(false, false, false).encode(&task, &mut out).is_ok());
        let mut out = Vec::new();
        let err = encoder(true, false, false)
            .encode(&task, &mut out)
            .unwrap_err();
        assert_eq!(err.0, "annotation c: non-finite confidence");
        assert!(out.is_empty());
    }

    #[test]
    fn an_incomplete_annotation_is_an_error_naming_it() {
        let mut task = minimal_task();
        task["submissions"] = json!([{
            "id": "s1", "stage": "Label", "origin": "human", "completedAt": "x",
            "annotations": [{"id": "a9", "type": "box", "label": "car"}]
        }]);
        let text = task.to_string();
        let task: Task<'_> = serde_json::from_str(&text).unwrap();
        let err = encoder(false, false, false)
            .encode(&task, &mut Vec::new())
            .unwrap_err();
        assert_eq!(err.0, "annotation a9: a box needs `bbox`");
    }

    #[test]
    fn every_toggle_is_accepted_and_the_format_is_described() {
        for bits in 0..8u8 {
            let fields = FieldToggles {
                annotation_metadata: bits & 1 != 0,
                stage_history: bits & 2 != 0,
                only_key_frames: bits & 4 != 0,
            };
            let enc = crate::build(Format::Ndjson, fields, &project()).unwrap();
            assert_eq!(enc.format(), Format::Ndjson);
            assert_eq!(enc.extension(), "ndjson");
            assert_eq!(enc.content_type(), "application/x-ndjson");
            let mut out = Vec::new();
            enc.header(&mut out);
            enc.footer(&mut out);
            assert!(out.is_empty());
        }
    }

    #[test]
    fn lines_append_to_the_buffer() {
        let enc = encoder(true, true, false);
        let text = rich_task().to_string();
        let task: Task<'_> = serde_json::from_str(&text).unwrap();
        let mut out = Vec::new();
        for _ in 0..3 {
            enc.encode(&task, &mut out).unwrap();
        }
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines.iter().all(|l| *l == lines[0]));
        let v: Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(v["task"]["taskId"], "t\"7");
    }

    /// Rough throughput: `cargo test --release -p labelport-encoders -- --ignored --nocapture`.
    #[test]
    #[ignore = "throughput measurement, run with --release --ignored --nocapture"]
    fn throughput() {
        let text = rich_task().to_string();
        let task: Task<'_> = serde_json::from_str(&text).unwrap();
        let encoders: [(&str, Box<dyn Encoder>); 3] = [
            ("ndjson", Box::new(encoder(false, false, false))),
            ("ndjson+meta+history", Box::new(encoder(true, true, false))),
            (
                "csv(video)",
                Box::new(crate::csv::CsvEncoder::new(FieldToggles::default(), &project()).unwrap()),
            ),
        ];
        for (name, enc) in encoders {
            let mut out = Vec::with_capacity(1 << 20);
            let n = 2_000_000u32;
            let mut bytes = 0usize;
            let started = std::time::Instant::now();
            for _ in 0..n {
                out.clear();
                enc.encode(&task, &mut out).unwrap();
                bytes += out.len();
            }
            let secs = started.elapsed().as_secs_f64();
            println!(
                "{name}: {:.2} M tasks/s, {:.0} MB/s ({} bytes/task)",
                f64::from(n) / secs / 1e6,
                bytes as f64 / secs / 1e6,
                bytes / n as usize
            );
        }
    }
}
