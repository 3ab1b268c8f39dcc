//! Images and what is marked on them: boxes, polygons and points, their attributes,
//! groups of them, and the edge cases image formats must handle.

use super::content::Content;
use super::{borrowed, TaskGen};
use crate::rng::{Rng, EDGE_SEED};
use crate::task_id;
use crate::vocabulary::{COLORS, DATA_SOURCES, GROUP_CLASSES, GROUP_ELEMENT_CLASSES, SIZES};
use labelport_model::{Annotation, AnnotationKind, Asset, Attribute, BoundingBox};
use std::borrow::Cow;

impl TaskGen<'_> {
    pub(super) fn image(&mut self) -> Asset<'static> {
        let mut asset = self.asset();
        // Every 25th image has the file name of the one before it, in another folder:
        // formats that name images by file must still give each its own name.
        if self.index % 25 == 7 {
            asset.url = Cow::Owned(format!(
                "s3://labelport-demo-assets/{}/camera-b/{}.{}",
                self.config.project_id,
                task_id(self.index - 1),
                self.spec.extension
            ));
        }
        // From the index, not the random stream: the rest of the task stays as it was.
        asset.data_source = Some(borrowed(DATA_SOURCES[(self.index % 3) as usize]));
        let (width, height) = *self.rng.pick(SIZES);
        asset.width = Some(width);
        asset.height = Some(height);
        asset
    }

    /// An image with up to six boxes, polygons and points.
    pub(super) fn elements(&mut self) -> Content {
        let asset = self.image();
        let size = (asset.width.unwrap_or(640), asset.height.unwrap_or(480));
        let count = self.rng.range(0, 6);
        let elements = (0..count)
            .map(|_| {
                let kind = match self.rng.below(100) {
                    0..60 => AnnotationKind::Box,
                    60..85 => AnnotationKind::Polygon,
                    _ => AnnotationKind::Point,
                };
                self.element(kind, self.spec.classes, size)
            })
            .collect();
        Content::unrelated(asset, elements)
    }

    /// An image with two to six boxes and points, and one to three groups of them.
    pub(super) fn element_groups(&mut self) -> Content {
        let asset = self.image();
        let size = (asset.width.unwrap_or(640), asset.height.unwrap_or(480));
        let count = self.rng.range(2, 6);
        let mut annotations: Vec<_> = (0..count)
            .map(|_| {
                let kind = if self.rng.chance(800) {
                    AnnotationKind::Box
                } else {
                    AnnotationKind::Point
                };
                self.element(kind, GROUP_ELEMENT_CLASSES, size)
            })
            .collect();
        for _ in 0..self.rng.range(1, 3) {
            let mut members: Vec<Cow<'static, str>> = Vec::new();
            for element in &annotations[..count as usize] {
                if self.rng.chance(500) {
                    members.push(element.id.clone());
                }
            }
            if members.is_empty() {
                let n = self.rng.below(count) as usize;
                members.push(annotations[n].id.clone());
            }
            let mut group = self.annotation(AnnotationKind::Group);
            group.label = Some(borrowed(self.rng.word(GROUP_CLASSES)));
            group.members = members;
            annotations.push(group);
        }
        Content::unrelated(asset, annotations)
    }

    /// Attributes of an element: each of the project's, sometimes, with a confidence now and then.
    pub(super) fn attributes(&mut self) -> Vec<Attribute<'static>> {
        let mut attributes = Vec::new();
        for name in self.spec.attributes {
            if !self.rng.chance(600) {
                continue;
            }
            let value = if *name == "color" {
                self.rng.word(COLORS)
            } else if self.rng.chance(300) {
                "yes"
            } else {
                "no"
            };
            let confidence = self.rng.chance(500).then(|| self.rng.confidence());
            attributes.push(Attribute {
                name: borrowed(name),
                value: borrowed(value),
                confidence,
            });
        }
        attributes
    }

    /// A box, polygon or point inside a `width` x `height` image, in tenths of pixels.
    fn element(
        &mut self,
        kind: AnnotationKind,
        pool: &'static [&'static str],
        (width, height): (u32, u32),
    ) -> Annotation<'static> {
        let mut a = self.annotation(kind);
        a.label = Some(borrowed(self.rng.word(pool)));
        let (w, h) = (u64::from(width) * 10, u64::from(height) * 10);
        let tenth = |v: u64| v as f64 / 10.0;
        let bw = self.rng.range(w / 20, w / 2);
        let bh = self.rng.range(h / 20, h / 2);
        let x = self.rng.below(w - bw + 1);
        let y = self.rng.below(h - bh + 1);
        // What image formats must clip, turn or refuse, from a stream of its own so the
        // rest of the task stays as it was.
        let mut edge = Rng::new(
            self.config.seed ^ EDGE_SEED,
            self.index << 10 | u64::from(self.next_annotation),
        );
        let (sx, sy) = (w as f64 / 10.0, h as f64 / 10.0);
        match kind {
            AnnotationKind::Box => {
                let mut b = BoundingBox {
                    x: tenth(x),
                    y: tenth(y),
                    width: tenth(bw),
                    height: tenth(bh),
                    rotation: None,
                };
                match edge.below(1000) {
                    // Past the right or the bottom edge, or over the top-left corner.
                    0..30 => b.x = sx - b.width / 2.0,
                    30..50 => b.y = sy - b.height / 3.0,
                    50..60 => (b.x, b.y) = (-b.width / 4.0, -b.height / 4.0),
                    // Wholly outside the image: nothing is left once clipped.
                    60..64 => b.x = sx + 5.0,
                    // Turned about its top-left corner, by whole degrees.
                    64..140 => {
                        b.rotation = Some(edge.range(1, 89) as f64 - 45.0 * edge.below(2) as f64)
                    }
                    _ => {}
                }
                a.bbox = Some(b);
            }
            AnnotationKind::Polygon => {
                // Points around the box's perimeter, clockwise from its top-left corner.
                let n = self.rng.range(3, 6);
                let perimeter = 2 * (bw + bh);
                a.points = (0..n)
                    .map(|k| {
                        let slot = perimeter / n;
                        let t = k * slot + self.rng.below(slot / 2 + 1);
                        let (px, py) = on_perimeter(x, y, bw, bh, t);
                        [tenth(px), tenth(py)]
                    })
                    .collect();
                // Now and then a polygon reaches past the left edge: moved whole, so it
                // stays a simple polygon.
                if edge.chance(40) {
                    // In whole tenths, so the coordinates keep one decimal.
                    let shift = (x + bw / 3) as f64;
                    for point in &mut a.points {
                        point[0] = ((point[0] * 10.0).round() - shift) / 10.0;
                    }
                }
            }
            _ => a.points = vec![[tenth(x + bw / 2), tenth(y + bh / 2)]],
        }
        a.attributes = self.attributes();
        a
    }
}

/// The point at distance `t` along the perimeter of a box, clockwise from its
/// top-left corner.
fn on_perimeter(x: u64, y: u64, width: u64, height: u64, t: u64) -> (u64, u64) {
    if t < width {
        return (x + t, y);
    }
    let t = t - width;
    if t < height {
        return (x + width, y + t);
    }
    let t = t - height;
    if t < width {
        return (x + width - t, y + height);
    }
    let t = (t - width).min(height);
    (x, y + height - t)
}
