//! What a task is about: its asset and what its labeler marks on it, by mode. Image
//! elements are in [`super::images`], video tracks in [`super::video`], texts in
//! [`super::text`].

use super::{borrowed, TaskGen};
use crate::vocabulary::{COUNTRIES, PRODUCTS, REVIEWS, ROW_COLUMNS, TRANSCRIPTIONS};
use labelport_model::{Annotation, AnnotationKind, Asset, Cell, Mode, Relation};
use std::borrow::Cow;

/// What the human label submission holds, and the asset it is about.
pub(super) struct Content {
    pub(super) asset: Asset<'static>,
    pub(super) annotations: Vec<Annotation<'static>>,
    pub(super) relations: Vec<Relation<'static>>,
}

impl Content {
    /// Content whose annotations stand alone, with no relations between them.
    pub(super) fn unrelated(asset: Asset<'static>, annotations: Vec<Annotation<'static>>) -> Self {
        Content {
            asset,
            annotations,
            relations: Vec::new(),
        }
    }
}

impl TaskGen<'_> {
    pub(super) fn content(&mut self) -> Content {
        match self.config.mode {
            Mode::Classification => self.classification(),
            Mode::Element => self.elements(),
            Mode::ElementGroup => self.element_groups(),
            Mode::Entity | Mode::Token => self.entities(),
            Mode::EntityForm => self.form(),
            Mode::Transcription => self.transcription(),
            Mode::Row => self.row(),
            Mode::Document => self.document(),
            Mode::Video => self.video(),
        }
    }

    /// The asset's URL and, most of the time, its id in the customer's system.
    pub(super) fn asset(&mut self) -> Asset<'static> {
        let external_id = self
            .rng
            .chance(950)
            .then(|| Cow::Owned(format!("ext-{}", &self.id[1..])));
        Asset {
            url: Cow::Owned(format!(
                "s3://labelport-demo-assets/{}/{}.{}",
                self.config.project_id, self.id, self.spec.extension
            )),
            external_id,
            data_source: None,
            text: None,
            tokens: Vec::new(),
            row: Vec::new(),
            frame_count: None,
            width: None,
            height: None,
        }
    }

    pub(super) fn class(&mut self, pool: &'static [&'static str]) -> Annotation<'static> {
        let mut a = self.annotation(AnnotationKind::Class);
        a.label = Some(borrowed(self.rng.word(pool)));
        a
    }

    /// An image with one class, now and then two.
    fn classification(&mut self) -> Content {
        let asset = self.image();
        let mut classes = vec![self.class(self.spec.classes)];
        if self.rng.chance(150) {
            let second = self.class(self.spec.classes);
            if second.label != classes[0].label {
                classes.push(second);
            }
        }
        Content::unrelated(asset, classes)
    }

    /// An image with one to four lines of handwriting read; now and then the first
    /// reading is of the whole image, not a line.
    fn transcription(&mut self) -> Content {
        let asset = self.image();
        let count = self.rng.range(1, 4);
        let whole = self.rng.chance(200);
        let annotations = (0..count)
            .map(|k| {
                let mut a = self.annotation(AnnotationKind::Transcription);
                a.text = Some(borrowed(self.rng.word(TRANSCRIPTIONS)));
                if !(whole && k == 0) {
                    a.element = Some(Cow::Owned(format!("{}-line{}", self.id, k + 1)));
                }
                a
            })
            .collect();
        Content::unrelated(asset, annotations)
    }

    /// A product review as a table row, classed by its rating's sentiment and now and
    /// then as spam too.
    fn row(&mut self) -> Content {
        let mut asset = self.asset();
        let rating = self.rng.range(1, 5);
        let cells: [(&'static str, Cow<'static, str>); 4] = [
            (ROW_COLUMNS[0], borrowed(self.rng.word(PRODUCTS))),
            (ROW_COLUMNS[1], borrowed(self.rng.word(REVIEWS))),
            (ROW_COLUMNS[2], Cow::Owned(rating.to_string())),
            (ROW_COLUMNS[3], borrowed(self.rng.word(COUNTRIES))),
        ];
        asset.row = cells
            .into_iter()
            .map(|(column, value)| Cell {
                column: borrowed(column),
                value,
            })
            .collect();
        let sentiment = match rating {
            1 | 2 => "negative",
            3 => "neutral",
            _ => "positive",
        };
        let mut classes = vec![{
            let mut a = self.annotation(AnnotationKind::Class);
            a.label = Some(borrowed(sentiment));
            a
        }];
        if self.rng.chance(100) {
            let mut a = self.annotation(AnnotationKind::Class);
            a.label = Some(borrowed("spam | promotional, ads"));
            classes.push(a);
        }
        Content::unrelated(asset, classes)
    }
}
