//! COCO: the object detection ("instances") file of the COCO dataset
//! (cocodataset.org/#format-data), as pycocotools reads it:
//!
//! ```text
//! {"info":{..},"licenses":[],
//!  "categories":[{"id":1,"name":"car","supercategory":""},..],
//!  "images":[{"id":1,"file_name":"t-00000042.jpg","width":640,"height":480},..],
//!  "annotations":[{"id":1,"image_id":1,"category_id":1,"bbox":[x,y,w,h],"area":a,
//!                  "segmentation":[[x1,y1,x2,y2,..]],"iscrowd":0,"attributes":{..}?},..]}
//! ```
//!
//! - Categories are the label schema's classes, ids from 1 in schema order or the
//!   schema's `classIds`. Image and annotation ids count from 1 in source order.
//! - An image is a task's asset, or a video's annotated frame (`crate::vision`).
//! - Every box and polygon is clipped to its image. `segmentation` is the clipped
//!   outline: a box's corners, a rotated box's turned corners, a polygon's vertices;
//!   `bbox` is the outline's enclosing box and `area` its area, in pixels.
//! - A point, a shape outside its image, and anything that is no shape go to the
//!   errors report; groups and relations are counted there.
//! - `"compat": "label-studio"`: Label Studio's converter's ids (categories by name,
//!   images and annotations from 0), the image's URL as `file_name`, and a box as its
//!   enclosing box with an empty `segmentation`.
//!
//! Streaming: images and annotations are two held-back sections, spooled to temporary
//! files (each at most `OutputLimits::section_limit`) and written after the categories,
//! so the project is never in memory.

use crate::json_text::{write_int, write_str};
use crate::out::shift_number;
use crate::vision::{
    for_each_image, write_pixels, Classes, ImageNames, NoRegion, Numbering, Reasons,
};
use crate::{Compat, Container, EncodeError, Encoder, FormatSpec, Out, Record, COMPAT};
use labelport_model::{AnnotationKind, Mode, TaskState};

/// COCO object detection.
pub static FORMAT: FormatSpec = FormatSpec {
    name: "COCO",
    summary: "image projects: the COCO instances JSON (images, annotations with boxes, polygon segmentation and areas, categories from the label schema)",
    modes: Some(&[Mode::Element, Mode::ElementGroup, Mode::Video]),
    default_states: Some(&[TaskState::Annotated, TaskState::Validated]),
    allowed_states: None,
    default_stages: Some(&["Complete"]),
    options: &[&COMPAT],
    build: |settings| {
        let fields = settings.fields;
        fields.refuse_all_but_key_frames(FORMAT.name)?;
        let compat = Compat::of(settings.options)?.is_some();
        let classes = if compat {
            Classes::new(settings.project, FORMAT.name, 0, false, Numbering::ByName)?
        } else {
            Classes::new(settings.project, FORMAT.name, 1, false, Numbering::Schema)?
        };
        let mut header = Vec::new();
        header.extend_from_slice(b"{\"info\":{\"description\":");
        write_str(&mut header, &settings.project.name);
        header.extend_from_slice(b",\"version\":\"1.0\",\"contributor\":\"labelport\"},\"licenses\":[],\n\"categories\":[");
        for (i, (id, name)) in classes.listed().enumerate() {
            if i > 0 {
                header.push(b',');
            }
            header.extend_from_slice(b"\n{\"id\":");
            write_int(&mut header, id);
            header.extend_from_slice(b",\"name\":");
            write_str(&mut header, name);
            header.extend_from_slice(b",\"supercategory\":\"\"}");
        }
        header.extend_from_slice(b"],\n");
        Ok(Box::new(Coco {
            classes,
            header,
            mode: settings.project.mode,
            only_key_frames: fields.only_key_frames,
            first_id: usize::from(!compat),
            compat,
        }))
    },
};

const IMAGES: usize = 0;
const ANNOTATIONS: usize = 1;

const REASONS: Reasons = Reasons {
    groups: "groups: COCO has no place for a group of annotations",
    relations: "relations: COCO has no place for a relation between annotations",
    no_size: "COCO needs the image's width and height, and the task has none",
    not_a_shape: "COCO holds boxes and polygons on an image; this annotation is neither",
    point: NoRegion::Point.reason(),
    no_frame: "a video annotation without a frame has no image in COCO",
};

/// Writes images and annotations into their held-back sections.
pub struct Coco {
    classes: Classes,
    header: Vec<u8>,
    mode: Mode,
    only_key_frames: bool,
    /// Where image and annotation ids start: 1, or 0 as Label Studio's converter.
    first_id: usize,
    /// Label Studio's converter's layout: the image's URL as `file_name`, a box with
    /// an empty `segmentation` and its enclosing box's area.
    compat: bool,
}

impl Encoder for Coco {
    fn container(&self) -> Container {
        Container::File {
            extension: "json",
            content_type: "application/json",
        }
    }

    fn header(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.header);
    }

    fn separator(&self) -> &'static [u8] {
        b",\n"
    }

    fn held_sections(&self) -> usize {
        2
    }

    fn section_opening(&self, section: usize, out: &mut Vec<u8>) {
        out.extend_from_slice(if section == IMAGES {
            b"\"images\":[\n"
        } else {
            b"],\n\"annotations\":[\n"
        });
    }

    fn footer(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"]}\n");
    }

    fn renumbers_section(&self, _section: usize) -> bool {
        true
    }

    fn encode(&self, record: &Record<'_, '_>, out: &mut Out) -> Result<(), EncodeError> {
        for_each_image(
            record,
            self.mode,
            self.only_key_frames,
            &ImageNames::TaskIds,
            &REASONS,
            out,
            |image, annotations, geometry, out| {
                // Ids count from 1 within the block; `renumber_section` adds the
                // images and annotations of the blocks before.
                let image_id = out.held_bytes(IMAGES).1 + self.first_id;
                let line = out.held(IMAGES);
                line.extend_from_slice(b"{\"id\":");
                write_int(line, image_id);
                line.extend_from_slice(b",\"file_name\":");
                if self.compat {
                    write_str(line, image.url);
                } else {
                    write_name(line, image.stem, image.extension);
                    // Where the pixels are: COCO's own field for an image's URL,
                    // which readers keep, so a training script can fetch the image.
                    line.extend_from_slice(b",\"coco_url\":");
                    write_str(line, image.url);
                }
                line.extend_from_slice(b",\"width\":");
                write_int(line, image.width);
                line.extend_from_slice(b",\"height\":");
                write_int(line, image.height);
                line.push(b'}');
                for a in annotations {
                    let label = a.label.as_deref().unwrap_or("");
                    let Some(category) = self.classes.id(label) else {
                        out.refuse(
                            &a.id,
                            "its label is not a class of the project's label schema",
                        );
                        continue;
                    };
                    let Some(region) = geometry.shape(a, image, &REASONS, out) else {
                        continue;
                    };
                    let id = out.held_bytes(ANNOTATIONS).1 + self.first_id;
                    let line = out.held(ANNOTATIONS);
                    line.extend_from_slice(b"{\"id\":");
                    write_int(line, id);
                    line.extend_from_slice(b",\"image_id\":");
                    write_int(line, image_id);
                    line.extend_from_slice(b",\"category_id\":");
                    write_int(line, category);
                    let [x0, y0, x1, y1] = region.bounds;
                    line.extend_from_slice(b",\"bbox\":[");
                    for (i, v) in [x0, y0, x1 - x0, y1 - y0].into_iter().enumerate() {
                        if i > 0 {
                            line.push(b',');
                        }
                        write_pixels(line, v);
                    }
                    line.extend_from_slice(b"],\"area\":");
                    if self.compat && a.kind == AnnotationKind::Box {
                        // The converter's box: its enclosing box, no outline.
                        write_pixels(line, (x1 - x0) * (y1 - y0));
                        line.extend_from_slice(b",\"segmentation\":[],\"ignore\":0");
                    } else {
                        write_pixels(line, region.area);
                        line.extend_from_slice(b",\"segmentation\":[[");
                        for (i, [x, y]) in region.outline.iter().enumerate() {
                            if i > 0 {
                                line.push(b',');
                            }
                            write_pixels(line, *x);
                            line.push(b',');
                            write_pixels(line, *y);
                        }
                        line.extend_from_slice(b"]]");
                        if self.compat {
                            line.extend_from_slice(b",\"ignore\":0");
                        }
                    }
                    line.extend_from_slice(b",\"iscrowd\":0");
                    if !a.attributes.is_empty() {
                        line.extend_from_slice(b",\"attributes\":{");
                        for (i, attribute) in a.attributes.iter().enumerate() {
                            if i > 0 {
                                line.push(b',');
                            }
                            write_str(line, &attribute.name);
                            line.push(b':');
                            write_str(line, &attribute.value);
                        }
                        line.push(b'}');
                    }
                    line.push(b'}');
                }
            },
        );
        Ok(())
    }

    fn renumber_section(
        &self,
        section: usize,
        bytes: &[u8],
        before: &[u64],
        out: &mut Vec<u8>,
    ) -> bool {
        let images = before.get(IMAGES).copied().unwrap_or(0);
        let own = before.get(section).copied().unwrap_or(0);
        if images == 0 && own == 0 {
            return false;
        }
        // Each element is one line (JSON strings hold no raw line break), starting
        // `{"id":N` and, for an annotation, `,"image_id":M`.
        out.reserve(bytes.len() + bytes.len() / 16);
        let mut start = 0;
        while start < bytes.len() {
            let end = memchr::memchr(b'\n', &bytes[start..]).map_or(bytes.len(), |i| start + i + 1);
            let line = &bytes[start..end];
            start = end;
            let rest = shift_number(line, b"{\"id\":", own, out);
            let rest = if section == ANNOTATIONS {
                shift_number(rest, b",\"image_id\":", images, out)
            } else {
                rest
            };
            out.extend_from_slice(rest);
        }
        true
    }
}

/// An image's file name as a JSON string.
fn write_name(out: &mut Vec<u8>, stem: &str, extension: &str) {
    // Stems and extensions are file-name-safe ASCII: nothing to escape.
    out.push(b'"');
    out.extend_from_slice(stem.as_bytes());
    out.extend_from_slice(extension.as_bytes());
    out.push(b'"');
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::formats::testing;
    use serde_json::{json, Value};

    fn image_task(id: &str, url: &str, annotations: Value) -> String {
        json!({"id": id, "asset": {"url": url, "width": 100, "height": 50},
            "state": "validated", "stage": "Complete", "createdAt": "x",
            "submissions": [{"id": "s", "stage": "L", "origin": "human", "completedAt": "x",
                "annotations": annotations}]})
        .to_string()
    }

    /// Header, the two sections, footer: the file as the assembler writes it for one block.
    fn document(encoder: &dyn Encoder, tasks: &[&str]) -> (String, Vec<(String, String)>) {
        let out = testing::records(encoder, tasks);
        let mut bytes = Vec::new();
        encoder.header(&mut bytes);
        for section in 0..encoder.held_sections() {
            encoder.section_opening(section, &mut bytes);
            bytes.extend_from_slice(out.held_bytes(section).0);
        }
        encoder.footer(&mut bytes);
        let refusals = tasks
            .iter()
            .flat_map(|t| testing::refusals(encoder, t))
            .collect();
        (String::from_utf8(bytes).unwrap(), refusals)
    }

    #[test]
    fn images_annotations_and_categories_exactly() {
        let project = testing::project(
            "element",
            json!({"classes": ["car", "café \"terrace\""], "attributes": ["occluded"]}),
        );
        let encoder = testing::build("COCO", &project, json!({})).unwrap();
        let t1 = image_task(
            "t1",
            "s3://b/cam/IMG_1.jpg?x=1",
            json!([
                {"id": "a1", "type": "box", "label": "café \"terrace\"",
                 "bbox": {"x": 10.5, "y": 5, "width": 20, "height": 10},
                 "attributes": [{"name": "occluded", "value": "no"}]},
                {"id": "a2", "type": "box", "label": "car", "bbox": {"x": 90, "y": 40, "width": 20, "height": 20}},
                {"id": "a3", "type": "polygon", "label": "car", "points": [[0, 0], [10, 0], [10, 10]]},
                {"id": "a4", "type": "point", "label": "car", "points": [[1, 1]]},
                {"id": "a5", "type": "box", "label": "tram", "bbox": {"x": 1, "y": 1, "width": 2, "height": 2}},
                {"id": "a6", "type": "box", "label": "car", "bbox": {"x": 200, "y": 1, "width": 2, "height": 2}},
            ]),
        );
        let t2 = image_task("t2", "s3://b/cam-b/IMG_1.png", json!([]));
        let (text, refusals) = document(encoder.as_ref(), &[&t1, &t2]);
        assert_eq!(
            text,
            concat!(
                r#"{"info":{"description":"Project","version":"1.0","contributor":"labelport"},"licenses":[],"#,
                "\n",
                r#""categories":["#,
                "\n",
                r#"{"id":1,"name":"car","supercategory":""},"#,
                "\n",
                r#"{"id":2,"name":"café \"terrace\"","supercategory":""}],"#,
                "\n",
                r#""images":["#,
                "\n",
                r#"{"id":1,"file_name":"t1.jpg","coco_url":"s3://b/cam/IMG_1.jpg?x=1","width":100,"height":50},"#,
                "\n",
                r#"{"id":2,"file_name":"t2.png","coco_url":"s3://b/cam-b/IMG_1.png","width":100,"height":50}],"#,
                "\n",
                r#""annotations":["#,
                "\n",
                r#"{"id":1,"image_id":1,"category_id":2,"bbox":[10.5,5.0,20.0,10.0],"area":200.0,"segmentation":[[10.5,5.0,30.5,5.0,30.5,15.0,10.5,15.0]],"iscrowd":0,"attributes":{"occluded":"no"}},"#,
                "\n",
                r#"{"id":2,"image_id":1,"category_id":1,"bbox":[90.0,40.0,10.0,10.0],"area":100.0,"segmentation":[[90.0,50.0,90.0,40.0,100.0,40.0,100.0,50.0]],"iscrowd":0},"#,
                "\n",
                r#"{"id":3,"image_id":1,"category_id":1,"bbox":[0.0,0.0,10.0,10.0],"area":50.0,"segmentation":[[0.0,0.0,10.0,0.0,10.0,10.0]],"iscrowd":0}]}"#,
                "\n",
            )
        );
        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed["annotations"].as_array().unwrap().len(), 3);
        let ids: Vec<&str> = refusals.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["a4", "a5", "a6"]);
        assert!(refusals[0].1.contains("point"), "{refusals:?}");
        assert!(refusals[2].1.contains("outside the image"), "{refusals:?}");
    }

    #[test]
    fn later_blocks_are_renumbered_after_the_ones_before() {
        let project = testing::project("element", json!({"classes": ["car"]}));
        let encoder = testing::build("COCO", &project, json!({})).unwrap();
        let task = image_task(
            "t9",
            "u.jpg",
            json!([{"id": "a", "type": "box", "label": "car", "bbox": {"x": 1, "y": 1, "width": 2, "height": 2}}]),
        );
        let out = testing::records(encoder.as_ref(), &[&task, &task]);
        let mut images = Vec::new();
        assert!(encoder.renumber_section(IMAGES, out.held_bytes(IMAGES).0, &[10, 30], &mut images));
        assert_eq!(
            String::from_utf8(images).unwrap(),
            "{\"id\":11,\"file_name\":\"t9.jpg\",\"coco_url\":\"u.jpg\",\"width\":100,\"height\":50},\n{\"id\":12,\"file_name\":\"t9.jpg\",\"coco_url\":\"u.jpg\",\"width\":100,\"height\":50}"
        );
        let mut annotations = Vec::new();
        assert!(encoder.renumber_section(
            ANNOTATIONS,
            out.held_bytes(ANNOTATIONS).0,
            &[10, 30],
            &mut annotations
        ));
        let text = String::from_utf8(annotations).unwrap();
        assert!(text.starts_with("{\"id\":31,\"image_id\":11,"), "{text}");
        assert!(text.contains(",\n{\"id\":32,\"image_id\":12,"), "{text}");
        assert!(!encoder.renumber_section(ANNOTATIONS, b"x", &[0, 0], &mut Vec::new()));
    }

    #[test]
    fn a_video_gives_one_image_per_annotated_frame() {
        let project = testing::project("video", json!({"classes": ["car"]}));
        let bbox = json!({"x": 1, "y": 1, "width": 2, "height": 2});
        let task = json!({"id": "v1", "asset": {"url": "s3://b/v.mp4", "width": 100, "height": 50, "frameCount": 90},
            "state": "validated", "stage": "Complete", "createdAt": "x",
            "submissions": [{"id": "s", "stage": "L", "origin": "human", "completedAt": "x", "annotations": [
                {"id": "a", "type": "box", "label": "car", "bbox": bbox, "frame": 12, "keyFrame": true, "track": "1"},
                {"id": "b", "type": "box", "label": "car", "bbox": bbox, "frame": 3, "keyFrame": false, "track": "1"},
                {"id": "c", "type": "box", "label": "car", "bbox": bbox, "frame": 12, "keyFrame": true, "track": "2"},
                {"id": "d", "type": "box", "label": "car", "bbox": bbox}]}]})
        .to_string();
        for (key_frames, names) in [
            (false, vec!["v1_000003.jpg", "v1_000012.jpg"]),
            (true, vec!["v1_000012.jpg"]),
        ] {
            let encoder = crate::Format::by_name("COCO")
                .unwrap()
                .build(&crate::Settings {
                    project: &project,
                    fields: crate::FieldToggles {
                        only_key_frames: key_frames,
                        ..Default::default()
                    },
                    compression: Default::default(),
                    options: &crate::FormatOptions::default(),
                })
                .unwrap();
            let (text, refusals) = document(encoder.as_ref(), &[&task]);
            let parsed: Value = serde_json::from_str(&text).unwrap();
            let files: Vec<&str> = parsed["images"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["file_name"].as_str().unwrap())
                .collect();
            assert_eq!(files, names, "key frames only: {key_frames}");
            let on_frame_12 = parsed["annotations"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| a["image_id"] == json!(files.len()))
                .count();
            assert_eq!(on_frame_12, 2);
            assert_eq!(refusals.len(), 1, "the annotation without a frame");
        }
    }

    #[test]
    fn a_project_without_classes_or_an_image_without_size_is_refused() {
        let project = testing::project("element", json!({}));
        let e = testing::build("COCO", &project, json!({})).err().unwrap();
        assert!(e.message.contains("lists no classes"), "{}", e.message);
        let project = testing::project("element", json!({"classes": ["car"]}));
        let encoder = testing::build("COCO", &project, json!({})).unwrap();
        let task = r#"{"id":"t","asset":{"url":"u"},"state":"validated","stage":"Complete","createdAt":"x"}"#;
        let mut out = Out::new(encoder.separator());
        out.begin_record();
        let parsed: labelport_model::Task<'_> = serde_json::from_str(task).unwrap();
        encoder
            .encode(
                &Record {
                    task: &parsed,
                    raw: None,
                    ordinal: 0,
                },
                &mut out,
            )
            .unwrap();
        assert!(out.record_left_out());
        assert!(String::from_utf8_lossy(out.record_refusals()).contains("width and height"));
    }

    #[test]
    fn label_studio_compat_numbers_by_name_from_0_and_names_images_by_url() {
        let mut project = testing::project("element", json!({"classes": ["zebra", "car", "ant"]}));
        project.labels.class_ids.insert("zebra".into(), 0);
        let encoder = testing::build("COCO", &project, json!({"compat": "label-studio"})).unwrap();
        let t1 = image_task(
            "t1",
            "s3://b/cam/IMG_1.jpg",
            json!([
                {"id": "a1", "type": "box", "label": "car", "bbox": {"x": 10, "y": 5, "width": 20, "height": 10}},
                {"id": "a2", "type": "polygon", "label": "ant", "points": [[0, 0], [10, 0], [10, 10]]},
            ]),
        );
        let (text, refusals) = document(encoder.as_ref(), &[&t1]);
        let v: Value = serde_json::from_str(&text).unwrap();
        let categories: Vec<(u64, &str)> = v["categories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["id"].as_u64().unwrap(), c["name"].as_str().unwrap()))
            .collect();
        assert_eq!(categories, [(0, "zebra"), (1, "ant"), (2, "car")]);
        assert_eq!(v["images"][0]["id"], 0);
        assert_eq!(v["images"][0]["file_name"], "s3://b/cam/IMG_1.jpg");
        let box_ = &v["annotations"][0];
        assert_eq!(
            (
                box_["id"].as_u64(),
                box_["image_id"].as_u64(),
                box_["category_id"].as_u64()
            ),
            (Some(0), Some(0), Some(2))
        );
        assert_eq!(box_["bbox"], json!([10.0, 5.0, 20.0, 10.0]));
        assert_eq!(box_["area"], json!(200.0));
        assert_eq!(box_["segmentation"], json!([]));
        let polygon = &v["annotations"][1];
        assert_eq!(polygon["category_id"], 1);
        assert_eq!(
            polygon["segmentation"],
            json!([[0.0, 0.0, 10.0, 0.0, 10.0, 10.0]])
        );
        assert_eq!(polygon["area"], json!(50.0));
        assert!(refusals.is_empty(), "{refusals:?}");
        let e = testing::build("COCO", &project, json!({"compat": "labelstudio"}))
            .err()
            .unwrap();
        assert_eq!(e.field, "compat");
    }
}
