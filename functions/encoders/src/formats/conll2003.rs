//! CONLL2003: the CoNLL-2003 shared task's layout, four space-separated columns per
//! token (`token POS chunk NER`), each document (task) opened by
//! `-DOCSTART- -X- -X- O` and a blank line, a blank line after each sentence. labelport
//! has no part-of-speech or chunk tags, so those columns hold `-X-`, as the DOCSTART
//! line does. NER tags are IOB2 by default (as Hugging Face's `conll2003` dataset uses),
//! IOB1 (the original files' scheme) with `"tagging": "iob1"`. Whitespace inside a
//! token becomes `_`, so the columns stay four.
//!
//! `"compat": "label-studio"` writes Label Studio's converter's variant: one
//! `-DOCSTART- -X- O` atop the file, `token -X- _ tag`, a blank line after each task
//! and none between sentences.

use crate::tokens::{Lines, TaggedLines, Tagging, TAGGING};
use crate::{Compat, FormatSpec, COMPAT};
use labelport_model::Mode;

/// The CoNLL-2003 layout.
pub static FORMAT: FormatSpec = FormatSpec {
    name: "CONLL2003",
    summary: "CoNLL-2003: token -X- -X- NER tag per line, -DOCSTART- per task, IOB2 (or IOB1)",
    modes: Some(&[Mode::Token, Mode::Entity]),
    default_states: None,
    allowed_states: None,
    default_stages: Some(&["Complete"]),
    options: &[&TAGGING, &COMPAT],
    build: |settings| {
        settings.fields.refuse_all(FORMAT.name)?;
        Ok(Box::new(TaggedLines {
            lines: match Compat::of(settings.options)? {
                None => Lines::Conll,
                Some(Compat::LabelStudio) => Lines::ConllLabelStudio,
            },
            tagging: Some(Tagging::from_settings(settings)?),
        }))
    },
};

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::formats::testing;

    #[test]
    fn docstart_four_columns_and_sentences() {
        let project = testing::project("token", serde_json::json!({}));
        let task = r#"{"id":"t","asset":{"url":"u","tokens":["EU","rejects","New York","call","."]},"state":"validated","stage":"Complete","createdAt":"x",
            "submissions":[{"id":"s","stage":"L","origin":"human","completedAt":"x","annotations":[
              {"id":"a","type":"span","label":"ORG","tokenStart":0,"tokenEnd":1},
              {"id":"b","type":"span","label":"LOC","tokenStart":2,"tokenEnd":3}]}]}"#;
        let encoder = testing::build("CONLL2003", &project, serde_json::json!({})).unwrap();
        assert_eq!(
            testing::file(encoder.as_ref(), &[task]),
            "-DOCSTART- -X- -X- O\n\nEU -X- -X- B-ORG\nrejects -X- -X- O\nNew_York -X- -X- B-LOC\ncall -X- -X- O\n. -X- -X- O\n\n"
        );
    }

    #[test]
    fn label_studio_compat_has_one_docstart_and_a_blank_line_per_document() {
        let project = testing::project("token", serde_json::json!({}));
        let task = |id: &str| {
            format!(
                r#"{{"id":"{id}","asset":{{"url":"u","tokens":["EU","rejects",".","Next","."]}},"state":"validated","stage":"Complete","createdAt":"x",
                "submissions":[{{"id":"s","stage":"L","origin":"human","completedAt":"x","annotations":[
                  {{"id":"a","type":"span","label":"ORG","tokenStart":0,"tokenEnd":1}}]}}]}}"#
            )
        };
        let encoder = testing::build(
            "CONLL2003",
            &project,
            serde_json::json!({"compat": "label-studio"}),
        )
        .unwrap();
        let (t1, t2) = (task("t1"), task("t2"));
        let document = "EU -X- _ B-ORG\nrejects -X- _ O\n. -X- _ O\nNext -X- _ O\n. -X- _ O\n\n";
        assert_eq!(
            testing::file(encoder.as_ref(), &[&t1, &t2]),
            format!("-DOCSTART- -X- O\n{document}{document}")
        );
    }
}
