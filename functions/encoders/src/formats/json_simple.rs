//! JSON_SIMPLE: text and labels only, one JSON object per document, in a ZIP with the
//! latest state of every document and each labeler's own work:
//!
//! ```text
//! documents/{task}.json          the task's current labels
//! labelers/{labeler}/{task}.json each labeler's last submission on the task
//! ```
//!
//! An object is `{"id", "name", "text" | "tokens" | "row", "labels": [..]}`, a label
//! `{"label"}` for a class, `{"label", "start", "end", "text"?}` for a text span and
//! `{"label", "tokenStart", "tokenEnd", "text"?}` for a token span. Anything else (a
//! relation, a box, a form answer) has no place in it and goes to the errors report,
//! entry by entry. Names in the ZIP are the task id (and the labeler's address) where
//! it is safe as a file name; otherwise the unsafe characters become `_` and the
//! record's ordinal is added, so two names never collide and none leaves its folder.

use crate::json_text::{write_int, write_key, write_str, write_str_array};
use crate::out::safe_name;
use crate::{Container, EncodeError, Encoder, FormatSpec, Out, Record};
use labelport_model::{Annotation, AnnotationKind, Asset, Mode, Relation};

/// Text and labels, one object per document, in a ZIP.
pub static FORMAT: FormatSpec = FormatSpec {
    name: "JSON_SIMPLE",
    summary: "a ZIP of one {id, name, text, labels} object per document, and each labeler's work",
    modes: Some(&[Mode::Entity, Mode::Token, Mode::Row, Mode::Document]),
    default_states: None,
    allowed_states: None,
    default_stages: None,
    options: &[],
    build: |settings| {
        settings.fields.refuse_all(FORMAT.name)?;
        Ok(Box::new(JsonSimpleEncoder))
    },
};

/// Writes the documents and labelers' entries.
pub struct JsonSimpleEncoder;

impl Encoder for JsonSimpleEncoder {
    fn container(&self) -> Container {
        Container::Zip
    }

    fn encode(&self, record: &Record<'_, '_>, out: &mut Out) -> Result<(), EncodeError> {
        let task = record.task;
        let mut ordinal = itoa::Buffer::new();
        let ordinal = ordinal.format(record.ordinal);
        let stem = safe_name(&task.id, ordinal);
        let annotations = task.annotations();
        let relations = task.relations();
        let buffer = out.entry_of(&["documents/", &stem, ".json"]);
        let refused = write_document(buffer, record, annotations);
        refuse_all(out, refused, relations, "documents/", "", &stem);

        for (i, submission) in task.submissions.iter().enumerate() {
            let Some(labeler) = submission.labeler.as_deref() else {
                continue;
            };
            let later = task.submissions[i + 1..]
                .iter()
                .any(|s| s.labeler.as_deref() == Some(labeler));
            if later {
                continue;
            }
            let folder = safe_name(labeler, ordinal);
            let buffer = out.entry_of(&["labelers/", &folder, "/", &stem, ".json"]);
            let refused = write_document(buffer, record, &submission.annotations);
            refuse_all(
                out,
                refused,
                &submission.relations,
                "labelers/",
                &folder,
                &stem,
            );
        }
        Ok(())
    }
}

/// Writes one document object; returns the annotations it left out.
fn write_document<'s, 'a>(
    out: &mut Vec<u8>,
    record: &Record<'_, '_>,
    annotations: &'s [Annotation<'a>],
) -> impl Iterator<Item = &'s Annotation<'a>> {
    let task = record.task;
    out.extend_from_slice(b"{\"id\":");
    write_str(out, &task.id);
    out.extend_from_slice(b",\"name\":");
    write_str(out, document_name(&task.asset, &task.id));
    write_content(out, &task.asset);
    out.extend_from_slice(b",\"labels\":[");
    let mut first = true;
    for a in annotations.iter().filter(|a| fits(a)) {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        let mut first_key = true;
        out.push(b'{');
        write_key(out, &mut first_key, "label");
        write_str(out, a.label.as_deref().unwrap_or(""));
        if a.kind == AnnotationKind::Span {
            let offsets = [
                ("start", a.start),
                ("end", a.end),
                ("tokenStart", a.token_start),
                ("tokenEnd", a.token_end),
            ];
            for (key, value) in offsets {
                if let Some(value) = value {
                    write_key(out, &mut first_key, key);
                    write_int(out, value);
                }
            }
            if let Some(text) = a.text.as_deref() {
                write_key(out, &mut first_key, "text");
                write_str(out, text);
            }
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    annotations.iter().filter(|a| !fits(a))
}

/// Whether an annotation is a text label this format holds.
fn fits(a: &Annotation<'_>) -> bool {
    match a.kind {
        AnnotationKind::Class | AnnotationKind::Span => a.label.is_some(),
        AnnotationKind::Box
        | AnnotationKind::Polygon
        | AnnotationKind::Point
        | AnnotationKind::Group
        | AnnotationKind::Transcription
        | AnnotationKind::Answer => false,
    }
}

/// Sends what one entry left out to the errors report.
fn refuse_all<'s, 'a: 's>(
    out: &mut Out,
    annotations: impl Iterator<Item = &'s Annotation<'a>>,
    relations: &[Relation<'_>],
    folder: &str,
    labeler: &str,
    stem: &str,
) {
    let entry = |what: &str| {
        let slash = if labeler.is_empty() { "" } else { "/" };
        format!("{what} has no place in JSON_SIMPLE, which holds text labels only; left out of {folder}{labeler}{slash}{stem}.json (NDJSON and NATIVE keep it)")
    };
    for a in annotations {
        out.refuse(&a.id, &entry(&format!("a {}", a.kind.as_str())));
    }
    for r in relations {
        out.refuse(&r.id, &entry("a relation"));
    }
}

/// `"text"`, `"tokens"` or `"row"`, with a leading comma; nothing for other assets.
fn write_content(out: &mut Vec<u8>, asset: &Asset<'_>) {
    if let Some(text) = asset.text.as_deref() {
        out.extend_from_slice(b",\"text\":");
        write_str(out, text);
    } else if !asset.tokens.is_empty() {
        out.extend_from_slice(b",\"tokens\":");
        write_str_array(out, asset.tokens.iter().map(|t| t.as_ref()));
    } else if !asset.row.is_empty() {
        out.extend_from_slice(b",\"row\":{");
        for (i, cell) in asset.row.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_str(out, &cell.column);
            out.push(b':');
            write_str(out, &cell.value);
        }
        out.push(b'}');
    }
}

/// The document's name: the customer's id for it, else the file name in its URL.
fn document_name<'s>(asset: &'s Asset<'_>, id: &'s str) -> &'s str {
    if let Some(external) = asset.external_id.as_deref() {
        return external;
    }
    let path = asset.url.split(['?', '#']).next().unwrap_or("");
    match path.rsplit('/').next() {
        Some(file) if !file.is_empty() => file,
        _ => id,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::formats::testing;
    use serde_json::{json, Value};

    fn task(id: &str) -> String {
        json!({
            "id": id, "asset": {"url": "s3://b/docs/contract.txt?v=2", "text": "Ada met Bob."},
            "state": "annotated", "stage": "Complete", "createdAt": "x",
            "submissions": [
                {"id": "s1", "stage": "Label", "origin": "human", "labeler": "ann@x.com", "completedAt": "x",
                 "annotations": [{"id": "a1", "type": "span", "label": "PER", "start": 0, "end": 3, "text": "Ada"}]},
                {"id": "s2", "stage": "Label", "origin": "human", "labeler": "bo b@x.com", "completedAt": "x",
                 "annotations": [{"id": "a1", "type": "span", "label": "PER", "start": 0, "end": 3, "text": "Ada"},
                                 {"id": "a2", "type": "span", "label": "PER", "start": 8, "end": 11},
                                 {"id": "c1", "type": "class", "label": "news"},
                                 {"id": "b1", "type": "box", "label": "x", "bbox": {"x": 0, "y": 0, "width": 1, "height": 1}}],
                 "relations": [{"id": "r1", "label": "met", "from": "a1", "to": "a2"}]},
                {"id": "s3", "stage": "Review", "origin": "human", "labeler": "ann@x.com", "completedAt": "x",
                 "annotations": [{"id": "c1", "type": "class", "label": "news"}]},
                {"id": "s4", "stage": "Review", "origin": "machine", "model": "m1", "completedAt": "x",
                 "annotations": [{"id": "c9", "type": "class", "label": "sports"}]}
            ]
        })
        .to_string()
    }

    fn entries(out: &Out) -> Vec<(String, Value)> {
        out.pieces()
            .iter()
            .map(|p| {
                let body = serde_json::from_slice(&out.bytes()[p.bytes.clone()]).unwrap();
                (out.name(p).unwrap().to_owned(), body)
            })
            .collect()
    }

    #[test]
    fn one_document_and_each_labelers_last_work() {
        let text = task("t1");
        let out = testing::records(&JsonSimpleEncoder, &[&text]);
        let entries = entries(&out);
        let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "documents/t1.json",
                "labelers/bo_b@x.com-0/t1.json",
                "labelers/ann@x.com/t1.json"
            ]
        );
        assert_eq!(
            entries[0].1,
            json!({"id": "t1", "name": "contract.txt", "text": "Ada met Bob.", "labels": [{"label": "sports"}]})
        );
        assert_eq!(
            entries[1].1["labels"],
            json!([{"label": "PER", "start": 0, "end": 3, "text": "Ada"},
                   {"label": "PER", "start": 8, "end": 11}, {"label": "news"}])
        );
        assert_eq!(entries[2].1["labels"], json!([{"label": "news"}]));
    }

    #[test]
    fn what_does_not_fit_is_refused_with_the_entry_it_left() {
        let text = task("t1");
        let mut out = Out::new(b"");
        let parsed: labelport_model::Task<'_> = serde_json::from_str(&text).unwrap();
        out.begin_record();
        JsonSimpleEncoder
            .encode(
                &Record {
                    task: &parsed,
                    raw: None,
                    ordinal: 0,
                },
                &mut out,
            )
            .unwrap();
        let refusals: Vec<Value> = std::str::from_utf8(out.record_refusals())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(&format!("{{{l}}}")).unwrap())
            .collect();
        let ids: Vec<&str> = refusals
            .iter()
            .map(|r| r["annotationId"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["b1", "r1"]);
        assert!(refusals[0]["reason"]
            .as_str()
            .unwrap()
            .contains("a box has no place in JSON_SIMPLE"));
        assert!(refusals[1]["reason"]
            .as_str()
            .unwrap()
            .contains("labelers/bo_b@x.com-0/t1.json"));
    }

    #[test]
    fn unsafe_ids_never_escape_their_folder() {
        for (id, ordinal, want) in [
            ("t-1", "5", "t-1"),
            ("../../etc/passwd", "5", ".._.._etc_passwd-5"),
            ("a/b", "6", "a_b-6"),
            (".hidden", "7", ".hidden-7"),
            ("..", "3", "..-3"),
            ("", "8", "-8"),
            ("日本", "9", "__-9"),
        ] {
            assert_eq!(safe_name(id, ordinal), want);
        }
    }
}
