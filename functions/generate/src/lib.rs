//! The deterministic data generator: demo, test and benchmark projects. Fixtures and
//! demo data live here, apart from the schema in `labelport-model`.
//!
//! Task `index` of a project is a function of `(config, index)` alone: a small
//! hand-written PRNG (splitmix64) is seeded by mixing [`Config::seed`] with the
//! index, so a test can regenerate task 1234 of a ten-million-task project
//! without generating the 1233 before it, and the same seed gives byte-identical
//! lines on every platform and with every version of the dependencies (only
//! integer arithmetic, exact divisions and serde_json's shortest float printing).
//! Changing what this module draws changes the data: do it on purpose.
//!
//! [`write_project`] streams: one reused line buffer, one buffered (and possibly
//! compressed) writer per task file, so ten million tasks need no more memory
//! than ten.
//!
//! ```
//! use labelport_generate as generate;
//! use labelport_model::{Mode, Task};
//! let config = generate::Config::new("demo", Mode::Entity, 1_000, 42);
//! let mut line = Vec::new();
//! generate::write_task_line(&config, 7, &mut line);
//! let task: Task<'_> = serde_json::from_slice(&line).unwrap();
//! assert_eq!(task.id, generate::task_id(7));
//! assert!(task.annotations().iter().all(|a| a.check().is_ok()));
//! ```

mod config;
mod files;
pub mod label_studio;
mod manifest;
mod modes;
mod rng;
mod task_gen;
mod time;
mod vocabulary;

pub use config::{Config, SourceCompression};
pub use files::{write_project, Summary};
pub use manifest::project;
pub use vocabulary::{DATA_SOURCES, ROW_COLUMNS};

use labelport_model::Task;
use task_gen::TaskGen;

/// The id of task `index`: `t` and at least 8 digits (`t00000042`).
pub fn task_id(index: u64) -> String {
    format!("t{index:08}")
}

/// Task `index` of the generated project, as a record.
///
/// A function of `(config.project_id, config.mode, config.seed, index)` only.
pub fn task(config: &Config, index: u64) -> Task<'static> {
    TaskGen::new(config, index).task()
}

/// Appends task `index` to `out` as one line of compact JSON, newline included.
pub fn write_task_line(config: &Config, index: u64, out: &mut Vec<u8>) {
    let task = task(config, index);
    // Writing a record of strings, numbers and booleans into memory cannot fail.
    serde_json::to_writer(&mut *out, &task).expect("a generated task serializes");
    out.push(b'\n');
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::vocabulary::{STAGE_LABEL, STAGE_REVIEW};
    use labelport_model::{Mode, Origin, Role, TaskState};
    use std::collections::HashSet;

    pub(crate) fn lines(config: &Config, range: std::ops::Range<u64>) -> Vec<u8> {
        let mut out = Vec::new();
        for i in range {
            write_task_line(config, i, &mut out);
        }
        out
    }

    #[test]
    fn task_ids_are_zero_padded_to_eight_digits() {
        assert_eq!(task_id(0), "t00000000");
        assert_eq!(task_id(42), "t00000042");
        assert_eq!(task_id(123_456_789), "t123456789");
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        for mode in Mode::ALL {
            let a = Config::new("p", mode, 100, 7);
            assert_eq!(lines(&a, 0..100), lines(&a, 0..100), "{mode}");
            // A task does not depend on the tasks before it.
            assert_eq!(
                lines(&a, 57..58),
                lines(&a, 0..100)
                    .split_inclusive(|b| *b == b'\n')
                    .nth(57)
                    .unwrap()
            );
            let b = Config::new("p", mode, 100, 8);
            let (la, lb) = (lines(&a, 0..100), lines(&b, 0..100));
            let differing = la
                .split(|b| *b == b'\n')
                .zip(lb.split(|b| *b == b'\n'))
                .filter(|(x, y)| x != y)
                .count();
            assert!(differing > 90, "{mode}: only {differing} lines differ");
        }
    }

    #[test]
    fn images_carry_the_edge_cases_image_formats_must_handle() {
        let config = Config::new("edges", Mode::Element, 2_000, 42);
        let (mut past, mut outside, mut turned, mut polygons_past) = (0, 0, 0, 0);
        let mut names = std::collections::HashMap::new();
        for i in 0..config.tasks {
            let task = task(&config, i);
            let name = task.asset.url.rsplit('/').next().unwrap().to_owned();
            *names.entry(name).or_insert(0) += 1;
            let (w, h) = (
                f64::from(task.asset.width.unwrap()),
                f64::from(task.asset.height.unwrap()),
            );
            for a in task.submissions.iter().flat_map(|s| &s.annotations) {
                if let Some(b) = a.bbox {
                    turned += usize::from(b.is_rotated());
                    if b.x >= w {
                        outside += 1;
                    } else if b.x < 0.0 || b.y < 0.0 || b.x + b.width > w || b.y + b.height > h {
                        past += 1;
                    }
                }
                polygons_past +=
                    usize::from(a.points.len() > 2 && a.points.iter().any(|p| p[0] < 0.0));
            }
        }
        assert!(
            past > 50 && outside > 3 && turned > 100 && polygons_past > 10,
            "{past} past an edge, {outside} outside, {turned} turned, {polygons_past} polygons"
        );
        assert_eq!(
            names.values().filter(|n| **n > 1).count(),
            80,
            "shared file names"
        );
    }

    /// Pins the bytes: if this fails, the generator's output changed, and every test
    /// or benchmark that regenerates task `i` sees other data. Update on purpose.
    #[test]
    fn output_is_pinned() {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for mode in Mode::ALL {
            for byte in lines(&Config::new("demo", mode, 50, 42), 0..50) {
                hash = (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
            }
        }
        assert_eq!(
            hash, 0x4dbc_1caf_3715_f340,
            "generator output changed: {hash:#x}"
        );
    }

    fn check_task(mode: Mode, task: &Task<'_>) {
        let ctx = format!("{mode} {}", task.id);
        assert!(task.created_at.starts_with("2024-"), "{ctx}");
        let in_2024 = |t: &str| t.starts_with("2024-") && t.ends_with('Z') && t.len() == 20;
        assert!(in_2024(&task.created_at), "{ctx}");
        if let Some(updated) = &task.updated_at {
            assert!(in_2024(updated) && **updated >= *task.created_at, "{ctx}");
        }
        assert!(task.comment_count <= 5);
        assert_eq!(
            task.duration_ms,
            task.submissions.iter().map(|s| s.duration_ms).sum::<u64>(),
            "{ctx}"
        );
        match task.state {
            TaskState::Pending => {
                assert!(task.submissions.is_empty());
                assert_eq!(task.stage, STAGE_LABEL);
            }
            state => {
                assert!((1..=3).contains(&task.submissions.len()), "{ctx}");
                let reviewed = matches!(state, TaskState::Validated | TaskState::Rejected);
                let last = task.final_submission().unwrap();
                assert_eq!(last.stage == STAGE_REVIEW, reviewed, "{ctx}");
                if matches!(state, TaskState::Annotated | TaskState::Validated) {
                    assert_ne!(task.stage, STAGE_LABEL, "{ctx}");
                } else {
                    assert_eq!(task.stage, STAGE_LABEL, "{ctx}");
                }
                if state == TaskState::Skipped {
                    assert!(task.annotations().is_empty(), "{ctx}");
                }
            }
        }
        let mut previous = task.created_at.to_string();
        for s in &task.submissions {
            let started = s.started_at.as_deref().unwrap();
            assert!(
                started >= previous.as_str() && *s.completed_at >= *started,
                "{ctx}"
            );
            assert!(in_2024(&s.completed_at), "{ctx}");
            previous = s.completed_at.to_string();
            match s.origin {
                Origin::Human => assert!(s.labeler.is_some() && s.model.is_none()),
                Origin::Machine => assert!(s.model.is_some() && s.labeler.is_none()),
            }
            let ids: HashSet<&str> = s.annotations.iter().map(|a| &*a.id).collect();
            assert_eq!(ids.len(), s.annotations.len(), "{ctx}: duplicate ids");
            for a in &s.annotations {
                a.check()
                    .unwrap_or_else(|field| panic!("{ctx}: {} lacks {field}", a.id));
                for m in &a.members {
                    assert!(ids.contains(&**m), "{ctx}: member {m}");
                }
                if let (Some(start), Some(end)) = (a.start, a.end) {
                    let text = task.asset.text.as_deref().unwrap();
                    let covered: String = text
                        .chars()
                        .skip(start as usize)
                        .take((end - start) as usize)
                        .collect();
                    assert_eq!(Some(covered.as_str()), a.text.as_deref(), "{ctx}");
                }
                if let (Some(start), Some(end)) = (a.token_start, a.token_end) {
                    assert!(
                        start < end && end as usize <= task.asset.tokens.len(),
                        "{ctx}"
                    );
                    let covered = task.asset.tokens[start as usize..end as usize].join(" ");
                    assert_eq!(Some(covered.as_str()), a.text.as_deref(), "{ctx}");
                }
                if let Some(frame) = a.frame {
                    assert!(frame < task.asset.frame_count.unwrap(), "{ctx}");
                    assert!(a.track.is_some() && a.key_frame.is_some(), "{ctx}");
                }
                // Geometry may reach past an edge (formats must clip it), never far.
                let (w, h) = (
                    f64::from(task.asset.width.unwrap_or(0)),
                    f64::from(task.asset.height.unwrap_or(0)),
                );
                if let Some(b) = a.bbox {
                    assert!(b.width > 0.0 && b.height > 0.0, "{ctx}");
                    for [x, y] in b.corners() {
                        assert!((-w..=2.0 * w).contains(&x), "{ctx}");
                        assert!((-h..=2.0 * h).contains(&y), "{ctx}");
                    }
                }
                for p in &a.points {
                    assert!((-w..=w).contains(&p[0]), "{ctx}");
                    assert!((0.0..=h).contains(&p[1]), "{ctx}");
                }
            }
            for r in &s.relations {
                assert!(
                    ids.contains(&*r.from) && ids.contains(&*r.to),
                    "{ctx}: {}",
                    r.id
                );
            }
        }
    }

    #[test]
    fn every_mode_writes_lines_that_parse_and_check() {
        for mode in Mode::ALL {
            let config = Config::new("demo", mode, 2_000, 1);
            let manifest = project(&config);
            let bytes = lines(&config, 0..2_000);
            let mut states = [0u32; 5];
            let mut previews = 0;
            let mut annotations = 0;
            for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let task: Task<'_> = serde_json::from_slice(line).unwrap();
                check_task(mode, &task);
                states[TaskState::ALL
                    .iter()
                    .position(|s| *s == task.state)
                    .unwrap()] += 1;
                previews += u32::from(task.preview);
                if let Some(assignee) = &task.assignee {
                    assert_eq!(manifest.role_of(assignee), Some(Role::Labeler));
                }
                for a in task.annotations() {
                    annotations += 1;
                    if let Some(label) = &a.label {
                        assert!(
                            manifest.labels.classes.iter().any(|c| c == label),
                            "{label}"
                        );
                    }
                    if let Some(field) = &a.field {
                        assert!(manifest.labels.form_fields.iter().any(|f| f == field));
                    }
                    for attribute in &a.attributes {
                        assert!(manifest
                            .labels
                            .attributes
                            .contains(&attribute.name.to_string()));
                    }
                }
                for r in task.relations() {
                    assert!(manifest.labels.relations.contains(&r.label.to_string()));
                }
            }
            assert!(annotations > 1_000, "{mode}: {annotations} annotations");
            // pending 10%, annotated 40%, validated 35%, rejected 10%, skipped 5%
            let expected = [200, 800, 700, 200, 100];
            for (got, want) in states.iter().zip(expected) {
                assert!(got.abs_diff(want) < want / 4 + 20, "{mode}: {states:?}");
            }
            assert!((10..=80).contains(&previews), "{mode}: {previews} previews");
        }
    }

    #[test]
    fn some_strings_need_escaping() {
        let mut all = Vec::new();
        for mode in Mode::ALL {
            all.extend(lines(&Config::new("demo", mode, 200, 3), 0..200));
        }
        let text = String::from_utf8(all).unwrap();
        for needle in ["\\\"", "\\n", "Zoë", "São Paulo", "a, b", "say \\\"hi\\\""] {
            assert!(text.contains(needle), "{needle}");
        }
    }
}
