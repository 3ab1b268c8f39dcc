//! WIDE_CSV: assessments in wide form, one row per annotation (`crate::assessments` has
//! the lead columns and which assessments are kept): its `location` (geometry as JSON,
//! empty for a class), the location's `confidence`, then one column per attribute of the
//! project's label schema, in its order. Attribute confidences are not in this layout
//! (LONG_CSV has them). An attribute named like another column gets the prefix
//! `attribute:`; a value of an attribute the schema does not list goes to the errors
//! report; several values of one attribute share the cell (`a|b`).

use crate::assessments::{
    fits, write_confidence, write_entity, write_location, Assessments, Lead, ASSESSMENTS,
    LEAD_COLUMNS,
};
use crate::tabular::{column_names, TableStyle, CELLS, EXCEL};
use crate::{Container, EncodeError, Encoder, FormatSpec, Out, Record};
use labelport_model::Mode;

/// Put before an attribute's column name when the name is taken.
pub const ATTRIBUTE_PREFIX: &str = "attribute:";

/// Assessments, one row per annotation.
pub static FORMAT: FormatSpec = FormatSpec {
    name: "WIDE_CSV",
    summary:
        "assessments, one row per annotation: location and its confidence, one column per attribute",
    modes: Some(&[Mode::Element, Mode::Classification]),
    default_states: None,
    allowed_states: None,
    default_stages: None,
    options: &[&ASSESSMENTS, &CELLS, &EXCEL],
    build: |settings| {
        settings.fields.refuse_all(FORMAT.name)?;
        let attributes = settings.project.labels.attributes.clone();
        let mut taken: Vec<&str> = LEAD_COLUMNS.to_vec();
        taken.extend(["location", "confidence"]);
        Ok(Box::new(WideCsvEncoder {
            style: TableStyle::from_settings(settings, b',')?,
            assessments: Assessments::from_settings(settings)?,
            columns: column_names(&taken, &attributes, ATTRIBUTE_PREFIX),
            attributes,
        }))
    },
};

/// Writes the rows.
pub struct WideCsvEncoder {
    style: TableStyle,
    assessments: Assessments,
    /// The schema's attributes, in order, and their column names.
    attributes: Vec<String>,
    columns: Vec<String>,
}

impl Encoder for WideCsvEncoder {
    fn container(&self) -> Container {
        Container::File {
            extension: "csv",
            content_type: "text/csv; charset=utf-8",
        }
    }

    fn header(&self, out: &mut Vec<u8>) {
        let style = &self.style;
        style.start(out);
        out.extend_from_slice(LEAD_COLUMNS.join(",").as_bytes());
        out.extend_from_slice(b",location,confidence");
        for column in &self.columns {
            style.next(out);
            style.text(out, column);
        }
        style.end_line(out);
    }

    fn encode(&self, record: &Record<'_, '_>, out: &mut Out) -> Result<(), EncodeError> {
        let style = &self.style;
        let task = record.task;
        for submission in self.assessments.of(task) {
            let mut lead: Option<Lead> = None;
            for a in &submission.annotations {
                if !fits(a.kind) {
                    out.refuse(&a.id, "an assessment table holds regions and classes only");
                    continue;
                }
                for attribute in &a.attributes {
                    if !self.attributes.iter().any(|n| *n == attribute.name) {
                        out.refuse(
                            &a.id,
                            "an attribute the project's label schema does not list has no column",
                        );
                    }
                }
                let row = out.record();
                match &lead {
                    Some(lead) => lead.again(row),
                    None => lead = Some(Lead::begin(style, row, task, submission)),
                }
                write_entity(style, row, Some(a));
                row.push(b',');
                write_location(row, a);
                row.push(b',');
                write_confidence(row, a.confidence);
                for name in &self.attributes {
                    style.next(row);
                    let values = a
                        .attributes
                        .iter()
                        .filter(|attribute| attribute.name == name.as_str())
                        .map(|attribute| attribute.value.as_ref());
                    style.values(row, values);
                }
                style.end_line(row);
            }
            if lead.is_none() {
                let row = out.record();
                Lead::begin(style, row, task, submission);
                write_entity(style, row, None);
                row.extend_from_slice(b",,");
                for _ in &self.attributes {
                    style.next(row);
                }
                style.end_line(row);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::formats::testing;

    const TASK: &str = r#"{"id":"t1","asset":{"url":"u","externalId":"e1"},
        "state":"validated","stage":"Complete","createdAt":"x","submissions":[
        {"id":"s1","stage":"Label","origin":"human","labeler":"ada@x.com","completedAt":"2024-01-01T00:00:00Z","annotations":[
          {"id":"a1","type":"polygon","label":"car","confidence":0.5,"points":[[0,0],[1,0],[1,1]],
           "attributes":[{"name":"color","value":"red|dark","confidence":0.75},{"name":"color","value":"blue"},
                         {"name":"label","value":"x"},{"name":"weather","value":"rain"}]},
          {"id":"a2","type":"class","label":"day"},
          {"id":"a3","type":"span","label":"PER","start":0,"end":1}]}]}"#;

    fn encoder(attributes: serde_json::Value) -> Box<dyn crate::Encoder> {
        let project = testing::project("element", serde_json::json!({"attributes": attributes}));
        testing::build("WIDE_CSV", &project, serde_json::json!({})).unwrap()
    }

    #[test]
    fn one_row_per_annotation_one_column_per_schema_attribute() {
        let encoder = encoder(serde_json::json!(["color", "label"]));
        let lead = "t1,e1,,s1,human,ada@x.com,Label,2024-01-01T00:00:00Z";
        assert_eq!(
            testing::file(encoder.as_ref(), &[TASK]),
            format!(
                "task_id,external_id,data_source,assessment_id,origin,assessor,stage,assessed_at,entity_id,label,location,confidence,color,attribute:label\n\
                 {lead},a1,car,\"{{\"\"type\"\":\"\"polygon\"\",\"\"points\"\":[[0.0,0.0],[1.0,0.0],[1.0,1.0]]}}\",0.5,red\\|dark|blue,x\n\
                 {lead},a2,day,,,,\n"
            )
        );
        let refused = testing::refusals(encoder.as_ref(), TASK);
        let reasons: Vec<(&str, bool)> = refused
            .iter()
            .map(|(id, why)| (id.as_str(), why.contains("does not list")))
            .collect();
        assert_eq!(reasons, [("a1", true), ("a3", false)]);
    }
}
