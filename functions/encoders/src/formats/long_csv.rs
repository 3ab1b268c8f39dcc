//! LONG_CSV: assessments in long form, one row per attribute value (`crate::assessments`
//! has the lead columns and which assessments are kept). An annotation's location is
//! an attribute too, so each annotation has a `location` row (its geometry as JSON,
//! empty for a class) with the annotation's confidence, then one row per attribute
//! value with that value's confidence; `entity_id` groups an annotation's rows.
//! Columns: the lead columns, then `attribute, value, confidence`.

use crate::assessments::{
    fits, write_confidence, write_entity, write_location, Assessments, Lead, ASSESSMENTS,
    LEAD_COLUMNS,
};
use crate::tabular::{TableStyle, CELLS, EXCEL};
use crate::{Container, EncodeError, Encoder, FormatSpec, Out, Record};
use labelport_model::Mode;

/// Assessments, one row per attribute value.
pub static FORMAT: FormatSpec = FormatSpec {
    name: "LONG_CSV",
    summary: "assessments, one row per attribute value (the location is one), with its confidence",
    modes: Some(&[Mode::Element, Mode::Classification]),
    default_states: None,
    allowed_states: None,
    default_stages: None,
    options: &[&ASSESSMENTS, &CELLS, &EXCEL],
    build: |settings| {
        settings.fields.refuse_all(FORMAT.name)?;
        Ok(Box::new(LongCsvEncoder {
            style: TableStyle::from_settings(settings, b',')?,
            assessments: Assessments::from_settings(settings)?,
        }))
    },
};

/// Writes the rows.
pub struct LongCsvEncoder {
    style: TableStyle,
    assessments: Assessments,
}

impl Encoder for LongCsvEncoder {
    fn container(&self) -> Container {
        Container::File {
            extension: "csv",
            content_type: "text/csv; charset=utf-8",
        }
    }

    fn header(&self, out: &mut Vec<u8>) {
        self.style.start(out);
        out.extend_from_slice(LEAD_COLUMNS.join(",").as_bytes());
        out.extend_from_slice(b",attribute,value,confidence");
        self.style.end_line(out);
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
                let row = out.record();
                let row_start = row.len();
                match &lead {
                    Some(lead) => lead.again(row),
                    None => lead = Some(Lead::begin(style, row, task, submission)),
                }
                write_entity(style, row, Some(a));
                // The lead and entity cells, escaped once, copied into each attribute row.
                let cells = row_start..row.len();
                row.extend_from_slice(b",location,");
                write_location(row, a);
                row.push(b',');
                write_confidence(row, a.confidence);
                style.end_line(row);
                for attribute in &a.attributes {
                    row.extend_from_within(cells.clone());
                    style.next(row);
                    style.text(row, &attribute.name);
                    style.next(row);
                    style.text(row, &attribute.value);
                    style.next(row);
                    write_confidence(row, attribute.confidence);
                    style.end_line(row);
                }
            }
            if lead.is_none() {
                let row = out.record();
                Lead::begin(style, row, task, submission);
                write_entity(style, row, None);
                row.extend_from_slice(b",,,");
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

    pub(crate) const TASK: &str = r#"{"id":"t1","asset":{"url":"u","externalId":"e1","dataSource":"camera-north"},
        "state":"validated","stage":"Complete","createdAt":"x","submissions":[
        {"id":"s1","stage":"Label","origin":"machine","model":"det@2","completedAt":"2024-01-01T00:00:00Z","annotations":[
          {"id":"a1","type":"box","label":"car","confidence":0.9,"bbox":{"x":1,"y":2,"width":3,"height":4},
           "attributes":[{"name":"color","value":"red, dark","confidence":0.75},{"name":"occluded","value":"=no"}]}]},
        {"id":"s2","stage":"Review","origin":"human","labeler":"ada@x.com","completedAt":"2024-01-02T02:00:00+02:00","annotations":[]}]}"#;

    fn encode(options: serde_json::Value) -> String {
        let project = testing::project(
            "element",
            serde_json::json!({"attributes": ["color", "occluded"]}),
        );
        let encoder = testing::build("LONG_CSV", &project, options).unwrap();
        testing::file(encoder.as_ref(), &[TASK])
    }

    const HEADER: &str = "task_id,external_id,data_source,assessment_id,origin,assessor,stage,assessed_at,entity_id,label,attribute,value,confidence\n";

    #[test]
    fn one_row_per_attribute_value_and_one_per_empty_assessment() {
        let lead = "t1,e1,camera-north,s1,machine,det@2,Label,2024-01-01T00:00:00Z,a1,car";
        assert_eq!(
            encode(serde_json::json!({})),
            format!(
                "{HEADER}\
                 {lead},location,\"{{\"\"type\"\":\"\"box\"\",\"\"x\"\":1.0,\"\"y\"\":2.0,\"\"width\"\":3.0,\"\"height\"\":4.0}}\",0.9\n\
                 {lead},color,\"red, dark\",0.75\n\
                 {lead},occluded,'=no,\n\
                 t1,e1,camera-north,s2,human,ada@x.com,Review,2024-01-02T00:00:00Z,,,,,\n"
            )
        );
    }

    #[test]
    fn latest_keeps_the_most_recent_assessment_only() {
        assert_eq!(
            encode(serde_json::json!({"assessments": "latest"})),
            format!(
                "{HEADER}t1,e1,camera-north,s2,human,ada@x.com,Review,2024-01-02T00:00:00Z,,,,,\n"
            )
        );
    }
}
