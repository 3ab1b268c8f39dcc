//! What each mode's projects hold: classes, relations, attributes, form fields, the
//! assets' file extension and the model that pre-labels them.

use labelport_model::Mode;

/// What a mode's projects contain.
pub(crate) struct ModeSpec {
    pub(crate) classes: &'static [&'static str],
    pub(crate) relations: &'static [&'static str],
    pub(crate) attributes: &'static [&'static str],
    pub(crate) form_fields: &'static [&'static str],
    pub(crate) extension: &'static str,
    pub(crate) model: &'static str,
}

const ENTITY_CLASSES: &[&str] = &["person", "organization", "location", "date"];
const ENTITY_RELATIONS: &[&str] = &["works_for", "located_in", "lives_in", "born_on"];

impl ModeSpec {
    pub(crate) fn of(mode: Mode) -> ModeSpec {
        let spec = |classes, relations, attributes, form_fields, extension, model| ModeSpec {
            classes,
            relations,
            attributes,
            form_fields,
            extension,
            model,
        };
        match mode {
            Mode::Classification => spec(
                &["cat", "dog", "bird", "fish, tropical", "other \"unsure\""],
                &[],
                &[],
                &[],
                "jpg",
                "resnet50-classifier@1.4.2",
            ),
            Mode::Element => spec(
                &[
                    "car",
                    "pedestrian",
                    "cyclist",
                    "traffic sign, temporary",
                    "café terrace",
                ],
                &[],
                &["occluded", "truncated", "color"],
                &[],
                "jpg",
                "yolov8-detector@2.1.0",
            ),
            Mode::ElementGroup => spec(
                &["person", "face", "hand", "bag", "family", "crowd"],
                &[],
                &["occluded", "truncated"],
                &[],
                "jpg",
                "yolov8-detector@2.1.0",
            ),
            Mode::Entity => spec(
                ENTITY_CLASSES,
                ENTITY_RELATIONS,
                &[],
                &[],
                "txt",
                "ner-base@0.9.1",
            ),
            Mode::EntityForm => spec(
                &[],
                &[],
                &[],
                &["name", "date of birth", "city", "remarks"],
                "txt",
                "form-extractor@1.0.3",
            ),
            Mode::Transcription => spec(&[], &[], &[], &[], "jpg", "ocr-handwriting@3.2.0"),
            Mode::Row => spec(
                &["positive", "negative", "neutral", "spam | promotional, ads"],
                &[],
                &[],
                &[],
                "csv",
                "sentiment-small@0.4.0",
            ),
            Mode::Document => spec(
                &[
                    "invoice",
                    "contract",
                    "letter",
                    "report, annual",
                    "reçu fiscal",
                ],
                &[],
                &[],
                &[],
                "txt",
                "doc-classifier@2.0.0",
            ),
            Mode::Token => spec(
                ENTITY_CLASSES,
                ENTITY_RELATIONS,
                &[],
                &[],
                "txt",
                "ner-base@0.9.1",
            ),
            Mode::Video => spec(
                &["car", "person", "dog", "bicycle"],
                &[],
                &["occluded", "truncated"],
                &[],
                "mp4",
                "bytetrack@1.1.0",
            ),
        }
    }
}
