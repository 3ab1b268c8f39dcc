//! The generated project's manifest: its members, labels and stages.

use crate::modes::ModeSpec;
use crate::vocabulary::{
    LABELERS, MANAGER, REVIEWER, ROW_COLUMNS, STAGE_COMPLETE, STAGE_LABEL, STAGE_REVIEW,
};
use crate::Config;
use labelport_model::{LabelSchema, Member, Mode, Project, ProjectState, Role, SCHEMA_VERSION};

/// The generated project's manifest.
pub fn project(config: &Config) -> Project {
    let spec = ModeSpec::of(config.mode);
    let mut members = vec![
        Member {
            email: MANAGER.to_owned(),
            role: Role::Manager,
        },
        Member {
            email: REVIEWER.to_owned(),
            role: Role::Reviewer,
        },
    ];
    members.extend(LABELERS.iter().map(|email| Member {
        email: (*email).to_owned(),
        role: Role::Labeler,
    }));
    let strings = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect();
    Project {
        schema_version: SCHEMA_VERSION,
        id: config.project_id.clone(),
        name: format!("Demo {} project", config.mode),
        mode: config.mode,
        state: ProjectState::Running,
        members,
        services: Vec::new(),
        labels: LabelSchema {
            classes: strings(spec.classes),
            relations: strings(spec.relations),
            attributes: strings(spec.attributes),
            form_fields: strings(spec.form_fields),
            tools: Vec::new(),
            class_ids: Default::default(),
        },
        stages: strings(&[STAGE_LABEL, STAGE_REVIEW, STAGE_COMPLETE]),
        columns: match config.mode {
            Mode::Row => strings(&ROW_COLUMNS),
            _ => Vec::new(),
        },
        exports: Default::default(),
        asset_key: None,
    }
}
