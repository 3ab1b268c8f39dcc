//! What LONG_CSV and WIDE_CSV share: a task's assessments, and the columns that say
//! whose each row is.
//!
//! An assessment is one submission on the task's file: a model's pre-labels, a
//! labeler's work, a reviewer's correction. `"assessments": "all"` (the default) exports
//! every one; `"latest"` only the most recent per task by `completedAt`, whoever made
//! it. So a human review after a machine pass wins, and a machine pass rerun after the
//! review wins over it.
//!
//! Every row starts with `task_id, external_id, data_source, assessment_id, origin,
//! assessor, stage, assessed_at, entity_id, label`. The entity is one annotation; an
//! assessment that found nothing still has one row, with the entity columns empty, so
//! every assessed file is listed.

use crate::json_text::write_finite;
use crate::tabular::TableStyle;
use crate::{ConfigError, FormatOption, Settings};
use labelport_model::{Annotation, AnnotationKind, Submission, Task};
use serde::Deserialize;

/// `assessments`: every assessment, or only the latest of each task.
pub static ASSESSMENTS: FormatOption = FormatOption {
    key: "assessments",
    schema: <Assessments as utoipa::PartialSchema>::schema,
};

/// Which assessments an export holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Assessments {
    /// Every assessment of every task.
    #[default]
    All,
    /// The most recent assessment of each task, human or machine.
    Latest,
}

impl Assessments {
    /// The request's choice.
    pub fn from_settings(settings: &Settings<'_>) -> Result<Self, ConfigError> {
        Ok(settings.options.get("assessments")?.unwrap_or_default())
    }

    /// The assessments of `task` to export, oldest first.
    pub fn of<'t, 'a>(self, task: &'t Task<'a>) -> &'t [Submission<'a>] {
        let all = task.submissions.as_slice();
        match self {
            Assessments::All => all,
            Assessments::Latest => {
                let latest = latest(all);
                latest.map_or(&[], |i| &all[i..=i])
            }
        }
    }
}

/// The index of the most recent submission by `completedAt`; a tie, or a time that
/// does not parse, goes to the later one in the record.
fn latest(submissions: &[Submission<'_>]) -> Option<usize> {
    let time = |s: &Submission<'_>| {
        chrono::DateTime::parse_from_rfc3339(&s.completed_at)
            .map(|t| t.timestamp_nanos_opt().unwrap_or(i64::MAX))
            .unwrap_or(i64::MIN)
    };
    let mut best: Option<(usize, i64)> = None;
    for (i, submission) in submissions.iter().enumerate() {
        let at = time(submission);
        if best.is_none_or(|(_, b)| at >= b) {
            best = Some((i, at));
        }
    }
    best.map(|(i, _)| i)
}

/// The columns every assessment row starts with.
pub const LEAD_COLUMNS: [&str; 10] = [
    "task_id",
    "external_id",
    "data_source",
    "assessment_id",
    "origin",
    "assessor",
    "stage",
    "assessed_at",
    "entity_id",
    "label",
];

/// The lead cells of an assessment's rows, written once and copied into each row.
pub struct Lead {
    assessment: std::ops::Range<usize>,
}

impl Lead {
    /// Starts the first row of `submission` on `task` in `out`: its assessment's cells.
    pub fn begin(
        style: &TableStyle,
        out: &mut Vec<u8>,
        task: &Task<'_>,
        submission: &Submission<'_>,
    ) -> Lead {
        let start = out.len();
        write_assessment(style, out, task, submission);
        Lead {
            assessment: start..out.len(),
        }
    }

    /// Starts another row of the same assessment: a copy of its cells, no re-escaping.
    pub fn again(&self, out: &mut Vec<u8>) {
        out.extend_from_within(self.assessment.clone());
    }
}

/// Writes the entity cells after an assessment's: `,entity_id,label` (both empty when
/// the assessment found nothing).
pub fn write_entity(style: &TableStyle, out: &mut Vec<u8>, annotation: Option<&Annotation<'_>>) {
    style.next(out);
    if let Some(a) = annotation {
        style.text(out, &a.id);
        style.next(out);
        style.text(out, a.label.as_deref().unwrap_or(""));
    } else {
        style.next(out);
    }
}

/// Writes the assessment's cells: `task_id` to `assessed_at`.
fn write_assessment(
    style: &TableStyle,
    out: &mut Vec<u8>,
    task: &Task<'_>,
    submission: &Submission<'_>,
) {
    style.text(out, &task.id);
    style.next(out);
    style.text(out, task.asset.external_id.as_deref().unwrap_or(""));
    style.next(out);
    style.text(out, task.asset.data_source.as_deref().unwrap_or(""));
    style.next(out);
    style.text(out, &submission.id);
    style.next(out);
    out.extend_from_slice(match submission.origin {
        labelport_model::Origin::Human => b"human",
        labelport_model::Origin::Machine => b"machine",
    });
    style.next(out);
    let assessor = submission
        .labeler
        .as_deref()
        .or(submission.model.as_deref())
        .unwrap_or("");
    style.text(out, assessor);
    style.next(out);
    style.text(out, &submission.stage);
    style.next(out);
    style.timestamp(out, &submission.completed_at);
}

/// Whether an assessment table has a place for an annotation of `kind`: a region
/// (box, polygon, point) or a class for the whole file.
pub fn fits(kind: AnnotationKind) -> bool {
    kind.is_element() || kind == AnnotationKind::Class
}

/// Writes an annotation's location as one CSV cell holding JSON,
/// `{"type":"box","x":..,"y":..,"width":..,"height":..}` or
/// `{"type":"polygon","points":[[x,y],...]}`; nothing for a class. The cell is always
/// quoted (the JSON has commas and quotes, doubled here), so no buffer is needed.
pub fn write_location(out: &mut Vec<u8>, annotation: &Annotation<'_>) {
    let kind = annotation.kind;
    if !kind.is_element() {
        return;
    }
    out.extend_from_slice(b"\"{\"\"type\"\":\"\"");
    out.extend_from_slice(kind.as_str().as_bytes());
    out.extend_from_slice(b"\"\"");
    if let Some(b) = annotation.bbox.filter(|_| kind == AnnotationKind::Box) {
        let rotation = b.rotation.map(|r| ("rotation", r));
        for (key, value) in [
            ("x", b.x),
            ("y", b.y),
            ("width", b.width),
            ("height", b.height),
        ]
        .into_iter()
        .chain(rotation)
        {
            out.extend_from_slice(b",\"\"");
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(b"\"\":");
            write_finite(out, value);
        }
    } else {
        out.extend_from_slice(b",\"\"points\"\":[");
        for (i, [x, y]) in annotation.points.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'[');
            write_finite(out, *x);
            out.push(b',');
            write_finite(out, *y);
            out.push(b']');
        }
        out.push(b']');
    }
    out.extend_from_slice(b"}\"");
}

/// Writes a confidence, or nothing.
pub fn write_confidence(out: &mut Vec<u8>, confidence: Option<f64>) {
    if let Some(c) = confidence.filter(|c| c.is_finite()) {
        write_finite(out, c);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn task(times: &[(&str, &str)]) -> String {
        let submissions: Vec<serde_json::Value> = times
            .iter()
            .map(|(id, at)| serde_json::json!({"id": id, "stage": "S", "origin": "human", "completedAt": at}))
            .collect();
        serde_json::json!({
            "id": "t", "asset": {"url": "u"}, "state": "validated", "stage": "Complete",
            "createdAt": "x", "submissions": submissions,
        })
        .to_string()
    }

    fn kept(assessments: Assessments, times: &[(&str, &str)]) -> Vec<String> {
        let text = task(times);
        let task: Task<'_> = serde_json::from_str(&text).unwrap();
        assessments
            .of(&task)
            .iter()
            .map(|s| s.id.to_string())
            .collect()
    }

    fn latest_id(times: &[(&str, &str)]) -> Option<String> {
        kept(Assessments::Latest, times).pop()
    }

    #[test]
    fn the_latest_assessment_is_the_most_recent_whoever_made_it() {
        let machine_then_human = [("m", "2024-01-01T00:00:00Z"), ("h", "2024-01-02T00:00:00Z")];
        assert_eq!(latest_id(&machine_then_human).as_deref(), Some("h"));
        // Recorded out of order, or with offsets: time decides, not the position.
        let human_then_machine = [
            ("m", "2024-01-03T00:00:00+03:00"),
            ("h", "2024-01-02T20:00:00Z"),
        ];
        assert_eq!(latest_id(&human_then_machine).as_deref(), Some("m"));
        assert_eq!(
            latest_id(&[("a", "2024-01-01T00:00:00Z"), ("b", "2024-01-01T00:00:00Z")]).as_deref(),
            Some("b"),
            "a tie goes to the later record"
        );
        assert_eq!(latest_id(&[]), None);
        assert_eq!(kept(Assessments::All, &machine_then_human), ["m", "h"]);
    }

    #[test]
    fn locations_are_json_in_one_quoted_cell() {
        let a: Annotation<'_> = serde_json::from_str(
            r#"{"id":"a","type":"box","label":"car","bbox":{"x":1.5,"y":2,"width":3,"height":4}}"#,
        )
        .unwrap();
        let mut cell = Vec::new();
        write_location(&mut cell, &a);
        let line = [cell.as_slice(), b",end\n"].concat();
        let mut reader = ::csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(line.as_slice());
        let record = reader.records().next().unwrap().unwrap();
        let json: serde_json::Value = serde_json::from_str(&record[0]).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "box", "x": 1.5, "y": 2.0, "width": 3.0, "height": 4.0})
        );
        let p: Annotation<'_> = serde_json::from_str(
            r#"{"id":"p","type":"polygon","label":"x","points":[[0,0],[1,0.5],[1,1]]}"#,
        )
        .unwrap();
        let mut cell = Vec::new();
        write_location(&mut cell, &p);
        let text = String::from_utf8(cell).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&text[1..text.len() - 1].replace("\"\"", "\"")).unwrap();
        assert_eq!(
            json["points"],
            serde_json::json!([[0.0, 0.0], [1.0, 0.5], [1.0, 1.0]])
        );
    }
}
