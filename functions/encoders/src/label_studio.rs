//! Label Studio's converter layout of CSV and JSON (its `CSV` and `JSON_MIN`), asked for
//! with `"compat": "label-studio"`: one record per annotation, newest first, with the
//! task's data, its `id`, one field per control tag of the labeling config and the
//! annotation's `annotator`, `annotation_id`, `created_at`, `updated_at` and
//! `lead_time`.
//!
//! - A control's field holds its results' values as Label Studio writes them (percent
//!   of the image, UTF-16 offsets), each with `original_width` / `original_height`
//!   where the region has them. A `Choices` or `TextArea` field with one value of one
//!   choice or text holds that text alone; any other field the list of values (JSON
//!   text in a CSV cell).
//! - CSV columns are sorted by name, as the converter sorts them; a data key named like
//!   a control becomes `_data_{key}`. Unlike the converter, which makes its columns
//!   from what the export holds (reading it twice), labelport makes them from the
//!   config, so every control has a column, empty where nothing used it.
//! - A task without annotations gives one record with only its data and id; one whose
//!   annotations were all cancelled gives none, and is left out and reported.
//!   Predictions are not records (the converter reads annotations only); relations
//!   have no field and are counted in the errors report.
//!
//! The records are written from the task model, so the project must have been read
//! from a Label Studio export: its manifest names the tools (`labels.tools`) and the
//! data key of the asset (`assetKey`), and each annotation its tool.

use crate::csv_text::write_cell;
use crate::json_text::{self, write_finite, write_key, write_str, ARRAY_SEPARATOR};
use crate::tabular::TableStyle;
use crate::{ConfigError, Container, EncodeError, Encoder, Out, Record, Settings};
use labelport_model::{Annotation, AnnotationKind, Origin, Submission, Task, TaskState};
use std::cell::RefCell;

/// The fields every record ends with, after the data, the id and the controls: the
/// annotation's.
const ANNOTATION_FIELDS: [(&str, Field); 5] = [
    ("annotator", Field::Annotator),
    ("annotation_id", Field::AnnotationId),
    ("created_at", Field::CreatedAt),
    ("updated_at", Field::UpdatedAt),
    ("lead_time", Field::LeadTime),
];

/// How a taxonomy path is one attribute value (`news / sport`): the decoder joins its
/// levels with it, and this layout splits them apart again.
pub const TAXONOMY_PATH_SEPARATOR: &str = " / ";

/// Why a task gives no record.
const ALL_CANCELLED: &str =
    "every annotation of the task was cancelled: Label Studio's converter writes no record for it";
/// Why relations are counted.
const NO_RELATIONS: &str =
    "relations: Label Studio's CSV and JSON_MIN layouts have no field for them";

/// How a control's values are simplified (the converter's `prettify_result`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ToolKind {
    Choices,
    TextArea,
    Rating,
    Taxonomy,
    Other,
}

#[derive(Debug, Clone)]
struct ToolField {
    name: String,
    kind: ToolKind,
}

/// One field of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Asset,
    Id,
    /// The control at this index of the project's tools.
    Tool(usize),
    /// Who made the annotation: an e-mail, or a user id.
    Annotator,
    AnnotationId,
    CreatedAt,
    UpdatedAt,
    /// Seconds spent.
    LeadTime,
}

/// The fields of the project's records, and how each is written.
pub struct LabelStudioLayout {
    asset_column: String,
    tools: Vec<ToolField>,
    /// Every field, sorted by name: the CSV's columns.
    sorted: Vec<(String, Field)>,
}

impl LabelStudioLayout {
    /// The layout of `settings.project`, which must have been read from a Label Studio
    /// export (its tools and asset key come from the labeling config).
    pub fn new(settings: &Settings<'_>, format: &str) -> Result<Self, ConfigError> {
        settings.fields.refuse_all(format)?;
        let project = settings.project;
        let asset_key = match (&project.asset_key, project.labels.tools.is_empty()) {
            (Some(key), false) => key,
            _ => {
                return Err(ConfigError::new(
                    "compat",
                    "\"label-studio\" writes one field per control tag of a labeling config: \
                     the project must be read from a Label Studio export (`source` with \
                     `tool: LABEL_STUDIO`, or `labelport convert --from label-studio`)",
                ))
            }
        };
        let tools: Vec<ToolField> = project
            .labels
            .tools
            .iter()
            .map(|t| ToolField {
                name: t.name.clone(),
                kind: match t.kind.as_str() {
                    "Choices" => ToolKind::Choices,
                    "TextArea" => ToolKind::TextArea,
                    "Rating" => ToolKind::Rating,
                    "Taxonomy" => ToolKind::Taxonomy,
                    _ => ToolKind::Other,
                },
            })
            .collect();
        let asset_column = if tools.iter().any(|t| t.name == *asset_key) {
            format!("_data_{asset_key}")
        } else {
            asset_key.clone()
        };
        let mut sorted = vec![
            (asset_column.clone(), Field::Asset),
            ("id".to_owned(), Field::Id),
        ];
        sorted.extend(
            tools
                .iter()
                .enumerate()
                .map(|(i, t)| (t.name.clone(), Field::Tool(i))),
        );
        sorted.extend(
            ANNOTATION_FIELDS
                .iter()
                .map(|(name, field)| ((*name).to_owned(), *field)),
        );
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        sorted.dedup_by(|a, b| a.0 == b.0);
        Ok(LabelStudioLayout {
            asset_column,
            tools,
            sorted,
        })
    }

    /// Calls `each` with every annotation the task gives a record, newest first (by
    /// `created_at`, as the converter sorts; equal times keep the export's order), or
    /// `None` once for a task nobody annotated. Returns how many records it made.
    fn for_each_record<'t>(
        task: &'t Task<'_>,
        mut each: impl FnMut(Option<&'t Submission<'t>>),
    ) -> usize {
        let humans = || {
            task.submissions
                .iter()
                .filter(|s| s.origin == Origin::Human)
        };
        let count = humans().count();
        if count == 0 {
            if task.state == TaskState::Skipped {
                return 0;
            }
            each(None);
            return 1;
        }
        // Newest first without sorting a list: at most a few annotations per task, so
        // each step finds the newest one not yet written.
        let mut last: Option<(&str, usize)> = None;
        for _ in 0..count {
            let next = humans()
                .enumerate()
                .filter(|(i, s)| match last {
                    None => true,
                    Some((at, j)) => {
                        let c = created(s);
                        c < at || (c == at && *i > j)
                    }
                })
                .fold(
                    None::<(usize, &Submission<'_>)>,
                    |best, (i, s)| match best {
                        Some((_, b)) if created(b) >= created(s) => best,
                        _ => Some((i, s)),
                    },
                );
            let Some((i, s)) = next else { break };
            last = Some((created(s), i));
            each(Some(s));
        }
        count
    }

    /// Writes field `field` of a record as JSON (the value after `"name":`), or returns
    /// `false` for a control the annotation did not use.
    fn write_json(
        &self,
        out: &mut Vec<u8>,
        field: Field,
        task: &Task<'_>,
        submission: Option<&Submission<'_>>,
    ) -> bool {
        match field {
            Field::Asset => write_str(out, asset_value(task)),
            Field::Id => write_id(out, &task.id),
            Field::Tool(i) => {
                let Some(s) = submission else { return false };
                let tool = &self.tools[i];
                match pretty(tool, s) {
                    Pretty::Nothing => return false,
                    Pretty::One(value) => write_value(out, &ToolValues::new(tool, s), task, value),
                    Pretty::List => write_list(out, tool, task, s),
                }
            }
            Field::LeadTime => match submission {
                Some(s) => write_finite(out, lead_time(s)),
                None => out.extend_from_slice(b"null"),
            },
            // Label Studio's user and annotation ids are numbers.
            Field::Annotator | Field::AnnotationId => match annotation_text(field, submission) {
                Some(text) => write_id(out, text),
                None => out.extend_from_slice(b"null"),
            },
            Field::CreatedAt | Field::UpdatedAt => {
                json_text::write_opt_str(out, annotation_text(field, submission))
            }
        }
        true
    }
}

/// When annotation `s` was made (Label Studio's `created_at`).
fn created<'s>(s: &'s Submission<'_>) -> &'s str {
    s.started_at.as_deref().unwrap_or("")
}

/// An annotation's text field of a record (`None` for the other fields).
fn annotation_text<'t>(field: Field, submission: Option<&'t Submission<'_>>) -> Option<&'t str> {
    let s = submission?;
    match field {
        Field::Annotator => s.labeler.as_deref(),
        Field::AnnotationId => Some(&s.id),
        Field::CreatedAt => s.started_at.as_deref(),
        Field::UpdatedAt => Some(&s.completed_at),
        _ => None,
    }
}

thread_local! {
    /// A cell's JSON before it is quoted into the CSV.
    static CELL: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The converter's `CSV`: sorted columns, one row per annotation.
pub struct LabelStudioCsv {
    layout: LabelStudioLayout,
    style: TableStyle,
}

impl LabelStudioCsv {
    /// The CSV of `settings.project`.
    pub fn new(settings: &Settings<'_>, format: &str) -> Result<Self, ConfigError> {
        Ok(LabelStudioCsv {
            layout: LabelStudioLayout::new(settings, format)?,
            style: TableStyle::from_settings(settings, b',')?,
        })
    }
}

impl Encoder for LabelStudioCsv {
    fn container(&self) -> Container {
        Container::File {
            extension: "csv",
            content_type: "text/csv; charset=utf-8",
        }
    }

    fn header(&self, out: &mut Vec<u8>) {
        self.style.start(out);
        for (i, (name, _)) in self.layout.sorted.iter().enumerate() {
            if i > 0 {
                self.style.next(out);
            }
            write_cell(out, name, self.style.delimiter);
        }
        self.style.end_line(out);
    }

    fn encode(&self, record: &Record<'_, '_>, out: &mut Out) -> Result<(), EncodeError> {
        let task = record.task;
        let (style, layout) = (&self.style, &self.layout);
        let bytes = out.record();
        let rows = CELL.with_borrow_mut(|cell| {
            LabelStudioLayout::for_each_record(task, |submission| {
                for (i, (_, field)) in layout.sorted.iter().enumerate() {
                    if i > 0 {
                        style.next(bytes);
                    }
                    match *field {
                        Field::Asset => style.text(bytes, asset_value(task)),
                        Field::Id => style.text(bytes, &task.id),
                        Field::Tool(t) => {
                            let Some(s) = submission else { continue };
                            let tool = &layout.tools[t];
                            let values = ToolValues::new(tool, s);
                            cell.clear();
                            match pretty(tool, s) {
                                Pretty::Nothing => continue,
                                Pretty::One(value) => match values.text(value) {
                                    Some(text) => {
                                        style.text(bytes, text);
                                        continue;
                                    }
                                    None => write_value(cell, &values, task, value),
                                },
                                Pretty::List => write_list(cell, tool, task, s),
                            }
                            style.text(bytes, std::str::from_utf8(cell).unwrap_or(""));
                        }
                        Field::LeadTime => {
                            if let Some(s) = submission {
                                write_finite(bytes, lead_time(s));
                            }
                        }
                        text => style.text(bytes, annotation_text(text, submission).unwrap_or("")),
                    }
                }
                style.end_line(bytes);
            })
        });
        finish(task, rows, out);
        Ok(())
    }
}

/// The converter's `JSON_MIN`: one JSON array of flat records.
pub struct LabelStudioJsonMin {
    layout: LabelStudioLayout,
}

impl LabelStudioJsonMin {
    /// The JSON_MIN of `settings.project`.
    pub fn new(settings: &Settings<'_>, format: &str) -> Result<Self, ConfigError> {
        Ok(LabelStudioJsonMin {
            layout: LabelStudioLayout::new(settings, format)?,
        })
    }
}

impl Encoder for LabelStudioJsonMin {
    fn container(&self) -> Container {
        Container::File {
            extension: "json",
            content_type: "application/json",
        }
    }

    fn header(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(json_text::ARRAY_OPEN);
    }

    fn separator(&self) -> &'static [u8] {
        ARRAY_SEPARATOR
    }

    fn encode(&self, record: &Record<'_, '_>, out: &mut Out) -> Result<(), EncodeError> {
        let task = record.task;
        let layout = &self.layout;
        let bytes = out.record();
        let mut rows = 0;
        LabelStudioLayout::for_each_record(task, |submission| {
            if rows > 0 {
                bytes.extend_from_slice(ARRAY_SEPARATOR);
            }
            rows += 1;
            bytes.push(b'{');
            let mut first = true;
            let fields = [
                (layout.asset_column.as_str(), Field::Asset),
                ("id", Field::Id),
            ]
            .into_iter()
            .chain(
                layout
                    .tools
                    .iter()
                    .enumerate()
                    .map(|(i, t)| (t.name.as_str(), Field::Tool(i))),
            )
            .chain(ANNOTATION_FIELDS.iter().copied());
            for (name, field) in fields {
                let mark = bytes.len();
                let was_first = first;
                if !std::mem::take(&mut first) {
                    bytes.push(b',');
                }
                write_str(bytes, name);
                bytes.push(b':');
                if !layout.write_json(bytes, field, task, submission) {
                    bytes.truncate(mark);
                    first = was_first;
                }
            }
            bytes.push(b'}');
        });
        finish(task, rows, out);
        Ok(())
    }

    fn footer(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(json_text::ARRAY_CLOSE);
    }
}

/// Leaves out a task that gave no record; counts the relations no record holds.
fn finish(task: &Task<'_>, rows: usize, out: &mut Out) {
    if rows == 0 {
        out.leave_out(Some(ALL_CANCELLED));
        return;
    }
    for s in task
        .submissions
        .iter()
        .filter(|s| s.origin == Origin::Human)
    {
        for _ in &s.relations {
            out.omit(NO_RELATIONS);
        }
    }
}

/// The task's data at the config's first object: the text of a text task, else the URL.
fn asset_value<'t>(task: &'t Task<'_>) -> &'t str {
    task.asset.text.as_deref().unwrap_or(&task.asset.url)
}

/// An id Label Studio writes as a number when it is one (`7`), else as a string.
fn write_id(out: &mut Vec<u8>, id: &str) {
    let is_number = (1..=15).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_digit())
        && (id == "0" || !id.starts_with('0'));
    if is_number {
        out.extend_from_slice(id.as_bytes());
    } else {
        write_str(out, id);
    }
}

/// A number, or `null` where it is not finite (a shape on an image of unknown size).
fn write_number(out: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        write_finite(out, v);
    } else {
        out.extend_from_slice(b"null");
    }
}

/// One value of a control's field: what one Label Studio result held.
#[derive(Clone, Copy)]
enum Value<'t, 's> {
    /// Classes of one `choices` or `taxonomy` result.
    Classes(&'t [Annotation<'s>]),
    /// A region, span, transcription or answer, with the other labels of its result.
    Region(&'t [Annotation<'s>]),
    /// A per-region result: the tool's attribute values on region `.0`.
    Attribute(&'t Annotation<'s>),
}

/// The values of one control in one annotation, in the annotation's order.
struct ToolValues<'t, 's> {
    tool: &'t ToolField,
    annotations: &'t [Annotation<'s>],
}

impl<'t, 's> ToolValues<'t, 's> {
    fn new(tool: &'t ToolField, s: &'t Submission<'s>) -> Self {
        ToolValues {
            tool,
            annotations: &s.annotations,
        }
    }

    /// The decoder made one annotation per label of a result: the first keeps the
    /// result's id, the others follow it as `{id}:2`, `{id}:3`, ...
    fn result_len(&self, at: usize) -> usize {
        let base = self.annotations[at].id.as_ref();
        1 + self.annotations[at + 1..]
            .iter()
            .take_while(|a| {
                a.id.strip_prefix(base)
                    .and_then(|rest| rest.strip_prefix(':'))
                    .is_some_and(|n| n.parse::<u32>().is_ok())
            })
            .count()
    }

    fn for_each(&self, mut each: impl FnMut(Value<'t, 's>)) {
        let name = self.tool.name.as_str();
        let mut at = 0;
        while at < self.annotations.len() {
            let a = &self.annotations[at];
            let len = if a.tool.as_deref() == Some(name) {
                self.result_len(at)
            } else {
                1
            };
            let result = &self.annotations[at..at + len];
            if a.tool.as_deref() == Some(name) {
                each(match a.kind {
                    AnnotationKind::Class => Value::Classes(result),
                    _ => Value::Region(result),
                });
            }
            for region in result {
                if region.attributes.iter().any(|t| t.name == name) {
                    each(Value::Attribute(region));
                }
            }
            at += len;
        }
    }

    fn count(&self) -> usize {
        let mut n = 0;
        self.for_each(|_| n += 1);
        n
    }

    fn attribute_values(
        &self,
        region: &'t Annotation<'s>,
    ) -> impl Iterator<Item = &'t str> + Clone + '_ {
        region
            .attributes
            .iter()
            .filter(|t| t.name == self.tool.name)
            .map(|t| t.value.as_ref())
    }

    /// The text a value is written as, where the converter simplifies it: a `Choices`
    /// result of one choice, a `TextArea` result of one text.
    fn text(&self, value: Value<'t, 's>) -> Option<&'t str> {
        match (self.tool.kind, value) {
            (ToolKind::Choices, Value::Classes(classes)) => {
                only(classes.iter().filter_map(|a| a.label.as_deref()))
            }
            (ToolKind::TextArea, Value::Region([a])) => a.text.as_deref(),
            (ToolKind::Choices | ToolKind::TextArea, Value::Attribute(region)) => {
                only(self.attribute_values(region))
            }
            _ => None,
        }
    }
}

/// The one item of `items`, if there is exactly one.
fn only<'t>(mut items: impl Iterator<Item = &'t str>) -> Option<&'t str> {
    match (items.next(), items.next()) {
        (Some(item), None) => Some(item),
        _ => None,
    }
}

/// What a control's field holds in one annotation (the converter's
/// `prettify_result`).
enum Pretty<'t, 's> {
    /// The control was not used: no field (an empty CSV cell).
    Nothing,
    /// One value of a `Choices` or `TextArea` control: the value alone.
    One(Value<'t, 's>),
    /// A list of values ([`write_list`]).
    List,
}

fn pretty<'t, 's>(tool: &'t ToolField, s: &'t Submission<'s>) -> Pretty<'t, 's> {
    let values = ToolValues::new(tool, s);
    match values.count() {
        0 => Pretty::Nothing,
        1 if matches!(tool.kind, ToolKind::Choices | ToolKind::TextArea) => {
            let mut first = None;
            values.for_each(|v| first = first.or(Some(v)));
            first.map_or(Pretty::Nothing, Pretty::One)
        }
        _ => Pretty::List,
    }
}

/// Writes `tool`'s values in submission `s` as a JSON list.
fn write_list(out: &mut Vec<u8>, tool: &ToolField, task: &Task<'_>, s: &Submission<'_>) {
    let values = ToolValues::new(tool, s);
    out.push(b'[');
    let mut first = true;
    values.for_each(|value| {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        write_value(out, &values, task, value);
    });
    out.push(b']');
}

/// Writes one value: its text where the converter simplifies it, else its object.
fn write_value<'t, 's>(
    out: &mut Vec<u8>,
    values: &ToolValues<'t, 's>,
    task: &Task<'_>,
    value: Value<'t, 's>,
) {
    if let Some(text) = values.text(value) {
        return write_str(out, text);
    }
    let tool = values.tool;
    match value {
        Value::Region(result) => write_region(out, tool, task, result),
        Value::Classes(classes) if tool.kind == ToolKind::Taxonomy => {
            out.push(b'{');
            write_taxonomy(
                out,
                classes.iter().map(|a| {
                    a.attributes
                        .iter()
                        .find(|t| t.name == "taxonomy")
                        .map_or(a.label.as_deref().unwrap_or(""), |t| t.value.as_ref())
                }),
            );
            out.push(b'}');
        }
        Value::Classes(classes) => {
            out.extend_from_slice(b"{\"choices\":");
            json_text::write_str_array(out, classes.iter().filter_map(|a| a.label.as_deref()));
            out.push(b'}');
        }
        Value::Attribute(region) => {
            let attribute = values.attribute_values(region);
            out.push(b'{');
            match tool.kind {
                ToolKind::TextArea => {
                    out.extend_from_slice(b"\"text\":");
                    json_text::write_str_array(out, attribute);
                }
                ToolKind::Rating => {
                    out.extend_from_slice(b"\"rating\":");
                    write_rating(out, attribute.clone().next().unwrap_or(""));
                }
                ToolKind::Taxonomy => write_taxonomy(out, attribute),
                ToolKind::Choices | ToolKind::Other => {
                    out.extend_from_slice(b"\"choices\":");
                    json_text::write_str_array(out, attribute);
                }
            }
            out.push(b'}');
        }
    }
}

/// `"taxonomy":[[level, ...], ...]`: each path split into its levels.
fn write_taxonomy<'p>(out: &mut Vec<u8>, paths: impl Iterator<Item = &'p str>) {
    out.extend_from_slice(b"\"taxonomy\":[");
    for (i, path) in paths.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json_text::write_str_array(out, path.split(TAXONOMY_PATH_SEPARATOR));
    }
    out.push(b']');
}

/// Label Studio's `lead_time`: seconds spent on the annotation.
fn lead_time(s: &Submission<'_>) -> f64 {
    s.duration_ms as f64 / 1000.0
}

/// A rating as its number, or as the text it is.
fn write_rating(out: &mut Vec<u8>, text: &str) {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => write_finite(out, v),
        _ => write_str(out, text),
    }
}

/// One region's value, in percent of the image as Label Studio holds it.
fn write_region(out: &mut Vec<u8>, tool: &ToolField, task: &Task<'_>, result: &[Annotation<'_>]) {
    let a = &result[0];
    let (w, h) = (
        f64::from(task.asset.width.unwrap_or(0)),
        f64::from(task.asset.height.unwrap_or(0)),
    );
    let (px, py) = (|x: f64| x / w * 100.0, |y: f64| y / h * 100.0);
    let labelled = result
        .iter()
        .filter_map(|a| a.label.as_deref())
        .filter(|l| !l.is_empty());
    let mut first = true;
    out.push(b'{');
    let labels = |out: &mut Vec<u8>, first: &mut bool, key: &str| {
        if labelled.clone().next().is_some() {
            write_key(out, first, key);
            json_text::write_str_array(out, labelled.clone());
        }
    };
    let size = |out: &mut Vec<u8>, first: &mut bool| {
        if let (Some(width), Some(height)) = (task.asset.width, task.asset.height) {
            write_key(out, first, "original_width");
            json_text::write_int(out, width);
            write_key(out, first, "original_height");
            json_text::write_int(out, height);
        }
    };
    match a.kind {
        AnnotationKind::Box => {
            if let Some(b) = a.bbox {
                for (key, v) in [
                    ("x", px(b.x)),
                    ("y", py(b.y)),
                    ("width", px(b.width)),
                    ("height", py(b.height)),
                    ("rotation", b.rotation.unwrap_or(0.0)),
                ] {
                    write_key(out, &mut first, key);
                    write_number(out, v);
                }
            }
            labels(out, &mut first, "rectanglelabels");
            size(out, &mut first);
        }
        AnnotationKind::Polygon => {
            write_key(out, &mut first, "points");
            out.push(b'[');
            for (i, [x, y]) in a.points.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.push(b'[');
                write_number(out, px(*x));
                out.push(b',');
                write_number(out, py(*y));
                out.push(b']');
            }
            out.push(b']');
            labels(out, &mut first, "polygonlabels");
            size(out, &mut first);
        }
        AnnotationKind::Point => {
            if let Some([x, y]) = a.points.first() {
                write_key(out, &mut first, "x");
                write_number(out, px(*x));
                write_key(out, &mut first, "y");
                write_number(out, py(*y));
            }
            labels(out, &mut first, "keypointlabels");
            size(out, &mut first);
        }
        AnnotationKind::Span => {
            let text = task.asset.text.as_deref().unwrap_or("");
            if let (Some(s), Some(e)) = (a.start, a.end) {
                write_key(out, &mut first, "start");
                json_text::write_int(out, utf16_units(text, s));
                write_key(out, &mut first, "end");
                json_text::write_int(out, utf16_units(text, e));
            }
            if let Some(t) = a.text.as_deref() {
                write_key(out, &mut first, "text");
                write_str(out, t);
            }
            labels(out, &mut first, "labels");
        }
        AnnotationKind::Answer if tool.kind == ToolKind::Rating => {
            write_key(out, &mut first, "rating");
            write_rating(out, a.text.as_deref().unwrap_or(""));
        }
        _ => {
            write_key(out, &mut first, "text");
            json_text::write_str_array(out, [a.text.as_deref().unwrap_or("")]);
        }
    }
    out.push(b'}');
}

/// The UTF-16 offset of character `chars` of `text`: Label Studio counts JavaScript's
/// string units.
fn utf16_units(text: &str, chars: u32) -> usize {
    text.chars().take(chars as usize).map(char::len_utf16).sum()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::formats::testing;
    use labelport_model::Project;

    fn project() -> Project {
        let mut project = testing::project(
            "element",
            serde_json::json!({
                "classes": ["car", "sunny", "rain"], "attributes": ["occluded"],
                "formFields": ["note"],
                "tools": [{"name": "box", "kind": "RectangleLabels"}, {"name": "weather", "kind": "Choices"},
                          {"name": "occluded", "kind": "Choices"}, {"name": "note", "kind": "TextArea"},
                          {"name": "image", "kind": "Choices"}],
            }),
        );
        project.asset_key = Some("image".to_owned());
        project
    }

    /// Two annotations (the newer made first in the export; the older with a choices
    /// result of two choices, which the converter writes as the lone object), a
    /// cancelled-only task and an unannotated one.
    const TASKS: [&str; 3] = [
        r#"{"id":"7","asset":{"url":"s3://b/a.jpg","width":200,"height":100},"state":"annotated","stage":"Complete","createdAt":"x",
            "submissions":[
              {"id":"prediction-1","stage":"Complete","origin":"machine","completedAt":"p","annotations":[
                {"id":"p1","type":"class","label":"rain","tool":"weather"}]},
              {"id":"12","stage":"Complete","origin":"human","labeler":"ann@x.com","startedAt":"2024-01-02","completedAt":"2024-01-03","durationMs":2500,
               "annotations":[{"id":"c1","type":"class","label":"sunny","tool":"weather"}]},
              {"id":"11","stage":"Complete","origin":"human","labeler":"5","startedAt":"2024-01-01","completedAt":"2024-01-01","durationMs":12000,
               "annotations":[
                {"id":"r1","type":"box","label":"car","tool":"box","bbox":{"x":20,"y":20,"width":100,"height":30},
                 "attributes":[{"name":"occluded","value":"yes"}]},
                {"id":"c1","type":"class","label":"sunny","tool":"weather"},
                {"id":"c1:2","type":"class","label":"rain","tool":"weather"},
                {"id":"n1","type":"answer","field":"note","text":"a \"quoted\", note","tool":"note"}],
               "relations":[{"id":"x","label":"near","from":"r1","to":"c1"}]}]}"#,
        r#"{"id":"8","asset":{"url":"s3://b/b.jpg"},"state":"skipped","stage":"Complete","createdAt":"x"}"#,
        r#"{"id":"t9","asset":{"url":"s3://b/c.jpg"},"state":"pending","stage":"Complete","createdAt":"x"}"#,
    ];

    #[test]
    fn csv_has_sorted_columns_and_one_row_per_annotation_newest_first() {
        let project = project();
        let csv = testing::build(
            "CSV",
            &project,
            serde_json::json!({"compat": "label-studio"}),
        )
        .unwrap();
        let file = testing::file(csv.as_ref(), &TASKS);
        assert_eq!(
            file,
            "_data_image,annotation_id,annotator,box,created_at,id,image,lead_time,note,occluded,updated_at,weather\n\
             s3://b/a.jpg,12,ann@x.com,,2024-01-02,7,,2.5,,,2024-01-03,sunny\n\
             s3://b/a.jpg,11,5,\"[{\"\"x\"\":10.0,\"\"y\"\":20.0,\"\"width\"\":50.0,\"\"height\"\":30.0,\"\"rotation\"\":0.0,\"\"rectanglelabels\"\":[\"\"car\"\"],\"\"original_width\"\":200,\"\"original_height\"\":100}]\",\
             2024-01-01,7,,12.0,\"a \"\"quoted\"\", note\",yes,2024-01-01,\"{\"\"choices\"\":[\"\"sunny\"\",\"\"rain\"\"]}\"\n\
             s3://b/c.jpg,,,,,t9,,,,,,\n"
        );
        let skipped: labelport_model::Task<'_> = serde_json::from_str(TASKS[1]).unwrap();
        let mut out = crate::Out::new(csv.separator());
        out.begin_record();
        let record = crate::Record {
            task: &skipped,
            raw: None,
            ordinal: 0,
        };
        csv.encode(&record, &mut out).unwrap();
        assert!(out.record_left_out());
        let report = std::str::from_utf8(out.record_refusals()).unwrap();
        assert!(report.contains("was cancelled"), "{report}");
    }

    #[test]
    fn json_min_writes_ids_as_numbers_and_leaves_unused_controls_out() {
        let project = project();
        let json = testing::build(
            "JSON",
            &project,
            serde_json::json!({"compat": "label-studio"}),
        )
        .unwrap();
        let file = testing::file(json.as_ref(), &TASKS);
        let parsed: serde_json::Value = serde_json::from_str(&file).unwrap();
        let task: labelport_model::Task<'_> = serde_json::from_str(TASKS[0]).unwrap();
        let mut out = crate::Out::new(json.separator());
        out.begin_record();
        let record = crate::Record {
            task: &task,
            raw: None,
            ordinal: 0,
        };
        json.encode(&record, &mut out).unwrap();
        assert_eq!(
            out.omitted(),
            [super::NO_RELATIONS],
            "the relation is counted"
        );
        assert_eq!(
            parsed,
            serde_json::json!([
                {"_data_image": "s3://b/a.jpg", "id": 7, "weather": "sunny", "annotator": "ann@x.com",
                 "annotation_id": 12, "created_at": "2024-01-02", "updated_at": "2024-01-03", "lead_time": 2.5},
                {"_data_image": "s3://b/a.jpg", "id": 7,
                 "box": [{"x": 10.0, "y": 20.0, "width": 50.0, "height": 30.0, "rotation": 0.0,
                          "rectanglelabels": ["car"], "original_width": 200, "original_height": 100}],
                 "weather": {"choices": ["sunny", "rain"]}, "occluded": "yes", "note": "a \"quoted\", note",
                 "annotator": 5, "annotation_id": 11, "created_at": "2024-01-01", "updated_at": "2024-01-01", "lead_time": 12.0},
                {"_data_image": "s3://b/c.jpg", "id": "t9", "annotator": null, "annotation_id": null,
                 "created_at": null, "updated_at": null, "lead_time": null},
            ])
        );
    }

    #[test]
    fn a_project_not_read_from_label_studio_is_refused_naming_compat() {
        let native = testing::project("element", serde_json::json!({"classes": ["car"]}));
        for format in ["CSV", "JSON"] {
            let err = testing::build(
                format,
                &native,
                serde_json::json!({"compat": "label-studio"}),
            )
            .err()
            .unwrap();
            assert_eq!(err.field, "compat", "{format}");
            assert!(
                err.message.contains("Label Studio export"),
                "{}",
                err.message
            );
        }
        let err = testing::build(
            "JSON",
            &project(),
            serde_json::json!({"compat": "label-studio", "structure": "legacy"}),
        )
        .err()
        .unwrap();
        assert_eq!(err.field, "structure");
    }
}
