//! Another tool's export as the source of an export job: a request's `source` names an
//! export and its settings uploaded under `projects/{project}/imports/`, which replace
//! the project's own task files. The project's members still decide who may ask; the
//! tool's settings (a Label Studio labeling config) decide the mode and label schema.

use crate::error::RequestError;
use crate::ports::{ObjectInfo, ObjectStore, StoreError};
use labelport_engine::decode::label_studio::LabelStudioDecoder;
use labelport_engine::decode::label_studio_config::LabelingConfig;
use labelport_engine::decode::{Decoder, Framing};
use labelport_model::Project;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// An export made by another tool, to read instead of the project's task files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImportSource {
    /// The tool that made the export.
    #[schema(inline)]
    pub tool: ImportTool,
    /// Key of the export in the platform bucket, under `projects/{project}/imports/`:
    /// Label Studio's JSON export (`.json`, or `.jsonl` for one task per line),
    /// optionally `.gz` or `.zst`.
    pub export: String,
    /// Key of the tool's project settings under the same folder: Label Studio's
    /// labeling config (`.xml`).
    pub config: String,
}

/// The tools whose exports labelport reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum ImportTool {
    /// Label Studio.
    #[serde(rename = "LABEL_STUDIO")]
    LabelStudio,
}

/// Why an import could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The settings are not there, or are not valid.
    #[error("{field}: {message}")]
    Invalid {
        /// The request field at fault (`source.config`).
        field: &'static str,
        /// Why.
        message: String,
    },
    /// The store failed (worth another attempt).
    #[error("reading {key}")]
    Store {
        /// The object.
        key: String,
        /// Why.
        #[source]
        source: StoreError,
    },
}

impl From<ImportError> for RequestError {
    fn from(e: ImportError) -> Self {
        match e {
            ImportError::Invalid { field, message } => RequestError::new(field, message),
            ImportError::Store { key, source } => {
                RequestError::new("source", format!("{key} could not be read: {source}"))
            }
        }
    }
}

/// The folder imports of `project` are uploaded to.
pub fn imports_prefix(project: &str) -> String {
    format!("projects/{project}/imports/")
}

impl ImportSource {
    /// Checks that both keys are files of the project's imports folder with the
    /// endings they need: nothing else of the bucket can be read through a request.
    pub fn check_keys(&self, project: &str) -> Result<(), RequestError> {
        let prefix = imports_prefix(project);
        for (field, key, endings) in [
            (
                "source.export",
                &self.export,
                &[".json", ".jsonl", ".ndjson"][..],
            ),
            ("source.config", &self.config, &[".xml"][..]),
        ] {
            let Some(rest) = key.strip_prefix(&prefix) else {
                return Err(RequestError::new(
                    field,
                    format!("must be a key under {prefix}"),
                ));
            };
            if rest
                .split('/')
                .any(|s| s.is_empty() || s == "." || s == "..")
                || key.contains('\\')
            {
                return Err(RequestError::new(
                    field,
                    "must be a plain key: no empty, `.` or `..` segments, no `\\`",
                ));
            }
            let plain = rest.trim_end_matches(".gz").trim_end_matches(".zst");
            if !endings.iter().any(|e| plain.ends_with(e)) {
                return Err(RequestError::new(
                    field,
                    format!("must end with {}", endings.join(", ")),
                ));
            }
        }
        Ok(())
    }

    /// Reads and parses the tool's settings.
    pub async fn load_config(
        &self,
        store: &dyn ObjectStore,
    ) -> Result<LabelingConfig, ImportError> {
        let object = store.get(&self.config).await.map_err(|e| match e {
            StoreError::NotFound(_) => ImportError::Invalid {
                field: "source.config",
                message: format!("no object at {}", self.config),
            },
            other => ImportError::Store {
                key: self.config.clone(),
                source: other,
            },
        })?;
        let xml = std::str::from_utf8(&object.body).map_err(|_| ImportError::Invalid {
            field: "source.config",
            message: "the labeling config is not UTF-8 text".to_owned(),
        })?;
        LabelingConfig::parse(xml).map_err(|e| ImportError::Invalid {
            field: "source.config",
            message: e.to_string(),
        })
    }

    /// The export's object in the store, or why it is not there.
    pub async fn export_object(&self, store: &dyn ObjectStore) -> Result<ObjectInfo, ImportError> {
        store
            .list(&self.export)
            .await
            .map_err(|e| ImportError::Store {
                key: self.export.clone(),
                source: e,
            })?
            .into_iter()
            .find(|f| f.key == self.export)
            .ok_or_else(|| ImportError::Invalid {
                field: "source.export",
                message: format!("no object at {}: upload the export first", self.export),
            })
    }

    /// The decoder of the export's records.
    pub fn decoder(&self, config: LabelingConfig) -> Arc<dyn Decoder> {
        let plain = self.export.trim_end_matches(".gz").trim_end_matches(".zst");
        let framing = if plain.ends_with(".json") {
            Framing::JsonArray
        } else {
            Framing::Lines
        };
        Arc::new(LabelStudioDecoder::new(config, framing))
    }
}

/// The project as the import shows it: `manifest`'s id, name, state and members, with
/// the mode, label schema and stages of the tool's settings.
pub fn project_for(manifest: &Project, config: &LabelingConfig) -> Project {
    let from_config = config.project(&manifest.id, &manifest.name);
    Project {
        mode: from_config.mode,
        labels: from_config.labels,
        stages: from_config.stages,
        columns: Vec::new(),
        asset_key: from_config.asset_key,
        ..manifest.clone()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn source(export: &str, config: &str) -> ImportSource {
        ImportSource {
            tool: ImportTool::LabelStudio,
            export: export.to_owned(),
            config: config.to_owned(),
        }
    }

    #[test]
    fn only_keys_of_the_projects_imports_folder_are_read() {
        source(
            "projects/p/imports/a/export.json.gz",
            "projects/p/imports/a/config.xml",
        )
        .check_keys("p")
        .unwrap();
        for (export, config, field) in [
            (
                "projects/q/imports/e.json",
                "projects/p/imports/c.xml",
                "source.export",
            ),
            (
                "projects/p/tasks/e.json",
                "projects/p/imports/c.xml",
                "source.export",
            ),
            (
                "projects/p/imports/../tasks/e.json",
                "projects/p/imports/c.xml",
                "source.export",
            ),
            (
                "projects/p/imports//e.json",
                "projects/p/imports/c.xml",
                "source.export",
            ),
            (
                "projects/p/imports/e.csv",
                "projects/p/imports/c.xml",
                "source.export",
            ),
            (
                "projects/p/imports/e.json",
                "projects/p/imports/c.json",
                "source.config",
            ),
            (
                "projects/p/imports/e.json",
                "projects/p/project.json",
                "source.config",
            ),
        ] {
            let e = source(export, config).check_keys("p").unwrap_err();
            assert_eq!(e.field, field, "{export} {config}: {e:?}");
        }
    }
}
