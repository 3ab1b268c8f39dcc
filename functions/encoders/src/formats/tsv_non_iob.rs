//! TSV_NON_IOB: TSV_IOB's lines with the bare label as the tag (`PER`, or `O` outside
//! spans), for tools that read a label per token without B-/I- prefixes. Adjacent spans
//! of one label cannot be told apart here; TSV_IOB keeps them apart.

use crate::tokens::{Lines, TaggedLines};
use crate::FormatSpec;
use labelport_model::Mode;

/// Tokens and labels, tab-separated.
pub static FORMAT: FormatSpec = FormatSpec {
    name: "TSV_NON_IOB",
    summary: "one token per line with its span's label (or O), a blank line between sentences",
    modes: Some(&[Mode::Token, Mode::Entity]),
    default_states: None,
    allowed_states: None,
    default_stages: Some(&["Complete"]),
    options: &[],
    build: |settings| {
        settings.fields.refuse_all(FORMAT.name)?;
        Ok(Box::new(TaggedLines {
            lines: Lines::Tsv,
            tagging: None,
        }))
    },
};

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::formats::testing;

    #[test]
    fn labels_without_prefixes() {
        let project = testing::project("token", serde_json::json!({}));
        let task = r#"{"id":"t","asset":{"url":"u","tokens":["New","York","rocks"]},"state":"validated","stage":"Complete","createdAt":"x",
            "submissions":[{"id":"s","stage":"L","origin":"human","completedAt":"x","annotations":[
              {"id":"a","type":"span","label":"LOC","tokenStart":0,"tokenEnd":2}]}]}"#;
        let encoder = testing::build("TSV_NON_IOB", &project, serde_json::json!({})).unwrap();
        assert_eq!(
            testing::file(encoder.as_ref(), &[task]),
            "New\tLOC\nYork\tLOC\nrocks\tO\n\n"
        );
    }
}
