//! Another tool's export as the source of an export job: a request's `source` names an
//! export and its settings uploaded under `projects/{project}/imports/`, which replace
//! the project's own task files. The project's members still decide who may ask; the
//! tool's settings (a Label Studio labeling config) decide the mode and label schema.

use crate::decode::label_studio::LabelStudioDecoder;
use crate::decode::label_studio_config::LabelingConfig;
use crate::decode::Decoder;
use crate::plan::FieldError;
use crate::source::framing_for;
use crate::store::{ObjectInfo, ObjectStore, StoreError};
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

/// The folder imports of `project` are uploaded to.
pub fn imports_prefix(project: &str) -> String {
    format!("projects/{project}/imports/")
}

impl ImportSource {
    /// Checks that both keys are files of the project's imports folder with the
    /// endings they need: nothing else of the bucket can be read through a request.
    pub fn check_keys(&self, project: &str) -> Result<(), FieldError> {
        let prefix = imports_prefix(project);
        let config_named_right = self
            .config
            .trim_end_matches(".gz")
            .trim_end_matches(".zst")
            .ends_with(".xml");
        for (field, key, named_right, endings) in [
            (
                "source.export",
                &self.export,
                framing_for(&self.export).is_some(),
                ".json, .jsonl, .ndjson",
            ),
            ("source.config", &self.config, config_named_right, ".xml"),
        ] {
            let Some(rest) = key.strip_prefix(&prefix) else {
                return Err(FieldError::new(
                    field,
                    format!("must be a key under {prefix}"),
                ));
            };
            if rest
                .split('/')
                .any(|s| s.is_empty() || s == "." || s == "..")
                || key.contains('\\')
            {
                return Err(FieldError::new(
                    field,
                    "must be a plain key: no empty, `.` or `..` segments, no `\\`",
                ));
            }
            if !named_right {
                return Err(FieldError::new(field, format!("must end with {endings}")));
            }
        }
        Ok(())
    }

    /// Opens the import: reads the tool's settings and finds its export in `store`.
    /// `registered` is the labelport project the import is exported for: its id,
    /// name, state and members stay; the settings give the mode, label schema and
    /// stages. The API (to validate a request), the worker (to run it) and
    /// `labelport convert` (through [`Import::read`]) all open an import here.
    pub async fn open(
        &self,
        store: &dyn ObjectStore,
        registered: &Project,
    ) -> Result<Import, ImportError> {
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
        let mut import = Import::read(self.tool, &object.body, &self.export)?;
        import.project = Project {
            mode: import.project.mode,
            labels: import.project.labels,
            stages: import.project.stages,
            columns: Vec::new(),
            asset_key: import.project.asset_key,
            ..registered.clone()
        };
        import.export = store
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
            })?;
        Ok(import)
    }
}

/// An opened import: the project as the tool's settings describe it, the export to
/// read, and the decoder that reads it.
pub struct Import {
    /// The project: mode, label schema and stages from the tool's settings.
    pub project: Project,
    /// The export's object (its size is 0 until [`ImportSource::open`] finds it).
    pub export: ObjectInfo,
    /// Reads the export's records (framed by its name: [`framing_for`]).
    pub decoder: Arc<dyn Decoder>,
}

impl Import {
    /// Reads `tool`'s settings from `config` for the export named `export`. The project
    /// is named after the export's file (`labelport convert`'s project); an import
    /// opened for a labelport project takes that project's identity instead.
    pub fn read(tool: ImportTool, config: &[u8], export: &str) -> Result<Import, ImportError> {
        let ImportTool::LabelStudio = tool;
        let xml = std::str::from_utf8(config).map_err(|_| ImportError::Invalid {
            field: "source.config",
            message: "the labeling config is not UTF-8 text".to_owned(),
        })?;
        let config = LabelingConfig::parse(xml).map_err(|e| ImportError::Invalid {
            field: "source.config",
            message: e.to_string(),
        })?;
        let framing = framing_for(export).ok_or_else(|| ImportError::Invalid {
            field: "source.export",
            message: "must end with .json, .jsonl, .ndjson".to_owned(),
        })?;
        let stem = export
            .rsplit('/')
            .next()
            .and_then(|name| name.split('.').next())
            .filter(|s| !s.is_empty())
            .unwrap_or("label-studio");
        Ok(Import {
            project: config.project(stem, stem),
            export: ObjectInfo {
                key: export.to_owned(),
                size: 0,
            },
            decoder: Arc::new(LabelStudioDecoder::new(config, framing)),
        })
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
