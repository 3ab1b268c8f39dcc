//! A Label Studio JSON export as a source: one JSON array of tasks (or one task per
//! line), read with the project's labeling config ([`LabelingConfig`]).
//!
//! - A task is `{"id", "data", "annotations", "predictions", "created_at", ..}`. Its
//!   asset is `data` at the config's first object tag (`$image`): the URL, or the text
//!   of a `Text` object.
//! - Predictions become machine submissions (`model_version`, `score`), then each
//!   annotation that was not cancelled a human one (`completed_by`, `created_at`,
//!   `updated_at`, `lead_time`), in the export's order: the last is the task's current
//!   state. A task whose annotations were all cancelled is `skipped`; one marked
//!   `ground_truth` is `validated`; one without annotations is `pending`. Every task is
//!   in stage `Complete`, since Label Studio has no workflow stages.
//! - Results: `rectanglelabels` become boxes (rotation kept), `polygonlabels` polygons,
//!   `keypointlabels` points, percent coordinates turned into pixels with
//!   `original_width` / `original_height`; `labels` spans over text (Label Studio counts
//!   UTF-16 units, labelport Unicode scalar values); `choices` and `taxonomy` classes,
//!   or attributes of their region when `perRegion`; `textarea` transcriptions (of
//!   their region, if any) or form answers; `rating` form answers; `relation`
//!   relations. A region with several labels becomes one annotation per label.
//! - An image's size is its results' `original_width` / `original_height`: Label
//!   Studio records it nowhere else, so a task without a region has none, and the image
//!   formats leave it out and report it.
//! - Refused, with the task's id (the pipeline adds file and line): a task that is not
//!   an object, a result whose `from_name` is not in the config, a label the config does
//!   not list, coordinates outside 0-100, brush masks (RLE), which labelport does not
//!   read.

mod results;

use super::label_studio_config::{LabelingConfig, ObjectKind};
use super::{DecodeError, Decoder, Framing};
use labelport_model::{Annotation, Asset, Links, Origin, Submission, Task, TaskState};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// Reads Label Studio tasks with their labeling config.
pub struct LabelStudioDecoder {
    config: LabelingConfig,
    framing: Framing,
}

impl LabelStudioDecoder {
    /// A decoder of tasks as one JSON array ([`Framing::JsonArray`]) or one per line.
    pub fn new(config: LabelingConfig, framing: Framing) -> Self {
        LabelStudioDecoder { config, framing }
    }

    /// The labeling config.
    pub fn config(&self) -> &LabelingConfig {
        &self.config
    }
}

#[derive(Deserialize)]
struct LsTask<'a> {
    id: Option<LsId>,
    #[serde(default, borrow)]
    data: BTreeMap<Cow<'a, str>, &'a RawValue>,
    #[serde(default, borrow)]
    annotations: Vec<LsAnnotation<'a>>,
    #[serde(default, borrow)]
    predictions: Vec<LsPrediction<'a>>,
    #[serde(default, borrow)]
    created_at: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    updated_at: Option<Cow<'a, str>>,
}

/// An id written as a number or a string.
struct LsId(String);

impl<'de> Deserialize<'de> for LsId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = LsId;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number or a string")
            }
            fn visit_u64<E>(self, v: u64) -> Result<LsId, E> {
                Ok(LsId(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<LsId, E> {
                Ok(LsId(v.to_string()))
            }
            fn visit_str<E>(self, v: &str) -> Result<LsId, E> {
                Ok(LsId(v.to_owned()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[derive(Deserialize)]
struct LsAnnotation<'a> {
    id: Option<LsId>,
    #[serde(default)]
    completed_by: Option<CompletedBy<'a>>,
    #[serde(default, borrow)]
    result: Vec<LsResult<'a>>,
    #[serde(default)]
    was_cancelled: bool,
    #[serde(default)]
    ground_truth: bool,
    #[serde(default, borrow)]
    created_at: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    updated_at: Option<Cow<'a, str>>,
    #[serde(default)]
    lead_time: Option<f64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum CompletedBy<'a> {
    Id(u64),
    User {
        id: Option<u64>,
        #[serde(borrow)]
        email: Option<Cow<'a, str>>,
    },
}

#[derive(Deserialize)]
struct LsPrediction<'a> {
    id: Option<LsId>,
    #[serde(default, borrow)]
    model_version: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    result: Vec<LsResult<'a>>,
    #[serde(default, borrow)]
    created_at: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct LsResult<'a> {
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    from_name: Option<Cow<'a, str>>,
    #[serde(default)]
    original_width: Option<f64>,
    #[serde(default)]
    original_height: Option<f64>,
    #[serde(default, borrow)]
    value: LsValue<'a>,
    #[serde(default)]
    score: Option<f64>,
    // Relations.
    #[serde(default, borrow)]
    from_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    to_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    labels: Labels<'a>,
}

#[derive(Default, Deserialize)]
struct LsValue<'a> {
    x: Option<f64>,
    y: Option<f64>,
    width: Option<f64>,
    height: Option<f64>,
    rotation: Option<f64>,
    #[serde(default)]
    points: Vec<[f64; 2]>,
    start: Option<&'a RawValue>,
    end: Option<&'a RawValue>,
    #[serde(default, borrow)]
    text: Option<&'a RawValue>,
    #[serde(default, borrow)]
    labels: Labels<'a>,
    #[serde(default, borrow)]
    rectanglelabels: Labels<'a>,
    #[serde(default, borrow)]
    polygonlabels: Labels<'a>,
    #[serde(default, borrow)]
    keypointlabels: Labels<'a>,
    #[serde(default, borrow)]
    choices: Labels<'a>,
    #[serde(default, borrow)]
    taxonomy: Vec<Vec<Cow<'a, str>>>,
    rating: Option<f64>,
}

/// A result's labels: one, almost always, kept without a heap allocation; each
/// borrowed from the export unless it has escapes.
#[derive(Default)]
enum Labels<'a> {
    #[default]
    None,
    One(Cow<'a, str>),
    Many(Vec<Cow<'a, str>>),
}

impl<'a> Labels<'a> {
    fn as_slice(&self) -> &[Cow<'a, str>] {
        match self {
            Labels::None => &[],
            Labels::One(label) => std::slice::from_ref(label),
            Labels::Many(labels) => labels,
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Labels<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visitor<'a> {
            type Value = Labels<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of labels")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Labels<'a>, A::Error> {
                let Some(Label(first)) = seq.next_element()? else {
                    return Ok(Labels::None);
                };
                let Some(Label(second)) = seq.next_element()? else {
                    return Ok(Labels::One(first));
                };
                let mut labels = vec![first, second];
                while let Some(Label(label)) = seq.next_element()? {
                    labels.push(label);
                }
                Ok(Labels::Many(labels))
            }
        }
        deserializer.deserialize_seq(Visitor(std::marker::PhantomData))
    }
}

/// A label borrowed from the export where it can be (serde's `Cow` always copies).
struct Label<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Label<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visitor<'a> {
            type Value = Label<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a label")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Label<'a>, E> {
                Ok(Label(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Label<'a>, E> {
                Ok(Label(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(Visitor(std::marker::PhantomData))
    }
}

/// The error of task `id`.
fn refuse(id: Option<&str>, message: String) -> DecodeError {
    DecodeError {
        message: match id {
            Some(id) => format!("task {id}: {message}"),
            None => message,
        },
        column: None,
        task_id: id.map(str::to_owned),
    }
}

impl Decoder for LabelStudioDecoder {
    fn framing(&self) -> Framing {
        self.framing
    }

    fn decode<'a>(&self, text: Option<&'a str>, bytes: &'a [u8]) -> Result<Task<'a>, DecodeError> {
        // serde would also read a struct from an array; a task is an object.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(DecodeError {
                message: "not a Label Studio task: a task must be a JSON object".to_owned(),
                column: None,
                task_id: None,
            });
        }
        let parsed: Result<LsTask<'a>, _> = match text {
            Some(text) => serde_json::from_str(text),
            None => serde_json::from_slice(bytes),
        };
        let ls = parsed.map_err(|e| {
            let message = e.to_string().replace(" at line 1 column ", " at column ");
            DecodeError {
                message: format!("not a Label Studio task: {message}"),
                column: (e.column() > 0).then_some(e.column() as u64),
                task_id: None,
            }
        })?;
        let mut ls = ls;
        let id = ls
            .id
            .take()
            .map(|i| i.0)
            .ok_or_else(|| refuse(None, "a task without an `id`".to_owned()))?;
        self.task(ls, id)
    }

    fn is_native(&self) -> bool {
        false
    }
}

impl LabelStudioDecoder {
    fn task<'a>(&self, ls: LsTask<'a>, id: String) -> Result<Task<'a>, DecodeError> {
        let object = &self.config.objects[0];
        let value = |key: &str| -> Option<Cow<'a, str>> {
            let raw = ls.data.get(key)?;
            serde_json::from_str::<Cow<'a, str>>(raw.get()).ok()
        };
        let data = value(&object.data_key).ok_or_else(|| {
            refuse(
                Some(&id),
                format!(
                    "its data has no text at `{}`, which the config's first object reads",
                    object.data_key
                ),
            )
        })?;
        let mut asset = Asset::default();
        match object.kind {
            ObjectKind::Text => {
                asset.url = Cow::Owned(format!("label-studio://task/{id}"));
                asset.text = Some(data);
            }
            _ => asset.url = data,
        }

        let mut submissions = Vec::with_capacity(ls.predictions.len() + ls.annotations.len());
        let mut size: Option<(f64, f64)> = None;
        for (k, prediction) in ls.predictions.iter().enumerate() {
            let (annotations, relations) =
                self.results(&id, &prediction.result, asset.text.as_deref(), &mut size)?;
            let sub_id = prediction.id.as_ref().map_or_else(
                || format!("prediction-{k}"),
                |i| format!("prediction-{}", i.0),
            );
            submissions.push(Submission {
                id: Cow::Owned(sub_id),
                stage: Cow::Borrowed("Complete"),
                origin: Origin::Machine,
                labeler: None,
                model: prediction.model_version.clone(),
                started_at: None,
                completed_at: prediction.created_at.clone().unwrap_or(Cow::Borrowed("")),
                duration_ms: 0,
                annotations,
                relations,
            });
        }
        let (mut annotated, mut cancelled, mut ground_truth) = (false, false, false);
        let mut duration_ms = 0u64;
        for (k, annotation) in ls.annotations.iter().enumerate() {
            if annotation.was_cancelled {
                cancelled = true;
                continue;
            }
            annotated = true;
            ground_truth |= annotation.ground_truth;
            let (annotations, relations) =
                self.results(&id, &annotation.result, asset.text.as_deref(), &mut size)?;
            let labeler = match &annotation.completed_by {
                Some(CompletedBy::User {
                    email: Some(email), ..
                }) => email.clone(),
                Some(CompletedBy::User { id: Some(user), .. }) | Some(CompletedBy::Id(user)) => {
                    Cow::Owned(user.to_string())
                }
                _ => Cow::Borrowed("unknown"),
            };
            let ms = annotation
                .lead_time
                .map_or(0, |s| (s.max(0.0) * 1000.0).round() as u64);
            duration_ms += ms;
            // Label Studio's own annotation id, as its converter writes it.
            let sub_id = annotation
                .id
                .as_ref()
                .map_or_else(|| format!("annotation-{k}"), |i| i.0.clone());
            submissions.push(Submission {
                id: Cow::Owned(sub_id),
                stage: Cow::Borrowed("Complete"),
                origin: Origin::Human,
                labeler: Some(labeler),
                model: None,
                // Label Studio's created_at is when the annotation was first made;
                // updated_at, when it was last submitted.
                started_at: annotation.created_at.clone(),
                completed_at: annotation
                    .updated_at
                    .clone()
                    .or_else(|| annotation.created_at.clone())
                    .unwrap_or(Cow::Borrowed("")),
                duration_ms: ms,
                annotations,
                relations,
            });
        }
        if let Some((w, h)) = size {
            asset.width = Some(w.round() as u32);
            asset.height = Some(h.round() as u32);
        }
        let state = if ground_truth {
            TaskState::Validated
        } else if annotated {
            TaskState::Annotated
        } else if cancelled {
            TaskState::Skipped
        } else {
            TaskState::Pending
        };
        Ok(Task {
            id: Cow::Owned(id),
            asset,
            state,
            stage: Cow::Borrowed("Complete"),
            preview: false,
            assignee: None,
            created_at: ls.created_at.unwrap_or(Cow::Borrowed("")),
            updated_at: ls.updated_at,
            updated_by: None,
            duration_ms,
            comment_count: 0,
            links: Links::default(),
            batches: Vec::new(),
            submissions,
        })
    }
}

/// One annotation per label of a region: the first keeps the region's id, the others
/// get `{id}:2`, `{id}:3`, ...
fn push_labelled<'a>(
    annotations: &mut Vec<Annotation<'a>>,
    mut shape: Annotation<'a>,
    labels: &[Cow<'a, str>],
) {
    // The region itself takes the first label (an unlabelled `rectangle` none); only
    // the rare further labels copy it.
    shape.label = Some(labels.first().cloned().unwrap_or(Cow::Borrowed("")));
    annotations.push(shape);
    let region = annotations.len() - 1;
    for (i, label) in labels.iter().enumerate().skip(1) {
        let mut a = annotations[region].clone();
        a.id = Cow::Owned(format!("{}:{}", annotations[region].id, i + 1));
        a.label = Some(label.clone());
        annotations.push(a);
    }
}

/// A span offset written as a number.
fn offset(raw: Option<&RawValue>) -> Option<usize> {
    raw.and_then(|r| r.get().parse::<usize>().ok())
}

/// The texts of a `textarea` value: one string or a list.
fn texts(raw: Option<&RawValue>) -> Vec<String> {
    let Some(raw) = raw else { return Vec::new() };
    serde_json::from_str::<Vec<String>>(raw.get())
        .or_else(|_| serde_json::from_str::<String>(raw.get()).map(|s| vec![s]))
        .unwrap_or_default()
}

/// A taxonomy path as one attribute value, its levels joined (`news / sport`).
fn taxonomy_path(path: &[Cow<'_, str>]) -> String {
    path.iter()
        .map(|level| level.as_ref())
        .collect::<Vec<_>>()
        .join(labelport_encoders::TAXONOMY_PATH_SEPARATOR)
}

/// The Unicode scalar value offset of UTF-16 offset `units` in `text`.
fn utf16_to_chars(text: &str, units: usize) -> Option<u32> {
    let (mut seen, mut chars) = (0usize, 0u32);
    for c in text.chars() {
        if seen >= units {
            break;
        }
        seen += c.len_utf16();
        chars += 1;
    }
    (seen == units).then_some(chars)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use labelport_model::{AnnotationKind, BoundingBox};

    const IMAGE_CONFIG: &str = r#"<View>
        <Image name="image" value="$image"/>
        <RectangleLabels name="box" toName="image"><Label value="car"/><Label value="bus"/></RectangleLabels>
        <PolygonLabels name="poly" toName="image"><Label value="road"/></PolygonLabels>
        <KeyPointLabels name="kp" toName="image"><Label value="nose"/></KeyPointLabels>
        <Choices name="weather" toName="image"><Choice value="sunny"/></Choices>
        <Choices name="occluded" toName="image" perRegion="true"><Choice value="yes"/></Choices>
        <Relations><Relation value="next to"/></Relations>
      </View>"#;

    fn decoder(xml: &str) -> LabelStudioDecoder {
        LabelStudioDecoder::new(LabelingConfig::parse(xml).unwrap(), Framing::JsonArray)
    }

    fn decode<'a>(d: &LabelStudioDecoder, text: &'a str) -> Result<Task<'a>, DecodeError> {
        d.decode(Some(text), text.as_bytes())
    }

    #[test]
    fn an_image_task_becomes_pixels_with_its_submissions_in_order() {
        let d = decoder(IMAGE_CONFIG);
        let text = r#"{"id": 7, "data": {"image": "s3://b/a.jpg"}, "created_at": "2024-01-01T00:00:00Z",
          "predictions": [{"id": 3, "model_version": "yolo@1", "result": [
             {"id": "p1", "type": "rectanglelabels", "from_name": "box", "to_name": "image", "score": 0.9,
              "original_width": 200, "original_height": 100, "value": {"x": 10, "y": 20, "width": 50, "height": 30, "rectanglelabels": ["bus"]}}]}],
          "annotations": [
            {"id": 1, "completed_by": {"id": 2, "email": "ann@x.com"}, "was_cancelled": true, "result": []},
            {"id": 2, "completed_by": 5, "lead_time": 12.5, "updated_at": "2024-01-02T00:00:00Z", "result": [
             {"id": "r1", "type": "rectanglelabels", "from_name": "box", "to_name": "image",
              "original_width": 200, "original_height": 100,
              "value": {"x": 10, "y": 20, "width": 50, "height": 30, "rotation": 15, "rectanglelabels": ["car", "bus"]}},
             {"id": "r1", "type": "choices", "from_name": "occluded", "to_name": "image", "value": {"choices": ["yes"]}},
             {"id": "r2", "type": "polygonlabels", "from_name": "poly", "to_name": "image",
              "original_width": 200, "original_height": 100, "value": {"points": [[0, 0], [100, 0], [50, 50]], "polygonlabels": ["road"]}},
             {"id": "r3", "type": "keypointlabels", "from_name": "kp", "to_name": "image",
              "original_width": 200, "original_height": 100, "value": {"x": 50, "y": 50, "width": 1, "keypointlabels": ["nose"]}},
             {"id": "c1", "type": "choices", "from_name": "weather", "to_name": "image", "value": {"choices": ["sunny"]}},
             {"type": "relation", "from_id": "r1", "to_id": "r2", "direction": "right", "labels": ["next to"]}]}]}"#;
        let task = decode(&d, text).unwrap();
        assert_eq!(
            (task.id.as_ref(), task.state, task.stage.as_ref()),
            ("7", TaskState::Annotated, "Complete")
        );
        assert_eq!(
            (task.asset.url.as_ref(), task.asset.width, task.asset.height),
            ("s3://b/a.jpg", Some(200), Some(100))
        );
        assert_eq!(
            task.submissions.len(),
            2,
            "the cancelled annotation is not a submission"
        );
        assert_eq!(task.submissions[0].origin, Origin::Machine);
        assert_eq!(task.submissions[0].model.as_deref(), Some("yolo@1"));
        assert_eq!(task.submissions[0].annotations[0].confidence, Some(0.9));
        let human = &task.submissions[1];
        assert_eq!(
            (human.labeler.as_deref(), human.duration_ms),
            (Some("5"), 12_500)
        );
        let a = task.annotations();
        let ids: Vec<(&str, &str)> = a
            .iter()
            .map(|a| (a.id.as_ref(), a.label.as_deref().unwrap_or("")))
            .collect();
        assert_eq!(
            ids,
            [
                ("r1", "car"),
                ("r1:2", "bus"),
                ("r2", "road"),
                ("r3", "nose"),
                ("c1", "sunny")
            ]
        );
        assert_eq!(
            a[0].bbox,
            Some(BoundingBox {
                x: 20.0,
                y: 20.0,
                width: 100.0,
                height: 30.0,
                rotation: Some(15.0)
            })
        );
        assert_eq!(a[0].attributes[0].value, "yes");
        assert_eq!(a[2].points, [[0.0, 0.0], [200.0, 0.0], [100.0, 50.0]]);
        assert_eq!(a[3].points, [[100.0, 50.0]]);
        assert_eq!(a[4].kind, AnnotationKind::Class);
        assert_eq!(task.relations()[0].label, "next to");
        for annotation in a {
            annotation.check().unwrap();
        }
    }

    #[test]
    fn spans_count_unicode_scalar_values_not_utf16_units() {
        let d = decoder(
            r#"<View><Text name="text" value="$text"/>
            <Labels name="ner" toName="text"><Label value="PER"/></Labels></View>"#,
        );
        // "😀 Zoë": the emoji is two UTF-16 units, one scalar value.
        let text = r#"{"id": "t1", "data": {"text": "😀 Zoë met Ada"}, "annotations": [{"id": 1, "ground_truth": true, "result": [
            {"id": "s1", "type": "labels", "from_name": "ner", "to_name": "text", "value": {"start": 3, "end": 6, "text": "Zoë", "labels": ["PER"]}}]}]}"#;
        let task = decode(&d, text).unwrap();
        assert_eq!(task.state, TaskState::Validated);
        let span = &task.annotations()[0];
        assert_eq!(
            (span.start, span.end, span.text.as_deref()),
            (Some(2), Some(5), Some("Zoë"))
        );
        assert_eq!(task.asset.text.as_deref(), Some("😀 Zoë met Ada"));
    }

    #[test]
    fn bad_tasks_are_refused_with_their_id_and_why() {
        let d = decoder(IMAGE_CONFIG);
        let result = |r: &str| {
            format!(
                r#"{{"id": 9, "data": {{"image": "u"}}, "annotations": [{{"id": 1, "result": [{r}]}}]}}"#
            )
        };
        for (text, why) in [
            ("[1, 2]".to_owned(), "must be a JSON object"),
            (r#"{"data": {"image": "u"}}"#.to_owned(), "without an `id`"),
            (r#"{"id": 9, "data": {}}"#.to_owned(), "no text at `image`"),
            (
                result(
                    r#"{"id": "a", "type": "choices", "from_name": "nope", "value": {"choices": ["x"]}}"#,
                ),
                "from_name `nope` is not a control tag",
            ),
            (
                result(
                    r#"{"id": "a", "type": "rectanglelabels", "from_name": "box", "original_width": 10, "original_height": 10, "value": {"x": 1, "y": 1, "width": 1, "height": 1, "rectanglelabels": ["tram"]}}"#,
                ),
                "label `tram` is not a value of <box>",
            ),
            (
                result(
                    r#"{"id": "a", "type": "rectanglelabels", "from_name": "box", "original_width": 10, "original_height": 10, "value": {"x": 101, "y": 1, "width": 1, "height": 1, "rectanglelabels": ["car"]}}"#,
                ),
                "x 101 is outside 0-100",
            ),
            (
                result(
                    r#"{"id": "a", "type": "rectanglelabels", "from_name": "box", "value": {"x": 1, "y": 1, "width": 1, "height": 1, "rectanglelabels": ["car"]}}"#,
                ),
                "no original_width",
            ),
            (
                result(
                    r#"{"id": "a", "type": "brushlabels", "from_name": "box", "value": {"format": "rle", "rle": [1, 2], "brushlabels": ["car"]}}"#,
                ),
                "brush masks (RLE) are not read",
            ),
        ] {
            let e = decode(&d, &text).unwrap_err();
            assert!(e.message.contains(why), "{text}: {}", e.message);
            if text.contains("\"id\": 9") {
                assert_eq!(e.task_id.as_deref(), Some("9"), "{}", e.message);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod round_trip {
    use super::*;
    use labelport_generate::{self as generate, label_studio, Config};

    /// The generated tasks, written as Label Studio exports them and read back, keep
    /// their current annotations: kinds, labels, geometry (to float rounding), spans.
    #[test]
    fn generated_tasks_survive_a_label_studio_export() {
        for mode in label_studio::MODES {
            let config = Config::new("rt", mode, 300, 11);
            let xml = label_studio::config_xml(&config).unwrap();
            let decoder =
                LabelStudioDecoder::new(LabelingConfig::parse(&xml).unwrap(), Framing::Lines);
            let mut checked = 0;
            for i in 0..config.tasks {
                let task = generate::task(&config, i);
                if !label_studio::is_finished(&task) {
                    continue;
                }
                let text = label_studio::task_json(&config, &task).to_string();
                let back = decoder.decode(Some(&text), text.as_bytes()).unwrap();
                assert_eq!(
                    (back.id.as_ref(), back.state),
                    (task.id.as_ref(), task.state),
                    "{mode}"
                );
                let (w, h) = (
                    f64::from(task.asset.width.unwrap_or(0)),
                    f64::from(task.asset.height.unwrap_or(0)),
                );
                let want: Vec<_> = task
                    .annotations()
                    .iter()
                    .filter_map(|a| label_studio::as_label_studio_holds(a, w, h))
                    .collect();
                let got = back.annotations();
                assert_eq!(want.len(), got.len(), "{mode} {}", task.id);
                for (w, g) in want.iter().zip(got) {
                    assert_eq!(
                        (&w.id, w.kind, &w.label),
                        (&g.id, g.kind, &g.label),
                        "{mode} {}",
                        task.id
                    );
                    assert_eq!((w.start, w.end), (g.start, g.end));
                    let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
                    if let (Some(a), Some(b)) = (w.bbox, g.bbox) {
                        assert!(
                            close(a.x, b.x)
                                && close(a.y, b.y)
                                && close(a.width, b.width)
                                && close(a.height, b.height)
                        );
                        assert_eq!(a.rotation.filter(|r| *r != 0.0), b.rotation);
                    }
                    for (p, q) in w.points.iter().zip(&g.points) {
                        assert!(close(p[0], q[0]) && close(p[1], q[1]));
                    }
                    let attributes = |a: &Annotation<'_>| {
                        a.attributes
                            .iter()
                            .map(|t| (t.name.to_string(), t.value.to_string()))
                            .collect::<Vec<_>>()
                    };
                    assert_eq!(attributes(w), attributes(g));
                }
                assert_eq!(task.relations().len(), back.relations().len());
                checked += 1;
            }
            assert!(checked > 30, "{mode}: {checked}");
        }
    }
}
