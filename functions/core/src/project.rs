//! Loading a project's file, `projects/{project}/project.json`: who may export, the
//! mode and label schema. (An export's *manifest* is another thing: the record of
//! what an export wrote, beside its files.)

use crate::error::{chain, Failure};
use crate::ports::{ObjectStore, StoreError};
use labelport_model::Project;

/// `projects/{project}/project.json`.
pub fn project_file_key(project: &str) -> String {
    format!("projects/{project}/project.json")
}

/// Why a project could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    /// No project file.
    #[error("project {0} does not exist")]
    NotFound(String),
    /// The project file is not a valid project.
    #[error("the manifest of project {project} is invalid")]
    Invalid {
        /// The project.
        project: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The store failed.
    #[error("reading the manifest")]
    Store(#[source] StoreError),
}

impl ProjectError {
    /// The failure to record on a job.
    pub fn to_failure(&self) -> Failure {
        match self {
            ProjectError::NotFound(_) => {
                Failure::new(crate::error::FailureCode::ProjectNotFound, self.to_string())
            }
            ProjectError::Invalid { project, .. } => Failure {
                code: crate::error::FailureCode::InvalidProjectManifest,
                message: chain(self),
                file: Some(project_file_key(project)),
                line: None,
            },
            ProjectError::Store(e) => Failure::storage("reading the project's manifest", e),
        }
    }
}

/// Project ids are path segments: lower-case letters, digits, `-`, `_` and `.`, no `..`.
pub fn is_project_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        })
        && !id.starts_with('.')
        && !id.contains("..")
}

/// Reads `projects/{id}/project.json`.
pub async fn load_project(store: &dyn ObjectStore, id: &str) -> Result<Project, ProjectError> {
    let object = store
        .get(&project_file_key(id))
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => ProjectError::NotFound(id.to_owned()),
            other => ProjectError::Store(other),
        })?;
    serde_json::from_slice(&object.body).map_err(|source| ProjectError::Invalid {
        project: id.to_owned(),
        source,
    })
}

/// A plain check of an address: one `@`, a dotted domain, no spaces or header breaks.
pub fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    s.len() <= 254
        && !local.is_empty()
        && local.len() <= 64
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && s.chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '<' | '>' | ',' | ';' | '"'))
}

#[cfg(test)]
mod tests {
    use super::is_project_id;

    #[test]
    fn project_ids_cannot_escape_their_folder() {
        assert!(is_project_id("demo"));
        assert!(is_project_id("acme-2024_q1.v2"));
        for bad in [
            "",
            "..",
            "../x",
            "a/b",
            "A",
            ".hidden",
            "a..b",
            &"x".repeat(65),
        ] {
            assert!(!is_project_id(bad), "{bad}");
        }
    }
}
