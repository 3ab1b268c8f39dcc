//! The labelport data model: the task record (v1) and the project manifest. Demo, test
//! and benchmark data come from `labelport-generate`.
//!
//! ```
//! use labelport_model::{Task, TaskState};
//! let line = r#"{"id":"t1","asset":{"url":"s3://b/1.jpg"},"state":"validated","stage":"Complete","createdAt":"2024-01-01T00:00:00Z"}"#;
//! let task: Task<'_> = serde_json::from_str(line).unwrap();
//! assert_eq!(task.state, TaskState::Validated);
//! ```
#![deny(missing_docs)]

mod project;
mod task;

pub use project::{
    Destination, ExportSettings, LabelSchema, Member, Mode, Project, ProjectState, Role, Service,
    Tool,
};
pub use task::{
    Annotation, AnnotationKind, Asset, Attribute, BoundingBox, Cell, Links, Origin, Relation,
    Submission, Task, TaskState, SCHEMA_VERSION,
};
