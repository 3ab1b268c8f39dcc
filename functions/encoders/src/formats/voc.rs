//! VOC: Pascal VOC annotation files, as the VOC devkit lays them out, in a ZIP:
//!
//! ```text
//! Annotations/{image}.xml       <annotation> with the image's <filename> and <size>,
//!                               one <object> per box: <name>, <truncated>,
//!                               <difficult>, <bndbox> of integer pixel corners
//! ImageSets/Main/default.txt    every image's name, one per line
//! ```
//!
//! - Corners are 1-based, as the devkit counts pixels: `xmin = round(left) + 1`,
//!   `xmax = round(right)`, so a box over the whole image is `1..width`.
//! - A box is clipped to its image, and `<truncated>` is 1 when clipping cut it (or
//!   its `truncated` attribute says yes); `<difficult>` follows a `difficult`
//!   attribute. A rotated box becomes the box enclosing its clipped outline.
//! - Every image gets a file, one without objects too. Image names follow
//!   `crate::vision`. Text is XML-escaped.
//! - A polygon, a point, a shape outside its image and anything that is no box go to
//!   the errors report; groups, relations and other attributes are counted there.
//! - `"compat": "label-studio"`: Label Studio's converter's layout: files named by the
//!   image's own file name, `<folder>images</folder>`, 0-based corners truncated as
//!   it truncates them (`xmin = int(x)`, `xmax = xmin + int(width)`).

use crate::vision::{file_name, for_each_image, write_xml, ImageNames, Reasons};
use crate::{Compat, Container, EncodeError, Encoder, FormatSpec, Out, Record, COMPAT};
use labelport_model::{AnnotationKind, Mode, TaskState};

/// Pascal VOC XML.
pub static FORMAT: FormatSpec = FormatSpec {
    name: "VOC",
    summary: "image projects: a ZIP of Pascal VOC XML files (Annotations/{image}.xml, boxes with 1-based pixel corners) and the image list",
    modes: Some(&[Mode::Element, Mode::ElementGroup, Mode::Video]),
    default_states: Some(&[TaskState::Annotated, TaskState::Validated]),
    allowed_states: None,
    default_stages: Some(&["Complete"]),
    options: &[&COMPAT],
    build: |settings| {
        let fields = settings.fields;
        fields.refuse_all_but_key_frames(FORMAT.name)?;
        let mut source = Vec::new();
        write_xml(&mut source, &settings.project.name);
        let compat = Compat::of(settings.options)?;
        Ok(Box::new(Voc {
            project_name: source,
            names: ImageNames::for_compat(compat),
            compat: compat.is_some(),
            mode: settings.project.mode,
            only_key_frames: fields.only_key_frames,
        }))
    },
};

const REASONS: Reasons = Reasons {
    groups: "groups: VOC has no place for a group of annotations",
    relations: "relations: VOC has no place for a relation between annotations",
    no_size: "VOC needs the image's width and height, and the task has none",
    not_a_shape: "VOC holds boxes on an image; this annotation is none",
    point: "a point has no place in VOC, which holds boxes only",
    no_frame: "a video annotation without a frame has no image in VOC",
};

const ATTRIBUTES: &str =
    "attributes: VOC has a place for truncated and difficult only; these annotations' other attributes are not in it";

/// The image list, a held-back section written as its own entry.
const IMAGE_LIST: usize = 0;

/// Writes one annotation file per image.
pub struct Voc {
    project_name: Vec<u8>,
    names: ImageNames,
    /// Label Studio's converter's layout: `images/` and the image's own file name,
    /// corners truncated to whole pixels, `xmax = xmin + width`.
    compat: bool,
    mode: Mode,
    only_key_frames: bool,
}

/// Whether an attribute value says yes.
fn yes(value: &str) -> bool {
    matches!(
        value,
        "yes" | "true" | "1" | "Yes" | "True" | "YES" | "TRUE"
    )
}

impl Encoder for Voc {
    fn container(&self) -> Container {
        Container::Zip
    }

    fn held_sections(&self) -> usize {
        1
    }

    fn section_entry(&self, _section: usize) -> &'static str {
        "ImageSets/Main/default.txt"
    }

    fn encode(&self, record: &Record<'_, '_>, out: &mut Out) -> Result<(), EncodeError> {
        for_each_image(
            record,
            self.mode,
            self.only_key_frames,
            &self.names,
            &REASONS,
            out,
            |image, annotations, geometry, out| {
                let list = out.held(IMAGE_LIST);
                list.extend_from_slice(image.stem.as_bytes());
                list.push(b'\n');
                let xml = out.entry_of(&["Annotations/", image.stem, ".xml"]);
                if self.compat {
                    xml.extend_from_slice(b"<annotation>\n\t<folder>images</folder>\n\t<filename>");
                    write_xml(xml, file_name(image.url));
                    xml.extend_from_slice(b"</filename>\n");
                } else {
                    xml.extend_from_slice(
                        b"<annotation>\n\t<folder>JPEGImages</folder>\n\t<filename>",
                    );
                    // Stems and extensions are file-name-safe ASCII: nothing to escape.
                    xml.extend_from_slice(image.stem.as_bytes());
                    xml.extend_from_slice(image.extension.as_bytes());
                    // Where the pixels are, in the field LabelImg writes and VOC
                    // readers keep, so a training script can fetch the image.
                    xml.extend_from_slice(b"</filename>\n\t<path>");
                    write_xml(xml, image.url);
                    xml.extend_from_slice(b"</path>\n");
                }
                xml.extend_from_slice(
                    b"\t<source>\n\t\t<database>labelport</database>\n\t\t<annotation>",
                );
                xml.extend_from_slice(&self.project_name);
                xml.extend_from_slice(b"</annotation>\n\t</source>\n\t<size>\n\t\t<width>");
                crate::json_text::write_int(xml, image.width);
                xml.extend_from_slice(b"</width>\n\t\t<height>");
                crate::json_text::write_int(xml, image.height);
                xml.extend_from_slice(
                    b"</height>\n\t\t<depth>3</depth>\n\t</size>\n\t<segmented>0</segmented>\n",
                );
                for a in annotations {
                    if a.kind == AnnotationKind::Polygon {
                        out.refuse(
                            &a.id,
                            "a polygon has no place in VOC, which holds boxes only",
                        );
                        continue;
                    }
                    let Some(region) = geometry.shape(a, image, &REASONS, out) else {
                        continue;
                    };
                    let (mut truncated, mut difficult, mut others) = (region.clipped, false, false);
                    for attribute in &a.attributes {
                        match &*attribute.name {
                            "truncated" => truncated |= yes(&attribute.value),
                            "difficult" => difficult = yes(&attribute.value),
                            _ => others = true,
                        }
                    }
                    if others {
                        out.omit(ATTRIBUTES);
                    }
                    let [x0, y0, x1, y1] = region.bounds;
                    let (xmin, ymin, xmax, ymax) = if self.compat {
                        // The converter truncates the corner and the size apart.
                        let [x, y, w, h] = match a.bbox {
                            Some(b) if !region.clipped && !b.is_rotated() => {
                                [b.x, b.y, b.width, b.height]
                            }
                            _ => [x0, y0, x1 - x0, y1 - y0],
                        };
                        let (x, y) = (x.max(0.0) as u64, y.max(0.0) as u64);
                        (x, y, x + w.max(0.0) as u64, y + h.max(0.0) as u64)
                    } else {
                        let (xmin, ymin) = (x0.round() as u64 + 1, y0.round() as u64 + 1);
                        (
                            xmin,
                            ymin,
                            (x1.round() as u64).max(xmin),
                            (y1.round() as u64).max(ymin),
                        )
                    };
                    let xml = out.open_entry();
                    xml.extend_from_slice(b"\t<object>\n\t\t<name>");
                    write_xml(xml, a.label.as_deref().unwrap_or(""));
                    xml.extend_from_slice(
                        b"</name>\n\t\t<pose>Unspecified</pose>\n\t\t<truncated>",
                    );
                    xml.push(if truncated { b'1' } else { b'0' });
                    xml.extend_from_slice(b"</truncated>\n\t\t<difficult>");
                    xml.push(if difficult { b'1' } else { b'0' });
                    xml.extend_from_slice(b"</difficult>\n\t\t<bndbox>\n");
                    for (tag, v) in [
                        ("xmin", xmin),
                        ("ymin", ymin),
                        ("xmax", xmax),
                        ("ymax", ymax),
                    ] {
                        xml.extend_from_slice(b"\t\t\t<");
                        xml.extend_from_slice(tag.as_bytes());
                        xml.push(b'>');
                        crate::json_text::write_int(xml, v);
                        xml.extend_from_slice(b"</");
                        xml.extend_from_slice(tag.as_bytes());
                        xml.extend_from_slice(b">\n");
                    }
                    xml.extend_from_slice(b"\t\t</bndbox>\n\t</object>\n");
                }
                out.open_entry().extend_from_slice(b"</annotation>\n");
            },
        );
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::formats::testing;
    use serde_json::json;

    #[test]
    fn one_xml_per_image_with_one_based_corners_and_escaped_text() {
        let mut project = testing::project("element", json!({"classes": ["car"]}));
        project.name = "Rue & Co <1>".into();
        let encoder = testing::build("VOC", &project, json!({})).unwrap();
        let task = json!({"id": "t1", "asset": {"url": "s3://b/a.jpeg", "width": 200, "height": 100},
            "state": "validated", "stage": "Complete", "createdAt": "x",
            "submissions": [{"id": "s", "stage": "L", "origin": "human", "completedAt": "x", "annotations": [
                {"id": "a", "type": "box", "label": "café <\"x\">", "bbox": {"x": 10.4, "y": 0, "width": 20.2, "height": 100},
                 "attributes": [{"name": "difficult", "value": "yes"}, {"name": "color", "value": "red"}]},
                {"id": "b", "type": "box", "label": "car", "bbox": {"x": 190, "y": -5, "width": 20, "height": 10}},
                {"id": "c", "type": "polygon", "label": "car", "points": [[0, 0], [1, 0], [1, 1]]},
                {"id": "d", "type": "point", "label": "car", "points": [[0, 0]]}]}]})
        .to_string();
        let out = testing::records(encoder.as_ref(), &[&task]);
        let piece = &out.pieces()[0];
        assert_eq!(out.name(piece), Some("Annotations/t1.xml"));
        let xml = std::str::from_utf8(&out.bytes()[piece.bytes.clone()]).unwrap();
        assert_eq!(
            xml,
            "<annotation>\n\t<folder>JPEGImages</folder>\n\t<filename>t1.jpeg</filename>\n\
             \t<path>s3://b/a.jpeg</path>\n\
             \t<source>\n\t\t<database>labelport</database>\n\t\t<annotation>Rue &amp; Co &lt;1&gt;</annotation>\n\t</source>\n\
             \t<size>\n\t\t<width>200</width>\n\t\t<height>100</height>\n\t\t<depth>3</depth>\n\t</size>\n\t<segmented>0</segmented>\n\
             \t<object>\n\t\t<name>café &lt;&quot;x&quot;&gt;</name>\n\t\t<pose>Unspecified</pose>\n\t\t<truncated>0</truncated>\n\t\t<difficult>1</difficult>\n\
             \t\t<bndbox>\n\t\t\t<xmin>11</xmin>\n\t\t\t<ymin>1</ymin>\n\t\t\t<xmax>31</xmax>\n\t\t\t<ymax>100</ymax>\n\t\t</bndbox>\n\t</object>\n\
             \t<object>\n\t\t<name>car</name>\n\t\t<pose>Unspecified</pose>\n\t\t<truncated>1</truncated>\n\t\t<difficult>0</difficult>\n\
             \t\t<bndbox>\n\t\t\t<xmin>191</xmin>\n\t\t\t<ymin>1</ymin>\n\t\t\t<xmax>200</xmax>\n\t\t\t<ymax>5</ymax>\n\t\t</bndbox>\n\t</object>\n\
             </annotation>\n"
        );
        assert_eq!(out.held_bytes(IMAGE_LIST), (&b"t1\n"[..], 1));
        let refused: Vec<String> = testing::refusals(encoder.as_ref(), &task)
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(refused, ["c", "d"]);
        assert_eq!(out.omitted(), [ATTRIBUTES]);
    }

    #[test]
    fn label_studio_compat_truncates_corner_and_size_apart() {
        let project = testing::project("element", json!({"classes": ["car"]}));
        let encoder = testing::build("VOC", &project, json!({"compat": "label-studio"})).unwrap();
        let task = json!({"id": "t1", "asset": {"url": "s3://b/x/a&b.jpeg", "width": 200, "height": 100},
            "state": "validated", "stage": "Complete", "createdAt": "x",
            "submissions": [{"id": "s", "stage": "L", "origin": "human", "completedAt": "x", "annotations": [
                {"id": "a", "type": "box", "label": "car", "bbox": {"x": 10.6, "y": 0.5, "width": 20.6, "height": 99.5}}]}]})
        .to_string();
        let out = testing::records(encoder.as_ref(), &[&task]);
        let piece = &out.pieces()[0];
        assert_eq!(out.name(piece), Some("Annotations/a_b-0.xml"));
        let xml = std::str::from_utf8(&out.bytes()[piece.bytes.clone()]).unwrap();
        assert!(
            xml.starts_with(
                "<annotation>\n\t<folder>images</folder>\n\t<filename>a&amp;b.jpeg</filename>"
            ),
            "{xml}"
        );
        assert!(
            xml.contains("<xmin>10</xmin>\n\t\t\t<ymin>0</ymin>\n\t\t\t<xmax>30</xmax>\n\t\t\t<ymax>99</ymax>"),
            "{xml}"
        );
    }
}
