//! A finished export is never lost: the worker's final write failing once, or landing
//! with its answer lost, and a redelivery meeting a running attempt's lease. Against the
//! AWS emulator, with the faults injected in front of the real S3 store.
//!
//! Run by `infra/test.sh`, which starts the emulator: `--features labelport-tests/e2e`.
#![cfg(feature = "e2e")]
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use labelport_core::job::{JobState, JobStore};
use labelport_core::ports::{Condition, Object, ObjectInfo, ObjectStore, StoreError, Upload};
use labelport_core::worker::{Outcome, Worker, WorkerError, WorkerSettings};
use labelport_generate::Config;
use labelport_model::Mode;
use labelport_tests::{request, Stack, MANAGER};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncRead;

/// A fault, met once, in front of the real S3 store.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// The write that records SUCCEEDED never reaches S3.
    FinalWriteLost,
    /// S3 stores the record SUCCEEDED, but its answer never comes back.
    FinalAnswerLost,
    /// The first read of a job record is from before the export ended: RUNNING.
    StaleFirstRead,
}

/// The real S3 store, with `fault` met the first time it can be.
struct Faulty {
    s3: Arc<labelport_aws::S3Store>,
    fault: Fault,
    tripped: AtomicBool,
}

impl Faulty {
    fn over(stack: &Stack, fault: Fault) -> Arc<Faulty> {
        Arc::new(Faulty {
            s3: Arc::new(labelport_aws::S3Store::new(stack.s3.clone(), &stack.bucket)),
            fault,
            tripped: AtomicBool::new(false),
        })
    }

    /// Whether this is the first time the fault can be met.
    fn trips(&self, now: bool) -> bool {
        now && !self.tripped.swap(true, Ordering::SeqCst)
    }
}

const SUCCEEDED: &[u8] = br#""state": "SUCCEEDED""#;

#[async_trait::async_trait]
impl ObjectStore for Faulty {
    async fn get(&self, key: &str) -> Result<Object, StoreError> {
        let mut object = self.s3.get(key).await?;
        let stale = matches!(self.fault, Fault::StaleFirstRead) && key.starts_with("jobs/");
        if self.trips(stale) {
            let text = String::from_utf8_lossy(&object.body)
                .replace(r#""state": "SUCCEEDED""#, r#""state": "RUNNING""#);
            object.body = Bytes::from(text);
        }
        Ok(object)
    }
    async fn put(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
        condition: Condition,
    ) -> Result<String, StoreError> {
        let final_write =
            key.starts_with("jobs/") && body.windows(SUCCEEDED.len()).any(|w| w == SUCCEEDED);
        let lost = match self.fault {
            Fault::FinalWriteLost => self.trips(final_write),
            Fault::FinalAnswerLost if self.trips(final_write) => {
                self.s3
                    .put(key, body.clone(), content_type, condition.clone())
                    .await?;
                true
            }
            _ => false,
        };
        if lost {
            return Err(StoreError::Backend {
                operation: "put",
                key: key.to_owned(),
                source: "503 Service Unavailable (injected)".into(),
            });
        }
        self.s3.put(key, body, content_type, condition).await
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.s3.delete(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        self.s3.list(prefix).await
    }
    async fn open(&self, key: &str) -> Result<Box<dyn AsyncRead + Send + Unpin>, StoreError> {
        self.s3.open(key).await
    }
    async fn create_upload(
        &self,
        key: &str,
        content_type: &str,
    ) -> Result<Box<dyn Upload>, StoreError> {
        self.s3.create_upload(key, content_type).await
    }
}

fn worker_over(stack: &Stack, store: Arc<dyn ObjectStore>, lease: Duration) -> Worker {
    Worker::new(
        store.clone(),
        store,
        Arc::new(labelport_aws::SqsQueue::new(
            stack.sqs.clone(),
            &stack.notify_queue,
        )),
        WorkerSettings {
            lease,
            threads: 2,
            ..WorkerSettings::default()
        },
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_final_write_failing_once_or_losing_its_answer_still_ends_the_export_and_tells_the_customer(
) {
    for lost in [Fault::FinalWriteLost, Fault::FinalAnswerLost] {
        let stack = Stack::new().await;
        let project = format!("final-{lost:?}").to_lowercase();
        stack
            .seed(&Config::new(&project, Mode::Classification, 40, 3))
            .await;
        let id = request(&stack, &project, r#"{"format":"CSV"}"#).await;
        let body = stack.receive(&stack.export_queue).await.unwrap();
        let store = Faulty::over(&stack, lost);
        let worker = worker_over(&stack, store.clone(), Duration::from_secs(960));
        assert_eq!(
            worker.handle(&body).await.unwrap(),
            Outcome::Ran(JobState::Succeeded),
            "{lost:?}"
        );
        assert!(store.tripped.load(Ordering::SeqCst), "the fault was met");
        let job = JobStore::new(store.clone()).get(&id).await.unwrap().job;
        assert_eq!(
            (job.state, job.attempts),
            (JobState::Succeeded, 1),
            "{lost:?}"
        );
        // What comes after the record is done too: the customer is told, and the
        // project's latest export is this one.
        let notify = stack.receive(&stack.notify_queue).await;
        let notify: serde_json::Value =
            serde_json::from_str(notify.as_deref().unwrap_or("null")).unwrap();
        assert_eq!(
            notify,
            serde_json::json!({"exportId": id, "correlationId": job.correlation_id}),
            "{lost:?}"
        );
        let (status, _, latest) = stack
            .call(
                "GET",
                &format!("/v1/projects/{project}/exports/latest"),
                Some(MANAGER),
                &[],
                "",
            )
            .await;
        assert_eq!((status, latest["id"].as_str()), (200, Some(id.as_str())));
        let keys = stack.keys(&format!("exports/{project}/{id}/")).await;
        assert_eq!(keys.len(), 2, "one attempt's CSV and manifest: {keys:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redelivery_that_meets_a_live_lease_comes_back_when_the_lease_ends() {
    let stack = Stack::new().await;
    stack
        .seed(&Config::new("leased", Mode::Classification, 20, 3))
        .await;
    let id = request(&stack, "leased", r#"{"format":"CSV"}"#).await;
    let body = stack.receive(&stack.export_queue).await.unwrap();
    // An attempt took the job a moment ago and is still inside its lease.
    let jobs = JobStore::new(Arc::new(labelport_aws::S3Store::new(
        stack.s3.clone(),
        &stack.bucket,
    )));
    jobs.update(&id, |job| {
        let mut next = job.clone();
        next.state = JobState::Running;
        next.attempts = 1;
        next.started_at = Some(chrono::Utc::now());
        Some(next)
    })
    .await
    .unwrap();

    let error = stack.worker.handle(&body).await.unwrap_err();
    let asked = labelport_core::error::RedeliverAfter::of(&error).expect("a redelivery time");
    assert!(matches!(error, WorkerError::Held { .. }), "{error:?}");
    // The default lease is 16 minutes; the message comes back just after it.
    assert!(
        asked > Duration::from_secs(15 * 60) && asked < Duration::from_secs(17 * 60),
        "{asked:?}"
    );

    // Through the Lambda glue, on the real queue: the message is not acknowledged, and is
    // hidden until the lease ends, not for the (here zero) backoff.
    let event = stack.deliver_as_event(&stack.export_queue, &body, 2).await;
    let backoff = labelport_aws::lambda::Backoff {
        sqs: stack.sqs.clone(),
        queue_url: stack.export_queue.clone(),
        base: Duration::ZERO,
        max: Duration::ZERO,
    };
    let response = labelport_aws::lambda::sqs_batch(event, Some(&backoff), |body| {
        let worker = &stack.worker;
        async move { worker.handle(&body).await }
    })
    .await;
    assert_eq!(response.batch_item_failures.len(), 1, "not acknowledged");
    let again = stack
        .sqs
        .receive_message()
        .queue_url(&stack.export_queue)
        .wait_time_seconds(2)
        .send()
        .await
        .unwrap();
    assert!(
        again.messages().is_empty(),
        "hidden until the lease ends: {:?}",
        again.messages()
    );

    // Once the lease has run out, the message takes the job over and finishes it.
    let after_lease = worker_over(
        &stack,
        Arc::new(labelport_aws::S3Store::new(stack.s3.clone(), &stack.bucket)),
        Duration::ZERO,
    );
    assert_eq!(
        after_lease.handle(&body).await.unwrap(),
        Outcome::Ran(JobState::Succeeded)
    );
    let job = jobs.get(&id).await.unwrap().job;
    assert_eq!((job.state, job.attempts), (JobState::Succeeded, 2));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancel_that_races_the_end_is_told_the_export_ended() {
    let stack = Stack::new().await;
    stack
        .seed(&Config::new("racing", Mode::Classification, 20, 3))
        .await;
    let id = request(&stack, "racing", r#"{"format":"CSV"}"#).await;
    labelport_tests::run_worker(&stack).await;
    // The cancel reads the export while it still runs; it ends before the cancel is
    // recorded.
    let api = stack.api_over(Faulty::over(&stack, Fault::StaleFirstRead));
    let router = labelport_core::api::router(api);
    let (status, _, json) = labelport_tests::call_router(
        &router,
        "POST",
        &format!("/v1/exports/{id}/cancel"),
        Some(MANAGER),
        &[],
        "",
    )
    .await;
    assert_eq!(
        (status, json["code"].as_str()),
        (409, Some("EXPORT_ENDED")),
        "{json}"
    );
    assert!(
        json["detail"].as_str().unwrap().contains("SUCCEEDED"),
        "{json}"
    );
    let (_, _, json) = stack.status(&id, MANAGER).await;
    assert_eq!(json["state"], "SUCCEEDED");
    assert!(json.get("cancelRequestedAt").is_none(), "{json}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_latest_export_whose_record_expired_is_gone_not_an_error() {
    let stack = Stack::new().await;
    stack
        .seed(&Config::new("aged", Mode::Classification, 10, 3))
        .await;
    let id = request(&stack, "aged", r#"{"format":"CSV"}"#).await;
    labelport_tests::run_worker(&stack).await;
    // The bucket's lifecycle rule expires job records; the latest pointer stays.
    stack
        .s3
        .delete_object()
        .bucket(&stack.bucket)
        .key(format!("jobs/{id}.json"))
        .send()
        .await
        .unwrap();
    for path in [
        "/v1/projects/aged/exports/latest",
        "/v1/projects/aged/exports/latest/download",
    ] {
        let (status, _, json) = stack.call("GET", path, Some(MANAGER), &[], "").await;
        assert_eq!(
            (status, json["code"].as_str()),
            (410, Some("EXPORT_EXPIRED")),
            "{path}: {json}"
        );
        assert!(json["detail"].as_str().unwrap().contains(&id), "{json}");
    }
}

/// SES, with the send to one recipient failing once (a throttle, say).
struct FailsOnceFor {
    ses: labelport_aws::SesMailer,
    recipient: &'static str,
    tripped: AtomicBool,
}

#[async_trait::async_trait]
impl labelport_core::ports::Mailer for FailsOnceFor {
    async fn send(
        &self,
        email: &labelport_core::ports::Mail,
    ) -> Result<(), labelport_core::ports::BoxError> {
        if email.to.iter().any(|to| to == self.recipient)
            && !self.tripped.swap(true, Ordering::SeqCst)
        {
            return Err("Throttling: Maximum sending rate exceeded (injected)".into());
        }
        self.ses.send(email).await
    }
}

fn notifier_with(
    stack: &Stack,
    mailer: Arc<dyn labelport_core::ports::Mailer>,
) -> labelport_core::notify::Notifier {
    labelport_core::notify::Notifier::new(
        Arc::new(labelport_aws::S3Store::new(stack.s3.clone(), &stack.bucket)),
        labelport_core::delivery::Backends {
            mailer,
            sealer: Arc::new(labelport_core::seal::Sealer::new(stack.links.keys())),
            outbound: labelport_core::outbound::OutboundPolicy::default(),
        },
        stack.links.clone(),
        labelport_core::notify::NotifierSettings {
            api_url: labelport_tests::API_URL.into(),
            claim_timeout: Duration::from_secs(300),
        },
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn an_email_that_fails_part_way_is_resent_only_to_those_it_missed() {
    let stack = Stack::new().await;
    stack
        .seed(&Config::new("mailed", Mode::Classification, 10, 3))
        .await;
    let recipients = [
        "manager@example.com",
        "reviewer@example.com",
        "labeler1@example.com",
    ];
    let id = request(
        &stack,
        "mailed",
        &format!(
            r#"{{"format":"CSV","delivery":{{"method":"EMAIL","recipients":{}}}}}"#,
            serde_json::to_string(&recipients).unwrap()
        ),
    )
    .await;
    labelport_tests::run_worker(&stack).await;
    let message = stack.receive(&stack.notify_queue).await.unwrap();
    let notifier = notifier_with(
        &stack,
        Arc::new(FailsOnceFor {
            ses: labelport_aws::SesMailer::new(
                aws_sdk_ses::Client::new(&stack.aws),
                labelport_tests::SENDER,
            ),
            recipient: "reviewer@example.com",
            tripped: AtomicBool::new(false),
        }),
    );
    notifier
        .handle(&message)
        .await
        .expect_err("the second recipient's send fails");
    let (_, _, json) = stack.status(&id, MANAGER).await;
    assert_eq!(json["notification"], "PENDING", "released for the retry");
    assert_eq!(
        notifier.handle(&message).await.unwrap(),
        labelport_core::notify::NotifyOutcome::Emailed
    );
    let mut received: Vec<String> = labelport_tests::sent_emails()
        .into_iter()
        .filter(|m| m["body"].to_string().contains(&id))
        .flat_map(|m| {
            m["destinations"]["ToAddresses"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    received.sort();
    let mut expected = recipients.map(str::to_owned).to_vec();
    expected.sort();
    assert_eq!(received, expected, "each recipient once");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_notification_held_by_a_live_claim_comes_back_when_the_claim_expires() {
    let stack = Stack::new().await;
    stack
        .seed(&Config::new("claimed", Mode::Classification, 10, 3))
        .await;
    let id = request(&stack, "claimed", r#"{"format":"CSV"}"#).await;
    labelport_tests::run_worker(&stack).await;
    let message = stack.receive(&stack.notify_queue).await.unwrap();
    // A notifier claimed it a moment ago, and its release was lost.
    JobStore::new(Arc::new(labelport_aws::S3Store::new(
        stack.s3.clone(),
        &stack.bucket,
    )))
    .update(&id, |job| {
        let mut next = job.clone();
        next.notification.state = labelport_core::job::NotificationState::Sending;
        next.notification.claimed_at = Some(chrono::Utc::now());
        Some(next)
    })
    .await
    .unwrap();
    let error = stack.notifier.handle(&message).await.unwrap_err();
    let asked = labelport_core::error::RedeliverAfter::of(&error).expect("a redelivery time");
    assert!(
        asked > Duration::from_secs(290) && asked < Duration::from_secs(310),
        "the 5-minute claim's rest: {asked:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sweep_whose_notification_could_not_be_queued_asks_again_next_time() {
    use labelport_core::sweep::{SweepSettings, Sweeper};
    let stack = Stack::new().await;
    stack
        .seed(&Config::new("swept", Mode::Classification, 10, 3))
        .await;
    let id = request(&stack, "swept", r#"{"format":"CSV"}"#).await;
    stack.receive(&stack.export_queue).await.unwrap(); // the message is lost
    let store = Arc::new(labelport_aws::S3Store::new(stack.s3.clone(), &stack.bucket));
    let later = chrono::Utc::now() + chrono::Duration::hours(7);
    let down = Sweeper::new(
        store.clone(),
        Arc::new(labelport_aws::SqsQueue::new(
            stack.sqs.clone(),
            format!("{}-missing", stack.notify_queue),
        )),
        SweepSettings::default(),
    );
    let report = down.sweep_at(later).await.unwrap();
    assert_eq!((report.ended.len(), report.unchecked), (0, 1), "{report:?}");
    let (_, _, json) = stack.status(&id, MANAGER).await;
    assert_eq!(json["error"]["code"], "NOT_STARTED", "ended: {json}");
    assert_eq!(
        stack.keys("active/swept/").await.len(),
        1,
        "still marked: the customer has not been told"
    );

    let up = Sweeper::new(
        store,
        Arc::new(labelport_aws::SqsQueue::new(
            stack.sqs.clone(),
            &stack.notify_queue,
        )),
        SweepSettings::default(),
    );
    let report = up.sweep_at(later).await.unwrap();
    assert_eq!(report.cleared, 1, "{report:?}");
    let asked: serde_json::Value =
        serde_json::from_str(&stack.receive(&stack.notify_queue).await.unwrap_or_default())
            .unwrap();
    assert_eq!(asked["exportId"], serde_json::json!(id), "asked again");
    assert!(stack.keys("active/swept/").await.is_empty());
}
