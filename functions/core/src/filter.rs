//! Which tasks an export keeps. Preview tasks (a manager's trial runs) are never exported.

use labelport_model::{Task, TaskState};

/// A task filter built once per export; `keep` is called per task and does not allocate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskFilter {
    states: Option<[bool; TaskState::ALL.len()]>,
    stages: Option<Vec<String>>,
}

impl TaskFilter {
    /// Keeps tasks in one of `states` (all when `None`) and one of `stages` (all when `None`).
    pub fn new(states: Option<&[TaskState]>, stages: Option<Vec<String>>) -> Self {
        let states = states.map(|wanted| {
            let mut set = [false; TaskState::ALL.len()];
            for state in wanted {
                set[*state as usize] = true;
            }
            set
        });
        TaskFilter { states, stages }
    }

    /// Whether `task` goes into the export.
    pub fn keep(&self, task: &Task<'_>) -> bool {
        !task.preview
            && self.states.is_none_or(|set| set[task.state as usize])
            && self
                .stages
                .as_ref()
                .is_none_or(|stages| stages.iter().any(|s| *s == task.stage))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn task(state: &str, stage: &str, preview: bool) -> String {
        format!(
            r#"{{"id":"t","asset":{{"url":"u"}},"state":"{state}","stage":"{stage}","preview":{preview},"createdAt":"x"}}"#
        )
    }

    #[test]
    fn states_stages_and_preview() {
        let f = TaskFilter::new(Some(&[TaskState::Annotated, TaskState::Validated]), None);
        let keep = |s: &str| f.keep(&serde_json::from_str(s).unwrap());
        assert!(keep(&task("annotated", "Review", false)));
        assert!(keep(&task("validated", "Complete", false)));
        assert!(!keep(&task("pending", "Label", false)));
        assert!(
            !keep(&task("validated", "Complete", true)),
            "preview tasks are never exported"
        );
        let f = TaskFilter::new(None, Some(vec!["Complete".into()]));
        let keep = |s: &str| f.keep(&serde_json::from_str(s).unwrap());
        assert!(keep(&task("rejected", "Complete", false)));
        assert!(!keep(&task("annotated", "Review", false)));
    }
}
