//! A Label Studio annotation's results, read one by one into the model's annotations
//! and relations: each result type in its own function, every refusal naming the task,
//! the result and why.

use super::{
    offset, push_labelled, refuse, taxonomy_path, texts, utf16_to_chars, LabelStudioDecoder,
    LsResult,
};
use crate::decode::label_studio_config::Control;
use crate::decode::DecodeError;
use labelport_model::{Annotation, AnnotationKind, Attribute, BoundingBox, Mode, Relation};
use std::borrow::Cow;

impl LabelStudioDecoder {
    /// The annotations and relations of one annotation's (or prediction's) results.
    /// `text` is the task's text, for spans; `size` takes the image's size from the
    /// first region that carries it.
    pub(super) fn results<'a>(
        &self,
        task: &str,
        results: &[LsResult<'a>],
        text: Option<&str>,
        size: &mut Option<(f64, f64)>,
    ) -> Result<(Vec<Annotation<'a>>, Vec<Relation<'a>>), DecodeError> {
        // At most one annotation per result but for regions of several labels.
        let mut annotations: Vec<Annotation<'a>> = Vec::with_capacity(results.len());
        let mut relations: Vec<Relation<'a>> = Vec::new();
        for (k, result) in results.iter().enumerate() {
            let from_name = result.from_name.as_deref().unwrap_or("");
            let reading = Reading {
                task,
                result,
                region_id: result
                    .id
                    .clone()
                    .unwrap_or_else(|| Cow::Owned(format!("{from_name}-{k}"))),
            };
            if result.kind == "relation" {
                relations.push(self.relation(&reading, k)?);
                continue;
            }
            let Some(control) = self.config.control(from_name) else {
                return Err(reading.fail(format!(
                    "from_name `{from_name}` is not a control tag of the labeling config"
                )));
            };
            let labels = reading.labels(control)?;
            match result.kind.as_ref() {
                "rectanglelabels" | "rectangle" | "polygonlabels" | "polygon"
                | "keypointlabels" | "keypoint" => {
                    push_labelled(&mut annotations, reading.shape(size)?, labels);
                }
                "labels" | "hypertextlabels" => {
                    push_labelled(&mut annotations, reading.span(text)?, labels);
                }
                "choices" | "taxonomy" | "textarea" | "rating" if control.per_region => {
                    reading.describe_region(&mut annotations)?;
                }
                "choices" => reading.classes(&mut annotations),
                "taxonomy" => reading.taxonomy(control, &mut annotations)?,
                "textarea" => {
                    let answer = reading.text(&annotations, self.config.mode);
                    annotations.push(answer);
                }
                "rating" => annotations.push(reading.rating()),
                "brushlabels" | "brush" => {
                    return Err(reading.fail("brush masks (RLE) are not read by labelport; export them with Label Studio's own converter, or as polygons"));
                }
                other => {
                    return Err(
                        reading.fail(format!("result type `{other}` is not read by labelport"))
                    );
                }
            }
        }
        Ok((annotations, relations))
    }

    /// A `relation` result: its label must be one of the config's `<Relations>`.
    fn relation<'a>(
        &self,
        reading: &Reading<'_, 'a>,
        k: usize,
    ) -> Result<Relation<'a>, DecodeError> {
        let result = reading.result;
        let (Some(from), Some(to)) = (&result.from_id, &result.to_id) else {
            return Err(reading.fail("a relation needs from_id and to_id"));
        };
        let label = result
            .labels
            .as_slice()
            .first()
            .cloned()
            .unwrap_or(Cow::Borrowed("relation"));
        if !result.labels.as_slice().is_empty()
            && !self.config.relations.iter().any(|r| *r == *label)
        {
            return Err(reading.fail(format!(
                "relation label `{label}` is not in the config's <Relations>"
            )));
        }
        Ok(Relation {
            id: Cow::Owned(format!("relation-{k}")),
            label,
            from: from.clone(),
            to: to.clone(),
        })
    }
}

/// One result being read: the task it belongs to, for errors, and the region id its
/// annotations take.
struct Reading<'r, 'a> {
    task: &'r str,
    result: &'r LsResult<'a>,
    region_id: Cow<'a, str>,
}

impl<'r, 'a> Reading<'r, 'a> {
    /// The result refused, saying which and why.
    fn fail(&self, why: impl std::fmt::Display) -> DecodeError {
        let result = self.result;
        let at = result
            .id
            .as_deref()
            .map_or(String::new(), |id| format!(" {id}"));
        refuse(
            Some(self.task),
            format!("result{at} ({}): {why}", result.kind),
        )
    }

    /// The control the result was made with.
    fn control_name(&self) -> &str {
        self.result.from_name.as_deref().unwrap_or("")
    }

    /// An annotation of the result's region, with its score and control.
    fn one(&self, kind: AnnotationKind) -> Annotation<'a> {
        let mut a = Annotation::new(self.region_id.clone(), kind);
        a.confidence = self.result.score;
        a.tool = self.result.from_name.clone();
        a
    }

    /// The result's labels, each one a value of its control.
    fn labels(&self, control: &Control) -> Result<&'r [Cow<'a, str>], DecodeError> {
        let v = &self.result.value;
        let labels: &'r [Cow<'a, str>] = match self.result.kind.as_ref() {
            "rectanglelabels" => v.rectanglelabels.as_slice(),
            "polygonlabels" => v.polygonlabels.as_slice(),
            "keypointlabels" => v.keypointlabels.as_slice(),
            "labels" | "hypertextlabels" => v.labels.as_slice(),
            "choices" => v.choices.as_slice(),
            _ => &[],
        };
        for label in labels {
            if !control.values.iter().any(|l| *l == **label) {
                return Err(self.fail(format!(
                    "label `{label}` is not a value of <{}> in the labeling config",
                    control.name
                )));
            }
        }
        Ok(labels)
    }

    /// A box, polygon or point, from percentages of the image to pixels.
    fn shape(&self, size: &mut Option<(f64, f64)>) -> Result<Annotation<'a>, DecodeError> {
        let result = self.result;
        let v = &result.value;
        let (w, h) = match (result.original_width, result.original_height) {
            (Some(w), Some(h)) if w > 0.0 && h > 0.0 => (w, h),
            _ => {
                return Err(self
                    .fail("no original_width and original_height to turn percentages into pixels"))
            }
        };
        size.get_or_insert((w, h));
        let percent = |p: Option<f64>, what: &str| -> Result<f64, DecodeError> {
            match p {
                Some(p) if (-1e-6..=100.0 + 1e-6).contains(&p) => Ok(p),
                Some(p) => Err(self.fail(format!(
                    "{what} {p} is outside 0-100 (percent of the image)"
                ))),
                None => Err(self.fail(format!("no {what}"))),
            }
        };
        Ok(match result.kind.as_ref() {
            "rectanglelabels" | "rectangle" => {
                let mut a = self.one(AnnotationKind::Box);
                a.bbox = Some(BoundingBox {
                    x: percent(v.x, "x")? / 100.0 * w,
                    y: percent(v.y, "y")? / 100.0 * h,
                    width: percent(v.width, "width")? / 100.0 * w,
                    height: percent(v.height, "height")? / 100.0 * h,
                    rotation: v.rotation.filter(|r| *r != 0.0),
                });
                a
            }
            "polygonlabels" | "polygon" => {
                if v.points.len() < 3 {
                    return Err(self.fail("a polygon needs 3 points or more"));
                }
                let mut a = self.one(AnnotationKind::Polygon);
                a.points.reserve_exact(v.points.len());
                for [x, y] in &v.points {
                    a.points.push([
                        percent(Some(*x), "x")? / 100.0 * w,
                        percent(Some(*y), "y")? / 100.0 * h,
                    ]);
                }
                a
            }
            _ => {
                let mut a = self.one(AnnotationKind::Point);
                a.points.push([
                    percent(v.x, "x")? / 100.0 * w,
                    percent(v.y, "y")? / 100.0 * h,
                ]);
                a
            }
        })
    }

    /// A span over the task's text, from UTF-16 offsets to Unicode scalar values.
    fn span(&self, text: Option<&str>) -> Result<Annotation<'a>, DecodeError> {
        let v = &self.result.value;
        let (Some(start), Some(end)) = (offset(v.start), offset(v.end)) else {
            return Err(self.fail(
                "spans need numeric start and end offsets (HyperText XPath ranges are not read)",
            ));
        };
        let Some(text) = text else {
            return Err(self.fail("a span over an object that is not the config's text"));
        };
        let (Some(s), Some(e)) = (utf16_to_chars(text, start), utf16_to_chars(text, end)) else {
            return Err(self.fail(format!("offsets {start}-{end} are outside the text")));
        };
        let mut span = self.one(AnnotationKind::Span);
        span.start = Some(s);
        span.end = Some(e.max(s));
        span.text = v
            .text
            .and_then(|t| serde_json::from_str::<Cow<'a, str>>(t.get()).ok());
        Ok(span)
    }

    /// A per-region choice, taxonomy, text or rating: attributes of the region the
    /// result shares its id with, one value per choice or taxonomy path, so a value may
    /// hold a comma.
    fn describe_region(&self, annotations: &mut [Annotation<'a>]) -> Result<(), DecodeError> {
        let result = self.result;
        let v = &result.value;
        let values: Vec<Cow<'a, str>> = match result.kind.as_ref() {
            "choices" => v.choices.as_slice().to_vec(),
            "taxonomy" => v
                .taxonomy
                .iter()
                .map(|path| Cow::Owned(taxonomy_path(path)))
                .collect(),
            "rating" => vec![Cow::Owned(
                v.rating.map(|r| r.to_string()).unwrap_or_default(),
            )],
            _ => vec![Cow::Owned(texts(v.text).join("\n"))],
        };
        let Some(region) = annotations.iter_mut().find(|a| a.id == self.region_id) else {
            return Err(self.fail("a per-region result whose region comes after it or is missing"));
        };
        for value in values {
            region.attributes.push(Attribute {
                name: result.from_name.clone().unwrap_or_default(),
                value,
                confidence: result.score,
            });
        }
        Ok(())
    }

    /// A task-level choice: one class per chosen value.
    fn classes(&self, annotations: &mut Vec<Annotation<'a>>) {
        for (i, choice) in self.result.value.choices.as_slice().iter().enumerate() {
            let mut class = self.one(AnnotationKind::Class);
            if i > 0 {
                class.id = Cow::Owned(format!("{}:{}", self.region_id, i + 1));
            }
            class.label = Some(choice.clone());
            annotations.push(class);
        }
    }

    /// A taxonomy: one class per path, its leaf the label and the whole path kept.
    fn taxonomy(
        &self,
        control: &Control,
        annotations: &mut Vec<Annotation<'a>>,
    ) -> Result<(), DecodeError> {
        for (i, path) in self.result.value.taxonomy.iter().enumerate() {
            let Some(leaf) = path.last() else { continue };
            if !control.values.iter().any(|l| *l == **leaf) {
                return Err(self.fail(format!(
                    "label `{leaf}` is not a value of <{}> in the labeling config",
                    control.name
                )));
            }
            let mut class = self.one(AnnotationKind::Class);
            if i > 0 {
                class.id = Cow::Owned(format!("{}:{}", self.region_id, i + 1));
            }
            class.label = Some(leaf.clone());
            class.attributes.push(Attribute {
                name: Cow::Borrowed("taxonomy"),
                value: Cow::Owned(taxonomy_path(path)),
                confidence: None,
            });
            annotations.push(class);
        }
        Ok(())
    }

    /// A text area: the transcription of its region (or of the task, in a
    /// transcription project), else a form answer.
    fn text(&self, annotations: &[Annotation<'a>], mode: Mode) -> Annotation<'a> {
        let result = self.result;
        let text = texts(result.value.text).join("\n");
        let region = annotations
            .iter()
            .any(|a| a.id == self.region_id && a.kind.is_element());
        if region || mode == Mode::Transcription {
            let mut t = Annotation::new(
                Cow::Owned(format!("{}:text", self.region_id)),
                AnnotationKind::Transcription,
            );
            t.text = Some(Cow::Owned(text));
            t.element = region.then(|| self.region_id.clone());
            t.confidence = result.score;
            t.tool = result.from_name.clone();
            t
        } else {
            let mut answer = self.one(AnnotationKind::Answer);
            answer.field = Some(Cow::Owned(self.control_name().to_owned()));
            answer.text = Some(Cow::Owned(text));
            answer
        }
    }

    /// A rating: a form answer.
    fn rating(&self) -> Annotation<'a> {
        let mut answer = self.one(AnnotationKind::Answer);
        answer.field = Some(Cow::Owned(self.control_name().to_owned()));
        answer.text = Some(Cow::Owned(
            self.result
                .value
                .rating
                .map(|r| r.to_string())
                .unwrap_or_default(),
        ));
        answer
    }
}
