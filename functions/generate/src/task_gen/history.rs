//! Who worked on a task and when: a model's pre-label now and then, the labeler's
//! submission, the reviewer's for a reviewed task, and the mistakes a review corrects.

use super::{borrowed, TaskGen};
use crate::time::{rfc3339, DAY};
use crate::vocabulary::{
    GROUP_CLASSES, GROUP_ELEMENT_CLASSES, MANAGER, REVIEWER, STAGE_COMPLETE, STAGE_LABEL,
    STAGE_REVIEW,
};
use labelport_model::{Annotation, AnnotationKind, Mode, Origin, Relation, Submission, TaskState};
use std::borrow::Cow;

/// A submission in the making: who, when, how long.
struct Work {
    origin: Origin,
    who: &'static str,
    stage: &'static str,
    start: i64,
    duration_ms: u64,
}

impl Work {
    fn end(&self) -> i64 {
        self.start + self.duration_ms.div_ceil(1000) as i64
    }
}

/// A submission in the making and what it holds.
pub(super) struct Draft {
    work: Work,
    annotations: Vec<Annotation<'static>>,
    relations: Vec<Relation<'static>>,
}

/// A task's submissions in the making and where the task stands after them.
pub(super) struct History {
    pub(super) drafts: Vec<Draft>,
    pub(super) stage: &'static str,
    pub(super) assignee: Option<&'static str>,
    /// When the task last changed, and who changed it.
    pub(super) updated: Option<(i64, &'static str)>,
}

impl TaskGen<'_> {
    /// A pending task: no submissions; half of them assigned by the manager.
    pub(super) fn pending_history(&mut self, created: i64, labeler: &'static str) -> History {
        if self.rng.chance(500) {
            let assigned = created + self.rng.range(60, 3 * DAY as u64) as i64;
            History {
                drafts: Vec::new(),
                stage: STAGE_LABEL,
                assignee: Some(labeler),
                updated: Some((assigned, MANAGER)),
            }
        } else {
            History {
                drafts: Vec::new(),
                stage: STAGE_LABEL,
                assignee: None,
                updated: None,
            }
        }
    }

    /// A task that was worked on: `annotations` and `relations` are what its labeler
    /// submits (nothing, for a skipped task).
    pub(super) fn worked_history(
        &mut self,
        state: TaskState,
        created: i64,
        labeler: &'static str,
        annotations: Vec<Annotation<'static>>,
        relations: Vec<Relation<'static>>,
    ) -> History {
        let mut drafts = Vec::new();
        let mut at = created;
        if state != TaskState::Skipped && self.rng.chance(300) {
            let prelabel = self.machine_prelabel(at, &annotations);
            at = prelabel.work.end();
            drafts.push(prelabel);
        }
        let labeling = Work {
            origin: Origin::Human,
            who: labeler,
            stage: STAGE_LABEL,
            start: at + self.rng.range(60, 10 * DAY as u64) as i64,
            duration_ms: self.rng.range(5_000, 600_000),
        };
        let (annotations, relations) = if state == TaskState::Skipped {
            (Vec::new(), Vec::new())
        } else {
            (annotations, relations)
        };
        let reviewed = matches!(state, TaskState::Validated | TaskState::Rejected);
        drafts.extend(self.labeled_and_reviewed(state, reviewed, labeling, annotations, relations));
        let stage = self.stage_after(state);
        let assignee = self.rng.chance(900).then_some(labeler);
        let updated = drafts.last().map(|d| (d.work.end(), d.work.who));
        History {
            drafts,
            stage,
            assignee,
            updated,
        }
    }

    /// A model's submission before the labeler's, starting a minute at most after `at`.
    fn machine_prelabel(&mut self, at: i64, annotations: &[Annotation<'static>]) -> Draft {
        let work = Work {
            origin: Origin::Machine,
            who: self.spec.model,
            stage: STAGE_LABEL,
            start: at + self.rng.range(1, 60) as i64,
            duration_ms: self.rng.range(200, 3_000),
        };
        let annotations = self.machine_copy(annotations, &work);
        Draft {
            work,
            annotations,
            relations: Vec::new(),
        }
    }

    /// The labeler's submission (`labeling`) and, when `reviewed`, the reviewer's after
    /// it. Now and then the labeler of a validated task gets a class wrong and the
    /// reviewer corrects it.
    fn labeled_and_reviewed(
        &mut self,
        state: TaskState,
        reviewed: bool,
        labeling: Work,
        mut annotations: Vec<Annotation<'static>>,
        relations: Vec<Relation<'static>>,
    ) -> Vec<Draft> {
        let at = labeling.end();
        self.stamp(&mut annotations, &labeling);
        let mistake = if state == TaskState::Validated && self.rng.chance(150) {
            self.mistake_target(&annotations)
        } else {
            None
        };
        let mut labeled = if reviewed {
            annotations.clone()
        } else {
            std::mem::take(&mut annotations)
        };
        if let Some(n) = mistake {
            self.mislabel(&mut labeled[n]);
        }
        let mut drafts = vec![Draft {
            work: labeling,
            annotations: labeled,
            relations: relations.clone(),
        }];
        if reviewed {
            let review = Work {
                origin: Origin::Human,
                who: REVIEWER,
                stage: STAGE_REVIEW,
                start: at + self.rng.range(60, 5 * DAY as u64) as i64,
                duration_ms: self.rng.range(2_000, 180_000),
            };
            if let Some(n) = mistake {
                self.stamp(&mut annotations[n..=n], &review);
            }
            drafts.push(Draft {
                work: review,
                annotations,
                relations,
            });
        }
        drafts
    }

    /// Where a worked task stands: most annotated and validated tasks are complete.
    fn stage_after(&mut self, state: TaskState) -> &'static str {
        match state {
            TaskState::Annotated if self.rng.chance(600) => STAGE_REVIEW,
            TaskState::Annotated => STAGE_COMPLETE,
            TaskState::Validated if self.rng.chance(100) => STAGE_REVIEW,
            TaskState::Validated => STAGE_COMPLETE,
            _ => STAGE_LABEL,
        }
    }

    /// The drafts as the task's submissions, and the time spent on them all.
    pub(super) fn submissions(&self, drafts: Vec<Draft>) -> (Vec<Submission<'static>>, u64) {
        let mut duration_ms = 0;
        let mut submissions = Vec::new();
        for (n, draft) in drafts.into_iter().enumerate() {
            let work = draft.work;
            duration_ms += work.duration_ms;
            submissions.push(Submission {
                id: Cow::Owned(format!("{}-s{}", self.id, n + 1)),
                stage: borrowed(work.stage),
                origin: work.origin,
                labeler: (work.origin == Origin::Human).then_some(borrowed(work.who)),
                model: (work.origin == Origin::Machine).then_some(borrowed(work.who)),
                started_at: Some(Cow::Owned(rfc3339(work.start))),
                completed_at: Cow::Owned(rfc3339(work.end())),
                duration_ms: work.duration_ms,
                annotations: draft.annotations,
                relations: draft.relations,
            });
        }
        (submissions, duration_ms)
    }

    /// Marks annotations as made during `work`.
    fn stamp(&mut self, annotations: &mut [Annotation<'static>], work: &Work) {
        let start_ms = work.start * 1000;
        for a in annotations {
            a.created_at = Some(start_ms + self.rng.below(work.duration_ms) as i64);
            a.created_by = Some(borrowed(work.who));
        }
    }

    /// A model's pre-label: the same objects with confidences, sometimes a wrong class.
    fn machine_copy(
        &mut self,
        annotations: &[Annotation<'static>],
        work: &Work,
    ) -> Vec<Annotation<'static>> {
        let mut copy = annotations.to_vec();
        self.stamp(&mut copy, work);
        for a in &mut copy {
            a.confidence = Some(self.rng.confidence());
            for attribute in &mut a.attributes {
                attribute.confidence = Some(self.rng.confidence());
            }
        }
        if self.rng.chance(250) {
            if let Some(n) = self.mistake_target(&copy) {
                self.mislabel(&mut copy[n]);
            }
        }
        copy
    }

    /// An annotation whose class could be got wrong: a labelled one, not a group
    /// (its class is about its members) nor a video box (its class is its track's).
    fn mistake_target(&mut self, annotations: &[Annotation<'static>]) -> Option<usize> {
        if annotations.is_empty() {
            return None;
        }
        let n = self.rng.below(annotations.len() as u64) as usize;
        let a = &annotations[n];
        let fits = a.label.is_some()
            && a.kind != AnnotationKind::Group
            && a.track.is_none()
            && self.label_pool(a.kind).len() > 1;
        fits.then_some(n)
    }

    /// Gives an annotation another class of its pool.
    fn mislabel(&mut self, a: &mut Annotation<'static>) {
        let pool = self.label_pool(a.kind);
        let current = pool
            .iter()
            .position(|l| a.label.as_deref() == Some(*l))
            .unwrap_or(0);
        let other = (current + 1 + self.rng.below(pool.len() as u64 - 1) as usize) % pool.len();
        a.label = Some(borrowed(pool[other]));
    }

    /// The classes an annotation of this kind may take in this mode.
    fn label_pool(&self, kind: AnnotationKind) -> &'static [&'static str] {
        match (self.config.mode, kind) {
            (Mode::ElementGroup, AnnotationKind::Group) => GROUP_CLASSES,
            (Mode::ElementGroup, _) => GROUP_ELEMENT_CLASSES,
            _ => self.spec.classes,
        }
    }
}
