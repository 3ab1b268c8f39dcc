//! Every change of a job's state, in one place:
//!
//! ```text
//!            claim            finish(Ok)
//!  QUEUED ──────────▶ RUNNING ──────────▶ SUCCEEDED
//!    │  ▲                │  │ finish(Err) / fail
//!    │  └── requeue ─────┘  └────────────▶ FAILED, CANCELLED
//!    │ cancel, fail
//!    └────────────────────────────────────▶ CANCELLED, FAILED
//! ```
//!
//! Each method returns the next record, or `None` where the change does not apply to the
//! record as it is now (another attempt holds it, it ended meanwhile). Callers run them
//! inside `JobStore::update*`, so the read and the write are one compare-and-swap.
//! EXPIRED is not a change of the record: the status derives it from the retention.

use super::{ExportResult, Job, JobState};
use crate::error::{Failure, FailureCode};
use chrono::{DateTime, Utc};
use labelport_engine::progress::Progress;

impl JobState {
    /// The state an attempt's outcome ends the job in.
    pub fn ending(outcome: &Result<(ExportResult, Progress), Failure>) -> JobState {
        match outcome {
            Ok(_) => JobState::Succeeded,
            Err(failure) if failure.code == FailureCode::Cancelled => JobState::Cancelled,
            Err(_) => JobState::Failed,
        }
    }
}

impl Job {
    /// A worker takes the job for a new attempt: RUNNING, the attempt counted, progress
    /// from zero.
    pub fn claim(&self, now: DateTime<Utc>) -> Job {
        let mut next = self.clone();
        next.attempts += 1;
        next.state = JobState::Running;
        next.started_at = Some(now);
        next.progress = Progress::default();
        next
    }

    /// Attempt `attempt` failed in a way another attempt may not: back to QUEUED, the
    /// failure kept for the status. Only while that attempt still holds the job.
    pub fn requeue(&self, attempt: u32, failure: &Failure) -> Option<Job> {
        (self.state == JobState::Running && self.attempts == attempt).then(|| {
            let mut next = self.clone();
            next.state = JobState::Queued;
            next.error = Some(failure.clone());
            next
        })
    }

    /// A manager (`by`) cancels: a queued job ends CANCELLED at once; a running one is
    /// asked to stop, and its worker ends it. `None` once it has ended or been asked.
    pub fn cancel(&self, by: &str, now: DateTime<Utc>) -> Option<Job> {
        match self.state {
            JobState::Queued => {
                let mut next = self.clone();
                next.state = JobState::Cancelled;
                next.finished_at = Some(now);
                next.cancel_requested_at = Some(now);
                next.error = Some(Failure::new(
                    FailureCode::Cancelled,
                    format!("{by} cancelled the export before it started"),
                ));
                Some(next)
            }
            JobState::Running if self.cancel_requested_at.is_none() => {
                let mut next = self.clone();
                next.cancel_requested_at = Some(now);
                Some(next)
            }
            _ => None,
        }
    }

    /// Attempt `attempt` ends the job with its outcome: SUCCEEDED with the result and
    /// final counts, or FAILED (CANCELLED) with the failure. Only the attempt that holds
    /// an unfinished job may end it.
    pub fn finish(
        &self,
        attempt: u32,
        outcome: &Result<(ExportResult, Progress), Failure>,
        now: DateTime<Utc>,
    ) -> Option<Job> {
        (!self.state.is_terminal() && self.attempts == attempt).then(|| {
            let mut next = self.clone();
            next.state = JobState::ending(outcome);
            next.finished_at = Some(now);
            match outcome {
                Ok((result, progress)) => {
                    next.result = Some(result.clone());
                    next.progress = progress.clone();
                    next.error = None;
                }
                Err(failure) => next.error = Some(failure.clone()),
            }
            next
        })
    }

    /// Ends the job FAILED from outside an attempt (the sweeper's abandoned job, the
    /// API's export that could not be queued), only if its state and attempts are
    /// still those it was `seen` with: a worker that took it meanwhile keeps it.
    pub fn fail(
        &self,
        seen: (JobState, u32),
        failure: &Failure,
        now: DateTime<Utc>,
    ) -> Option<Job> {
        ((self.state, self.attempts) == seen && !self.state.is_terminal()).then(|| {
            let mut next = self.clone();
            next.state = JobState::Failed;
            next.finished_at = Some(now);
            next.error = Some(failure.clone());
            next
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::request::ExportRequest;

    fn queued() -> Job {
        let request = ExportRequest::parse(br#"{"format":"CSV"}"#).unwrap();
        Job::new(
            "0192f0c5-3b7a-7cc3-9a2e-1f2d3c4b5a69".into(),
            "demo".into(),
            "m@x.io".into(),
            request,
        )
    }

    fn storage() -> Failure {
        Failure::new(FailureCode::StorageError, "s3 did not answer")
    }

    #[test]
    fn only_the_attempt_that_holds_a_job_requeues_or_ends_it() {
        let now = Utc::now();
        let running = queued().claim(now);
        assert_eq!((running.state, running.attempts), (JobState::Running, 1));
        assert!(running.requeue(2, &storage()).is_none(), "not attempt 2's");
        let requeued = running.requeue(1, &storage()).unwrap();
        assert_eq!(requeued.state, JobState::Queued);
        assert_eq!(requeued.error, Some(storage()));

        let second = requeued.claim(now);
        assert!(
            second.finish(1, &Err(storage()), now).is_none(),
            "a late first attempt"
        );
        let failed = second.finish(2, &Err(storage()), now).unwrap();
        assert_eq!(
            (failed.state, failed.finished_at),
            (JobState::Failed, Some(now))
        );
        assert!(failed.finish(2, &Err(storage()), now).is_none(), "it ended");
        assert!(failed.requeue(2, &storage()).is_none(), "it ended");
    }

    #[test]
    fn a_cancelled_outcome_ends_cancelled_and_a_queued_cancel_ends_at_once() {
        let now = Utc::now();
        let running = queued().claim(now);
        let ended = running.finish(1, &Err(Failure::cancelled()), now).unwrap();
        assert_eq!(ended.state, JobState::Cancelled);

        let cancelled = queued().cancel("m@x.io", now).unwrap();
        assert_eq!(cancelled.state, JobState::Cancelled);
        assert_eq!(
            cancelled.error.unwrap().message,
            "m@x.io cancelled the export before it started"
        );
        let asked = running.cancel("m@x.io", now).unwrap();
        assert_eq!(
            (asked.state, asked.cancel_requested_at),
            (JobState::Running, Some(now))
        );
        assert!(asked.cancel("m@x.io", now).is_none(), "asked once");
    }

    #[test]
    fn failing_from_outside_an_attempt_needs_the_job_as_it_was_seen() {
        let now = Utc::now();
        let job = queued();
        let failure = Failure::new(FailureCode::NotQueued, "could not be queued");
        assert!(job.fail((JobState::Queued, 1), &failure, now).is_none());
        let taken = job.claim(now);
        assert!(taken.fail((JobState::Queued, 0), &failure, now).is_none());
        let failed = job.fail((JobState::Queued, 0), &failure, now).unwrap();
        assert_eq!(failed.state, JobState::Failed);
        assert_eq!(failed.error, Some(failure));
    }
}
