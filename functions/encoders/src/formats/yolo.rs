//! YOLO: the Ultralytics dataset layout (docs.ultralytics.com/datasets/detect), a ZIP
//! of label files and the class list:
//!
//! ```text
//! labels/train/{image}.txt   one object per line: `class cx cy w h` (detect), or
//! labels/val/{image}.txt     `class x1 y1 x2 y2 ...` (`"yolo": {"task": "segment"}`),
//!                            coordinates normalised to 0..1, six decimals
//! data.yaml                  names: {0: car, ..} in class order, nc, and the train and
//!                            val image folders (images/train, images/val)
//! classes.txt                the same names, one per line (darknet's obj.names)
//! ```
//!
//! - Each task's images go to train or val by a hash of the seed and the task id
//!   (`"yolo": {"val": 0.1, "seed": 0}`, the defaults): deterministic, the same in every
//!   export and on every core, and a video's frames stay together, so no scene is in
//!   both. `"val": 0` puts everything in train, and data.yaml's val names it too.
//!
//! - Every image gets a label file, an empty one when it has no objects, so a
//!   negative sample stays a negative sample. Image names follow `crate::vision`.
//! - Class indices are the label schema's order from 0 (or its `classIds`, which must
//!   then run from 0 without a gap).
//! - `"compat": "label-studio"`: Label Studio's converter's class indices (by name),
//!   label files named by the image's own file name, and its `notes.json`.
//! - Detect: a box is clipped to its image; a rotated box becomes the box enclosing
//!   its clipped outline. A polygon needs `segment`, and goes to the errors report
//!   without it.
//! - Segment: every shape is its clipped outline, a box its four corners.
//! - A point, a shape outside its image and anything that is no shape go to the
//!   errors report; groups, relations and attributes, which YOLO has no place for,
//!   are counted there.

use crate::vision::{for_each_image, write_unit, Classes, ImageNames, Numbering, Reasons};
use crate::{
    Compat, Container, EncodeError, Encoder, FormatOption, FormatSpec, Out, Record, COMPAT,
};
use labelport_model::{AnnotationKind, Mode, TaskState};
use serde::Deserialize;

/// `yolo`: which YOLO task the labels are for.
pub static YOLO: FormatOption = FormatOption {
    key: "yolo",
    schema: <YoloOptions as utoipa::PartialSchema>::schema,
};

/// YOLO's options.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct YoloOptions {
    /// `detect` (boxes, the default) or `segment` (outlines: polygons, and boxes as
    /// their corners).
    #[serde(default)]
    #[schema(inline)]
    pub task: YoloTask,
    /// The share of tasks whose images go to val (the rest to train), at least 0 and
    /// below 1; by default 0.1 (said here, not as a schema default: generators make a
    /// property with one required).
    #[serde(default = "default_val")]
    #[schema(minimum = 0.0, exclusive_maximum = 1.0)]
    pub val: f64,
    /// Another seed draws another split of the same share. Default 0.
    #[serde(default)]
    pub seed: u64,
}

fn default_val() -> f64 {
    0.1
}

impl Default for YoloOptions {
    fn default() -> Self {
        YoloOptions {
            task: YoloTask::default(),
            val: default_val(),
            seed: 0,
        }
    }
}

/// Where a task's images go: val when the task's place in `[0, 1)`, a hash of the seed
/// and its id, is below the val share. FNV-1a, then MurmurHash3's finaliser so that ids
/// differing in their last character spread over the whole range: stable across
/// builds and platforms, unlike the standard library's hasher.
fn in_val(task_id: &str, seed: u64, val: f64) -> bool {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in seed.to_le_bytes().iter().chain(task_id.as_bytes()) {
        hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^= hash >> 33;
    // The top 53 bits, as a double in [0, 1).
    ((hash >> 11) as f64 / (1u64 << 53) as f64) < val
}

/// The YOLO task the labels are for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum YoloTask {
    /// `class cx cy w h`.
    #[default]
    Detect,
    /// `class x1 y1 x2 y2 ...`.
    Segment,
}

/// The Ultralytics YOLO layout.
pub static FORMAT: FormatSpec = FormatSpec {
    name: "YOLO",
    summary: "image projects: a ZIP of Ultralytics YOLO label files (labels/{image}.txt, boxes or, with \"yolo\": {\"task\": \"segment\"}, outlines) and data.yaml",
    modes: Some(&[Mode::Element, Mode::ElementGroup, Mode::Video]),
    default_states: Some(&[TaskState::Annotated, TaskState::Validated]),
    allowed_states: None,
    default_stages: Some(&["Complete"]),
    options: &[&YOLO, &COMPAT],
    build: |settings| {
        let fields = settings.fields;
        fields.refuse_all_but_key_frames(FORMAT.name)?;
        let options: YoloOptions = settings.options.get("yolo")?.unwrap_or_default();
        if !(0.0..1.0).contains(&options.val) {
            return Err(crate::ConfigError::new(
                "yolo.val",
                "must be at least 0 and below 1: the share of tasks whose images go to val",
            ));
        }
        let compat = Compat::of(settings.options)?;
        let numbering = if compat.is_some() { Numbering::ByName } else { Numbering::Schema };
        Ok(Box::new(Yolo {
            classes: Classes::new(settings.project, FORMAT.name, 0, true, numbering)?,
            names: ImageNames::for_compat(compat),
            notes: compat.is_some(),
            segment: options.task == YoloTask::Segment,
            // Label Studio's converter writes one flat folder; compat keeps it.
            split: compat.is_none().then_some((options.val, options.seed)),
            mode: settings.project.mode,
            only_key_frames: fields.only_key_frames,
        }))
    },
};

const REASONS: Reasons = Reasons {
    groups: "groups: YOLO has no place for a group of annotations",
    relations: "relations: YOLO has no place for a relation between annotations",
    no_size: "YOLO normalises coordinates by the image's width and height, and the task has none",
    not_a_shape: "YOLO holds boxes and outlines on an image; this annotation is neither",
    point: "a point has no place in YOLO detection or segmentation labels",
    no_frame: "a video annotation without a frame has no image in YOLO",
};

const ATTRIBUTES: &str =
    "attributes: YOLO label files have no place for attributes; these annotations' attributes are not in them";
const POLYGON_IN_DETECT: &str =
    "a polygon has no place in YOLO detection labels; ask for \"yolo\": {\"task\": \"segment\"}";

/// Writes one label file per image, and the class list.
pub struct Yolo {
    classes: Classes,
    names: ImageNames,
    /// Label Studio's `notes.json` (the categories) beside data.yaml.
    notes: bool,
    segment: bool,
    /// The val share and the seed; `None`: one flat `labels/` folder.
    split: Option<(f64, u64)>,
    mode: Mode,
    only_key_frames: bool,
}

impl Encoder for Yolo {
    fn container(&self) -> Container {
        Container::Zip
    }

    fn encode(&self, record: &Record<'_, '_>, out: &mut Out) -> Result<(), EncodeError> {
        let folder = match self.split {
            None => "labels/",
            Some((val, seed)) if in_val(&record.task.id, seed, val) => "labels/val/",
            Some(_) => "labels/train/",
        };
        for_each_image(
            record,
            self.mode,
            self.only_key_frames,
            &self.names,
            &REASONS,
            out,
            |image, annotations, geometry, out| {
                out.entry_of(&[folder, image.stem, ".txt"]);
                let (w, h) = (f64::from(image.width), f64::from(image.height));
                for a in annotations {
                    let Some(class) = self.classes.id(a.label.as_deref().unwrap_or("")) else {
                        out.refuse(
                            &a.id,
                            "its label is not a class of the project's label schema",
                        );
                        continue;
                    };
                    if a.kind == AnnotationKind::Polygon && !self.segment {
                        out.refuse(&a.id, POLYGON_IN_DETECT);
                        continue;
                    }
                    let Some(region) = geometry.shape(a, image, &REASONS, out) else {
                        continue;
                    };
                    if !a.attributes.is_empty() {
                        out.omit(ATTRIBUTES);
                    }
                    let line = out.open_entry();
                    crate::json_text::write_int(line, class);
                    if self.segment {
                        for [x, y] in region.outline {
                            line.push(b' ');
                            write_unit(line, x / w);
                            line.push(b' ');
                            write_unit(line, y / h);
                        }
                    } else {
                        let [x0, y0, x1, y1] = region.bounds;
                        for v in [
                            (x0 + x1) / 2.0 / w,
                            (y0 + y1) / 2.0 / h,
                            (x1 - x0) / w,
                            (y1 - y0) / h,
                        ] {
                            line.push(b' ');
                            write_unit(line, v);
                        }
                    }
                    line.push(b'\n');
                }
            },
        );
        Ok(())
    }

    fn closing_entries(&self, out: &mut Out) {
        let yaml = out.entry("data.yaml");
        yaml.extend_from_slice(match self.split {
            None => {
                b"# A YOLO dataset written by labelport: labels/{image}.txt, one object per line.\n\
                  # Put each image in images/, named as its label file (labels/t-1.txt: images/t-1.jpg).\n\
                  path: .\ntrain: images\nval: images\nnc: "
            }
            Some((0.0, _)) => {
                b"# A YOLO dataset written by labelport: labels/train/{image}.txt, one object per line.\n\
                  # Put each image in images/train, named as its label file (labels/train/t-1.txt:\n\
                  # images/train/t-1.jpg). No val share was asked for: val is train.\n\
                  path: .\ntrain: images/train\nval: images/train\nnc: "
            }
            Some(_) => {
                b"# A YOLO dataset written by labelport: labels/{train,val}/{image}.txt, one object per line.\n\
                  # Put each image beside its split, named as its label file (labels/val/t-1.txt:\n\
                  # images/val/t-1.jpg).\n\
                  path: .\ntrain: images/train\nval: images/val\nnc: "
            }
        });
        crate::json_text::write_int(yaml, self.classes.listed().count());
        yaml.extend_from_slice(b"\nnames:\n");
        for (id, name) in self.classes.listed() {
            yaml.extend_from_slice(b"  ");
            crate::json_text::write_int(yaml, id);
            // A JSON string is a YAML double-quoted scalar.
            yaml.extend_from_slice(b": ");
            crate::json_text::write_str(yaml, name);
            yaml.push(b'\n');
        }
        let names = out.entry("classes.txt");
        for (_, name) in self.classes.listed() {
            names.extend(
                name.bytes()
                    .map(|b| if b == b'\n' || b == b'\r' { b' ' } else { b }),
            );
            names.push(b'\n');
        }
        if self.notes {
            let notes = out.entry("notes.json");
            notes.extend_from_slice(b"{\"categories\":[");
            for (i, (id, name)) in self.classes.listed().enumerate() {
                if i > 0 {
                    notes.push(b',');
                }
                notes.extend_from_slice(b"{\"id\":");
                crate::json_text::write_int(notes, id);
                notes.extend_from_slice(b",\"name\":");
                crate::json_text::write_str(notes, name);
                notes.push(b'}');
            }
            notes.extend_from_slice(
                b"],\"info\":{\"version\":\"1.0\",\"contributor\":\"labelport\"}}\n",
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::formats::testing;
    use serde_json::{json, Value};

    fn task(id: &str, annotations: Value) -> String {
        json!({"id": id, "asset": {"url": "s3://b/x/photo.png", "width": 200, "height": 100},
            "state": "validated", "stage": "Complete", "createdAt": "x",
            "submissions": [{"id": "s", "stage": "L", "origin": "human", "completedAt": "x",
                "annotations": annotations}]})
        .to_string()
    }

    fn entries(encoder: &dyn Encoder, tasks: &[&str]) -> Vec<(String, String)> {
        let mut out = testing::records(encoder, tasks);
        encoder.closing_entries(&mut out);
        out.end_record();
        out.pieces()
            .iter()
            .map(|p| {
                (
                    out.name(p).unwrap().to_owned(),
                    String::from_utf8(out.bytes()[p.bytes.clone()].to_vec()).unwrap(),
                )
            })
            .collect()
    }

    fn annotations() -> Value {
        json!([
            {"id": "a", "type": "box", "label": "bus", "bbox": {"x": 20, "y": 10, "width": 40, "height": 20},
             "attributes": [{"name": "occluded", "value": "yes"}]},
            {"id": "b", "type": "box", "label": "car", "bbox": {"x": 180, "y": 90, "width": 40, "height": 20}},
            {"id": "c", "type": "polygon", "label": "car", "points": [[0, 0], [100, 0], [100, 50]]},
            {"id": "d", "type": "box", "label": "car", "bbox": {"x": 100, "y": 50, "width": 20, "height": 10, "rotation": 90}},
            {"id": "e", "type": "point", "label": "car", "points": [[5, 5]]},
        ])
    }

    #[test]
    fn detection_labels_data_yaml_and_an_empty_file_for_an_image_without_objects() {
        let project = testing::project("element", json!({"classes": ["car", "bus"]}));
        let encoder = testing::build("YOLO", &project, json!({"yolo": {"val": 0}})).unwrap();
        let (t1, t2) = (task("t1", annotations()), task("t2", json!([])));
        let files = entries(encoder.as_ref(), &[&t1, &t2]);
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "labels/train/t1.txt",
                "labels/train/t2.txt",
                "data.yaml",
                "classes.txt"
            ]
        );
        assert!(
            files[2]
                .1
                .contains("train: images/train\nval: images/train\n"),
            "{}",
            files[2].1
        );
        assert_eq!(
            files[0].1,
            "1 0.200000 0.200000 0.200000 0.200000\n\
             0 0.950000 0.950000 0.100000 0.100000\n\
             0 0.475000 0.600000 0.050000 0.200000\n"
        );
        assert_eq!(files[1].1, "");
        assert!(
            files[2]
                .1
                .ends_with("nc: 2\nnames:\n  0: \"car\"\n  1: \"bus\"\n"),
            "{}",
            files[2].1
        );
        assert_eq!(files[3].1, "car\nbus\n");
        let refused: Vec<String> = testing::refusals(encoder.as_ref(), &t1)
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(refused, ["c", "e"]);
    }

    #[test]
    fn tasks_split_into_train_and_val_by_a_seeded_hash_of_their_id() {
        let project = testing::project("element", json!({"classes": ["car", "bus"]}));
        let tasks: Vec<String> = (0..2000)
            .map(|i| task(&format!("t{i:05}"), json!([])))
            .collect();
        let refs: Vec<&str> = tasks.iter().map(String::as_str).collect();
        let split = |options: Value| -> Vec<String> {
            let encoder = testing::build("YOLO", &project, options).unwrap();
            let files = entries(encoder.as_ref(), &refs);
            let yaml = &files.iter().find(|(n, _)| n == "data.yaml").unwrap().1;
            assert!(
                yaml.contains("train: images/train\nval: images/val\n"),
                "{yaml}"
            );
            files
                .into_iter()
                .filter(|(n, _)| n.starts_with("labels/val/"))
                .map(|(n, _)| n)
                .collect()
        };
        let by_default = split(json!({}));
        assert!(
            (160..=240).contains(&by_default.len()),
            "{} of 2000 in val",
            by_default.len()
        );
        assert_eq!(
            split(json!({"yolo": {"val": 0.1, "seed": 0}})),
            by_default,
            "the same every time"
        );
        let reseeded = split(json!({"yolo": {"seed": 7}}));
        assert_ne!(reseeded, by_default, "another seed, another draw");
        let half = split(json!({"yolo": {"val": 0.5}}));
        assert!((900..=1100).contains(&half.len()), "{}", half.len());
        assert!(
            by_default.iter().all(|n| half.contains(n)),
            "a larger share keeps the smaller's val"
        );
        for bad in [json!(1), json!(-0.1), json!(1.5)] {
            let refused = testing::build("YOLO", &project, json!({"yolo": {"val": bad}}))
                .err()
                .unwrap();
            assert_eq!(refused.field, "yolo.val", "{bad}");
        }
    }

    #[test]
    fn segmentation_writes_outlines() {
        let project = testing::project("element", json!({"classes": ["car", "bus"]}));
        let encoder =
            testing::build("YOLO", &project, json!({"yolo": {"task": "segment"}})).unwrap();
        let t1 = task("t1", annotations());
        let files = entries(encoder.as_ref(), &[&t1]);
        let lines: Vec<&str> = files[0].1.lines().collect();
        assert_eq!(
            lines[0],
            "1 0.100000 0.100000 0.300000 0.100000 0.300000 0.300000 0.100000 0.300000"
        );
        // Clipping starts the outline at the first corner it kept.
        assert_eq!(
            lines[1],
            "0 0.900000 1.000000 0.900000 0.900000 1.000000 0.900000 1.000000 1.000000"
        );
        assert_eq!(
            lines[2],
            "0 0.000000 0.000000 0.500000 0.000000 0.500000 0.500000"
        );
        assert!(
            lines[3].starts_with("0 0.500000 0.500000 0.500000 0.700000 0.450000 0.700000"),
            "{}",
            lines[3]
        );
        assert_eq!(lines.len(), 4);
        let e = testing::build("YOLO", &project, json!({"yolo": {"task": "pose"}}))
            .err()
            .unwrap();
        assert_eq!(e.field, "yolo.task");
    }

    #[test]
    fn label_studio_compat_names_label_files_by_the_image_and_classes_by_name() {
        let project = testing::project("element", json!({"classes": ["car", "bus"]}));
        let encoder = testing::build("YOLO", &project, json!({"compat": "label-studio"})).unwrap();
        let boxes = json!([{"id": "a", "type": "box", "label": "car", "bbox": {"x": 20, "y": 10, "width": 40, "height": 20}}]);
        let task_at = |id: &str, url: &str| {
            json!({"id": id, "asset": {"url": url, "width": 200, "height": 100},
                "state": "validated", "stage": "Complete", "createdAt": "x",
                "submissions": [{"id": "s", "stage": "L", "origin": "human", "completedAt": "x",
                    "annotations": boxes}]})
            .to_string()
        };
        let (t1, t2) = (
            task_at("t1", "s3://b/a/IMG 7.jpg"),
            task_at("t2", "s3://b/b/IMG 7.jpg"),
        );
        let files = entries(encoder.as_ref(), &[&t1, &t2]);
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "labels/IMG_7-0.txt",
                "labels/IMG_7-1.txt",
                "data.yaml",
                "classes.txt",
                "notes.json"
            ]
        );
        assert_eq!(files[0].1, "1 0.200000 0.200000 0.200000 0.200000\n");
        assert_eq!(files[3].1, "bus\ncar\n");
        let notes: Value = serde_json::from_str(&files[4].1).unwrap();
        assert_eq!(
            notes["categories"],
            json!([{"id": 0, "name": "bus"}, {"id": 1, "name": "car"}])
        );
        let (t3, t4) = (
            task_at("t3", "s3://b/a/IMG_8.jpg"),
            task_at("t4", "s3://b/b/IMG_8.jpg"),
        );
        let files = entries(encoder.as_ref(), &[&t3, &t4]);
        assert_eq!(files[0].0, "labels/IMG_8.txt");
        assert_eq!(files[1].0, "labels/IMG_8_t4.txt");
    }
}
