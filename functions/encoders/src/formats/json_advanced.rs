//! JSON_ADVANCED: every document of a token or entity project with its spans and the
//! relations between them, as one JSON array (streamed like JSON):
//!
//! ```text
//! {"id", "text" | "tokens", "spans": [{"id", "label", "start", "end", "text",
//!   "labeledBy", "labeledAt"}], "relations": [{"id", "label", "from", "to"}]}
//! ```
//!
//! `start`/`end` are characters of `text` (entity projects) or token indices
//! (`tokenStart`/`tokenEnd`, token projects), end exclusive. `labeledBy` is who made the
//! span (the annotation's `createdBy`, else the labeler or model of the submission),
//! `labeledAt` when (milliseconds since the epoch), if the record says. Unlike the IOB
//! formats, overlapping and nested spans are kept as they are. Annotations that are not
//! spans go to the errors report.

use crate::json_text::{write_int, write_key, write_opt_str, write_str, write_str_array};
use crate::{Container, EncodeError, Encoder, FormatSpec, Out, Record};
use labelport_model::{AnnotationKind, Mode};

/// Spans and relations.
pub static FORMAT: FormatSpec = FormatSpec {
    name: "JSON_ADVANCED",
    summary: "one object per document: text or tokens, spans with offsets and who labelled them, relations",
    modes: Some(&[Mode::Token, Mode::Entity]),
    default_states: None,
    allowed_states: None,
    default_stages: Some(&["Complete"]),
    options: &[],
    build: |settings| {
        settings.fields.refuse_all(FORMAT.name)?;
        Ok(Box::new(JsonAdvancedEncoder))
    },
};

/// Writes the array.
pub struct JsonAdvancedEncoder;

impl Encoder for JsonAdvancedEncoder {
    fn container(&self) -> Container {
        Container::File {
            extension: "json",
            content_type: "application/json",
        }
    }

    fn header(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(crate::json_text::ARRAY_OPEN);
    }

    fn separator(&self) -> &'static [u8] {
        crate::json_text::ARRAY_SEPARATOR
    }

    fn footer(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(crate::json_text::ARRAY_CLOSE);
    }

    fn encode(&self, record: &Record<'_, '_>, out: &mut Out) -> Result<(), EncodeError> {
        let task = record.task;
        let submission = task.final_submission();
        let annotations = task.annotations();
        for a in annotations
            .iter()
            .filter(|a| a.kind != AnnotationKind::Span)
        {
            out.refuse(&a.id, "JSON_ADVANCED holds spans and relations only");
        }
        let o = out.record();
        let mut first = true;
        o.push(b'{');
        write_key(o, &mut first, "id");
        write_str(o, &task.id);
        let by_tokens = !task.asset.tokens.is_empty();
        if by_tokens {
            write_key(o, &mut first, "tokens");
            write_str_array(o, task.asset.tokens.iter().map(|t| t.as_ref()));
        } else {
            write_key(o, &mut first, "text");
            write_str(o, task.asset.text.as_deref().unwrap_or(""));
        }
        write_key(o, &mut first, "spans");
        o.push(b'[');
        let assessor = submission.and_then(|s| s.labeler.as_deref().or(s.model.as_deref()));
        for (i, a) in annotations
            .iter()
            .filter(|a| a.kind == AnnotationKind::Span)
            .enumerate()
        {
            if i > 0 {
                o.push(b',');
            }
            let mut first = true;
            o.push(b'{');
            write_key(o, &mut first, "id");
            write_str(o, &a.id);
            write_key(o, &mut first, "label");
            write_opt_str(o, a.label.as_deref());
            let (start, end, keys) = if by_tokens {
                (a.token_start, a.token_end, ["tokenStart", "tokenEnd"])
            } else {
                (a.start, a.end, ["start", "end"])
            };
            for (key, value) in keys.into_iter().zip([start, end]) {
                write_key(o, &mut first, key);
                match value {
                    Some(v) => write_int(o, v),
                    None => o.extend_from_slice(b"null"),
                }
            }
            write_key(o, &mut first, "text");
            write_opt_str(o, a.text.as_deref());
            write_key(o, &mut first, "labeledBy");
            write_opt_str(o, a.created_by.as_deref().or(assessor));
            write_key(o, &mut first, "labeledAt");
            match a.created_at {
                Some(at) => write_int(o, at),
                None => o.extend_from_slice(b"null"),
            }
            o.push(b'}');
        }
        o.push(b']');
        write_key(o, &mut first, "relations");
        o.push(b'[');
        for (i, r) in task.relations().iter().enumerate() {
            if i > 0 {
                o.push(b',');
            }
            let mut first = true;
            o.push(b'{');
            for (key, value) in [
                ("id", &r.id),
                ("label", &r.label),
                ("from", &r.from),
                ("to", &r.to),
            ] {
                write_key(o, &mut first, key);
                write_str(o, value);
            }
            o.push(b'}');
        }
        o.extend_from_slice(b"]}");
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::formats::testing;
    use serde_json::json;

    #[test]
    fn spans_relations_and_who_labelled_them() {
        let project = testing::project("entity", json!({}));
        let encoder = testing::build("JSON_ADVANCED", &project, json!({})).unwrap();
        let task = r#"{"id":"t","asset":{"url":"u","text":"Ada works at Initech"},"state":"validated","stage":"Complete","createdAt":"x",
            "submissions":[{"id":"s","stage":"L","origin":"human","labeler":"bo@x.com","completedAt":"x","annotations":[
              {"id":"a1","type":"span","label":"PER","start":0,"end":3,"text":"Ada","createdBy":"cy@x.com","createdAt":5},
              {"id":"a2","type":"span","label":"ORG","start":13,"end":20},
              {"id":"a3","type":"span","label":"X","start":0,"end":9},
              {"id":"c","type":"class","label":"news"}],
              "relations":[{"id":"r1","label":"works_for","from":"a1","to":"a2"}]}]}"#;
        let text = testing::file(encoder.as_ref(), &[task]);
        let documents: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            documents[0],
            json!({
                "id": "t", "text": "Ada works at Initech",
                "spans": [
                    {"id": "a1", "label": "PER", "start": 0, "end": 3, "text": "Ada", "labeledBy": "cy@x.com", "labeledAt": 5},
                    {"id": "a2", "label": "ORG", "start": 13, "end": 20, "text": null, "labeledBy": "bo@x.com", "labeledAt": null},
                    {"id": "a3", "label": "X", "start": 0, "end": 9, "text": null, "labeledBy": "bo@x.com", "labeledAt": null},
                ],
                "relations": [{"id": "r1", "label": "works_for", "from": "a1", "to": "a2"}],
            })
        );
        let refused = testing::refusals(encoder.as_ref(), task);
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].0, "c");
    }
}
