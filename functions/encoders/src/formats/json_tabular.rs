//! JSON_TABULAR: the table of a row or document project (`crate::table`) as one JSON
//! array of flat objects, one per task, keys in column order:
//! `{"id": "t1", "product": "...", ..., "label": ["positive"]}`. `label` is always a
//! list (a task may have several classes), so no cell needs splitting. Streamed like
//! JSON: `[`, the objects separated by `,\n`, `]`.

use crate::json_text::{write_str, write_str_array};
use crate::table::{class_labels, Table, TableCell, MODES};
use crate::{Container, EncodeError, Encoder, FormatSpec, Out, Record};

/// The table as JSON.
pub static FORMAT: FormatSpec = FormatSpec {
    name: "JSON_TABULAR",
    summary:
        "one flat object per task: id, the row's columns or the document's text, label (a list)",
    modes: Some(MODES),
    default_states: None,
    allowed_states: None,
    default_stages: Some(&["Complete"]),
    options: &[],
    build: |settings| {
        settings.fields.refuse_all(FORMAT.name)?;
        Ok(Box::new(JsonTabularEncoder {
            table: Table::new(settings.project, FORMAT.name)?,
        }))
    },
};

/// Writes the array.
pub struct JsonTabularEncoder {
    table: Table,
}

impl Encoder for JsonTabularEncoder {
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
        let mut first = true;
        out.record().push(b'{');
        self.table.row(record.task, out, |out, column, cell| {
            let out = out.record();
            // Column names come from the project: escaped like any string.
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            write_str(out, column);
            out.push(b':');
            match cell {
                TableCell::Text(text) => write_str(out, text),
                TableCell::Labels(annotations) => write_str_array(out, class_labels(annotations)),
            }
        });
        out.record().push(b'}');
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::formats::testing;
    use serde_json::json;

    #[test]
    fn one_flat_object_per_task_with_label_as_a_list() {
        let (project, task) = testing::tricky_row(&["product", "review", "label"]);
        let encoder = testing::build("JSON_TABULAR", &project, json!({})).unwrap();
        let text = testing::file(
            encoder.as_ref(),
            &[&task, &task.replace("\"t1\"", "\"t2\"")],
        );
        let rows: serde_json::Value = serde_json::from_str(&text).unwrap();
        let first = json!({
            "id": "t1",
            "product": "Crème, \"fraîche\"\tx",
            "review": "=HYPERLINK(\"http://x\")\nبسيط",
            "column:label": "",
            "label": ["spam|ham", "-neutral"],
        });
        assert_eq!(rows[0], first);
        assert_eq!(rows[1]["id"], "t2");
        // Keys in column order, as a reader that keeps order sees them.
        let keys: Vec<&str> = text
            .lines()
            .nth(1)
            .unwrap()
            .split("\":")
            .map(|k| k.rsplit('"').next().unwrap())
            .collect();
        assert_eq!(
            &keys[..5],
            ["id", "product", "review", "column:label", "label"]
        );
    }
}
