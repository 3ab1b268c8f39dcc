//! The generated project as Label Studio would export it: its labeling config and a
//! JSON export (one array) of its finished tasks, so that reading another tool's export
//! is tested and measured on the same data as everything else.
//!
//! - Finished tasks only (annotated or validated, in `Complete`, not previews), as a
//!   project's export of done work holds: each human submission an annotation (the
//!   last one is the task's state; `ground_truth` for a validated task), each machine
//!   submission a prediction.
//! - Boxes, polygons and points become `rectanglelabels`, `polygonlabels` and
//!   `keypointlabels` in percent of the image, rotation kept; attributes per-region
//!   `choices`; spans `labels` with UTF-16 offsets, as Label Studio counts; classes
//!   `choices`; relations `relation` results.

use crate::vocabulary::COLORS;
use crate::{task, Config};
use labelport_model::{Annotation, AnnotationKind, Mode, Origin, Task, TaskState};
use serde_json::{json, Value};
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Modes the export is written for.
pub const MODES: [Mode; 4] = [
    Mode::Element,
    Mode::Entity,
    Mode::Classification,
    Mode::Document,
];

/// The labeling config of a generated project of `config.mode`, or `None` for a mode
/// without one here.
pub fn config_xml(config: &Config) -> Option<String> {
    let project = crate::project(config);
    let labels = |tag: &str| -> String {
        project
            .labels
            .classes
            .iter()
            .map(|c| format!("<{tag} value=\"{}\"/>", xml_attribute(c)))
            .collect::<Vec<_>>()
            .join("")
    };
    // Label Studio's converter wants each keypoint label's place in a model's output.
    let keypoints: String = project
        .labels
        .classes
        .iter()
        .enumerate()
        .map(|(i, c)| {
            format!(
                "<Label value=\"{}\" model_index=\"{i}\"/>",
                xml_attribute(c)
            )
        })
        .collect();
    let attributes: String = project
        .labels
        .attributes
        .iter()
        .map(|a| {
            let values = if a == "color" {
                COLORS
            } else {
                &["yes", "no"][..]
            };
            let choices: String = values
                .iter()
                .map(|v| format!("<Choice value=\"{}\"/>", xml_attribute(v)))
                .collect();
            format!(
                "  <Choices name=\"{}\" toName=\"image\" perRegion=\"true\">{choices}</Choices>\n",
                xml_attribute(a)
            )
        })
        .collect();
    Some(match config.mode {
        Mode::Element => format!(
            "<View>\n  <Image name=\"image\" value=\"$image\"/>\n  <RectangleLabels name=\"box\" toName=\"image\">{}</RectangleLabels>\n  <PolygonLabels name=\"polygon\" toName=\"image\">{}</PolygonLabels>\n  <KeyPointLabels name=\"point\" toName=\"image\">{}</KeyPointLabels>\n{attributes}</View>\n",
            labels("Label"),
            labels("Label"),
            keypoints,
        ),
        Mode::Entity => {
            let relations: String = project
                .labels
                .relations
                .iter()
                .map(|r| format!("<Relation value=\"{}\"/>", xml_attribute(r)))
                .collect();
            format!(
                "<View>\n  <Relations>{relations}</Relations>\n  <Labels name=\"label\" toName=\"text\">{}</Labels>\n  <Text name=\"text\" value=\"$text\"/>\n</View>\n",
                labels("Label")
            )
        }
        Mode::Classification => format!(
            "<View>\n  <Image name=\"image\" value=\"$image\"/>\n  <Choices name=\"class\" toName=\"image\" choice=\"multiple\">{}</Choices>\n</View>\n",
            labels("Choice")
        ),
        Mode::Document => format!(
            "<View>\n  <Text name=\"text\" value=\"$text\"/>\n  <Choices name=\"class\" toName=\"text\" choice=\"multiple\">{}</Choices>\n</View>\n",
            labels("Choice")
        ),
        _ => return None,
    })
}

fn xml_attribute(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Whether Label Studio's export of done work holds the task.
pub fn is_finished(task: &Task<'_>) -> bool {
    !task.preview
        && matches!(task.state, TaskState::Annotated | TaskState::Validated)
        && task.stage == "Complete"
}

/// Annotation `a` as Label Studio holds it: its editor keeps shapes inside the image,
/// so a box or polygon past an edge is cut at it (a box's corner, a polygon's points),
/// and one wholly outside does not exist (`None`).
pub fn as_label_studio_holds<'a>(
    a: &Annotation<'a>,
    width: f64,
    height: f64,
) -> Option<Annotation<'a>> {
    let mut a = a.clone();
    match a.kind {
        AnnotationKind::Box => {
            let b = a.bbox.as_mut()?;
            if !b.rotation.is_some_and(|r| r != 0.0) {
                let (x1, y1) = ((b.x + b.width).min(width), (b.y + b.height).min(height));
                b.x = b.x.clamp(0.0, width);
                b.y = b.y.clamp(0.0, height);
                (b.width, b.height) = (x1 - b.x, y1 - b.y);
                if b.width <= 0.0 || b.height <= 0.0 {
                    return None;
                }
            }
        }
        AnnotationKind::Polygon | AnnotationKind::Point => {
            for p in &mut a.points {
                *p = [p[0].clamp(0.0, width), p[1].clamp(0.0, height)];
            }
        }
        _ => {}
    }
    Some(a)
}

/// The task as a Label Studio export's element.
pub fn task_json(config: &Config, task: &Task<'_>) -> Value {
    let data = match config.mode {
        Mode::Entity | Mode::Document => json!({"text": task.asset.text.as_deref().unwrap_or("")}),
        _ => json!({"image": task.asset.url}),
    };
    let (w, h) = (
        f64::from(task.asset.width.unwrap_or(0)),
        f64::from(task.asset.height.unwrap_or(0)),
    );
    let text = task.asset.text.as_deref().unwrap_or("");
    let mut annotations = Vec::new();
    let mut predictions = Vec::new();
    let humans = task
        .submissions
        .iter()
        .filter(|s| s.origin == Origin::Human)
        .count();
    let mut human = 0;
    for (k, submission) in task.submissions.iter().enumerate() {
        let mut results = Vec::new();
        for a in &submission.annotations {
            let Some(a) = as_label_studio_holds(a, w, h) else {
                continue;
            };
            let a = &a;
            let region = |kind: &str, value: Value| {
                json!({"id": a.id, "type": kind, "from_name": from_name(kind), "to_name": if config.mode == Mode::Entity { "text" } else { "image" },
                       "original_width": task.asset.width, "original_height": task.asset.height, "image_rotation": 0, "value": value})
            };
            let label = a.label.as_deref().unwrap_or("");
            let percent = |v: f64, of: f64| v / of * 100.0;
            let result = match a.kind {
                AnnotationKind::Box => {
                    let Some(b) = a.bbox else { continue };
                    region(
                        "rectanglelabels",
                        json!({"x": percent(b.x, w), "y": percent(b.y, h),
                        "width": percent(b.width, w), "height": percent(b.height, h),
                        "rotation": b.rotation.unwrap_or(0.0), "rectanglelabels": [label]}),
                    )
                }
                AnnotationKind::Polygon => region(
                    "polygonlabels",
                    json!({"points": a.points.iter().map(|[x, y]| [percent(*x, w), percent(*y, h)]).collect::<Vec<_>>(),
                           "closed": true, "polygonlabels": [label]}),
                ),
                AnnotationKind::Point => {
                    let [x, y] = a.points[0];
                    region(
                        "keypointlabels",
                        json!({"x": percent(x, w), "y": percent(y, h), "width": 0.5, "keypointlabels": [label]}),
                    )
                }
                AnnotationKind::Span => {
                    let (Some(s), Some(e)) = (a.start, a.end) else {
                        continue;
                    };
                    let units = |chars: u32| {
                        text.chars()
                            .take(chars as usize)
                            .map(char::len_utf16)
                            .sum::<usize>()
                    };
                    json!({"id": a.id, "type": "labels", "from_name": "label", "to_name": "text",
                           "value": {"start": units(s), "end": units(e), "text": a.text, "labels": [label]}})
                }
                AnnotationKind::Class => {
                    json!({"id": a.id, "type": "choices", "from_name": "class",
                    "to_name": if config.mode == Mode::Document { "text" } else { "image" }, "value": {"choices": [label]}})
                }
                _ => continue,
            };
            results.push(result);
            for attribute in &a.attributes {
                results.push(json!({"id": a.id, "type": "choices", "from_name": attribute.name, "to_name": "image",
                    "value": {"choices": [attribute.value]}}));
            }
        }
        for r in &submission.relations {
            results.push(json!({"type": "relation", "from_id": r.from, "to_id": r.to, "direction": "right", "labels": [r.label]}));
        }
        if submission.origin == Origin::Machine {
            predictions.push(json!({"id": k + 1, "model_version": submission.model, "created_at": submission.completed_at, "result": results}));
        } else {
            human += 1;
            annotations.push(json!({
                "id": k + 1, "completed_by": {"id": k + 1, "email": submission.labeler},
                "was_cancelled": false, "ground_truth": task.state == TaskState::Validated && human == humans,
                "created_at": submission.started_at, "updated_at": submission.completed_at,
                "lead_time": submission.duration_ms as f64 / 1000.0, "result": results,
            }));
        }
    }
    json!({"id": task.id, "data": data, "annotations": annotations, "predictions": predictions,
           "created_at": task.created_at, "updated_at": task.updated_at})
}

fn from_name(kind: &str) -> &'static str {
    match kind {
        "rectanglelabels" => "box",
        "polygonlabels" => "polygon",
        _ => "point",
    }
}

/// Writes `{root}/label-studio/{project}.json` (the export, one task per line inside one
/// array, as Label Studio's is read back) and `{project}.xml` (the config); returns
/// their paths and the number of tasks.
pub fn write_export(config: &Config, root: &Path) -> io::Result<(PathBuf, PathBuf, u64)> {
    let xml = config_xml(config).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "no Label Studio export is generated for {} projects",
                config.mode
            ),
        )
    })?;
    let dir = root.join("label-studio");
    fs::create_dir_all(&dir)?;
    let config_path = dir.join(format!("{}.xml", config.project_id));
    fs::write(&config_path, xml)?;
    let export_path = dir.join(format!("{}.json", config.project_id));
    let mut out = BufWriter::with_capacity(256 * 1024, File::create(&export_path)?);
    out.write_all(b"[")?;
    let mut written = 0u64;
    for i in 0..config.tasks {
        let task = task(config, i);
        if !is_finished(&task) {
            continue;
        }
        out.write_all(if written == 0 { b"\n" } else { b",\n" })?;
        serde_json::to_writer(&mut out, &task_json(config, &task)).map_err(io::Error::other)?;
        written += 1;
    }
    out.write_all(b"\n]\n")?;
    out.flush()?;
    Ok((export_path, config_path, written))
}
