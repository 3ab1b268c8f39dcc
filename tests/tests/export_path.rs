//! The export path end to end against the AWS emulator: API router → SQS → worker →
//! S3 multipart upload → SQS → notifier → SES, through the real AWS SDK adapters.
#![allow(clippy::unwrap_used)]

use labelport_core::job::{JobState, JobStore};
use labelport_core::notify::NotifyOutcome;
use labelport_core::worker::Outcome;
use labelport_generate::{Config, SourceCompression};
use labelport_model::{Mode, ProjectState};
use labelport_tests::{
    python, request, run_notifier, run_worker, sent_emails, Stack, LABELER, MANAGER,
};
use std::sync::Arc;

fn config(project: &str, mode: Mode, tasks: u64) -> Config {
    let mut config = Config::new(project, mode, tasks, 7);
    config.tasks_per_file = tasks / 3 + 1;
    config
}

#[tokio::test(flavor = "multi_thread")]
async fn csv_export_by_email_from_request_to_download() {
    let stack = Stack::new().await;
    let mut cfg = config("campaign", Mode::Classification, 3000);
    cfg.compression = SourceCompression::Gzip;
    let project_dir = stack.seed(&cfg).await;

    let id = request(
        &stack,
        "campaign",
        r#"{"format":"CSV","delivery":{"method":"EMAIL"}}"#,
    )
    .await;
    let (status, _, json) = stack.status(&id, MANAGER).await;
    assert_eq!((status, json["state"].as_str()), (200, Some("QUEUED")));
    let (status, _, json) = stack.download(&id, MANAGER).await;
    assert_eq!(
        (status, json["error"]["code"].as_str()),
        (404, Some("EXPORT_NOT_READY")),
        "{json}"
    );

    assert_eq!(
        run_worker(&stack).await.1,
        Outcome::Ran(JobState::Succeeded)
    );
    assert_eq!(run_notifier(&stack).await.1, NotifyOutcome::Emailed);

    let (status, _, json) = stack.status(&id, MANAGER).await;
    assert_eq!(status, 200);
    assert_eq!(json["state"], "SUCCEEDED", "{json}");
    assert_eq!(json["progress"]["tasksRead"], 3000);
    assert_eq!(json["notification"], "SENT");
    let file = &json["result"]["files"][0];
    // {project}-{format}-{yyyymmddThhmmssZ}-{id8}.{ext}
    let name = file["name"].as_str().unwrap();
    let stamp = name
        .strip_prefix("campaign-csv-")
        .and_then(|rest| rest.strip_suffix(&format!("-{}.csv", &id[id.len() - 8..])))
        .unwrap_or_else(|| panic!("{name}"));
    assert!(
        stamp.len() == 16
            && stamp.as_bytes()[8] == b'T'
            && stamp.ends_with('Z')
            && stamp[..8]
                .bytes()
                .chain(stamp[9..15].bytes())
                .all(|b| b.is_ascii_digit()),
        "{name}"
    );
    assert_eq!(file["contentType"], "text/csv; charset=utf-8");
    assert_eq!(file["role"], "export");
    assert_eq!(
        json["result"]["files"].as_array().unwrap().len(),
        1,
        "no errors report"
    );
    let key = file["key"].as_str().unwrap();
    assert_eq!(key, format!("exports/campaign/{id}/{name}"));
    let body = stack.get(key).await.unwrap();
    assert_eq!(file["bytes"], body.len());
    let manifest: serde_json::Value = serde_json::from_slice(
        &stack
            .get(&format!("exports/campaign/{id}/manifest.json"))
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["files"][0]["sha256"], file["sha256"]);
    assert_eq!(
        manifest["counts"]["tasksExported"],
        json["progress"]["tasksExported"]
    );
    assert_eq!(manifest["taskSchemaVersion"], 1);
    assert_eq!(
        json["result"]["manifest"], manifest,
        "the status shows the manifest"
    );
    assert_eq!(manifest["format"], "CSV");
    assert_eq!(
        manifest["states"],
        serde_json::json!(["annotated", "validated"])
    );

    // The download redirects to a presigned URL; Python's csv reader checks what it serves.
    let (status, headers, _) = stack.download(&id, MANAGER).await;
    assert_eq!(status, 302);
    let url = headers["location"].to_str().unwrap();
    assert!(url.contains("X-Amz-Signature="), "{url}");
    let checked = python(
        "check_export.py",
        &["csv", url, project_dir.to_str().unwrap()],
    );
    assert_eq!(
        checked.trim(),
        format!("{} rows match", json["progress"]["tasksExported"])
    );

    let emails: Vec<_> = sent_emails()
        .into_iter()
        .filter(|m| m["body"].to_string().contains(&id))
        .collect();
    assert_eq!(emails.len(), 1, "one e-mail for the export: {emails:?}");
    let email = &emails[0];
    assert_eq!(email["destinations"]["ToAddresses"][0], MANAGER, "{email}");
    assert_eq!(email["subject"], "Your CSV export of campaign is ready");
    let link = format!("https://api.labelport.test/v1/exports/{id}/download");
    assert!(email["body"].to_string().contains(&link), "{email}");
    assert!(
        !email["body"].to_string().contains("X-Amz-Signature"),
        "never a raw presigned URL"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ndjson_export_gzip_with_stage_history() {
    let stack = Stack::new().await;
    let project_dir = stack.seed(&config("vision", Mode::Element, 2000)).await;
    let id = request(
        &stack,
        "vision",
        r#"{"format":"NDJSON","compression":"gzip","fields":{"stageHistory":true}}"#,
    )
    .await;
    assert_eq!(
        run_worker(&stack).await.1,
        Outcome::Ran(JobState::Succeeded)
    );
    assert_eq!(run_notifier(&stack).await.1, NotifyOutcome::MarkedAvailable);
    let job = JobStore::new(Arc::new(labelport_aws::S3Store::new(
        stack.s3.clone(),
        &stack.bucket,
    )))
    .get(&id)
    .await
    .unwrap()
    .job;
    let file = &job.result.as_ref().unwrap().files[0];
    assert_eq!(file.name, format!("{}.ndjson.gz", job.base_name()));
    assert!(
        file.name.starts_with("vision-ndjson-") && file.name.contains(&id[id.len() - 8..]),
        "{}",
        file.name
    );
    assert_eq!(file.content_type, "application/gzip");
    let head = stack
        .s3
        .head_object()
        .bucket(&stack.bucket)
        .key(&file.key)
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("application/gzip"));
    assert_eq!(
        head.content_encoding(),
        None,
        "stored as the archive it is, so clients save the bytes the SHA-256 is of"
    );
    let local = stack.scratch.join("vision.ndjson.gz");
    std::fs::write(&local, stack.get(&file.key).await.unwrap()).unwrap();
    let checked = python(
        "check_export.py",
        &[
            "ndjson",
            local.to_str().unwrap(),
            project_dir.to_str().unwrap(),
            "--stage-history",
        ],
    );
    assert_eq!(
        checked.trim(),
        format!("{} rows match", job.progress.tasks_exported)
    );
    assert!(
        job.progress.tasks_exported > 0 && job.progress.tasks_filtered > 0,
        "{:?}",
        job.progress
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_name_the_field() {
    let stack = Stack::new().await;
    stack.seed(&config("p", Mode::Classification, 10)).await;
    let cases = [
        (r#"{"format":"XML"}"#, "format", "unknown variant `XML`"),
        (
            r#"{"format":"CSV","colour":"red"}"#,
            "colour",
            "unknown field `colour`",
        ),
        (
            r#"{"format":"NDJSON","filters":{"states":["annotated","finished"]}}"#,
            "filters.states[1]",
            "unknown variant `finished`",
        ),
        (
            r#"{"format":"NDJSON","filters":{"stages":["Done"]}}"#,
            "filters.stages[0]",
            "not a stage",
        ),
        (
            r#"{"format":"CSV","fields":{"stageHistory":true}}"#,
            "fields.stageHistory",
            "not available in the CSV format",
        ),
        (
            r#"{"format":"CSV","delivery":{"method":"EMAIL","recipients":["someone@elsewhere.com"]}}"#,
            "delivery.recipients[0]",
            "not a manager",
        ),
        (
            r#"{"format":"CSV","compression":"rar"}"#,
            "compression",
            "unknown variant `rar`",
        ),
        ("not json", "body", "expected ident"),
    ];
    for (body, field, message) in cases {
        let (status, _, json) = stack
            .call("POST", "/v1/projects/p/exports", Some(MANAGER), &[], body)
            .await;
        assert_eq!(status, 400, "{body}: {json}");
        assert_eq!(json["error"]["code"], "INVALID_REQUEST");
        assert_eq!(json["error"]["field"], field, "{body}: {json}");
        let got = json["error"]["message"].as_str().unwrap();
        assert!(got.contains(message), "{body}: {got}");
    }
    let (status, _, json) = stack
        .call(
            "POST",
            "/v1/projects/NOT..OK/exports",
            Some(MANAGER),
            &[],
            "{}",
        )
        .await;
    assert_eq!(
        (status, json["error"]["field"].as_str()),
        (400, Some("project"))
    );
    let (status, _, json) = stack
        .call("GET", "/v1/exports/../../jobs", Some(MANAGER), &[], "")
        .await;
    assert_eq!(status, 404, "{json}");
    let (status, _, json) = stack
        .call("GET", "/v1/exports/not-an-id", Some(MANAGER), &[], "")
        .await;
    assert_eq!((status, json["error"]["field"].as_str()), (400, Some("id")));
    assert!(
        stack.receive(&stack.export_queue).await.is_none(),
        "nothing queued for refused requests"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn only_managers_export_and_only_live_projects() {
    let stack = Stack::new().await;
    stack.seed(&config("p", Mode::Classification, 10)).await;
    let body = r#"{"format":"CSV"}"#;
    let (status, _, json) = stack
        .call("POST", "/v1/projects/p/exports", None, &[], body)
        .await;
    assert_eq!(
        (status, json["error"]["code"].as_str()),
        (401, Some("UNAUTHENTICATED"))
    );
    let (status, _, json) = stack
        .call("POST", "/v1/projects/p/exports", Some(LABELER), &[], body)
        .await;
    assert_eq!(
        (status, json["error"]["code"].as_str()),
        (403, Some("FORBIDDEN")),
        "{json}"
    );
    let (status, _, json) = stack
        .call(
            "POST",
            "/v1/projects/nope/exports",
            Some(MANAGER),
            &[],
            body,
        )
        .await;
    assert_eq!(
        (status, json["error"]["code"].as_str()),
        (404, Some("PROJECT_NOT_FOUND"))
    );

    let id = request(&stack, "p", body).await;
    let (status, _, _) = stack.status(&id, LABELER).await;
    assert_eq!(status, 403, "a labeler cannot read an export's status");
    let (status, _, _) = stack.download(&id, LABELER).await;
    assert_eq!(status, 403, "nor download it");

    let mut project = labelport_generate::project(&config("p", Mode::Classification, 10));
    for (state, code) in [
        (ProjectState::Created, "PROJECT_NOT_STARTED"),
        (ProjectState::Archived, "PROJECT_ARCHIVED"),
    ] {
        project.state = state;
        stack.set_manifest(&project).await;
        let (status, _, json) = stack
            .call("POST", "/v1/projects/p/exports", Some(MANAGER), &[], body)
            .await;
        assert_eq!(
            (status, json["error"]["code"].as_str()),
            (409, Some(code)),
            "{json}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotency_key_returns_the_same_export() {
    let stack = Stack::new().await;
    stack.seed(&config("p", Mode::Classification, 10)).await;
    let key = [("idempotency-key", "nightly-2026-11-23")];
    let (s1, _, first) = stack
        .call(
            "POST",
            "/v1/projects/p/exports",
            Some(MANAGER),
            &key,
            r#"{"format":"CSV"}"#,
        )
        .await;
    let (s2, _, again) = stack
        .call(
            "POST",
            "/v1/projects/p/exports",
            Some(MANAGER),
            &key,
            r#"{"format": "CSV"}"#,
        )
        .await;
    assert_eq!((s1, s2), (202, 200));
    assert_eq!(first["id"], again["id"]);
    let (status, _, json) = stack
        .call(
            "POST",
            "/v1/projects/p/exports",
            Some(MANAGER),
            &key,
            r#"{"format":"NDJSON"}"#,
        )
        .await;
    assert_eq!(
        (status, json["error"]["field"].as_str()),
        (422, Some("Idempotency-Key")),
        "{json}"
    );
    // The repeat re-queues the still-QUEUED job; the worker runs it once.
    let (_, outcome) = run_worker(&stack).await;
    assert_eq!(outcome, Outcome::Ran(JobState::Succeeded));
    let (_, outcome) = run_worker(&stack).await;
    assert_eq!(outcome, Outcome::AlreadyDone(JobState::Succeeded));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_line_fails_the_export_with_file_and_line_and_leaves_nothing() {
    let stack = Stack::new().await;
    let cfg = config("broken", Mode::Element, 30);
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
    let (status, _, json) = stack.download(&id, MANAGER).await;
    assert_eq!(
        (status, json["error"]["code"].as_str()),
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
async fn duplicate_deliveries_run_once_and_mail_once() {
    let stack = Stack::new().await;
    stack.seed(&config("dup", Mode::Transcription, 200)).await;
    let id = request(
        &stack,
        "dup",
        r#"{"format":"CSV","delivery":{"method":"EMAIL"}}"#,
    )
    .await;
    let body = stack.receive(&stack.export_queue).await.unwrap();
    // Two workers get the same message at once: one runs it, the other stands down.
    let (a, b) = tokio::join!(stack.worker.handle(&body), stack.worker.handle(&body));
    let mut outcomes = [a.unwrap(), b.unwrap()];
    outcomes.sort_by_key(|o| format!("{o:?}"));
    assert_eq!(
        outcomes,
        [Outcome::HeldElsewhere, Outcome::Ran(JobState::Succeeded)]
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
    let mut outcomes = [format!("{:?}", x.unwrap()), format!("{:?}", y.unwrap())];
    outcomes.sort();
    assert!(outcomes.contains(&"Emailed".to_owned()), "{outcomes:?}");
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
async fn a_dropped_request_file_starts_the_same_export_once() {
    let stack = Stack::new().await;
    stack.seed(&config("drop", Mode::Entity, 50)).await;
    let first = stack
        .drop_request(
            "requests/drop/nightly.json",
            MANAGER,
            br#"{"format":"CSV"}"#,
        )
        .await;
    let again = stack
        .api
        .accept_dropped_request("requests/drop/nightly.json")
        .await
        .unwrap();
    let labelport_core::api::DropOutcome::Accepted(id) = &first else {
        panic!("{first:?}")
    };
    assert_eq!(
        first, again,
        "S3 reporting the same object twice is one export"
    );
    let response: serde_json::Value =
        serde_json::from_slice(&stack.get("responses/drop/nightly.json").await.unwrap()).unwrap();
    assert_eq!(response["export"]["id"], id.as_str());
    assert_eq!(
        run_worker(&stack).await.1,
        Outcome::Ran(JobState::Succeeded)
    );
    assert!(
        stack.receive(&stack.export_queue).await.is_some(),
        "the repeat re-queued the QUEUED job"
    );

    // Without a requester the drop is refused, and the response file says why.
    stack
        .put(
            "requests/drop/anonymous.json",
            br#"{"format":"CSV"}"#.to_vec(),
        )
        .await;
    let refused = stack
        .api
        .accept_dropped_request("requests/drop/anonymous.json")
        .await
        .unwrap();
    assert!(
        matches!(refused, labelport_core::api::DropOutcome::Refused(_)),
        "{refused:?}"
    );
    let response: serde_json::Value =
        serde_json::from_slice(&stack.get("responses/drop/anonymous.json").await.unwrap()).unwrap();
    assert_eq!(response["error"]["field"], "x-amz-meta-requested-by");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_bad_message_in_a_batch_fails_alone() {
    let stack = Stack::new().await;
    stack.seed(&config("batch", Mode::Classification, 20)).await;
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
    let response = labelport_aws::lambda::sqs_batch(event, |body| {
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

/// The real S3 store, except that upload parts fail: a storage outage mid-export.
struct PartsFail(Arc<labelport_aws::S3Store>);

struct FailingUpload(Box<dyn labelport_core::ports::Upload>);

#[async_trait::async_trait]
impl labelport_core::ports::Upload for FailingUpload {
    async fn put_part(&mut self, _: bytes::Bytes) -> Result<(), labelport_core::ports::StoreError> {
        Err(labelport_core::ports::StoreError::Backend {
            operation: "upload part",
            key: "injected".into(),
            source: "503 Slow Down (injected)".into(),
        })
    }
    async fn complete(self: Box<Self>) -> Result<(), labelport_core::ports::StoreError> {
        self.0.complete().await
    }
    async fn abort(self: Box<Self>) -> Result<(), labelport_core::ports::StoreError> {
        self.0.abort().await
    }
}

#[async_trait::async_trait]
impl labelport_core::ports::ObjectStore for PartsFail {
    async fn get(
        &self,
        key: &str,
    ) -> Result<labelport_core::ports::Object, labelport_core::ports::StoreError> {
        self.0.get(key).await
    }
    async fn put(
        &self,
        key: &str,
        body: bytes::Bytes,
        content_type: &str,
        condition: labelport_core::ports::Condition,
    ) -> Result<String, labelport_core::ports::StoreError> {
        self.0.put(key, body, content_type, condition).await
    }
    async fn list(
        &self,
        prefix: &str,
    ) -> Result<Vec<labelport_core::ports::ObjectInfo>, labelport_core::ports::StoreError> {
        self.0.list(prefix).await
    }
    async fn open(
        &self,
        key: &str,
    ) -> Result<Box<dyn tokio::io::AsyncRead + Send + Unpin>, labelport_core::ports::StoreError>
    {
        self.0.open(key).await
    }
    async fn create_upload(
        &self,
        key: &str,
        content_type: &str,
    ) -> Result<Box<dyn labelport_core::ports::Upload>, labelport_core::ports::StoreError> {
        let upload = self.0.create_upload(key, content_type).await?;
        Ok(Box::new(FailingUpload(upload)))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_storage_failure_aborts_the_upload_requeues_and_the_retry_succeeds() {
    let stack = Stack::new().await;
    stack.seed(&config("flaky", Mode::Video, 100)).await;
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
    let flaky = labelport_core::worker::Worker::new(
        s3.clone(),
        Arc::new(PartsFail(s3.clone())),
        notify,
        labelport_core::worker::WorkerSettings::default(),
    );
    let error = flaky
        .handle(&body)
        .await
        .expect_err("the attempt fails so that SQS retries it");
    assert!(
        error.to_string().contains("503 Slow Down (injected)"),
        "{error}"
    );
    let job = JobStore::new(s3).get(&id).await.unwrap().job;
    assert_eq!(
        job.state,
        JobState::Queued,
        "back in the queue for the retry"
    );
    assert_eq!(job.attempts, 1);
    assert_eq!(job.error.as_ref().unwrap().code, "STORAGE_ERROR");
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
    assert_eq!(
        stack.worker.handle(&body).await.unwrap(),
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
}
