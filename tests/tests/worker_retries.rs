//! Messages delivered at least once, and retried, against the AWS emulator: duplicates
//! run once and mail once, one bad message in a batch fails alone, a storage failure is
//! retried after a backoff, and a late attempt never replaces a newer attempt's file.
//!
//! Run by `infra/test.sh`, which starts the emulator: `--features labelport-tests/e2e`.
#![cfg(feature = "e2e")]
#![allow(clippy::unwrap_used)]

use labelport_core::job::{JobState, JobStore};
use labelport_core::notify::NotifyOutcome;
use labelport_core::worker::Outcome;
use labelport_model::Mode;
use labelport_tests::fakes::{parts_fail, wrapped_uploads, BoxUpload, GatedUpload, Recorded};
use labelport_tests::harness::{backends, project_config};
use labelport_tests::{request, sent_emails, Stack, MANAGER};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread")]
async fn duplicate_deliveries_run_once_and_mail_once() {
    let stack = Stack::new().await;
    stack
        .seed(&project_config("dup", Mode::Transcription, 200))
        .await;
    let id = request(
        &stack,
        "dup",
        r#"{"format":"CSV","delivery":{"method":"EMAIL"}}"#,
    )
    .await;
    let body = stack.receive(&stack.export_queue).await.unwrap();
    // Two workers get the same message at once: one runs it; the other stands down,
    // acknowledging its copy if it lost the claim, or returning it to the queue until the
    // lease ends if it found the job already running.
    let (a, b) = tokio::join!(stack.worker.handle(&body), stack.worker.handle(&body));
    let mut outcomes: Vec<String> = [a, b]
        .into_iter()
        .map(|o| match o {
            Ok(outcome) => format!("{outcome:?}"),
            Err(labelport_core::worker::WorkerError::Held { .. }) => "Held".into(),
            Err(e) => panic!("{e:?}"),
        })
        .collect();
    outcomes.sort();
    assert!(
        outcomes == ["Held", "Ran(Succeeded)"] || outcomes == ["HeldElsewhere", "Ran(Succeeded)"],
        "{outcomes:?}"
    );
    // A late redelivery finds it done and asks for the notification again.
    assert_eq!(
        stack.worker.handle(&body).await.unwrap(),
        Outcome::AlreadyDone(JobState::Succeeded)
    );

    let first = stack.receive(&stack.notify_queue).await.unwrap();
    let second = stack.receive(&stack.notify_queue).await.unwrap();
    assert_eq!(first, second);
    let (x, y) = tokio::join!(
        stack.notifier.handle(&first),
        stack.notifier.handle(&second)
    );
    // The other finds it sent, or finds the claim live and returns its message to the
    // queue until the claim expires.
    let mut outcomes = [x, y].map(|o| match o {
        Ok(outcome) => format!("{outcome:?}"),
        Err(labelport_core::notify::NotifyError::Held { .. }) => "Held".to_owned(),
        Err(e) => panic!("{e:?}"),
    });
    outcomes.sort();
    assert!(
        outcomes == ["AlreadyNotified", "Emailed"] || outcomes == ["Emailed", "Held"],
        "{outcomes:?}"
    );
    assert_eq!(
        stack.notifier.handle(&first).await.unwrap(),
        NotifyOutcome::AlreadyNotified
    );
    let emails = sent_emails()
        .into_iter()
        .filter(|m| m["body"].to_string().contains(&id))
        .count();
    assert_eq!(emails, 1, "exactly one e-mail for three notify deliveries");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_bad_message_in_a_batch_fails_alone() {
    let stack = Stack::new().await;
    stack
        .seed(&project_config("batch", Mode::Classification, 20))
        .await;
    request(&stack, "batch", r#"{"format":"CSV"}"#).await;
    let good = stack.receive(&stack.export_queue).await.unwrap();
    let event: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_value(serde_json::json!({
        "Records": [
            {"messageId": "m-good", "body": good},
            {"messageId": "m-bad", "body": "{\"exportId\": 42}"},
            {"messageId": "m-unknown", "body": "{\"exportId\": \"0192f0c5-3b7a-7cc3-9a2e-1f2d3c4b5a69\"}"}
        ]
    }))
    .unwrap();
    let response = labelport_aws::lambda::sqs_batch(event, None, |body| {
        let worker = &stack.worker;
        async move { worker.handle(&body).await }
    })
    .await;
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["m-bad", "m-unknown"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_storage_failure_aborts_the_upload_requeues_and_the_retry_succeeds() {
    let stack = Stack::new().await;
    stack.seed(&project_config("flaky", Mode::Video, 100)).await;
    let id = request(
        &stack,
        "flaky",
        r#"{"format":"NDJSON","fields":{"onlyKeyFrames":true}}"#,
    )
    .await;
    let body = stack.receive(&stack.export_queue).await.unwrap();
    let s3 = Arc::new(labelport_aws::S3Store::new(stack.s3.clone(), &stack.bucket));
    let notify = Arc::new(labelport_aws::SqsQueue::new(
        stack.sqs.clone(),
        &stack.notify_queue,
    ));
    let recorded = Arc::new(Recorded::default());
    let flaky = labelport_core::worker::Worker::new(
        s3.clone(),
        Arc::new(parts_fail(s3.clone())),
        notify.clone(),
        labelport_core::worker::WorkerSettings::default(),
    )
    .with_metrics(recorded.clone());
    flaky
        .handle(&body)
        .await
        .expect_err("the attempt fails so that SQS retries it");
    let job = JobStore::new(s3.clone()).get(&id).await.unwrap().job;
    assert_eq!(
        job.state,
        JobState::Queued,
        "back in the queue for the retry"
    );
    assert_eq!(job.attempts, 1);
    let failure = job.error.as_ref().unwrap();
    assert_eq!(failure.code, "STORAGE_ERROR");
    // What the customer reads: no SDK text, keys or request ids, and what happens next.
    assert!(
        !failure.message.contains("503") && !failure.message.contains("injected"),
        "{failure:?}"
    );
    assert!(
        failure.message.contains("retried automatically"),
        "{failure:?}"
    );
    assert_eq!(
        stack.open_multipart_uploads().await,
        0,
        "the failed upload was aborted"
    );
    assert!(stack.keys("exports/").await.is_empty());
    assert!(
        stack.receive(&stack.notify_queue).await.is_none(),
        "nobody is told about a retry"
    );

    // SQS redelivers; storage is back.
    let healthy = labelport_core::worker::Worker::new(
        s3.clone(),
        s3.clone(),
        notify,
        labelport_core::worker::WorkerSettings::default(),
    )
    .with_metrics(recorded.clone());
    assert_eq!(
        healthy.handle(&body).await.unwrap(),
        Outcome::Ran(JobState::Succeeded)
    );
    let (_, _, json) = stack.status(&id, MANAGER).await;
    assert_eq!(
        (json["state"].as_str(), json["attempts"].as_u64()),
        (Some("SUCCEEDED"), Some(2)),
        "{json}"
    );
    assert!(
        json.get("error").is_none(),
        "the retry's success clears the error: {json}"
    );
    // Each attempt was reported: the failed one as retried, the second as succeeded.
    let exported = json["progress"]["tasksExported"].as_u64().unwrap();
    assert_eq!(
        *recorded.0.lock().unwrap(),
        [
            ("RETRIED".to_owned(), Some("STORAGE_ERROR".to_owned()), 0, 1),
            ("SUCCEEDED".to_owned(), None, exported, 2),
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_late_attempt_never_replaces_the_file_a_newer_attempt_recorded() {
    let stack = Stack::new().await;
    stack
        .seed(&project_config("race", Mode::Classification, 300))
        .await;
    let id = request(&stack, "race", r#"{"format":"NDJSON"}"#).await;
    let body = stack.receive(&stack.export_queue).await.unwrap();
    let (s3, notify) = backends(&stack);
    let reached = Arc::new(tokio::sync::Notify::new());
    let gate = Arc::new(tokio::sync::Notify::new());
    let (r, g) = (reached.clone(), gate.clone());
    let slow = labelport_core::worker::Worker::new(
        s3.clone(),
        Arc::new(wrapped_uploads(
            s3.clone(),
            move |upload: BoxUpload| -> BoxUpload {
                Box::new(GatedUpload {
                    upload,
                    reached: r.clone(),
                    gate: g.clone(),
                })
            },
        )),
        notify.clone(),
        labelport_core::worker::WorkerSettings::default(),
    );
    // Attempt 1 writes everything, then stalls before completing its upload.
    let first = tokio::spawn(async move { slow.handle(&body).await });
    reached.notified().await;

    // Meanwhile the project changes, and a second worker, seeing attempt 1's lease as
    // expired, exports it again and records its file.
    let more = stack
        .get("projects/race/tasks/part-00000.ndjson")
        .await
        .unwrap();
    stack
        .put("projects/race/tasks/part-00009.ndjson", more)
        .await;
    let takeover = labelport_core::worker::Worker::new(
        s3.clone(),
        s3.clone(),
        notify,
        labelport_core::worker::WorkerSettings {
            lease: std::time::Duration::ZERO,
            ..labelport_core::worker::WorkerSettings::default()
        },
    );
    let message = format!(r#"{{"exportId":"{id}"}}"#);
    assert_eq!(
        takeover.handle(&message).await.unwrap(),
        Outcome::Ran(JobState::Succeeded)
    );

    // Attempt 1 finishes late: its upload completes, its result is refused.
    gate.notify_one();
    assert_eq!(first.await.unwrap().unwrap(), Outcome::HeldElsewhere);
    let job = JobStore::new(s3).get(&id).await.unwrap().job;
    assert_eq!((job.state, job.attempts), (JobState::Succeeded, 2));
    let file = &job.result.as_ref().unwrap().files[0];
    let stored = stack.get(&file.key).await.unwrap();
    use sha2::Digest;
    assert_eq!(
        (
            stored.len() as u64,
            hex::encode(sha2::Sha256::digest(&stored))
        ),
        (file.bytes, file.sha256.clone()),
        "the recorded size and SHA-256 are those of the object that stays"
    );
    let keys = stack.keys(&format!("exports/race/{id}/")).await;
    assert!(keys.iter().any(|k| k.contains("/attempt-1/")), "{keys:?}");
    assert!(file.key.contains("/attempt-2/"), "{}", file.key);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_message_comes_back_after_a_backoff_not_the_visibility_timeout() {
    use aws_sdk_sqs::types::QueueAttributeName;
    let stack = Stack::new().await;
    // Messages of this queue are visible again at once: only the backoff can hide one.
    let url = stack
        .sqs
        .create_queue()
        .queue_name(format!("backoff-{}", uuid::Uuid::new_v4().simple()))
        .attributes(QueueAttributeName::VisibilityTimeout, "0")
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    let backoff = labelport_aws::lambda::Backoff {
        sqs: stack.sqs.clone(),
        queue_url: url.clone(),
        base: std::time::Duration::from_secs(120),
        max: std::time::Duration::from_secs(120),
    };
    let fail = |_body: String| async { Err::<(), _>(std::io::Error::other("503 Slow Down")) };
    for (with_backoff, body) in [(false, "control"), (true, "retried")] {
        let event = stack.deliver_as_event(&url, body, 1).await;
        let response =
            labelport_aws::lambda::sqs_batch(event, with_backoff.then_some(&backoff), fail).await;
        assert_eq!(response.batch_item_failures.len(), 1);
        let again = stack
            .sqs
            .receive_message()
            .queue_url(&url)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        let bodies: Vec<_> = again.messages().iter().filter_map(|m| m.body()).collect();
        if with_backoff {
            assert!(
                bodies.is_empty(),
                "hidden for the backoff (60 to 120 s): {bodies:?}"
            );
        } else {
            assert_eq!(bodies, ["control"], "without a backoff it is back at once");
            let receipt = again.messages()[0].receipt_handle().unwrap();
            stack
                .sqs
                .delete_message()
                .queue_url(&url)
                .receipt_handle(receipt)
                .send()
                .await
                .unwrap();
        }
    }
}
