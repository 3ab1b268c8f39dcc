//! The table of a row or document project, which the tabular formats (TSV,
//! JSON_TABULAR, HUGGINGFACE_CSV) write each in their own syntax: one row per task with
//!
//! - `id`, the task's id,
//! - the row's cells, one column per project column in the project's order (row mode),
//!   or `text`, the document's text (document mode),
//! - `label`, the task's classes (several for a multi-label task).
//!
//! A project column named `id`, `text` or `label`, or one that would repeat another's
//! name, gets the prefix `column:`. A cell of a column the project does not list, and an
//! annotation that is not a class, have no place in the table: each goes to the errors
//! report.

use crate::tabular::column_names;
use crate::{ConfigError, Out};
use labelport_model::{Annotation, AnnotationKind, Mode, Project, Task};

/// The modes the table fits.
pub const MODES: &[Mode] = &[Mode::Row, Mode::Document];

/// Put before a project column's name when the name is taken.
pub const COLUMN_PREFIX: &str = "column:";

/// The table's layout for one project.
pub struct Table {
    mode: Mode,
    /// The header: every column's name, in order.
    header: Vec<String>,
    /// The project's columns, as `asset.row` names them (row mode).
    data: Vec<String>,
}

/// One cell of a task's row.
pub enum TableCell<'t> {
    /// Text: the id, a row cell, the document's text.
    Text(&'t str),
    /// The task's classes, in order.
    Labels(&'t [Annotation<'t>]),
}

impl Table {
    /// The table of `project`; a row project must list its columns.
    pub fn new(project: &Project, format: &str) -> Result<Self, ConfigError> {
        let mut header = vec!["id".to_owned()];
        let data = match project.mode {
            Mode::Row if project.columns.is_empty() => {
                return Err(ConfigError::new(
                    "format",
                    format!(
                        "{format} writes one column per column of the table, and project {} lists none (`columns` in project.json)",
                        project.id
                    ),
                ))
            }
            Mode::Row => project.columns.clone(),
            _ => Vec::new(),
        };
        if project.mode == Mode::Document {
            header.push("text".to_owned());
        }
        header.extend(column_names(&["id", "text", "label"], &data, COLUMN_PREFIX));
        header.push("label".to_owned());
        Ok(Table {
            mode: project.mode,
            header,
            data,
        })
    }

    /// The column names, in order.
    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// Hands `write` the cells of `task`'s row in header order, each with its column's
    /// name; what has no cell goes to `out`'s errors report.
    pub fn row<'t>(
        &'t self,
        task: &'t Task<'t>,
        out: &mut Out,
        mut write: impl FnMut(&mut Out, &'t str, TableCell<'t>),
    ) {
        let mut columns = self.header.iter().map(String::as_str);
        let mut next = || columns.next().unwrap_or_default();
        write(out, next(), TableCell::Text(&task.id));
        match self.mode {
            Mode::Document => {
                write(
                    out,
                    next(),
                    TableCell::Text(task.asset.text.as_deref().unwrap_or("")),
                );
            }
            _ => {
                for column in &self.data {
                    let value = task
                        .asset
                        .row
                        .iter()
                        .find(|cell| cell.column == column.as_str())
                        .map_or("", |cell| &cell.value);
                    write(out, next(), TableCell::Text(value));
                }
                for cell in &task.asset.row {
                    if !self.data.iter().any(|c| c.as_str() == cell.column) {
                        out.refuse(
                            &cell.column,
                            "a cell of a column the project does not list; the table has no place for it",
                        );
                    }
                }
            }
        }
        let annotations = task.annotations();
        write(out, next(), TableCell::Labels(annotations));
        for a in annotations {
            if a.kind != AnnotationKind::Class {
                out.refuse(
                    &a.id,
                    "only classes have a place in a table; use NDJSON for the rest",
                );
            }
        }
    }
}

/// The labels of the class annotations among `annotations`, in order.
pub fn class_labels<'s>(
    annotations: &'s [Annotation<'_>],
) -> impl Iterator<Item = &'s str> + Clone {
    annotations
        .iter()
        .filter(|a| a.kind == AnnotationKind::Class)
        .filter_map(|a| a.label.as_deref())
}
