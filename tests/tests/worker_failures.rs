//! Exports that fail and say why, against the AWS emulator: a malformed line, an empty
//! project, a corrupt source, a last attempt that died, and exports the sweeper finds
//! abandoned. Each ends FAILED, with nothing half-written left, and the customer is told.
//!
//! Run by `infra/test.sh`, which starts the emulator: `--features labelport-tests/e2e`.
#![cfg(feature = "e2e")]
#![allow(clippy::unwrap_used)]

use labelport_core::job::{JobState, JobStore};
use labelport_core::notify::NotifyOutcome;
use labelport_core::worker::Outcome;
use labelport_model::Mode;
use labelport_tests::harness::{backends, project_config};
use labelport_tests::{request, run_notifier, run_worker, sent_emails, Stack, MANAGER};

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_line_fails_the_export_with_file_and_line_and_leaves_nothing() {
    let stack = Stack::new().await;
    let cfg = project_config("broken", Mode::Element, 30);
    stack.seed(&cfg).await;
    let good = String::from_utf8(
        stack
            .get("projects/broken/tasks/part-00001.ndjson")
            .await
            .unwrap(),
    )
    .unwrap();
    let mut lines: Vec<&str> = good.lines().collect();
    lines[4] = r#"{"id":"t-bad","asset":{"url":"u"},"state":"annotated","stage":"Complete","createdAt":"x","durationMs":-5}"#;
    stack
        .put(
            "projects/broken/tasks/part-00001.ndjson",
            (lines.join("\n") + "\n").into_bytes(),
        )
        .await;

    let id = request(
        &stack,
        "broken",
        r#"{"format":"NDJSON","filters":{"stages":["Label","Review","Complete"]}}"#,
    )
    .await;
    assert_eq!(run_worker(&stack).await.1, Outcome::Ran(JobState::Failed));
    let (_, _, json) = stack.status(&id, MANAGER).await;
    assert_eq!(json["state"], "FAILED");
    let error = &json["error"];
    assert_eq!(error["code"], "INVALID_SOURCE_LINE", "{json}");
    assert_eq!(error["file"], "projects/broken/tasks/part-00001.ndjson");
    assert_eq!(error["line"], 5);
    assert!(
        error["message"].as_str().unwrap().contains("durationMs")
            || error["message"].as_str().unwrap().contains("invalid value"),
        "{error}"
    );
    assert!(
        stack.keys("exports/").await.is_empty(),
        "no half-written export is visible"
    );
    assert_eq!(
        stack.open_multipart_uploads().await,
        0,
        "the multipart upload was aborted"
    );
    let (status, _, json) = stack.download(&id).await;
    assert_eq!(
        (status, json["code"].as_str()),
        (404, Some("EXPORT_NOT_READY"))
    );
    // The notifier reports the failure; the e-mail-less request just records it.
    assert_eq!(run_notifier(&stack).await.1, NotifyOutcome::MarkedAvailable);

    // Asked to skip, the same source exports everything else and lists the line.
    let id = request(
        &stack,
        "broken",
        r#"{"format":"NDJSON","invalidLines":"skip","filters":{"stages":["Label","Review","Complete"]}}"#,
    )
    .await;
    assert_eq!(
        run_worker(&stack).await.1,
        Outcome::Ran(JobState::Succeeded)
    );
    let (_, _, json) = stack.status(&id, MANAGER).await;
    assert_eq!(json["progress"]["linesSkipped"], 1, "{json}");
    assert_eq!(json["result"]["skippedLines"][0]["line"], 5);
    assert_eq!(
        json["result"]["skippedLines"][0]["file"],
        "projects/broken/tasks/part-00001.ndjson"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_whose_last_attempt_died_ends_failed_and_the_customer_is_told() {
    let stack = Stack::new().await;
    stack
        .seed(&project_config("doomed", Mode::Classification, 20))
        .await;
    let id = request(
        &stack,
        "doomed",
        r#"{"format":"CSV","delivery":{"method":"EMAIL"}}"#,
    )
    .await;
    let body = stack.receive(&stack.export_queue).await.unwrap();
    // The third attempt was killed (a time-out): RUNNING, attempts used up, lease long past.
    let (s3, _) = backends(&stack);
    let jobs = JobStore::new(s3);
    let current = jobs.get(&id).await.unwrap();
    let mut killed = current.job.clone();
    killed.state = JobState::Running;
    killed.attempts = labelport_core::worker::MAX_ATTEMPTS;
    killed.started_at = Some(chrono::Utc::now() - chrono::Duration::hours(2));
    jobs.swap(&current, killed).await.unwrap();

    // SQS delivers the message once more (the queue allows more receives than attempts).
    assert_eq!(
        stack.worker.handle(&body).await.unwrap(),
        Outcome::Ran(JobState::Failed)
    );
    let (_, _, json) = stack.status(&id, MANAGER).await;
    assert_eq!(json["state"], "FAILED", "{json}");
    assert_eq!(json["error"]["code"], "TOO_MANY_ATTEMPTS");
    assert_eq!(run_notifier(&stack).await.1, NotifyOutcome::Emailed);
    let emails: Vec<_> = sent_emails()
        .into_iter()
        .filter(|m| m["body"].to_string().contains(&id))
        .collect();
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0]["subject"], "Your CSV export of doomed failed");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_project_and_a_corrupt_source_fail_at_once_and_say_why() {
    let stack = Stack::new().await;
    let project = labelport_generate::project(&project_config("empty", Mode::Classification, 1));
    stack.set_manifest(&project).await;
    let id = request(&stack, "empty", r#"{"format":"NDJSON"}"#).await;
    assert_eq!(run_worker(&stack).await.1, Outcome::Ran(JobState::Failed));
    let (_, _, json) = stack.status(&id, MANAGER).await;
    assert_eq!(json["error"]["code"], "NO_TASK_FILES", "{json}");
    assert!(json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("projects/empty/tasks/"));

    // A task file that is not the gzip its name says: a data error on the first attempt,
    // not three retries.
    stack
        .seed(&project_config("broken", Mode::Classification, 30))
        .await;
    stack
        .put(
            "projects/broken/tasks/part-00009.ndjson.GZ",
            b"not gzip at all".to_vec(),
        )
        .await;
    let id = request(&stack, "broken", r#"{"format":"NDJSON"}"#).await;
    assert_eq!(run_worker(&stack).await.1, Outcome::Ran(JobState::Failed));
    let (_, _, json) = stack.status(&id, MANAGER).await;
    assert_eq!(
        (json["error"]["code"].as_str(), json["attempts"].as_u64()),
        (Some("SOURCE_CORRUPT"), Some(1)),
        "{json}"
    );
    assert_eq!(
        json["error"]["file"],
        "projects/broken/tasks/part-00009.ndjson.GZ"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sweeper_ends_abandoned_exports_and_the_customer_is_told() {
    use labelport_core::sweep::{SweepSettings, Sweeper};
    let stack = Stack::new().await;
    stack
        .seed(&project_config("swept", Mode::Classification, 10))
        .await;
    let email = r#"{"format":"CSV","delivery":{"method":"EMAIL"}}"#;
    let lost = request(&stack, "swept", email).await;
    let died = request(&stack, "swept", email).await;
    let waiting = request(&stack, "swept", email).await;
    let running = request(&stack, "swept", email).await;
    let done = request(&stack, "swept", email).await;
    // `done` runs to the end; the other messages are lost.
    while let Some(body) = stack.receive(&stack.export_queue).await {
        if body.contains(&done) {
            stack.worker.handle(&body).await.unwrap();
        }
    }
    let _ = stack.receive(&stack.notify_queue).await;

    let (s3, notify) = backends(&stack);
    let jobs = JobStore::new(s3.clone());
    let now = chrono::Utc::now();
    let age = |id: &str, state: JobState, hours: i64| {
        let jobs = jobs.clone();
        let id = id.to_owned();
        async move {
            jobs.update(&id, |job| {
                let mut next = job.clone();
                next.state = state;
                next.created_at = now - chrono::Duration::hours(hours);
                if state == JobState::Running {
                    next.attempts = 1;
                    next.started_at = Some(now - chrono::Duration::hours(hours));
                }
                Some(next)
            })
            .await
            .unwrap();
        }
    };
    // Queued seven hours ago and never started: its message was lost.
    age(&lost, JobState::Queued, 7).await;
    // Its attempt started three hours ago and nothing followed: the worker died for good.
    age(&died, JobState::Running, 3).await;
    // Within their limits.
    age(&waiting, JobState::Queued, 1).await;
    age(&running, JobState::Running, 1).await;
    // A marker whose delete failed when its job ended, and one whose job was never written.
    stack.put(&format!("active/swept/{done}"), Vec::new()).await;
    let old_id = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        u64::try_from((now - chrono::Duration::hours(1)).timestamp()).unwrap(),
        0,
    ))
    .to_string();
    stack
        .put(&format!("active/swept/{old_id}"), Vec::new())
        .await;

    let sweeper = Sweeper::new(s3, notify, SweepSettings::default());
    let report = sweeper.sweep().await.unwrap();
    let mut ended = report.ended.clone();
    ended.sort();
    let mut expected = vec![lost.clone(), died.clone()];
    expected.sort();
    assert_eq!(ended, expected, "{report:?}");
    assert_eq!((report.active, report.cleared, report.unchecked), (6, 2, 0));

    let (_, _, json) = stack.status(&lost, MANAGER).await;
    assert_eq!(
        (json["state"].as_str(), json["error"]["code"].as_str()),
        (Some("FAILED"), Some("NOT_STARTED")),
        "{json}"
    );
    assert!(json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("within 6 hours"));
    let (_, _, json) = stack.status(&died, MANAGER).await;
    assert_eq!(
        (json["state"].as_str(), json["error"]["code"].as_str()),
        (Some("FAILED"), Some("ABANDONED")),
        "{json}"
    );
    for id in [&waiting, &running] {
        let state = jobs.get(id).await.unwrap().job.state;
        assert!(!state.is_terminal(), "{id} is within its limit: {state:?}");
    }
    let mut markers = stack.keys("active/").await;
    markers.sort();
    let mut live = vec![
        format!("active/swept/{waiting}"),
        format!("active/swept/{running}"),
    ];
    live.sort();
    assert_eq!(markers, live);

    // The customer hears of both, once each.
    for _ in 0..2 {
        assert_eq!(run_notifier(&stack).await.1, NotifyOutcome::Emailed);
    }
    for id in [&lost, &died] {
        let emails: Vec<_> = sent_emails()
            .into_iter()
            .filter(|m| m["body"].to_string().contains(id.as_str()))
            .collect();
        assert_eq!(emails.len(), 1, "{id}");
        assert_eq!(emails[0]["subject"], "Your CSV export of swept failed");
    }
    // A second sweep finds nothing more to do.
    let report = sweeper.sweep().await.unwrap();
    assert_eq!(
        (report.active, report.ended.len(), report.cleared),
        (2, 0, 0)
    );
}
