//! Texts and what is marked on them: entities as character or token spans with the
//! relations between them, a form's answers, and a document's classes.

use super::content::Content;
use super::{borrowed, TaskGen};
use crate::vocabulary::{DATES, ORGS, PEOPLE, PLACES, REMARKS, SENTENCES};
use labelport_model::{AnnotationKind, Mode, Relation};
use std::borrow::Cow;
use std::fmt::Write as _;

impl TaskGen<'_> {
    /// A text of one to three sentences with its entities marked, as character spans
    /// or (in token mode) token spans, and the relations between them.
    pub(super) fn entities(&mut self) -> Content {
        let tokens = self.config.mode == Mode::Token;
        let mut asset = self.asset();
        let doc = self.entity_text();
        let mut ids = Vec::with_capacity(doc.spans.len());
        let mut annotations = Vec::with_capacity(doc.spans.len());
        for span in &doc.spans {
            // Labelers miss an entity now and then.
            if self.rng.chance(50) {
                ids.push(None);
                continue;
            }
            let mut a = self.annotation(AnnotationKind::Span);
            a.label = Some(borrowed(span.label));
            if tokens {
                a.token_start = Some(span.token_start);
                a.token_end = Some(span.token_end);
                a.text = Some(Cow::Owned(
                    doc.tokens[span.token_start as usize..span.token_end as usize].join(" "),
                ));
            } else {
                a.start = Some(span.start);
                a.end = Some(span.end);
                a.text = Some(borrowed(span.text));
            }
            ids.push(Some(a.id.clone()));
            annotations.push(a);
        }
        // A relation is kept when the labeler marked both of its entities.
        let mut relations = Vec::new();
        for (label, from, to) in doc.relations {
            if let (Some(Some(from)), Some(Some(to))) = (ids.get(from), ids.get(to)) {
                relations.push(Relation {
                    id: Cow::Owned(format!("r{}", relations.len() + 1)),
                    label: borrowed(label),
                    from: from.clone(),
                    to: to.clone(),
                });
            }
        }
        if tokens {
            asset.tokens = doc.tokens.into_iter().map(Cow::Owned).collect();
        } else {
            asset.text = Some(Cow::Owned(doc.text));
        }
        Content {
            asset,
            annotations,
            relations,
        }
    }

    /// A filled-in form and the answers read from it; now and then one is missed.
    pub(super) fn form(&mut self) -> Content {
        let mut asset = self.asset();
        let name = self.rng.word(PEOPLE);
        let birth = format!(
            "{}-{:02}-{:02}",
            self.rng.range(1940, 2005),
            self.rng.range(1, 12),
            self.rng.range(1, 28)
        );
        let city = self.rng.word(PLACES);
        let remarks = self.rng.word(REMARKS);
        asset.text = Some(Cow::Owned(format!(
            "Name: {name}\nDate of birth: {birth}\nCity: {city}\nRemarks: {remarks}\n"
        )));
        let answers: [Cow<'static, str>; 4] = [
            borrowed(name),
            Cow::Owned(birth),
            borrowed(city),
            borrowed(remarks),
        ];
        let mut annotations = Vec::new();
        for (field, text) in self.spec.form_fields.iter().zip(answers) {
            if self.rng.chance(100) {
                continue;
            }
            let mut a = self.annotation(AnnotationKind::Answer);
            a.field = Some(borrowed(field));
            a.text = Some(text);
            annotations.push(a);
        }
        Content::unrelated(asset, annotations)
    }

    /// A document of one kind, classed as that kind and now and then as others too.
    pub(super) fn document(&mut self) -> Content {
        let mut asset = self.asset();
        let kind = self.rng.below(self.spec.classes.len() as u64) as usize;
        asset.text = Some(Cow::Owned(self.document_text(kind)));
        let mut chosen = vec![kind];
        for _ in 0..self.rng.range(0, 2) {
            let other = self.rng.below(self.spec.classes.len() as u64) as usize;
            if !chosen.contains(&other) {
                chosen.push(other);
            }
        }
        let classes = chosen
            .into_iter()
            .map(|k| {
                let mut a = self.annotation(AnnotationKind::Class);
                a.label = Some(borrowed(self.spec.classes[k]));
                a
            })
            .collect();
        Content::unrelated(asset, classes)
    }

    fn entity_text(&mut self) -> EntityText {
        let mut doc = EntityText::default();
        let sentences = self.rng.range(1, 3);
        for s in 0..sentences {
            if s > 0 {
                doc.literal(if self.rng.chance(200) { "\n" } else { " " });
            }
            let sentence = self.rng.pick(SENTENCES);
            let first = doc.spans.len();
            let mut rest = sentence.text;
            while let Some(open) = rest.find('{') {
                doc.literal(&rest[..open]);
                let (label, pool) = match rest.as_bytes().get(open + 1) {
                    Some(b'P') => ("person", PEOPLE),
                    Some(b'O') => ("organization", ORGS),
                    Some(b'L') => ("location", PLACES),
                    _ => ("date", DATES),
                };
                doc.entity(label, self.rng.word(pool));
                rest = &rest[open + 3..];
            }
            doc.literal(rest);
            for (label, from, to) in sentence.relations {
                doc.relations.push((label, first + from, first + to));
            }
        }
        doc
    }

    fn document_text(&mut self, kind: usize) -> String {
        let person = self.rng.word(PEOPLE);
        let org = self.rng.word(ORGS);
        let place = self.rng.word(PLACES);
        let number = self.rng.range(1000, 9999);
        let mut text = String::new();
        let _ = match kind {
            0 => write!(
                text,
                "INVOICE #{number}\nBill to: {person}, {place}\nTotal: €{},{:02}",
                number / 3,
                number % 100
            ),
            1 => write!(
                text,
                "SERVICE AGREEMENT between {org} and {person}, signed in {place}."
            ),
            2 => write!(
                text,
                "Dear {person},\nthank you for visiting {org} in {place}.\nBest regards"
            ),
            3 => write!(
                text,
                "Annual report: {org} grew revenue by {}%, a \"record\" year.",
                number % 40
            ),
            _ => write!(text, "Reçu fiscal n° {number} — {org}, {place}"),
        };
        text
    }
}

/// A text made of sentences, with its entities as character and token spans.
#[derive(Default)]
struct EntityText {
    text: String,
    chars: u32,
    tokens: Vec<String>,
    spans: Vec<EntitySpan>,
    relations: Vec<(&'static str, usize, usize)>,
}

struct EntitySpan {
    label: &'static str,
    text: &'static str,
    start: u32,
    end: u32,
    token_start: u32,
    token_end: u32,
}

impl EntityText {
    fn literal(&mut self, s: &str) {
        self.text.push_str(s);
        self.chars += s.chars().count() as u32;
        for word in s.split_whitespace() {
            let core = word.trim_start_matches(['"', '(']);
            for c in word[..word.len() - core.len()].chars() {
                self.tokens.push(c.to_string());
            }
            let trimmed = core.trim_end_matches(['"', ')', '.', ',', ':', ';']);
            if !trimmed.is_empty() {
                self.tokens.push(trimmed.to_owned());
            }
            for c in core[trimmed.len()..].chars() {
                self.tokens.push(c.to_string());
            }
        }
    }

    fn entity(&mut self, label: &'static str, text: &'static str) {
        let start = self.chars;
        self.text.push_str(text);
        self.chars += text.chars().count() as u32;
        let token_start = self.tokens.len() as u32;
        self.tokens
            .extend(text.split_whitespace().map(str::to_owned));
        self.spans.push(EntitySpan {
            label,
            text,
            start,
            end: self.chars,
            token_start,
            token_end: self.tokens.len() as u32,
        });
    }
}
