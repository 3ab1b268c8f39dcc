//! TSV_IOB: one token per line, `token<TAB>tag`, a blank line after each sentence; tags
//! are `B-`/`I-`/`O`, IOB2 by default, IOB1 with `"tagging": "iob1"`. Tokens and
//! sentences are `crate::tokens`'s: spans split tokens so each is whole tokens, and
//! overlapping spans go to the errors report.

use crate::tokens::{Lines, TaggedLines, Tagging, TAGGING};
use crate::FormatSpec;
use labelport_model::Mode;

/// Tokens and IOB tags, tab-separated.
pub static FORMAT: FormatSpec = FormatSpec {
    name: "TSV_IOB",
    summary:
        "one token per line with its B-/I-/O tag (IOB2, or IOB1), a blank line between sentences",
    modes: Some(&[Mode::Token, Mode::Entity]),
    default_states: None,
    allowed_states: None,
    default_stages: Some(&["Complete"]),
    options: &[&TAGGING],
    build: |settings| {
        settings.fields.refuse_all(FORMAT.name)?;
        Ok(Box::new(TaggedLines {
            lines: Lines::Tsv,
            tagging: Some(Tagging::from_settings(settings)?),
        }))
    },
};

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::formats::testing;

    const TASK: &str = r#"{"id":"t","asset":{"url":"u","text":"Ada met Bob Cy. Then\tleft."},"state":"validated","stage":"Complete","createdAt":"x",
        "submissions":[{"id":"s","stage":"L","origin":"human","completedAt":"x","annotations":[
          {"id":"a","type":"span","label":"PER","start":0,"end":3},
          {"id":"b","type":"span","label":"PER","start":8,"end":11},
          {"id":"c","type":"span","label":"PER","start":12,"end":14}]}]}"#;

    #[test]
    fn iob2_and_iob1_lines() {
        let project = testing::project("entity", serde_json::json!({}));
        let file = |options| {
            let encoder = testing::build("TSV_IOB", &project, options).unwrap();
            testing::file(encoder.as_ref(), &[TASK])
        };
        assert_eq!(
            file(serde_json::json!({})),
            "Ada\tB-PER\nmet\tO\nBob\tB-PER\nCy\tB-PER\n.\tO\n\nThen\tO\nleft\tO\n.\tO\n\n"
        );
        assert_eq!(
            file(serde_json::json!({"tagging": "iob1"})),
            "Ada\tI-PER\nmet\tO\nBob\tI-PER\nCy\tB-PER\n.\tO\n\nThen\tO\nleft\tO\n.\tO\n\n"
        );
    }
}
