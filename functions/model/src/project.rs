//! The project manifest, `projects/{project}/project.json`.

use serde::{Deserialize, Serialize};

/// A project: who may do what, what is labelled and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    /// Version of the manifest and task record format (1).
    pub schema_version: u32,
    /// The project's identifier, also its folder name.
    pub id: String,
    /// A name for people.
    pub name: String,
    /// What kind of labelling the project does.
    pub mode: Mode,
    /// Where the project is in its life (no export while created or archived).
    pub state: ProjectState,
    /// The project's members and their roles.
    #[serde(default)]
    pub members: Vec<Member>,
    /// Services (OAuth clients calling with client-credentials tokens) and their roles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<Service>,
    /// The label schema.
    #[serde(default)]
    pub labels: LabelSchema,
    /// The workflow stages, in order; `Complete` is where finished tasks end.
    #[serde(default)]
    pub stages: Vec<String>,
    /// The table's columns, in order (row mode): each task's `asset.row` has cells of
    /// these columns. Tabular exports of a row project have one column each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
    /// How the project's exports behave.
    #[serde(default)]
    pub exports: ExportSettings,
    /// The key the source's task data holds the asset under (Label Studio's `$image`),
    /// for layouts that name their asset column after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_key: Option<String>,
}

/// How a project's exports behave. The platform writes these, never a request: they
/// decide where a project's data may go.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportSettings {
    /// A new export that succeeds deletes the files of the previous one, once it is
    /// complete itself; the previous one's links then answer 410.
    #[serde(default)]
    pub replace_previous: bool,
    /// The customer (tenant) the project belongs to: projects of one tenant share its
    /// external id for customer roles and its cap on running exports. Default: the
    /// project is a tenant of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The customer buckets, and folders in them, that exports of the project may be
    /// delivered into (EXTERNAL_OBJECT_STORAGE); every other bucket is refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destinations: Vec<Destination>,
}

/// A customer's bucket that a project may deliver exports into.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    /// The bucket.
    pub bucket: String,
    /// The folder exports must land in or under (`exports`); empty: anywhere.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// The customer's role that writes there, assumed with the tenant's external id;
    /// none: the bucket's policy grants the platform's functions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
}

impl ExportSettings {
    /// The destination that holds `bucket` at `path` (a folder, `/`-separated), if any.
    pub fn destination(&self, bucket: &str, path: &str) -> Option<&Destination> {
        self.destinations
            .iter()
            .filter(|d| d.bucket == bucket)
            .find(|d| {
                let base = d.path.trim_matches('/');
                base.is_empty()
                    || path == base
                    || path
                        .strip_prefix(base)
                        .is_some_and(|rest| rest.starts_with('/'))
            })
    }
}

impl Project {
    /// The tenant the project belongs to: its `exports.tenant`, or the project itself.
    pub fn tenant(&self) -> &str {
        self.exports.tenant.as_deref().unwrap_or(&self.id)
    }

    /// The role of the service with this client id, compared exactly.
    pub fn role_of_service(&self, client_id: &str) -> Option<Role> {
        self.services
            .iter()
            .find(|s| s.client_id == client_id)
            .map(|s| s.role)
    }

    /// The role of the member with this e-mail, compared without case.
    pub fn role_of(&self, email: &str) -> Option<Role> {
        self.members
            .iter()
            .find(|m| m.email.eq_ignore_ascii_case(email))
            .map(|m| m.role)
    }
}

/// A project's labelling mode. Names are those of the API, the CLI and the generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// One or more classes for the whole asset.
    Classification,
    /// Boxes, polygons and points on an image.
    Element,
    /// Groups of elements.
    ElementGroup,
    /// Entities: spans over text, with relations.
    Entity,
    /// A form answered per asset.
    EntityForm,
    /// Transcriptions of an element and its children.
    Transcription,
    /// Row labeling: classes for a table row.
    Row,
    /// Document labeling: classes for a whole document.
    Document,
    /// Token labeling: spans over tokens, with relations.
    Token,
    /// Video: boxes on frames, tracked, with key-frame flags.
    Video,
}

impl Mode {
    /// Every mode.
    pub const ALL: [Mode; 10] = [
        Mode::Classification,
        Mode::Element,
        Mode::ElementGroup,
        Mode::Entity,
        Mode::EntityForm,
        Mode::Transcription,
        Mode::Row,
        Mode::Document,
        Mode::Token,
        Mode::Video,
    ];

    /// The mode's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Classification => "classification",
            Mode::Element => "element",
            Mode::ElementGroup => "element_group",
            Mode::Entity => "entity",
            Mode::EntityForm => "entity_form",
            Mode::Transcription => "transcription",
            Mode::Row => "row",
            Mode::Document => "document",
            Mode::Token => "token",
            Mode::Video => "video",
        }
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mode::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Mode::ALL.iter().map(|m| m.as_str()).collect();
                format!("unknown mode `{s}`, expected one of {}", names.join(", "))
            })
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A project's life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProjectState {
    /// Configured, not started: nothing to export yet.
    Created,
    /// Labelling is under way.
    Running,
    /// Labelling is paused.
    Paused,
    /// Labelling is finished.
    Completed,
    /// Kept for the record; no exports.
    Archived,
}

/// A member of a project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The member's e-mail, as the identity provider states it.
    pub email: String,
    /// What the member may do.
    pub role: Role,
}

/// A service that calls the API with its own token (OAuth client credentials): a
/// platform's scheduler, a customer's pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    /// The OAuth client id its tokens carry (`client_id`, which is also their `sub`).
    pub client_id: String,
    /// What it may do, as a member.
    pub role: Role,
}

/// A member's role. Only managers may export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Runs the project; may export.
    Manager,
    /// Reviews submissions.
    Reviewer,
    /// Labels tasks.
    Labeler,
}

/// The names a project's annotations may use.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSchema {
    /// Classes and entity types, in the order class-numbering formats number them.
    #[serde(default)]
    pub classes: Vec<String>,
    /// Explicit class ids, by class name, for formats that number classes (COCO's
    /// category ids, YOLO's class indices) when a team's ids must not follow the order.
    /// Classes it leaves out take the lowest ids left free, in `classes` order.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub class_ids: std::collections::BTreeMap<String, u32>,
    /// Relation labels.
    #[serde(default)]
    pub relations: Vec<String>,
    /// Attributes an annotation may carry.
    #[serde(default)]
    pub attributes: Vec<String>,
    /// Form fields, in form order (entity form mode: one CSV column each).
    #[serde(default)]
    pub form_fields: Vec<String>,
    /// The labeling interface's tools, in order, where the source names them (a Label
    /// Studio config's control tags); annotations name theirs in `tool`. Layouts that
    /// give each tool a column (`"compat": "label-studio"`) read them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
}

/// A named labeling tool of a project's interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tool {
    /// Its name, unique in the project (`sentiment`, `box`).
    pub name: String,
    /// What it is, in the source tool's own words (`Choices`, `RectangleLabels`,
    /// `TextArea`).
    pub kind: String,
}
