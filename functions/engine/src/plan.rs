//! What to write and how: an [`ExportSpec`] (the format, its options, the filters) is
//! checked against the project, then turned into a [`Plan`] the pipeline runs. The
//! API's request and `labelport export` both make one; neither knows the other.

use crate::filter::TaskFilter;
use crate::pipeline::{self, InvalidLines, Options, Output, PipelineError, Source, Summary};
use crate::progress::Progress;
use labelport_encoders::{
    Compression, ConfigError, Encoder, FieldToggles, Format, FormatOptions, Settings,
};
use labelport_model::{Project, TaskState};
use serde::{Deserialize, Serialize};

/// A field of what was asked at fault, and why: becomes a 400 naming the field in the
/// API, a flag error in the CLI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// The field, as a JSON path (`filters.states[1]`).
    pub field: String,
    /// Why, for a person.
    pub message: String,
}

impl FieldError {
    /// Makes one.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Which tasks to export. Absent lists mean the format's defaults (CSV keeps annotated
/// and validated tasks; the JSON family keeps the Complete stage).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Filters {
    /// Task states to keep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_items = 1)]
    pub states: Option<Vec<TaskState>>,
    /// Workflow stages to keep (names of the project's stages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_items = 1)]
    pub stages: Option<Vec<String>>,
    /// Only tasks whose asset came from one of these data sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_items = 1)]
    pub data_sources: Option<Vec<String>>,
    /// Only tasks in one of these batches (a workflow order is a batch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_items = 1)]
    pub batches: Option<Vec<String>>,
    /// Only tasks one of these labelers submitted work on (their e-mail, compared
    /// without case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_items = 1)]
    pub labelers: Option<Vec<String>>,
}

/// What an export writes: the format and its options, the tasks kept, the output's
/// compression, and what a malformed line does.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportSpec<'a> {
    /// The output format.
    pub format: Format,
    /// Which tasks to export.
    pub filters: &'a Filters,
    /// Optional parts of each record.
    pub fields: FieldToggles,
    /// Compression of the output file.
    pub compression: Compression,
    /// What to do with a malformed source line.
    pub invalid_lines: InvalidLines,
    /// The format's own options.
    pub options: &'a FormatOptions,
}

impl ExportSpec<'_> {
    /// Checks the filters against the format and the project, and builds the encoder
    /// once, where every format rule is checked.
    pub fn check(&self, project: &Project) -> Result<(), FieldError> {
        let spec = self.format.spec();
        if let Some(states) = &self.filters.states {
            if states.is_empty() {
                return Err(FieldError::new("filters.states", "must not be empty"));
            }
            if let Some(allowed) = spec.allowed_states {
                if let Some((i, s)) = states
                    .iter()
                    .enumerate()
                    .find(|(_, s)| !allowed.contains(s))
                {
                    let names: Vec<&str> = allowed.iter().map(|s| s.as_str()).collect();
                    return Err(FieldError::new(
                        format!("filters.states[{i}]"),
                        format!(
                            "the {} export holds only {} tasks, not `{}`",
                            spec.name,
                            names.join(" and "),
                            s.as_str()
                        ),
                    ));
                }
            }
        }
        if let Some(stages) = &self.filters.stages {
            if stages.is_empty() {
                return Err(FieldError::new("filters.stages", "must not be empty"));
            }
            for (i, stage) in stages.iter().enumerate() {
                if !project.stages.iter().any(|s| s == stage) {
                    return Err(FieldError::new(
                        format!("filters.stages[{i}]"),
                        format!(
                            "`{stage}` is not a stage of project {}; its stages are {}",
                            project.id,
                            project.stages.join(", ")
                        ),
                    ));
                }
            }
        }
        for (field, list) in [
            ("filters.dataSources", &self.filters.data_sources),
            ("filters.batches", &self.filters.batches),
            ("filters.labelers", &self.filters.labelers),
        ] {
            if list.as_ref().is_some_and(Vec::is_empty) {
                return Err(FieldError::new(field, "must not be empty"));
            }
        }
        self.encoder(project)?;
        Ok(())
    }

    /// Builds the format's encoder for `project`: where every format rule is checked.
    pub fn encoder(&self, project: &Project) -> Result<Box<dyn Encoder>, FieldError> {
        let refused = |e: ConfigError| FieldError::new(e.field, e.message);
        for key in self.options.keys() {
            let anywhere = Format::all().any(|f| f.spec().takes(key));
            if !anywhere {
                return Err(FieldError::new(
                    key.clone(),
                    format!("unknown field `{key}`"),
                ));
            }
        }
        let encoder = self
            .format
            .build(&Settings {
                project,
                fields: self.fields,
                compression: self.compression,
                options: self.options,
            })
            .map_err(refused)?;
        if encoder.container().is_archive() && self.compression != Compression::None {
            return Err(FieldError::new(
                "compression",
                format!(
                    "{} is a ZIP archive (an XLSX is one too), which compresses its contents itself; leave compression out",
                    self.format
                ),
            ));
        }
        Ok(encoder)
    }

    /// The states kept: the filters', else the format's default.
    pub fn effective_states(&self) -> Option<Vec<TaskState>> {
        self.filters
            .states
            .clone()
            .or_else(|| self.format.spec().default_states.map(<[_]>::to_vec))
    }

    /// The stages kept: the filters', else the format's default.
    pub fn effective_stages(&self) -> Option<Vec<String>> {
        self.filters.stages.clone().or_else(|| {
            self.format
                .spec()
                .default_stages
                .map(|stages| stages.iter().map(|s| (*s).to_owned()).collect())
        })
    }
}

/// What an export spec turns into: the encoder, the filter and the options. Built
/// once per export, where a format refuses options it cannot honour.
pub struct Plan {
    /// The format's encoder.
    pub encoder: Box<dyn Encoder>,
    /// The tasks kept (the spec's filters, else the format's defaults).
    pub filter: TaskFilter,
    /// How the pipeline runs.
    pub options: Options,
}

impl Plan {
    /// Plans `spec` on `project` with `threads` encoder threads.
    pub fn new(
        spec: &ExportSpec<'_>,
        project: &Project,
        threads: usize,
    ) -> Result<Self, FieldError> {
        let states = spec.effective_states();
        Ok(Plan {
            encoder: spec.encoder(project)?,
            filter: TaskFilter::new(states.as_deref(), spec.effective_stages())
                .with_data_sources(spec.filters.data_sources.clone())
                .with_batches(spec.filters.batches.clone())
                .with_labelers(spec.filters.labelers.clone()),
            options: Options {
                threads,
                invalid_lines: spec.invalid_lines,
                compression: spec.compression,
                ..Options::default()
            },
        })
    }

    /// Runs the plan (see [`pipeline::run`]).
    pub fn run<S>(
        &self,
        sources: S,
        output: Output<'_>,
        on_progress: &mut dyn FnMut(&Progress),
    ) -> Result<Summary, PipelineError>
    where
        S: Iterator<Item = Result<Source, PipelineError>> + Send,
    {
        pipeline::run(
            sources,
            self.encoder.as_ref(),
            &self.filter,
            &self.options,
            output,
            on_progress,
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_filter_list_is_refused_by_its_field() {
        let project: Project = serde_json::from_value(serde_json::json!({
            "schemaVersion": 1, "id": "p", "name": "P", "mode": "classification",
            "state": "running",
        }))
        .unwrap();
        let options = FormatOptions::default();
        for field in ["dataSources", "batches", "labelers"] {
            let filters: Filters =
                serde_json::from_value(serde_json::json!({ field: [] })).unwrap();
            let spec = ExportSpec {
                format: "NDJSON".parse().unwrap(),
                filters: &filters,
                fields: FieldToggles::default(),
                compression: Compression::None,
                invalid_lines: InvalidLines::Fail,
                options: &options,
            };
            let refused = spec.check(&project).unwrap_err();
            assert_eq!(
                (refused.field.as_str(), refused.message.as_str()),
                (format!("filters.{field}").as_str(), "must not be empty")
            );
        }
    }
}
