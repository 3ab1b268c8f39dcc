//! Cancelling an export, against the AWS emulator: a queued one at once, a running one
//! within the worker's progress interval with nothing left behind; an ended one cannot be.
//!
//! Run by `infra/test.sh`, which starts the emulator: `--features labelport-tests/e2e`.
#![cfg(feature = "e2e")]
#![allow(clippy::unwrap_used)]

use labelport_core::job::JobState;
use labelport_core::notify::NotifyOutcome;
use labelport_core::worker::Outcome;
use labelport_model::Mode;
use labelport_tests::fakes::slow_reads;
use labelport_tests::harness::{backends, project_config};
use labelport_tests::{request, run_notifier, run_worker, sent_emails, Stack, LABELER, MANAGER};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_export_ends_cancelled_with_nothing_left_behind() {
    let stack = Stack::new().await;
    stack
        .seed(&project_config("stopped", Mode::Classification, 400))
        .await;
    let csv = r#"{"format":"CSV","delivery":{"method":"EMAIL"}}"#;

    // Queued: cancelled at once; its message, when it comes, finds nothing to do.
    let queued = request(&stack, "stopped", csv).await;
    let (status, _, json) = stack
        .call(
            "POST",
            &format!("/v1/exports/{queued}/cancel"),
            Some(MANAGER),
            &[],
            "",
        )
        .await;
    assert_eq!(
        (status, json["state"].as_str()),
        (200, Some("CANCELLED")),
        "{json}"
    );
    assert_eq!(
        run_worker(&stack).await.1,
        Outcome::AlreadyDone(JobState::Cancelled)
    );
    assert_eq!(run_notifier(&stack).await.1, NotifyOutcome::MarkedAvailable);
    assert!(
        sent_emails()
            .iter()
            .all(|m| !m["body"].to_string().contains(&queued)),
        "no e-mail for a cancelled export"
    );

    // Running: the worker notices within its progress interval and stops.
    let running = request(&stack, "stopped", csv).await;
    let body = stack.receive(&stack.export_queue).await.unwrap();
    let (s3, notify) = backends(&stack);
    let slow = labelport_core::worker::Worker::new(
        Arc::new(slow_reads(s3.clone())),
        s3.clone(),
        notify,
        labelport_core::worker::WorkerSettings {
            progress_interval: std::time::Duration::from_millis(50),
            threads: 2,
            ..labelport_core::worker::WorkerSettings::default()
        },
    );
    let worker = tokio::spawn(async move { slow.handle(&body).await });
    loop {
        let (_, _, json) = stack.status(&running, MANAGER).await;
        if json["state"] == "RUNNING" {
            break;
        }
        assert!(
            !worker.is_finished(),
            "the export ended before it could be cancelled"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (status, _, json) = stack
        .call(
            "POST",
            &format!("/v1/exports/{running}/cancel"),
            Some(MANAGER),
            &[],
            "",
        )
        .await;
    assert_eq!(status, 202, "{json}");
    assert!(json["cancelRequestedAt"].is_string(), "{json}");
    let started = std::time::Instant::now();
    assert_eq!(
        worker.await.unwrap().unwrap(),
        Outcome::Ran(JobState::Cancelled)
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "noticed within seconds"
    );
    let (_, _, json) = stack.status(&running, MANAGER).await;
    assert_eq!(json["state"], "CANCELLED");
    assert_eq!(json["error"]["code"], "CANCELLED");
    assert_eq!(
        stack.keys("exports/").await,
        Vec::<String>::new(),
        "no object"
    );
    assert_eq!(stack.open_multipart_uploads().await, 0, "no open upload");
    assert_eq!(stack.keys("active/").await, Vec::<String>::new());

    // An ended export cannot be cancelled.
    let done = request(&stack, "stopped", r#"{"format":"CSV"}"#).await;
    run_worker(&stack).await;
    let (status, _, json) = stack
        .call(
            "POST",
            &format!("/v1/exports/{done}/cancel"),
            Some(MANAGER),
            &[],
            "",
        )
        .await;
    assert_eq!((status, json["code"].as_str()), (409, Some("EXPORT_ENDED")));
    let (status, _, _) = stack
        .call(
            "POST",
            &format!("/v1/exports/{done}/cancel"),
            Some(LABELER),
            &[],
            "",
        )
        .await;
    assert_eq!(status, 403);
}
