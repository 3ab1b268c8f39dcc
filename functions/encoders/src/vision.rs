//! What the image formats (COCO, YOLO, VOC) share:
//!
//! - **Class ids** from the project's label schema: the explicit `classIds` in it,
//!   the other classes in its order (by name with `"compat": "label-studio"`), never
//!   the order labels happen to appear in, so two exports of a project number classes
//!   alike.
//! - **Images** of a task: the asset itself, or for a video each frame that carries
//!   annotations (only key frames with `fields.onlyKeyFrames`).
//! - **Names** of images in the export: the task id (unique in a project) with the
//!   asset's extension, never a storage path; a video frame adds `_{frame:06}`.
//! - **Geometry**: every shape clipped to the image; a rotated box becomes its
//!   polygon (and that polygon's enclosing box where a format holds only boxes); a
//!   shape clipped to nothing is refused with its id, like a shape the format cannot
//!   hold.

use crate::{ConfigError, Out, Record};
use labelport_model::{Annotation, AnnotationKind, Mode, Project, Task};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

/// Class ids of one export, from the project's label schema.
pub struct Classes {
    by_name: HashMap<String, u32>,
    /// (id, name), in id order.
    listed: Vec<(u32, String)>,
}

/// How classes without an explicit id are numbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Numbering {
    /// In the label schema's order (labelport's own).
    Schema,
    /// By name, as Label Studio's converter numbers them (`compat`).
    ByName,
}

impl Classes {
    /// Numbers the schema's classes: those its `classIds` name take those ids; the
    /// rest take the lowest free ids from `first`, in `numbering` order. `dense`: the
    /// ids must run `first..first + n` without a gap (YOLO's class indices). `format`
    /// names the format in errors.
    pub fn new(
        project: &Project,
        format: &str,
        first: u32,
        dense: bool,
        numbering: Numbering,
    ) -> Result<Classes, ConfigError> {
        let schema = &project.labels;
        let refuse = |why: String| {
            ConfigError::new(
                "format",
                format!("{format} numbers the classes of the project's label schema, but {why}"),
            )
        };
        if schema.classes.is_empty() {
            return Err(refuse("the schema lists no classes".to_owned()));
        }
        if let Some(name) = schema
            .class_ids
            .keys()
            .find(|n| !schema.classes.contains(*n))
        {
            return Err(refuse(format!(
                "its classIds name `{name}`, which is not a class"
            )));
        }
        let mut by_name = HashMap::with_capacity(schema.classes.len());
        let mut unnumbered: Vec<&String> = Vec::new();
        for name in &schema.classes {
            match schema.class_ids.get(name) {
                Some(id) => {
                    if by_name.insert(name.clone(), *id).is_some() {
                        return Err(refuse(format!("it lists class `{name}` twice")));
                    }
                }
                None if unnumbered.contains(&name) => {
                    return Err(refuse(format!("it lists class `{name}` twice")));
                }
                None => unnumbered.push(name),
            }
        }
        if numbering == Numbering::ByName {
            unnumbered.sort();
        }
        let taken: std::collections::HashSet<u32> = schema.class_ids.values().copied().collect();
        let mut free = (first..).filter(|id| !taken.contains(id));
        for name in unnumbered {
            by_name.insert(name.clone(), free.next().unwrap_or(u32::MAX));
        }
        let mut listed: Vec<(u32, String)> =
            by_name.iter().map(|(n, id)| (*id, n.clone())).collect();
        listed.sort();
        if let Some(pair) = listed.windows(2).find(|p| p[0].0 == p[1].0) {
            return Err(refuse(format!(
                "its classIds give `{}` and `{}` the same id {}",
                pair[0].1, pair[1].1, pair[0].0
            )));
        }
        if dense {
            if let Some((expected, (id, name))) = (first..)
                .zip(&listed)
                .find(|(expected, (id, _))| id != expected)
            {
                return Err(refuse(format!(
                    "its classIds give `{name}` the id {id} where {expected} is next: {format}'s \
                     ids run from {first} without a gap"
                )));
            }
        }
        Ok(Classes { by_name, listed })
    }

    /// The id of class `name`, if the schema has it.
    pub fn id(&self, name: &str) -> Option<u32> {
        self.by_name.get(name).copied()
    }

    /// (id, name) in id order.
    pub fn listed(&self) -> impl Iterator<Item = (u32, &str)> {
        self.listed.iter().map(|(id, name)| (*id, name.as_str()))
    }
}

/// The reasons a format gives for what it cannot hold, naming it.
pub struct Reasons {
    /// For `Out::omit` of groups.
    pub groups: &'static str,
    /// For `Out::omit` of relations.
    pub relations: &'static str,
    /// For a task whose image has no size.
    pub no_size: &'static str,
    /// For an annotation that is no shape on the image (a class, a transcription).
    pub not_a_shape: &'static str,
    /// For a video annotation without a frame.
    pub no_frame: &'static str,
    /// For a point, which has no extent.
    pub point: &'static str,
}

/// How images are named in the export.
pub enum ImageNames {
    /// By task id (unique in a project): labelport's own.
    TaskIds,
    /// By the asset's file name, as Label Studio's converter names them
    /// (`photo.jpg`: `labels/photo.txt`). Two tasks' files may share a name; those
    /// after the first add `_{task id}`, so none overwrites another. `written` holds a
    /// hash of each name given out.
    FileNames {
        /// Hashes of the names given out so far.
        written: Mutex<HashSet<u64>>,
    },
}

impl ImageNames {
    /// Naming for `compat`.
    pub fn for_compat(compat: Option<crate::Compat>) -> ImageNames {
        match compat {
            None => ImageNames::TaskIds,
            Some(crate::Compat::LabelStudio) => ImageNames::FileNames {
                written: Mutex::new(HashSet::new()),
            },
        }
    }
}

const REPEATED_FILE_NAME: &str =
    "file names: images of several tasks share a file name; those after the first carry _{task id}";

/// One image of a task, as a format writes it.
pub struct Image<'i> {
    /// Its name in the export without extension (`t-00000042`, `t-00000042_000017`).
    pub stem: &'i str,
    /// The task's asset URL, as the task gives it.
    pub url: &'i str,
    /// Its extension with the dot (`.jpg`), or empty.
    pub extension: &'i str,
    /// Width and height in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// What listing a task's images reuses from record to record, so it does not
/// allocate per record: the (frame, annotation) pairs, an image's name, the clipping
/// scratch handed to the format.
#[derive(Default)]
struct Scratch {
    frames: Vec<(u32, usize)>,
    stem: String,
    geometry: Geometry,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Hands `each` every image of the record's task with its shape annotations (boxes,
/// polygons, points), in order, and the clipping scratch ([`Geometry::shape`]). What
/// has no place on an image goes to `out`: groups and relations counted, other
/// annotations refused; a task without an image size is left out.
pub fn for_each_image(
    record: &Record<'_, '_>,
    mode: Mode,
    only_key_frames: bool,
    names: &ImageNames,
    reasons: &Reasons,
    out: &mut Out,
    mut each: impl FnMut(&Image<'_>, &mut dyn Iterator<Item = &Annotation<'_>>, &mut Geometry, &mut Out),
) {
    let task = record.task;
    let (Some(width), Some(height)) = (task.asset.width, task.asset.height) else {
        out.leave_out(Some(reasons.no_size));
        return;
    };
    if width == 0 || height == 0 {
        out.leave_out(Some(reasons.no_size));
        return;
    }
    for _ in task.relations() {
        out.omit(reasons.relations);
    }
    let annotations = task.annotations();
    let video = mode == Mode::Video;
    SCRATCH.with_borrow_mut(|scratch| {
        let Scratch {
            frames,
            stem,
            geometry,
        } = scratch;
        frames.clear();
        for (i, a) in annotations.iter().enumerate() {
            match a.kind {
                AnnotationKind::Box | AnnotationKind::Polygon | AnnotationKind::Point => {}
                AnnotationKind::Group => {
                    out.omit(reasons.groups);
                    continue;
                }
                AnnotationKind::Class
                | AnnotationKind::Span
                | AnnotationKind::Transcription
                | AnnotationKind::Answer => {
                    out.refuse(&a.id, reasons.not_a_shape);
                    continue;
                }
            }
            if video {
                let Some(frame) = a.frame else {
                    out.refuse(&a.id, reasons.no_frame);
                    continue;
                };
                if only_key_frames && a.key_frame == Some(false) {
                    continue;
                }
                frames.push((frame, i));
            } else {
                frames.push((0, i));
            }
        }
        let extension = if video {
            ".jpg"
        } else {
            extension(&task.asset.url)
        };
        stem.clear();
        push_stem(stem, task, record.ordinal, names, out);
        let task_stem = stem.len();
        let url = &*task.asset.url;
        if !video {
            let image = Image {
                stem,
                url,
                extension,
                width,
                height,
            };
            each(
                &image,
                &mut frames.iter().map(|(_, i)| &annotations[*i]),
                geometry,
                out,
            );
            return;
        }
        // A video's images are its annotated frames, in frame order.
        frames.sort_unstable();
        let mut start = 0;
        while start < frames.len() {
            let frame = frames[start].0;
            let end = start + frames[start..].partition_point(|(f, _)| *f == frame);
            stem.truncate(task_stem);
            push_frame(stem, frame);
            let image = Image {
                stem,
                url,
                extension,
                width,
                height,
            };
            each(
                &image,
                &mut frames[start..end].iter().map(|(_, i)| &annotations[*i]),
                geometry,
                out,
            );
            start = end;
        }
    });
}

/// Appends the task's image name: its id (or file name, per `names`) where that is a
/// safe file name, else with unsafe characters as `_` and `-{ordinal}` added, so names
/// never collide.
fn push_stem(stem: &mut String, task: &Task<'_>, ordinal: u64, names: &ImageNames, out: &mut Out) {
    let mut digits = itoa::Buffer::new();
    let ordinal = digits.format(ordinal);
    let ImageNames::FileNames { written } = names else {
        stem.push_str(&crate::out::safe_name(&task.id, ordinal));
        return;
    };
    let file = file_stem(&task.asset.url);
    stem.push_str(&crate::out::safe_name(
        if file.is_empty() { &task.id } else { file },
        ordinal,
    ));
    let fresh = written
        .lock()
        .map(|mut set| set.insert(name_hash(stem)))
        .unwrap_or(true);
    if !fresh {
        stem.push('_');
        stem.push_str(&crate::out::safe_name(&task.id, ordinal));
        out.omit(REPEATED_FILE_NAME);
        if let Ok(mut set) = written.lock() {
            set.insert(name_hash(stem));
        }
    }
}

/// A name's hash, as [`ImageNames::FileNames`] remembers it (deterministic: SipHash
/// with fixed keys).
fn name_hash(name: &str) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut hasher);
    hasher.finish()
}

/// The asset's file name (`s3://b/a/photo.jpg?v=1`: `photo.jpg`).
pub fn file_name(url: &str) -> &str {
    let path = url.split(['?', '#']).next().unwrap_or("");
    path.rsplit('/').next().unwrap_or("")
}

/// The asset's file name without its extension (`photo`).
fn file_stem(url: &str) -> &str {
    let file = file_name(url);
    &file[..file.len() - extension(url).len()]
}

fn push_frame(stem: &mut String, frame: u32) {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(frame);
    stem.push('_');
    for _ in digits.len()..6 {
        stem.push('0');
    }
    stem.push_str(digits);
}

/// The extension of the asset's file (`.jpg`), or empty when it has none a file
/// system would take (1 to 5 letters or digits).
fn extension(url: &str) -> &str {
    let file = file_name(url);
    match file.rfind('.') {
        Some(dot)
            if (2..=6).contains(&(file.len() - dot))
                && dot > 0
                && file[dot + 1..].bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            &file[dot..]
        }
        _ => "",
    }
}

/// A shape on its image, clipped to it.
pub struct Region<'g> {
    /// The clipped outline, clockwise as given: a box's four corners, a rotated box's
    /// turned corners, a polygon's vertices, with points where the image edge cut it.
    pub outline: &'g [[f64; 2]],
    /// The enclosing box of the outline: left, top, right, bottom.
    pub bounds: [f64; 4],
    /// The outline's area in square pixels.
    pub area: f64,
    /// Whether clipping cut anything off.
    pub clipped: bool,
}

/// Why a shape has no region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoRegion {
    /// A point: it has no extent.
    Point,
    /// The shape lies outside the image (nothing is left once clipped).
    Outside,
    /// The annotation lacks the geometry of its kind (`bbox`, `points`).
    Missing,
    /// A coordinate is not a finite number.
    NotFinite,
}

impl NoRegion {
    /// Why, for the errors report.
    pub const fn reason(self) -> &'static str {
        match self {
            NoRegion::Point => "a point has no extent; this format holds only boxes and polygons",
            NoRegion::Outside => {
                "the shape lies outside the image: nothing is left once clipped to it"
            }
            NoRegion::Missing => "the annotation lacks its geometry (bbox or points)",
            NoRegion::NotFinite => "a coordinate is not a finite number",
        }
    }
}

/// Scratch space for clipping, reused from shape to shape.
#[derive(Default)]
pub struct Geometry {
    outline: Vec<[f64; 2]>,
    spare: Vec<[f64; 2]>,
}

/// Areas below this (square pixels) are nothing: what clipping leaves of a shape that
/// only touches the image's edge.
const NO_AREA: f64 = 1e-9;

impl Geometry {
    /// The region of box or polygon `a` on a `width` x `height` image.
    pub fn region(
        &mut self,
        a: &Annotation<'_>,
        width: u32,
        height: u32,
    ) -> Result<Region<'_>, NoRegion> {
        self.outline.clear();
        match a.kind {
            AnnotationKind::Box => {
                let b = a.bbox.ok_or(NoRegion::Missing)?;
                self.outline.extend_from_slice(&b.corners());
            }
            AnnotationKind::Polygon if a.points.len() >= 3 => {
                self.outline.extend_from_slice(&a.points);
            }
            AnnotationKind::Point => return Err(NoRegion::Point),
            _ => return Err(NoRegion::Missing),
        }
        if self.outline.iter().flatten().any(|v| !v.is_finite()) {
            return Err(NoRegion::NotFinite);
        }
        let (w, h) = (f64::from(width), f64::from(height));
        let inside = self
            .outline
            .iter()
            .all(|[x, y]| (0.0..=w).contains(x) && (0.0..=h).contains(y));
        if !inside {
            // Sutherland-Hodgman against the image's four edges.
            self.clip(|[x, _]| x >= 0.0, |p, q| cut_x(p, q, 0.0));
            self.clip(|[x, _]| x <= w, |p, q| cut_x(p, q, w));
            self.clip(|[_, y]| y >= 0.0, |p, q| cut_y(p, q, 0.0));
            self.clip(|[_, y]| y <= h, |p, q| cut_y(p, q, h));
        }
        let area = area(&self.outline);
        if self.outline.len() < 3 || area <= NO_AREA {
            return Err(NoRegion::Outside);
        }
        let mut bounds = [
            f64::INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NEG_INFINITY,
        ];
        for [x, y] in &self.outline {
            bounds = [
                bounds[0].min(*x),
                bounds[1].min(*y),
                bounds[2].max(*x),
                bounds[3].max(*y),
            ];
        }
        Ok(Region {
            outline: &self.outline,
            bounds,
            area,
            clipped: !inside,
        })
    }

    /// The region of box or polygon `a` on `image`, or `None` after refusing `a` in
    /// `out` with why: `reasons.point` for a point, else what [`NoRegion`] says.
    pub fn shape(
        &mut self,
        a: &Annotation<'_>,
        image: &Image<'_>,
        reasons: &Reasons,
        out: &mut Out,
    ) -> Option<Region<'_>> {
        match self.region(a, image.width, image.height) {
            Ok(region) => Some(region),
            Err(no) => {
                let why = if no == NoRegion::Point {
                    reasons.point
                } else {
                    no.reason()
                };
                out.refuse(&a.id, why);
                None
            }
        }
    }

    /// Keeps the part of the outline where `keep` holds; `cut` gives the point where
    /// an edge from a kept to a dropped point (or back) crosses the boundary.
    fn clip(
        &mut self,
        keep: impl Fn([f64; 2]) -> bool,
        cut: impl Fn([f64; 2], [f64; 2]) -> [f64; 2],
    ) {
        self.spare.clear();
        let n = self.outline.len();
        for i in 0..n {
            let (p, q) = (self.outline[i], self.outline[(i + 1) % n]);
            match (keep(p), keep(q)) {
                (true, true) => self.spare.push(q),
                (true, false) => self.spare.push(cut(p, q)),
                (false, true) => {
                    self.spare.push(cut(p, q));
                    self.spare.push(q);
                }
                (false, false) => {}
            }
        }
        std::mem::swap(&mut self.outline, &mut self.spare);
    }
}

fn cut_x([px, py]: [f64; 2], [qx, qy]: [f64; 2], x: f64) -> [f64; 2] {
    [x, py + (qy - py) * (x - px) / (qx - px)]
}

fn cut_y([px, py]: [f64; 2], [qx, qy]: [f64; 2], y: f64) -> [f64; 2] {
    [px + (qx - px) * (y - py) / (qy - py), y]
}

/// The shoelace area of a simple polygon.
fn area(points: &[[f64; 2]]) -> f64 {
    let n = points.len();
    let twice: f64 = (0..n)
        .map(|i| {
            let ([x0, y0], [x1, y1]) = (points[i], points[(i + 1) % n]);
            x0 * y1 - x1 * y0
        })
        .sum();
    twice.abs() / 2.0
}

/// A pixel coordinate or area in JSON, to a thousandth of a pixel (what clipping and
/// turning leave beyond that is noise).
pub fn write_pixels(out: &mut Vec<u8>, v: f64) {
    let milli = (v * 1000.0).round();
    if !milli.is_finite() || milli.abs() >= 1e15 {
        crate::json_text::write_finite(out, v);
        return;
    }
    // The digits of the thousandths, as serde_json prints the same value (`10.5`,
    // `640.0`): |milli| < 1e15, so the cast is exact.
    let milli = milli as i64;
    if milli < 0 {
        out.push(b'-');
    }
    let (whole, mut fraction) = (milli.unsigned_abs() / 1000, milli.unsigned_abs() % 1000);
    out.extend_from_slice(itoa::Buffer::new().format(whole).as_bytes());
    out.push(b'.');
    if fraction == 0 {
        out.push(b'0');
        return;
    }
    let mut digits = 3;
    while fraction % 10 == 0 {
        fraction /= 10;
        digits -= 1;
    }
    let text = itoa::Buffer::new().format(fraction).len();
    out.extend(std::iter::repeat_n(b'0', digits - text));
    out.extend_from_slice(itoa::Buffer::new().format(fraction).as_bytes());
}

/// A coordinate in 0..1 with six decimals, as YOLO label files write them.
pub fn write_unit(out: &mut Vec<u8>, v: f64) {
    let micro = (v.clamp(0.0, 1.0) * 1e6).round() as u32;
    let mut digits = itoa::Buffer::new();
    out.push(if micro >= 1_000_000 { b'1' } else { b'0' });
    out.push(b'.');
    if micro >= 1_000_000 {
        out.extend_from_slice(b"000000");
        return;
    }
    let digits = digits.format(micro).as_bytes();
    out.extend(std::iter::repeat_n(b'0', 6 - digits.len()));
    out.extend_from_slice(digits);
}

/// `s` as XML text or attribute content: `& < > " '` escaped; characters XML 1.0
/// cannot hold at all (most control characters) become U+FFFD.
pub fn write_xml(out: &mut Vec<u8>, s: &str) {
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escaped: &[u8] = match b {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            b'"' => b"&quot;",
            b'\'' => b"&apos;",
            0..=8 | 11 | 12 | 14..=31 => "\u{FFFD}".as_bytes(),
            _ => continue,
        };
        out.extend_from_slice(&s.as_bytes()[start..i]);
        out.extend_from_slice(escaped);
        start = i + 1;
    }
    out.extend_from_slice(&s.as_bytes()[start..]);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::formats::testing;
    use serde_json::json;

    fn annotation(json: serde_json::Value) -> Annotation<'static> {
        serde_json::from_str(Box::leak(json.to_string().into_boxed_str())).unwrap()
    }

    #[test]
    fn classes_follow_the_schema_or_its_explicit_ids() {
        let project = testing::project("element", json!({"classes": ["car", "bus"]}));
        let coco = Classes::new(&project, "COCO", 1, false, Numbering::Schema).unwrap();
        assert_eq!(coco.listed().collect::<Vec<_>>(), [(1, "car"), (2, "bus")]);
        let yolo = Classes::new(&project, "YOLO", 0, true, Numbering::Schema).unwrap();
        assert_eq!((yolo.id("bus"), yolo.id("tram")), (Some(1), None));

        let explicit = testing::project(
            "element",
            json!({"classes": ["car", "bus"], "classIds": {"car": 7, "bus": 3}}),
        );
        let coco = Classes::new(&explicit, "COCO", 1, false, Numbering::Schema).unwrap();
        assert_eq!(coco.listed().collect::<Vec<_>>(), [(3, "bus"), (7, "car")]);
        let e = Classes::new(&explicit, "YOLO", 0, true, Numbering::Schema)
            .err()
            .unwrap();
        assert!(
            e.message.contains("`bus` the id 3 where 0 is next"),
            "{}",
            e.message
        );

        // Classes the ids leave out take the free ids, in schema order or by name.
        let partial = testing::project(
            "element",
            json!({"classes": ["zebra", "car", "ant"], "classIds": {"car": 1}}),
        );
        let schema = Classes::new(&partial, "YOLO", 0, true, Numbering::Schema).unwrap();
        assert_eq!(
            schema.listed().collect::<Vec<_>>(),
            [(0, "zebra"), (1, "car"), (2, "ant")]
        );
        let by_name = Classes::new(&partial, "YOLO", 0, true, Numbering::ByName).unwrap();
        assert_eq!(
            by_name.listed().collect::<Vec<_>>(),
            [(0, "ant"), (1, "car"), (2, "zebra")]
        );

        for (labels, why) in [
            (json!({"classes": []}), "lists no classes"),
            (json!({"classes": ["a", "a"]}), "class `a` twice"),
            (
                json!({"classes": ["a"], "classIds": {"a": 1, "z": 2}}),
                "`z`, which is not a class",
            ),
            (
                json!({"classes": ["a", "b"], "classIds": {"a": 1, "b": 1}}),
                "the same id 1",
            ),
        ] {
            let e = Classes::new(
                &testing::project("element", labels),
                "COCO",
                1,
                false,
                Numbering::Schema,
            )
            .err()
            .unwrap();
            assert_eq!(e.field, "format");
            assert!(e.message.contains(why), "{}", e.message);
        }
    }

    #[test]
    fn boxes_are_clipped_and_a_box_outside_has_no_region() {
        let mut g = Geometry::default();
        let inside = annotation(json!({"id": "a", "type": "box", "label": "car",
            "bbox": {"x": 10, "y": 20, "width": 30, "height": 40}}));
        let r = g.region(&inside, 100, 100).unwrap();
        assert_eq!(
            (r.bounds, r.area, r.clipped),
            ([10.0, 20.0, 40.0, 60.0], 1200.0, false)
        );
        assert_eq!(
            r.outline,
            [[10.0, 20.0], [40.0, 20.0], [40.0, 60.0], [10.0, 60.0]]
        );

        let past = annotation(json!({"id": "a", "type": "box", "label": "car",
            "bbox": {"x": -10, "y": 80, "width": 30, "height": 40}}));
        let r = g.region(&past, 100, 100).unwrap();
        assert_eq!(
            (r.bounds, r.area, r.clipped),
            ([0.0, 80.0, 20.0, 100.0], 400.0, true)
        );

        for (x, y) in [(100.0, 0.0), (-30.0, 0.0), (0.0, 100.0)] {
            let outside = annotation(json!({"id": "a", "type": "box", "label": "car",
                "bbox": {"x": x, "y": y, "width": 30, "height": 40}}));
            assert_eq!(
                g.region(&outside, 100, 100).err(),
                Some(NoRegion::Outside),
                "{x} {y}"
            );
        }
        let point =
            annotation(json!({"id": "a", "type": "point", "label": "car", "points": [[1, 2]]}));
        assert_eq!(g.region(&point, 100, 100).err(), Some(NoRegion::Point));
    }

    #[test]
    fn a_rotated_box_turns_about_its_top_left_corner() {
        let mut g = Geometry::default();
        let turned = annotation(json!({"id": "a", "type": "box", "label": "car",
            "bbox": {"x": 50, "y": 50, "width": 20, "height": 10, "rotation": 90}}));
        let r = g.region(&turned, 100, 100).unwrap();
        // Clockwise on screen (y down): the width now points down, the height left.
        let rounded: Vec<[f64; 2]> = r
            .outline
            .iter()
            .map(|p| p.map(|v| (v * 1e9).round() / 1e9))
            .collect();
        assert_eq!(
            rounded,
            [[50.0, 50.0], [50.0, 70.0], [40.0, 70.0], [40.0, 50.0]]
        );
        assert!((r.area - 200.0).abs() < 1e-9);
        let b = r.bounds.map(|v| (v * 1e9).round() / 1e9);
        assert_eq!(b, [40.0, 50.0, 50.0, 70.0]);
    }

    #[test]
    fn a_polygon_past_an_edge_is_cut_along_it() {
        let mut g = Geometry::default();
        let triangle = annotation(json!({"id": "a", "type": "polygon", "label": "car",
            "points": [[-10, 0], [10, 0], [10, 20]]}));
        let r = g.region(&triangle, 100, 100).unwrap();
        assert!(r.clipped);
        assert_eq!(
            r.outline,
            [[0.0, 10.0], [0.0, 0.0], [10.0, 0.0], [10.0, 20.0]]
        );
        assert_eq!(r.area, 150.0);
    }

    #[test]
    fn numbers_and_xml_text() {
        let mut out = Vec::new();
        for v in [0.1234567, 1.0, 0.0, -0.0001, 1.2, 0.000_000_4] {
            write_unit(&mut out, v);
            out.push(b' ');
        }
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "0.123457 1.000000 0.000000 0.000000 1.000000 0.000000 "
        );
        out.clear();
        for v in [12.3456789, -0.0001, 640.0, 10.5, 0.05, -3.007, 1e17] {
            write_pixels(&mut out, v);
            out.push(b' ');
        }
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "12.346 0.0 640.0 10.5 0.05 -3.007 1e17 "
        );
        // The text serde_json gives the same thousandths.
        for milli in -20_000i64..20_000 {
            let v = milli as f64 / 1000.0 + 0.0001;
            out.clear();
            write_pixels(&mut out, v);
            let rounded = (v * 1000.0).round() / 1000.0;
            let rounded = if rounded == 0.0 { 0.0 } else { rounded };
            assert_eq!(
                String::from_utf8_lossy(&out),
                serde_json::to_string(&rounded).unwrap()
            );
        }
        out.clear();
        write_xml(&mut out, "Café <\"a\" & 'b'>\u{1}");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Café &lt;&quot;a&quot; &amp; &apos;b&apos;&gt;\u{FFFD}"
        );
    }

    #[test]
    fn extensions_and_stems() {
        assert_eq!(extension("s3://b/x/IMG_01.JPG?v=2#f"), ".JPG");
        assert_eq!(extension("https://h/a.b/photo"), "");
        assert_eq!(extension("s3://b/archive.tar.gz"), ".gz");
        assert_eq!(extension("s3://b/.hidden"), "");
        let text = json!({"id": "a/b c", "asset": {"url": "u"},
            "state": "annotated", "stage": "Complete", "createdAt": "x"})
        .to_string();
        let task: Task<'_> = serde_json::from_str(&text).unwrap();
        let mut stem = String::new();
        let mut out = Out::new(b"");
        push_stem(&mut stem, &task, 42, &ImageNames::TaskIds, &mut out);
        push_frame(&mut stem, 17);
        assert_eq!(stem, "a_b_c-42_000017");
    }

    #[test]
    fn file_names_are_the_assets_own_and_a_repeated_one_adds_the_task_id() {
        let names = ImageNames::for_compat(Some(crate::Compat::LabelStudio));
        let mut out = Out::new(b"");
        let mut stems = Vec::new();
        for (ordinal, (id, url)) in [
            ("1", "s3://b/x/photo.jpg?v=2"),
            ("2", "s3://b/y/photo.jpg"),
            ("3", "/data/upload/7/ab12-café 1.png"),
            ("4", "https://h/no-extension"),
        ]
        .into_iter()
        .enumerate()
        {
            let text = json!({"id": id, "asset": {"url": url},
                "state": "annotated", "stage": "Complete", "createdAt": "x"})
            .to_string();
            let task: Task<'_> = serde_json::from_str(&text).unwrap();
            let mut stem = String::new();
            push_stem(&mut stem, &task, ordinal as u64, &names, &mut out);
            stems.push(stem);
        }
        assert_eq!(stems, ["photo", "photo_2", "ab12-caf__1-2", "no-extension"]);
        assert_eq!(out.omitted(), [REPEATED_FILE_NAME]);
        assert_eq!(file_name("s3://b/x/photo.jpg?v=2"), "photo.jpg");
    }
}
