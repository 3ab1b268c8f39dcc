//! A Label Studio labeling config (the `<View>` XML of a project): which object tags
//! hold the data, which control tags label them and with which names. It gives the
//! project labelport exports (mode, label schema, form fields) and tells the decoder
//! how to read each result.

use labelport_model::{LabelSchema, Mode, Project, ProjectState, Tool};

/// What a control tag makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlKind {
    /// `Labels` (spans over text) and `HyperTextLabels`.
    Labels,
    /// `RectangleLabels`, `Rectangle`.
    Rectangle,
    /// `PolygonLabels`, `Polygon`.
    Polygon,
    /// `KeyPointLabels`, `KeyPoint`.
    KeyPoint,
    /// `BrushLabels`, `Brush`: masks, which labelport does not read.
    Brush,
    /// `Choices`: classes of the object, or attributes of a region (`perRegion`).
    Choices,
    /// `TextArea`: a transcription or a form answer.
    TextArea,
    /// `Rating`: a form answer.
    Rating,
    /// `Taxonomy`: classes picked in a tree.
    Taxonomy,
    /// `VideoRectangle`: boxes tracked over a video's frames.
    VideoRectangle,
}

impl ControlKind {
    fn of(tag: &str) -> Option<ControlKind> {
        Some(match tag.to_ascii_lowercase().as_str() {
            "labels" | "hypertextlabels" => ControlKind::Labels,
            "rectanglelabels" | "rectangle" => ControlKind::Rectangle,
            "polygonlabels" | "polygon" => ControlKind::Polygon,
            "keypointlabels" | "keypoint" => ControlKind::KeyPoint,
            "brushlabels" | "brush" => ControlKind::Brush,
            "choices" => ControlKind::Choices,
            "textarea" => ControlKind::TextArea,
            "rating" => ControlKind::Rating,
            "taxonomy" => ControlKind::Taxonomy,
            "videorectangle" => ControlKind::VideoRectangle,
            _ => return None,
        })
    }

    fn is_region(self) -> bool {
        matches!(
            self,
            ControlKind::Rectangle
                | ControlKind::Polygon
                | ControlKind::KeyPoint
                | ControlKind::Brush
                | ControlKind::VideoRectangle
        )
    }
}

/// What an object tag shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// `Image`.
    Image,
    /// `Text`, `HyperText`.
    Text,
    /// `Video`.
    Video,
    /// Anything else (`Audio`, `Table`, ...): its value is the asset's URL.
    Other,
}

/// A control tag: `<RectangleLabels name="label" toName="image">`.
#[derive(Debug, Clone, PartialEq)]
pub struct Control {
    /// Its `name`, which results call `from_name`.
    pub name: String,
    /// What it makes.
    pub kind: ControlKind,
    /// The object it labels (`toName`).
    pub to_name: String,
    /// Its label or choice values, in the config's order (a taxonomy's, depth first).
    pub values: Vec<String>,
    /// A `Choices`/`TextArea` asked for each region rather than the whole object.
    pub per_region: bool,
}

/// An object tag: `<Image name="image" value="$image"/>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    /// Its `name`, which results call `to_name`.
    pub name: String,
    /// What it shows.
    pub kind: ObjectKind,
    /// The key of the task's `data` that holds it (`$image` → `image`).
    pub data_key: String,
}

/// A parsed labeling config.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelingConfig {
    /// Control tags, in order.
    pub controls: Vec<Control>,
    /// Object tags, in order.
    pub objects: Vec<Object>,
    /// `<Relations>` labels.
    pub relations: Vec<String>,
    /// The `category` ids `<Label>` tags give (the ids COCO and YOLO number them by).
    pub categories: std::collections::BTreeMap<String, u32>,
    /// The project mode the config amounts to.
    pub mode: Mode,
}

/// Why a config cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the labeling config {0}")]
pub struct ConfigError(pub String);

impl LabelingConfig {
    /// Parses the config's XML.
    pub fn parse(xml: &str) -> Result<LabelingConfig, ConfigError> {
        let document = roxmltree::Document::parse(xml)
            .map_err(|e| ConfigError(format!("is not well-formed XML: {e}")))?;
        let (mut controls, mut objects, mut relations) = (Vec::new(), Vec::new(), Vec::new());
        let mut categories = std::collections::BTreeMap::new();
        for node in document.descendants().filter(|n| n.is_element()) {
            let tag = node.tag_name().name();
            let name = node.attribute("name").unwrap_or("");
            if let Some(kind) = ControlKind::of(tag) {
                if name.is_empty() {
                    return Err(ConfigError(format!("has a <{tag}> without a name")));
                }
                let to_name = node.attribute("toName").ok_or_else(|| {
                    ConfigError(format!("has <{tag} name=\"{name}\"> without toName"))
                })?;
                let mut values = Vec::new();
                for child in node.descendants().skip(1).filter(|n| n.is_element()) {
                    let child_tag = child.tag_name().name().to_ascii_lowercase();
                    if child_tag == "label" || child_tag == "choice" {
                        if let Some(v) = child
                            .attribute("value")
                            .or_else(|| child.attribute("alias"))
                        {
                            if let Some(category) = child.attribute("category") {
                                let id = category.trim().parse::<u32>().map_err(|_| {
                                    ConfigError(format!(
                                        "gives label `{v}` the category `{category}`, which is not a whole number"
                                    ))
                                })?;
                                categories.insert(v.to_owned(), id);
                            }
                            values.push(v.to_owned());
                        }
                    }
                }
                controls.push(Control {
                    name: name.to_owned(),
                    kind,
                    // toName may list several objects; the first is the one regions sit on.
                    to_name: to_name.split(',').next().unwrap_or("").trim().to_owned(),
                    values,
                    per_region: node.attribute("perRegion") == Some("true"),
                });
                continue;
            }
            match tag.to_ascii_lowercase().as_str() {
                "relations" => {
                    relations.extend(
                        node.children()
                            .filter(|c| c.tag_name().name().eq_ignore_ascii_case("relation"))
                            .filter_map(|c| c.attribute("value").map(str::to_owned)),
                    );
                }
                "view" | "header" | "label" | "choice" | "relation" | "style" | "filter" => {}
                object => {
                    let Some(value) = node.attribute("value").filter(|v| v.starts_with('$')) else {
                        continue;
                    };
                    let kind = match object {
                        "image" => ObjectKind::Image,
                        "text" | "hypertext" => ObjectKind::Text,
                        "video" => ObjectKind::Video,
                        _ => ObjectKind::Other,
                    };
                    objects.push(Object {
                        name: name.to_owned(),
                        kind,
                        data_key: value[1..].to_owned(),
                    });
                }
            }
        }
        if objects.is_empty() {
            return Err(ConfigError(
                "has no object tag with a $value (Image, Text, Video, ...)".to_owned(),
            ));
        }
        if let Some(c) = controls
            .iter()
            .find(|c| !objects.iter().any(|o| o.name == c.to_name))
        {
            return Err(ConfigError(format!(
                "has <{} name=\"{}\"> pointing at `{}`, which is no object tag",
                kind_tag(c.kind),
                c.name,
                c.to_name
            )));
        }
        let mode = mode_of(&controls, &objects)?;
        Ok(LabelingConfig {
            controls,
            objects,
            relations,
            categories,
            mode,
        })
    }

    /// The control tag called `name`.
    pub fn control(&self, name: &str) -> Option<&Control> {
        self.controls.iter().find(|c| c.name == name)
    }

    /// The object tag called `name`.
    pub fn object(&self, name: &str) -> Option<&Object> {
        self.objects.iter().find(|o| o.name == name)
    }

    /// The project labelport exports: the mode, and the label schema in the config's
    /// order (region and span labels first, then choices), so class ids follow the
    /// config.
    pub fn project(&self, id: &str, name: &str) -> Project {
        let mut classes: Vec<String> = Vec::new();
        let mut attributes: Vec<String> = Vec::new();
        let mut form_fields: Vec<String> = Vec::new();
        let labelled = |c: &&Control| c.kind.is_region() || c.kind == ControlKind::Labels;
        let ordered = self
            .controls
            .iter()
            .filter(labelled)
            .chain(self.controls.iter().filter(|c| !labelled(c)));
        for control in ordered {
            match control.kind {
                _ if control.per_region => attributes.push(control.name.clone()),
                ControlKind::TextArea | ControlKind::Rating => {
                    form_fields.push(control.name.clone())
                }
                _ => {
                    for value in &control.values {
                        if !classes.contains(value) {
                            classes.push(value.clone());
                        }
                    }
                }
            }
        }
        // Only classes' ids: a per-region choice is an attribute here.
        let class_ids = self
            .categories
            .iter()
            .filter(|(name, _)| classes.contains(name))
            .map(|(name, id)| (name.clone(), *id))
            .collect();
        Project {
            schema_version: labelport_model::SCHEMA_VERSION,
            id: id.to_owned(),
            name: name.to_owned(),
            mode: self.mode,
            state: ProjectState::Completed,
            members: Vec::new(),
            services: Vec::new(),
            labels: LabelSchema {
                classes,
                relations: self.relations.clone(),
                attributes,
                form_fields,
                class_ids,
                tools: self
                    .controls
                    .iter()
                    .map(|c| Tool {
                        name: c.name.clone(),
                        kind: kind_tag(c.kind).to_owned(),
                    })
                    .collect(),
            },
            stages: vec!["Complete".to_owned()],
            columns: Vec::new(),
            exports: Default::default(),
            asset_key: Some(self.objects[0].data_key.clone()),
        }
    }
}

fn kind_tag(kind: ControlKind) -> &'static str {
    match kind {
        ControlKind::Labels => "Labels",
        ControlKind::Rectangle => "RectangleLabels",
        ControlKind::Polygon => "PolygonLabels",
        ControlKind::KeyPoint => "KeyPointLabels",
        ControlKind::Brush => "BrushLabels",
        ControlKind::Choices => "Choices",
        ControlKind::TextArea => "TextArea",
        ControlKind::Rating => "Rating",
        ControlKind::Taxonomy => "Taxonomy",
        ControlKind::VideoRectangle => "VideoRectangle",
    }
}

/// The mode a config amounts to, by what its controls make on which objects.
fn mode_of(controls: &[Control], objects: &[Object]) -> Result<Mode, ConfigError> {
    let has = |kind: ControlKind| controls.iter().any(|c| c.kind == kind);
    let on_image = objects.iter().any(|o| o.kind == ObjectKind::Image);
    let on_text = objects.iter().any(|o| o.kind == ObjectKind::Text);
    let regions = controls
        .iter()
        .any(|c| c.kind.is_region() && c.kind != ControlKind::VideoRectangle);
    Ok(if has(ControlKind::VideoRectangle) {
        Mode::Video
    } else if regions && on_image {
        Mode::Element
    } else if has(ControlKind::Labels) && on_text {
        Mode::Entity
    } else if has(ControlKind::Choices) || has(ControlKind::Taxonomy) {
        if on_image {
            Mode::Classification
        } else {
            Mode::Document
        }
    } else if has(ControlKind::TextArea) || has(ControlKind::Rating) {
        if on_image {
            Mode::Transcription
        } else {
            Mode::EntityForm
        }
    } else {
        return Err(ConfigError(
            "has no control tag labelport reads (RectangleLabels, PolygonLabels, KeyPointLabels, Labels, Choices, TextArea, Rating, Taxonomy, VideoRectangle)".to_owned(),
        ));
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_image_config_gives_an_element_project_with_labels_in_config_order() {
        let config = LabelingConfig::parse(
            r#"<View>
                 <Image name="image" value="$image"/>
                 <Choices name="weather" toName="image"><Choice value="sunny"/><Choice value="rain"/></Choices>
                 <RectangleLabels name="box" toName="image"><Label value="car"/><Label value="café &amp; bar"/></RectangleLabels>
                 <PolygonLabels name="poly" toName="image"><Label value="road" category="4"/><Label value="car"/></PolygonLabels>
                 <Choices name="occluded" toName="image" perRegion="true"><Choice value="yes" category="9"/></Choices>
                 <Relations><Relation value="next to"/></Relations>
               </View>"#,
        )
        .unwrap();
        assert_eq!(config.mode, Mode::Element);
        let project = config.project("p", "P");
        assert_eq!(
            project.labels.classes,
            ["car", "café & bar", "road", "sunny", "rain"]
        );
        assert_eq!(project.labels.attributes, ["occluded"]);
        assert_eq!(project.labels.relations, ["next to"]);
        assert_eq!(
            project.labels.class_ids.into_iter().collect::<Vec<_>>(),
            [("road".to_owned(), 4)]
        );
        assert_eq!(config.object("image").unwrap().data_key, "image");
        assert_eq!(config.control("poly").unwrap().kind, ControlKind::Polygon);
    }

    #[test]
    fn modes_follow_controls_and_objects() {
        for (xml, mode) in [
            (
                r#"<View><Text name="t" value="$text"/><Labels name="l" toName="t"><Label value="PER"/></Labels></View>"#,
                Mode::Entity,
            ),
            (
                r#"<View><Text name="t" value="$text"/><Choices name="c" toName="t"><Choice value="spam"/></Choices></View>"#,
                Mode::Document,
            ),
            (
                r#"<View><Image name="i" value="$img"/><Choices name="c" toName="i"><Choice value="cat"/></Choices></View>"#,
                Mode::Classification,
            ),
            (
                r#"<View><Text name="t" value="$text"/><TextArea name="a" toName="t"/><Rating name="r" toName="t"/></View>"#,
                Mode::EntityForm,
            ),
            (
                r#"<View><Video name="v" value="$video"/><VideoRectangle name="b" toName="v"/><Labels name="l" toName="v"><Label value="car"/></Labels></View>"#,
                Mode::Video,
            ),
        ] {
            assert_eq!(LabelingConfig::parse(xml).unwrap().mode, mode, "{xml}");
        }
    }

    #[test]
    fn a_bad_config_says_what_is_wrong() {
        for (xml, why) in [
            ("<View><Image", "well-formed"),
            (
                r#"<View><Choices name="c" toName="i"/></View>"#,
                "no object tag",
            ),
            (
                r#"<View><Image name="i" value="$img"/><Choices name="c" toName="x"/></View>"#,
                "pointing at `x`",
            ),
            (
                r#"<View><Image name="i" value="$img"/></View>"#,
                "no control tag",
            ),
            (
                r#"<View><Image name="i" value="$img"/><Choices toName="i"/></View>"#,
                "without a name",
            ),
            (
                r#"<View><Image name="i" value="$img"/><RectangleLabels name="b" toName="i"><Label value="car" category="one"/></RectangleLabels></View>"#,
                "gives label `car` the category `one`, which is not a whole number",
            ),
        ] {
            let e = LabelingConfig::parse(xml).unwrap_err();
            assert!(e.to_string().contains(why), "{xml}: {e}");
        }
    }
}
