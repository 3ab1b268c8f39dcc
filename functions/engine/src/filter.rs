//! Which tasks an export keeps. Preview tasks (a manager's trial runs) are never exported.

use labelport_model::{Task, TaskState};

/// A task filter built once per export; `keep` is called per task and does not allocate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskFilter {
    states: Option<[bool; TaskState::ALL.len()]>,
    stages: Option<Vec<String>>,
    data_sources: Option<Vec<String>>,
    batches: Option<Vec<String>>,
    labelers: Option<Vec<String>>,
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
        TaskFilter {
            states,
            stages,
            ..TaskFilter::default()
        }
    }

    /// Also keeps only tasks whose asset came from one of `sources` (all when `None`).
    pub fn with_data_sources(mut self, sources: Option<Vec<String>>) -> Self {
        self.data_sources = sources;
        self
    }

    /// Also keeps only tasks in one of `batches` (all when `None`).
    pub fn with_batches(mut self, batches: Option<Vec<String>>) -> Self {
        self.batches = batches;
        self
    }

    /// Also keeps only tasks one of `labelers` submitted work on, by e-mail compared
    /// without case (all when `None`).
    pub fn with_labelers(mut self, labelers: Option<Vec<String>>) -> Self {
        self.labelers = labelers;
        self
    }

    /// Whether `task` goes into the export.
    pub fn keep(&self, task: &Task<'_>) -> bool {
        !task.preview
            && self.states.is_none_or(|set| set[task.state as usize])
            && self
                .stages
                .as_ref()
                .is_none_or(|stages| stages.iter().any(|s| *s == task.stage))
            && self.data_sources.as_ref().is_none_or(|sources| {
                task.asset
                    .data_source
                    .as_deref()
                    .is_some_and(|source| sources.iter().any(|s| s == source))
            })
            && self.batches.as_ref().is_none_or(|batches| {
                task.batches
                    .iter()
                    .any(|batch| batches.iter().any(|b| b == batch))
            })
            && self.labelers.as_ref().is_none_or(|labelers| {
                task.submissions.iter().any(|s| {
                    s.labeler.as_deref().is_some_and(|labeler| {
                        labelers.iter().any(|l| l.eq_ignore_ascii_case(labeler))
                    })
                })
            })
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

    #[test]
    fn data_sources_and_batches() {
        let line = |source: &str, batches: &str| {
            format!(
                r#"{{"id":"t","asset":{{"url":"u"{source}}},"state":"validated","stage":"Complete","createdAt":"x","batches":{batches}}}"#
            )
        };
        let f = TaskFilter::new(None, None)
            .with_data_sources(Some(vec!["camera-north".into()]))
            .with_batches(Some(vec!["order-7".into(), "order-8".into()]));
        let keep = |s: &str| f.keep(&serde_json::from_str(s).unwrap());
        assert!(keep(&line(
            r#","dataSource":"camera-north""#,
            r#"["x","order-8"]"#
        )));
        assert!(!keep(&line(r#","dataSource":"upload""#, r#"["order-8"]"#)));
        assert!(
            !keep(&line("", r#"["order-8"]"#)),
            "no source: not that source"
        );
        assert!(!keep(&line(r#","dataSource":"camera-north""#, "[]")));
        let all = TaskFilter::new(None, None);
        assert!(all.keep(&serde_json::from_str(&line("", "[]")).unwrap()));
    }

    #[test]
    fn labelers_keep_tasks_they_submitted_work_on_whatever_the_case() {
        let line = |submissions: &str| {
            format!(
                r#"{{"id":"t","asset":{{"url":"u"}},"state":"validated","stage":"Complete","createdAt":"x","submissions":{submissions}}}"#
            )
        };
        let by = |who: &str| {
            format!(
                r#"{{"id":"s","stage":"Label","origin":"human","labeler":"{who}","completedAt":"x","annotations":[]}}"#
            )
        };
        let model = r#"{"id":"m","stage":"Label","origin":"machine","model":"v1","completedAt":"x","annotations":[]}"#;
        let f = TaskFilter::new(None, None).with_labelers(Some(vec!["Ada@Example.com".into()]));
        let keep = |s: &str| f.keep(&serde_json::from_str(s).unwrap());
        assert!(keep(&line(&format!(
            "[{},{}]",
            by("bob@example.com"),
            by("ada@example.com")
        ))));
        assert!(!keep(&line(&format!("[{}]", by("bob@example.com")))));
        assert!(!keep(&line(&format!("[{model}]"))), "a model is no labeler");
        assert!(!keep(&line("[]")), "no submission: nobody's task");
    }
}
