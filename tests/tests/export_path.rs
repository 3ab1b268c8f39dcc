//! The export path end to end against the AWS emulator: API router → SQS → worker →
//! S3 multipart upload → SQS → notifier → SES, through the real AWS SDK adapters.
//!
//! Run by `infra/test.sh`, which starts the emulator: `--features labelport-tests/e2e`.
#![cfg(feature = "e2e")]
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
    let (status, _, json) = stack.download(&id).await;
    assert_eq!(
        (status, json["code"].as_str()),
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
    assert_eq!(key, format!("exports/campaign/{id}/attempt-1/{name}"));
    let body = stack.get(key).await.unwrap();
    assert_eq!(file["bytes"], body.len());
    let manifest: serde_json::Value = serde_json::from_slice(
        &stack
            .get(&format!("exports/campaign/{id}/attempt-1/manifest.json"))
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
    let mut shown = manifest.clone();
    shown.as_object_mut().unwrap().remove("files");
    assert_eq!(
        json["result"]["manifest"], shown,
        "the status shows the manifest; its files once, as `files`"
    );
    assert_eq!(
        json["result"]["filesTotal"],
        manifest["files"].as_array().unwrap().len()
    );
    assert_eq!(manifest["format"], "CSV");
    assert_eq!(
        manifest["states"],
        serde_json::json!(["annotated", "validated"])
    );

    // The download redirects to a presigned URL; Python's csv reader checks what it serves.
    let (status, headers, _) = stack.download(&id).await;
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
    // The e-mail's link downloads the file with no token: the link is the permission.
    let links = labelport_tests::api_links(email);
    let download = links
        .iter()
        .find(|l| l.contains("/download?"))
        .unwrap_or_else(|| panic!("no download link in {email}"));
    assert!(
        download.starts_with(&format!(
            "https://api.labelport.test/v1/exports/{id}/download?exp="
        )) && download.contains("&sig="),
        "{download}"
    );
    let (status, headers, _) = stack.follow(download, &[]).await;
    assert_eq!(status, 302, "{download}");
    let checked = python(
        "check_export.py",
        &[
            "csv",
            headers["location"].to_str().unwrap(),
            project_dir.to_str().unwrap(),
        ],
    );
    assert!(checked.ends_with("rows match\n"), "{checked}");
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
async fn the_openapi_document_is_served_without_a_token() {
    let stack = Stack::new().await;
    let (status, headers, doc) = stack.call("GET", "/v1/openapi.json", None, &[], "").await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(doc["openapi"], "3.1.0");
    let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    assert_eq!(
        paths,
        [
            "/v1/exports/{id}",
            "/v1/exports/{id}/cancel",
            "/v1/exports/{id}/download",
            "/v1/openapi.json",
            "/v1/projects/{project}/delivery-identity",
            "/v1/projects/{project}/exports",
            "/v1/projects/{project}/exports/latest",
            "/v1/projects/{project}/exports/latest/download",
        ]
    );
    // An unknown route is a problem too.
    let (status, headers, json) = stack.call("GET", "/v1/nothing", None, &[], "").await;
    assert_eq!((status, json["code"].as_str()), (404, Some("NOT_FOUND")));
    assert_eq!(headers["content-type"], "application/problem+json");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_name_the_field() {
    let stack = Stack::new().await;
    stack.seed(&config("p", Mode::Classification, 10)).await;
    let cases = [
        (r#"{"format":"XML"}"#, "/format", "unknown variant `XML`"),
        (
            r#"{"format":"CSV","colour":"red"}"#,
            "/colour",
            "unknown field `colour`",
        ),
        (
            r#"{"format":"NDJSON","filters":{"states":["annotated","finished"]}}"#,
            "/filters/states/1",
            "unknown variant `finished`",
        ),
        (
            r#"{"format":"NDJSON","filters":{"stages":["Done"]}}"#,
            "/filters/stages/0",
            "not a stage",
        ),
        (
            r#"{"format":"CSV","fields":{"stageHistory":true}}"#,
            "/fields/stageHistory",
            "not available in the CSV format",
        ),
        (
            r#"{"format":"CSV","delivery":{"method":"EMAIL","recipients":["someone@elsewhere.com"]}}"#,
            "/delivery/recipients/0",
            "neither a member of project p",
        ),
        (
            r#"{"format":"CSV","delivery":{"method":"FTP"}}"#,
            "/delivery/method",
            "the methods are FILE_STORAGE, EMAIL",
        ),
        (
            r#"{"format":"CSV","compression":"rar"}"#,
            "/compression",
            "unknown variant `rar`",
        ),
        ("not json", "", "expected ident"),
    ];
    for (body, field, message) in cases {
        let (status, headers, json) = stack
            .call("POST", "/v1/projects/p/exports", Some(MANAGER), &[], body)
            .await;
        assert_eq!(status, 400, "{body}: {json}");
        // RFC 9457 problem details: its media type and standard members.
        assert_eq!(headers["content-type"], "application/problem+json");
        assert_eq!(
            (&json["type"], &json["title"], &json["status"]),
            (
                &serde_json::json!("about:blank"),
                &serde_json::json!("Bad Request"),
                &serde_json::json!(400)
            ),
            "{json}"
        );
        assert_eq!(json["code"], "INVALID_REQUEST");
        assert_eq!(json["pointer"], field, "{body}: {json}");
        let got = json["detail"].as_str().unwrap();
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
    assert_eq!((status, json["parameter"].as_str()), (400, Some("project")));
    let (status, _, json) = stack
        .call("GET", "/v1/exports/../../jobs", Some(MANAGER), &[], "")
        .await;
    assert_eq!(status, 404, "{json}");
    let (status, _, json) = stack
        .call("GET", "/v1/exports/not-an-id", Some(MANAGER), &[], "")
        .await;
    assert_eq!((status, json["parameter"].as_str()), (400, Some("id")));
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
        (status, json["code"].as_str()),
        (401, Some("UNAUTHENTICATED"))
    );
    let (status, _, json) = stack
        .call("POST", "/v1/projects/p/exports", Some(LABELER), &[], body)
        .await;
    assert_eq!(
        (status, json["code"].as_str()),
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
        (status, json["code"].as_str()),
        (404, Some("PROJECT_NOT_FOUND"))
    );

    let id = request(&stack, "p", body).await;
    let (status, _, _) = stack.status(&id, LABELER).await;
    assert_eq!(
        status, 403,
        "a labeler cannot read an export's status, where its links are"
    );

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
        assert_eq!((status, json["code"].as_str()), (409, Some(code)), "{json}");
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
        (status, json["parameter"].as_str()),
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
async fn a_dropped_request_file_starts_the_same_export_once() {
    let stack = Stack::new().await;
    stack.seed(&config("drop", Mode::Entity, 50)).await;
    let first = stack
        .drop_request(
            "requests/drop/nightly.json",
            MANAGER,
            br#"{"format":"CSV"}"#,
            "0055AED6DCD90281E5",
        )
        .await;
    let labelport_core::api::DropOutcome::Accepted(id) = &first else {
        panic!("{first:?}")
    };
    assert_eq!(
        stack.get("requests/drop/nightly.json").await,
        None,
        "the handled request file is deleted: it may hold a webhook secret"
    );
    let writer = format!("AWS:{}:platform", labelport_tests::REQUEST_WRITER);
    let again = stack
        .api
        .accept_dropped_request("requests/drop/nightly.json", "0055AED6DCD90281E5", &writer)
        .await
        .unwrap();
    assert!(
        matches!(again, labelport_core::api::DropOutcome::Ignored(_)),
        "S3 reporting the same put again after it was handled: {again:?}"
    );
    // The same event handled twice before the file was deleted is one export too.
    let repeat = stack
        .drop_request(
            "requests/drop/nightly.json",
            MANAGER,
            br#"{"format":"CSV"}"#,
            "0055AED6DCD90281E5",
        )
        .await;
    assert_eq!(
        first, repeat,
        "S3 reporting the same put twice is one export"
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
    // Dropping the same file again (same bytes, same ETag) is a new put: a new export.
    let next = stack
        .drop_request(
            "requests/drop/nightly.json",
            MANAGER,
            br#"{"format":"CSV"}"#,
            "0055AED6DCE1A3B2F7",
        )
        .await;
    let labelport_core::api::DropOutcome::Accepted(next_id) = &next else {
        panic!("{next:?}")
    };
    assert_ne!(
        next_id, id,
        "tonight's nightly drop is not yesterday's export"
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
        .accept_dropped_request(
            "requests/drop/anonymous.json",
            "0055AED6DCE9000001",
            &writer,
        )
        .await
        .unwrap();
    assert!(
        matches!(refused, labelport_core::api::DropOutcome::Refused(_)),
        "{refused:?}"
    );
    let response: serde_json::Value =
        serde_json::from_slice(&stack.get("responses/drop/anonymous.json").await.unwrap()).unwrap();
    assert_eq!(response["error"]["parameter"], "x-amz-meta-requested-by");
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

/// The real S3 store with what the emulator cannot do injected: every upload it starts
/// wrapped by `wrap_upload` (an outage mid-export, a slow attempt), and task files read
/// slowly when `slow_reads` (an export long enough to be cancelled while it runs).
struct Injected<F> {
    s3: Arc<labelport_aws::S3Store>,
    wrap_upload: F,
    slow_reads: bool,
}

/// Every upload wrapped by `wrap_upload`.
fn wrapped_uploads<F>(s3: Arc<labelport_aws::S3Store>, wrap_upload: F) -> Injected<F> {
    Injected {
        s3,
        wrap_upload,
        slow_reads: false,
    }
}

/// Task files read 2 KiB every 40 ms.
fn slow_reads(s3: Arc<labelport_aws::S3Store>) -> impl labelport_core::ports::ObjectStore {
    Injected {
        s3,
        wrap_upload: |upload: BoxUpload| upload,
        slow_reads: true,
    }
}

type BoxUpload = Box<dyn labelport_core::ports::Upload>;
type StoreResult<T> = Result<T, labelport_core::ports::StoreError>;

/// Upload parts fail: a storage outage mid-export.
fn parts_fail(s3: Arc<labelport_aws::S3Store>) -> impl labelport_core::ports::ObjectStore {
    wrapped_uploads(s3, |upload: BoxUpload| -> BoxUpload {
        Box::new(FailingUpload(upload))
    })
}

struct FailingUpload(BoxUpload);

#[async_trait::async_trait]
impl labelport_core::ports::Upload for FailingUpload {
    async fn put_part(&mut self, _: bytes::Bytes) -> StoreResult<()> {
        Err(labelport_core::ports::StoreError::Backend {
            operation: "upload part",
            key: "injected".into(),
            source: "503 Slow Down (injected)".into(),
        })
    }
    async fn complete(self: Box<Self>) -> StoreResult<()> {
        self.0.complete().await
    }
    async fn abort(self: Box<Self>) -> StoreResult<()> {
        self.0.abort().await
    }
}

/// An upload that, before completing, says so and waits to be let go: an attempt that
/// stalls at its very end while another takes the job over.
struct GatedUpload {
    upload: BoxUpload,
    reached: Arc<tokio::sync::Notify>,
    gate: Arc<tokio::sync::Notify>,
}

#[async_trait::async_trait]
impl labelport_core::ports::Upload for GatedUpload {
    async fn put_part(&mut self, part: bytes::Bytes) -> StoreResult<()> {
        self.upload.put_part(part).await
    }
    async fn complete(self: Box<Self>) -> StoreResult<()> {
        self.reached.notify_one();
        self.gate.notified().await;
        self.upload.complete().await
    }
    async fn abort(self: Box<Self>) -> StoreResult<()> {
        self.upload.abort().await
    }
}

#[async_trait::async_trait]
impl<F> labelport_core::ports::ObjectStore for Injected<F>
where
    F: Fn(BoxUpload) -> BoxUpload + Send + Sync + 'static,
{
    async fn get(&self, key: &str) -> StoreResult<labelport_core::ports::Object> {
        self.s3.get(key).await
    }
    async fn put(
        &self,
        key: &str,
        body: bytes::Bytes,
        content_type: &str,
        condition: labelport_core::ports::Condition,
    ) -> StoreResult<String> {
        self.s3.put(key, body, content_type, condition).await
    }
    async fn delete(&self, key: &str) -> StoreResult<()> {
        self.s3.delete(key).await
    }
    async fn list(&self, prefix: &str) -> StoreResult<Vec<labelport_core::ports::ObjectInfo>> {
        self.s3.list(prefix).await
    }
    async fn open(&self, key: &str) -> StoreResult<Box<dyn tokio::io::AsyncRead + Send + Unpin>> {
        if !self.slow_reads {
            return self.s3.open(key).await;
        }
        use futures::StreamExt;
        let body = self.s3.get(key).await?.body;
        let pieces: Vec<bytes::Bytes> = body
            .chunks(2048)
            .map(bytes::Bytes::copy_from_slice)
            .collect();
        let slow = futures::stream::iter(pieces).then(|piece| async move {
            tokio::time::sleep(std::time::Duration::from_millis(40)).await;
            Ok::<_, std::io::Error>(piece)
        });
        Ok(Box::new(tokio_util::io::StreamReader::new(Box::pin(slow))))
    }
    async fn create_upload(&self, key: &str, content_type: &str) -> StoreResult<BoxUpload> {
        let upload = self.s3.create_upload(key, content_type).await?;
        Ok((self.wrap_upload)(upload))
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
async fn outsiders_get_404_and_a_body_that_is_not_json_gets_415() {
    let stack = Stack::new().await;
    stack
        .seed(&config("private", Mode::Classification, 10))
        .await;
    let body = r#"{"format":"CSV"}"#;
    let outsider = "someone@elsewhere.example";
    // Someone outside the project gets what a missing project gets.
    let (status, _, json) = stack
        .call(
            "POST",
            "/v1/projects/private/exports",
            Some(outsider),
            &[],
            body,
        )
        .await;
    let (missing_status, _, missing) = stack
        .call(
            "POST",
            "/v1/projects/absent/exports",
            Some(outsider),
            &[],
            body,
        )
        .await;
    assert_eq!(
        (status, json["code"].as_str()),
        (404, Some("PROJECT_NOT_FOUND"))
    );
    assert_eq!(missing_status, 404);
    assert_eq!(
        json["detail"]
            .as_str()
            .unwrap()
            .replace("private", "absent"),
        missing["detail"].as_str().unwrap()
    );
    let id = request(&stack, "private", body).await;
    let unknown = "01a20f73-0000-7000-8000-000000000000";
    {
        let path = format!("/v1/exports/{id}");
        let (status, _, json) = stack.call("GET", &path, Some(outsider), &[], "").await;
        assert_eq!(
            (status, json["code"].as_str()),
            (404, Some("EXPORT_NOT_FOUND")),
            "{path}"
        );
        let other = path.replace(&id, unknown);
        let (_, _, missing) = stack.call("GET", &other, Some(outsider), &[], "").await;
        assert_eq!(
            json["detail"].as_str().unwrap().replace(&id, unknown),
            missing["detail"].as_str().unwrap()
        );
    }
    // A member who is not a manager still learns why.
    let (status, _, _) = stack.status(&id, LABELER).await;
    assert_eq!(status, 403);

    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        let (status, _, json) = stack
            .call(
                "POST",
                "/v1/projects/private/exports",
                Some(MANAGER),
                &[("content-type", content_type)],
                body,
            )
            .await;
        assert_eq!(
            (status, json["parameter"].as_str()),
            (415, Some("Content-Type")),
            "{json}"
        );
    }
    let (status, _, _) = stack
        .call(
            "POST",
            "/v1/projects/private/exports",
            Some(MANAGER),
            &[("content-type", "application/json; charset=utf-8")],
            body,
        )
        .await;
    assert_eq!(status, 202);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_key_outside_the_exports_folder_is_never_presigned() {
    let stack = Stack::new().await;
    stack
        .seed(&config("fenced", Mode::Classification, 10))
        .await;
    let id = request(&stack, "fenced", r#"{"format":"CSV"}"#).await;
    assert_eq!(
        run_worker(&stack).await.1,
        Outcome::Ran(JobState::Succeeded)
    );
    let jobs = JobStore::new(Arc::new(labelport_aws::S3Store::new(
        stack.s3.clone(),
        &stack.bucket,
    )));
    let (status, _, _) = stack.download(&id).await;
    assert_eq!(status, 302, "the export's own file is served");
    // A record whose key was changed to point at another object.
    for key in [
        "projects/fenced/project.json".to_owned(),
        format!("exports/fenced/{id}/../../other/secret.csv"),
        format!("exports/other/{id}/x.csv"),
    ] {
        let current = jobs.get(&id).await.unwrap();
        let mut tampered = current.job.clone();
        tampered.result.as_mut().unwrap().files[0].key = key.clone();
        jobs.swap(&current, tampered).await.unwrap();
        let (status, headers, json) = stack.download(&id).await;
        assert_eq!(
            (status, json["code"].as_str()),
            (404, Some("FILE_NOT_FOUND")),
            "{key}"
        );
        assert!(headers.get("location").is_none());
    }
}

/// The export's store and notify queue, for workers built by a test.
fn backends(stack: &Stack) -> (Arc<labelport_aws::S3Store>, Arc<labelport_aws::SqsQueue>) {
    (
        Arc::new(labelport_aws::S3Store::new(stack.s3.clone(), &stack.bucket)),
        Arc::new(labelport_aws::SqsQueue::new(
            stack.sqs.clone(),
            &stack.notify_queue,
        )),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_whose_last_attempt_died_ends_failed_and_the_customer_is_told() {
    let stack = Stack::new().await;
    stack
        .seed(&config("doomed", Mode::Classification, 20))
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
    let project = labelport_generate::project(&config("empty", Mode::Classification, 1));
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
        .seed(&config("broken", Mode::Classification, 30))
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
async fn a_late_attempt_never_replaces_the_file_a_newer_attempt_recorded() {
    let stack = Stack::new().await;
    stack.seed(&config("race", Mode::Classification, 300)).await;
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
async fn an_unverified_address_is_not_the_member_it_names() {
    use tower::ServiceExt;
    let stack = Stack::new().await;
    stack
        .seed(&config("verified", Mode::Classification, 10))
        .await;
    for claims in [
        vec![("email", MANAGER), ("email_verified", "false")],
        vec![("email", MANAGER)],
    ] {
        let mut request = http::Request::builder()
            .method("POST")
            .uri("/v1/projects/verified/exports")
            .header("content-type", "application/json")
            .body(axum::body::Body::from(r#"{"format":"CSV"}"#))
            .unwrap();
        request
            .extensions_mut()
            .insert(labelport_tests::claims_with(&claims));
        let response = stack.router.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            (status, json["code"].as_str()),
            (403, Some("EMAIL_NOT_VERIFIED")),
            "{claims:?}"
        );
    }
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

/// One export attempt as metrics saw it: outcome, code, tasks, attempt.
type Attempted = (String, Option<String>, u64, u32);

/// Metrics kept in memory.
#[derive(Default)]
struct Recorded(std::sync::Mutex<Vec<Attempted>>);

impl labelport_core::ports::Metrics for Recorded {
    fn export_ended(&self, ended: &labelport_core::ports::ExportEnded<'_>) {
        self.0.lock().unwrap().push((
            ended.outcome.to_owned(),
            ended.code.map(str::to_owned),
            ended.tasks,
            ended.attempt,
        ));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_export_that_cannot_be_queued_never_waits_forever() {
    let stack = Stack::new().await;
    stack
        .seed(&config("unqueued", Mode::Classification, 10))
        .await;
    // The same API over a queue that does not exist: every enqueue fails.
    let store = Arc::new(labelport_aws::S3Store::new(stack.s3.clone(), &stack.bucket));
    let broken = stack.router_with(
        &format!("{}-gone", stack.export_queue),
        labelport_tests::api_settings(),
    );
    let csv = r#"{"format":"CSV"}"#;
    let (status, _, _) = post_through(&broken, "unqueued", csv, None).await;
    assert_eq!(status, 500);
    let jobs = JobStore::new(store.clone());
    let keys = stack.keys("jobs/").await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    let id = keys[0]
        .trim_start_matches("jobs/")
        .trim_end_matches(".json");
    let job = jobs.get(id).await.unwrap().job;
    assert_eq!(job.state, JobState::Failed, "not QUEUED forever");
    assert_eq!(job.error.unwrap().code, "NOT_QUEUED");
    assert_eq!(
        stack.keys("active/").await,
        Vec::<String>::new(),
        "an ended export does not count against the project's limit"
    );

    // With an idempotency key the job stays QUEUED, and the client's retry resumes it.
    let (status, _, _) = post_through(&broken, "unqueued", csv, Some("nightly-7")).await;
    assert_eq!(status, 500);
    let (status, _, json) = stack
        .call(
            "POST",
            "/v1/projects/unqueued/exports",
            Some(MANAGER),
            &[("idempotency-key", "nightly-7")],
            r#"{"format":"CSV"}"#,
        )
        .await;
    assert_eq!(
        (status, json["state"].as_str()),
        (200, Some("QUEUED")),
        "{json}"
    );
    assert_eq!(
        run_worker(&stack).await.1,
        Outcome::Ran(JobState::Succeeded)
    );
}

/// POSTs `body` to `project` through `router` as the manager.
async fn post_through(
    router: &axum::Router,
    project: &str,
    body: &str,
    idempotency_key: Option<&str>,
) -> (u16, http::HeaderMap, serde_json::Value) {
    let key = idempotency_key.map(|key| ("idempotency-key", key));
    labelport_tests::call_router(
        router,
        "POST",
        &format!("/v1/projects/{project}/exports"),
        Some(MANAGER),
        key.as_slice(),
        body,
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_project_at_its_limit_gets_429_with_retry_after_until_an_export_ends() {
    let stack = Stack::new().await;
    stack.seed(&config("busy", Mode::Classification, 10)).await;
    stack.seed(&config("quiet", Mode::Classification, 10)).await;
    let limited = stack.router_with(
        &stack.export_queue,
        labelport_core::api::ApiSettings {
            max_active_per_project: 2,
            ..labelport_tests::api_settings()
        },
    );
    let csv = r#"{"format":"CSV"}"#;
    let (status, _, first) = post_through(&limited, "busy", csv, Some("first")).await;
    assert_eq!(status, 202, "{first}");
    assert_eq!(post_through(&limited, "busy", csv, None).await.0, 202);

    let (status, headers, json) = post_through(&limited, "busy", csv, None).await;
    assert_eq!(status, 429, "{json}");
    assert_eq!(headers["retry-after"], "60");
    assert_eq!(json["code"], "TOO_MANY_EXPORTS");
    assert_eq!(json["parameter"], "project");
    assert!(
        json["detail"]
            .as_str()
            .unwrap()
            .contains("2 exports queued or running"),
        "{json}"
    );
    assert_eq!(
        stack.keys("jobs/").await.len(),
        2,
        "a refused request leaves no job"
    );
    // A retry of an accepted request is still answered, and other projects are not held up.
    let (status, _, again) = post_through(&limited, "busy", csv, Some("first")).await;
    assert_eq!((status, &again["id"]), (200, &first["id"]), "{again}");
    assert_eq!(post_through(&limited, "quiet", csv, None).await.0, 202);

    // One ends, and there is room again.
    assert_eq!(
        run_worker(&stack).await.1,
        Outcome::Ran(JobState::Succeeded)
    );
    assert_eq!(post_through(&limited, "busy", csv, None).await.0, 202);
    assert_eq!(post_through(&limited, "busy", csv, None).await.0, 429);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sweeper_ends_abandoned_exports_and_the_customer_is_told() {
    use labelport_core::sweep::{SweepSettings, Sweeper};
    let stack = Stack::new().await;
    stack.seed(&config("swept", Mode::Classification, 10)).await;
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

#[tokio::test(flavor = "multi_thread")]
async fn signed_links_need_no_token_and_refuse_tampering_expiry_and_retired_keys() {
    let stack = Stack::new().await;
    stack
        .seed(&config("linked", Mode::Classification, 20))
        .await;
    // A labeler is a member: the e-mail may go to them, one message each.
    let id = request(
        &stack,
        "linked",
        &format!(
            r#"{{"format":"CSV","delivery":{{"method":"EMAIL","recipients":["{MANAGER}","{LABELER}"]}}}}"#
        ),
    )
    .await;
    assert_eq!(
        run_worker(&stack).await.1,
        Outcome::Ran(JobState::Succeeded)
    );
    assert_eq!(run_notifier(&stack).await.1, NotifyOutcome::Emailed);
    let emails: Vec<_> = sent_emails()
        .into_iter()
        .filter(|m| m["body"].to_string().contains(&id))
        .collect();
    let mut to: Vec<_> = emails
        .iter()
        .map(|m| m["destinations"]["ToAddresses"].clone())
        .collect();
    to.sort_by_key(|t| t.to_string());
    assert_eq!(
        to,
        vec![serde_json::json!([LABELER]), serde_json::json!([MANAGER])],
        "one e-mail per recipient, each addressed to them alone"
    );
    let link = labelport_tests::api_links(&emails[0])
        .into_iter()
        .find(|l| l.contains("/download?"))
        .unwrap();
    let (status, headers, _) = stack.follow(&link, &[]).await;
    assert_eq!(status, 302);
    assert!(headers["location"]
        .to_str()
        .unwrap()
        .contains("X-Amz-Signature="));

    // A recipient outside the project is refused when the export is asked for.
    let (status, _, json) = stack
        .call(
            "POST",
            "/v1/projects/linked/exports",
            Some(MANAGER),
            &[],
            r#"{"format":"CSV","delivery":{"method":"EMAIL","recipients":["someone@elsewhere.com"]}}"#,
        )
        .await;
    assert_eq!(
        (status, json["pointer"].as_str()),
        (400, Some("/delivery/recipients/0")),
        "{json}"
    );

    // Without a signature the route says where links come from, token or not.
    let (status, _, json) = stack
        .call(
            "GET",
            &format!("/v1/exports/{id}/download"),
            Some(MANAGER),
            &[],
            "",
        )
        .await;
    assert_eq!(
        (status, json["code"].as_str()),
        (401, Some("SIGNED_LINK_REQUIRED")),
        "{json}"
    );

    // Tampered: another export's id, another file, a later expiry, a changed signature.
    let (path, query) = link.split_once('?').unwrap();
    let exp: i64 = query
        .split('&')
        .find_map(|p| p.strip_prefix("exp="))
        .unwrap()
        .parse()
        .unwrap();
    let other = request(&stack, "linked", r#"{"format":"CSV"}"#).await;
    for tampered in [
        link.replace(&id, &other),
        format!("{link}&file=errors.ndjson"),
        link.replace(&format!("exp={exp}"), &format!("exp={}", exp + 86_400)),
        format!("{path}?exp={exp}&sig=AAAA{}", &query[query.len() - 10..]),
    ] {
        let (status, _, json) = stack.follow(&tampered, &[]).await;
        assert_eq!(
            (status, json["code"].as_str()),
            (403, Some("LINK_INVALID")),
            "{tampered}"
        );
    }
    // A person who clicked it gets a page that says what to do.
    let (status, headers, _) = stack
        .follow(&link.replace(&id, &other), &[("accept", "text/html,*/*")])
        .await;
    assert_eq!(status, 403);
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");

    // Expired: signed properly, eight days ago.
    let old = stack
        .links
        .download_link(&id, None, chrono::Utc::now() - chrono::Duration::days(8))
        .await
        .unwrap();
    let (status, _, json) = stack.follow(&old, &[]).await;
    assert_eq!(
        (status, json["code"].as_str()),
        (410, Some("LINK_EXPIRED")),
        "{json}"
    );
    assert!(json["detail"].as_str().unwrap().contains("fresh one"));

    // Rotating the key (Secrets Manager's AWSCURRENT moves to AWSPREVIOUS) keeps the links
    // already sent; the rotation after that retires them.
    let secrets = aws_sdk_secretsmanager::Client::new(&stack.aws);
    for round in 1..=2 {
        secrets
            .put_secret_value()
            .secret_id(&stack.link_secret)
            .secret_string(labelport_tests::new_link_key())
            .send()
            .await
            .unwrap();
        let rotated = labelport_tests::link_signer(&stack.aws, &stack.link_secret);
        let (_, query) = link.split_once('?').unwrap();
        let part = |name: &str| {
            query
                .split('&')
                .find_map(|p| p.strip_prefix(&format!("{name}=")))
                .unwrap()
                .to_owned()
        };
        let (exp, sig) = (part("exp"), part("sig"));
        let checked = rotated
            .verify(
                &id,
                &labelport_core::links::LinkQuery {
                    file: None,
                    exp: &exp,
                    sig: &sig,
                },
                chrono::Utc::now(),
            )
            .await;
        match round {
            1 => assert!(checked.is_ok(), "after one rotation: {checked:?}"),
            _ => assert!(
                matches!(checked, Err(labelport_core::links::LinkError::Invalid)),
                "after two: {checked:?}"
            ),
        }
        let fresh = rotated
            .download_link(&id, None, chrono::Utc::now())
            .await
            .unwrap();
        assert_ne!(fresh, link, "new links are signed with the new key");
    }
}

/// A webhook receiver (infra/webhook_receiver.py) on `port`, answering `statuses` in turn
/// and checking each signature with the README's recipe; killed when dropped.
struct Receiver {
    child: std::process::Child,
    log: std::path::PathBuf,
}

impl Receiver {
    fn start(stack: &Stack, port: u16, secret: &str, statuses: &str) -> Receiver {
        use std::io::BufRead;
        let python = std::env::var("LABELPORT_PYTHON").unwrap_or_else(|_| "python3".into());
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .to_path_buf();
        let log = stack
            .scratch
            .join(format!("webhook-{port}-{}.ndjson", uuid::Uuid::new_v4()));
        let mut child = std::process::Command::new(python)
            .arg(root.join("infra/webhook_receiver.py"))
            .args([&port.to_string(), log.to_str().unwrap(), secret, statuses])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut ready = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert_eq!(ready.trim(), "ready");
        Receiver { child, log }
    }

    fn requests(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_is_signed_retried_after_5xx_never_after_4xx_and_never_sent_inside() {
    let stack = Stack::new().await;
    stack
        .seed(&config("hooked", Mode::Classification, 20))
        .await;
    let ports: Vec<u16> = labelport_tests::RECEIVER_PORTS.collect();
    // Each test stack gets its own ports: tests run in parallel.
    let port = ports[0];
    let secret = "whsec_e2e_0123456789";
    let flaky = Receiver::start(&stack, port, secret, "500,200");
    let body = format!(
        r#"{{"format":"CSV","delivery":{{"method":"CUSTOM_WEBHOOK","url":"http://127.0.0.1:{port}/hooks/labelport","secret":"{secret}"}}}}"#
    );
    let id = request(&stack, "hooked", &body).await;
    assert_eq!(
        run_worker(&stack).await.1,
        Outcome::Ran(JobState::Succeeded)
    );
    assert_eq!(run_notifier(&stack).await.1, NotifyOutcome::Posted);
    let got = flaky.requests();
    assert_eq!(
        got.iter()
            .map(|r| r["status"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        vec![500, 200],
        "retried after the 500"
    );
    for request in &got {
        assert_eq!(
            request["verified"], true,
            "the README's recipe verifies it: {request}"
        );
        assert_eq!(request["path"], "/hooks/labelport");
    }
    assert_eq!(
        got[0]["event"], got[1]["event"],
        "a retry sends the same event"
    );
    let event = &got[1]["event"];
    assert_eq!(event["id"], format!("{id}.succeeded"));
    assert_eq!(event["type"], "export.succeeded");
    assert_eq!(event["data"]["exportId"], id.as_str());
    assert_eq!(event["data"]["project"], "hooked");
    let file = &event["data"]["files"][0];
    assert_eq!(file["sha256"].as_str().unwrap().len(), 64);
    let (status, _, _) = stack
        .follow(file["downloadUrl"].as_str().unwrap(), &[])
        .await;
    assert_eq!(status, 302, "the event's link downloads with no token");

    let (_, _, json) = stack.status(&id, MANAGER).await;
    assert_eq!(json["notification"], "SENT");
    let outcomes: Vec<_> = json["deliveryAttempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(outcomes, ["HTTP 500", "HTTP 200"], "{json}");
    // The secret is sealed on the job and shown nowhere.
    assert!(!json.to_string().contains(secret), "{json}");
    assert_eq!(
        json["request"]["delivery"],
        serde_json::json!({"method": "CUSTOM_WEBHOOK", "url": format!("http://127.0.0.1:{port}/hooks/labelport")})
    );
    let record = stack.get(&format!("jobs/{id}.json")).await.unwrap();
    let record = String::from_utf8(record).unwrap();
    assert!(
        !record.contains(secret),
        "the job record holds the secret in clear"
    );
    assert!(record.contains("\"sealedSecret\": \"v1."), "{record}");
    drop(flaky);

    // A 4xx is an answer: recorded, not retried, not sent again.
    let refusing = Receiver::start(&stack, ports[1], secret, "400");
    let body = body.replace(&port.to_string(), &ports[1].to_string());
    let id = request(&stack, "hooked", &body).await;
    assert_eq!(
        run_worker(&stack).await.1,
        Outcome::Ran(JobState::Succeeded)
    );
    let notify = stack.receive(&stack.notify_queue).await.unwrap();
    assert_eq!(
        stack.notifier.handle(&notify).await.unwrap(),
        NotifyOutcome::Undeliverable
    );
    assert_eq!(
        stack.notifier.handle(&notify).await.unwrap(),
        NotifyOutcome::AlreadyNotified,
        "a repeated message does not call again"
    );
    assert_eq!(refusing.requests().len(), 1);
    let (_, _, json) = stack.status(&id, MANAGER).await;
    assert_eq!(json["notification"], "FAILED");
    assert!(
        json["deliveryError"]
            .as_str()
            .unwrap()
            .contains("answered 400"),
        "{json}"
    );

    // Addresses inside the network are refused when the export is asked for.
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "https://10.0.0.1/hook",
        "https://[::1]/hook",
        "https://localhost:8443/hook",
        "http://127.0.0.1:9/hook",
    ] {
        let body = format!(
            r#"{{"format":"CSV","delivery":{{"method":"CUSTOM_WEBHOOK","url":"{url}","secret":"{secret}"}}}}"#
        );
        let (status, _, json) = stack
            .call(
                "POST",
                "/v1/projects/hooked/exports",
                Some(MANAGER),
                &[],
                &body,
            )
            .await;
        assert_eq!(
            (status, json["pointer"].as_str()),
            (400, Some("/delivery/url")),
            "{url}: {json}"
        );
    }
}

/// A CSV export delivered by webhook to the test receiver on `port`.
fn webhook_csv(port: u16, secret: &str) -> String {
    format!(
        r#"{{"format":"CSV","delivery":{{"method":"CUSTOM_WEBHOOK","url":"http://127.0.0.1:{port}/h","secret":"{secret}"}}}}"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_that_does_not_answer_is_retried_by_the_queue_with_every_attempt_recorded() {
    let stack = Stack::new().await;
    stack
        .seed(&config("silent", Mode::Classification, 10))
        .await;
    let port = labelport_tests::RECEIVER_PORTS.start + 2;
    let secret = "whsec_e2e_0123456789";
    let down = Receiver::start(&stack, port, secret, "503");
    let id = request(&stack, "silent", &webhook_csv(port, secret)).await;
    run_worker(&stack).await;
    let notify = stack.receive(&stack.notify_queue).await.unwrap();
    stack
        .notifier
        .handle(&notify)
        .await
        .expect_err("the run fails, so SQS retries it after its backoff");
    assert_eq!(down.requests().len(), 2);
    let (_, _, json) = stack.status(&id, MANAGER).await;
    assert_eq!(json["notification"], "PENDING", "released for the retry");
    assert_eq!(json["deliveryAttempts"].as_array().unwrap().len(), 2);
    drop(down);
    // The receiver is back when SQS delivers the message again.
    let up = Receiver::start(&stack, port, secret, "204");
    assert_eq!(
        stack.notifier.handle(&notify).await.unwrap(),
        NotifyOutcome::Posted
    );
    assert_eq!(up.requests().len(), 1);
    let (_, _, json) = stack.status(&id, MANAGER).await;
    assert_eq!(json["deliveryAttempts"].as_array().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_export_lands_in_the_customers_bucket_through_their_role_manifest_last() {
    let stack = Stack::new().await;
    let cfg = config("theirs", Mode::Classification, 30);
    stack.seed(&cfg).await;
    let customer = format!("{}-customer", stack.bucket);
    stack
        .s3
        .create_bucket()
        .bucket(&customer)
        .send()
        .await
        .unwrap();
    let role = "arn:aws:iam::210987654321:role/labelport-writer";
    // The platform lists the customer's bucket, folder and role in the project's settings.
    let mut project = labelport_generate::project(&cfg);
    project.exports.tenant = Some("acme".into());
    project.exports.destinations = ["", "-absent"]
        .map(|suffix| labelport_model::Destination {
            bucket: format!("{customer}{suffix}"),
            path: "exports".into(),
            role_arn: Some(role.into()),
        })
        .to_vec();
    stack.set_manifest(&project).await;
    let body = format!(
        r#"{{"format":"CSV","delivery":{{"method":"EXTERNAL_OBJECT_STORAGE","bucket":"{customer}","path":"exports/2026/","roleArn":"{role}","kmsKeyId":"alias/acme-exports"}}}}"#
    );
    let (status, _, accepted) = stack
        .call(
            "POST",
            "/v1/projects/theirs/exports",
            Some(MANAGER),
            &[],
            &body,
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    assert!(
        accepted.get("downloadUrl").is_none(),
        "nothing to download from the platform: {accepted}"
    );
    let id = accepted["id"].as_str().unwrap().to_owned();
    assert_eq!(
        stack.keys_in(&customer, "").await,
        Vec::<String>::new(),
        "the access probe was written and removed"
    );
    assert_eq!(
        run_worker(&stack).await.1,
        Outcome::Ran(JobState::Succeeded)
    );
    assert_eq!(run_notifier(&stack).await.1, NotifyOutcome::Stored);

    let keys = stack.keys_in(&customer, "exports/2026/").await;
    assert_eq!(keys.len(), 2, "{keys:?}");
    let csv_key = keys.iter().find(|k| k.ends_with(".csv")).unwrap();
    let manifest_key = keys.iter().find(|k| k.ends_with(".manifest.json")).unwrap();
    assert!(csv_key.starts_with("exports/2026/theirs-csv-"), "{csv_key}");
    // The manifest names the file with the SHA-256 of the bytes that are there.
    let csv = stack.get_in(&customer, csv_key).await.unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&stack.get_in(&customer, manifest_key).await.unwrap()).unwrap();
    use sha2::Digest;
    assert_eq!(
        manifest["files"][0]["sha256"],
        hex::encode(sha2::Sha256::digest(&csv))
    );
    assert_eq!(manifest["files"][0]["key"], csv_key.as_str());
    for key in [csv_key, manifest_key] {
        let head = stack
            .s3
            .head_object()
            .bucket(&customer)
            .key(key)
            .send()
            .await
            .unwrap();
        assert_eq!(
            head.server_side_encryption(),
            Some(&aws_sdk_s3::types::ServerSideEncryption::AwsKms),
            "{key} is encrypted with the customer's key"
        );
        assert_eq!(head.ssekms_key_id(), Some("alias/acme-exports"), "{key}");
    }

    let (_, _, json) = stack.status(&id, MANAGER).await;
    assert_eq!(json["state"], "SUCCEEDED");
    assert_eq!(
        json["result"]["files"][0]["location"],
        format!("s3://{customer}/{csv_key}")
    );
    // The role was assumed with the tenant's external id, the one the platform shows.
    let (status, _, identity) = stack
        .call(
            "GET",
            "/v1/projects/theirs/delivery-identity",
            Some(MANAGER),
            &[],
            "",
        )
        .await;
    assert_eq!(status, 200, "{identity}");
    assert_eq!(identity["tenant"], "acme");
    assert_eq!(
        json["request"]["delivery"]["externalId"],
        identity["externalId"]
    );
    assert_eq!(identity["destinations"][0]["roleArn"], role);
    assert!(json.get("downloadUrl").is_none(), "{json}");
    let (status, _, json) = stack.download(&id).await;
    assert_eq!(
        (status, json["code"].as_str()),
        (404, Some("DELIVERED_TO_BUCKET")),
        "{json}"
    );

    // A listed bucket that does not exist is refused when the export is asked for.
    let (status, _, json) = stack
        .call(
            "POST",
            "/v1/projects/theirs/exports",
            Some(MANAGER),
            &[],
            &body.replace(&customer, &format!("{customer}-absent")),
        )
        .await;
    assert_eq!(status, 400, "{json}");
    assert_eq!(json["pointer"], "/delivery/roleArn");
    assert!(
        json["detail"].as_str().unwrap().contains("does not exist"),
        "{json}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn exports_are_listed_newest_first_the_latest_is_any_managers_and_a_new_one_replaces_the_old()
{
    let stack = Stack::new().await;
    let cfg = config("listed", Mode::Classification, 20);
    stack.seed(&cfg).await;
    let second = "second.manager@example.com";
    let mut project = labelport_generate::project(&cfg);
    project.exports.replace_previous = true;
    project.members.push(labelport_model::Member {
        email: second.into(),
        role: labelport_model::Role::Manager,
    });
    stack.set_manifest(&project).await;
    let get = |path: String, email: &'static str| {
        let stack = &stack;
        async move { stack.call("GET", &path, Some(email), &[], "").await }
    };
    let (status, _, json) = get("/v1/projects/listed/exports/latest".into(), MANAGER).await;
    assert_eq!(
        (status, json["code"].as_str()),
        (404, Some("NO_EXPORT_YET"))
    );

    let first = request(&stack, "listed", r#"{"format":"CSV"}"#).await;
    run_worker(&stack).await;
    let old_keys = stack.keys(&format!("exports/listed/{first}/")).await;
    assert_eq!(old_keys.len(), 2, "the CSV and its manifest: {old_keys:?}");
    let old_link = stack
        .links
        .download_link(&first, None, chrono::Utc::now())
        .await
        .unwrap();
    let second_export = request(&stack, "listed", r#"{"format":"NDJSON"}"#).await;
    run_worker(&stack).await;
    let queued = request(&stack, "listed", r#"{"format":"CSV"}"#).await;

    // The new export replaced the old one: the status says so at once, but a link handed
    // out a moment ago still works for the grace period.
    let (_, _, json) = stack.status(&first, MANAGER).await;
    assert_eq!(json["replacedBy"], second_export.as_str());
    let (status, _, _) = stack.follow(&old_link, &[]).await;
    assert_eq!(status, 302, "within the grace period");
    assert_eq!(stack.keys("exports/listed/").await.len(), 4);
    // After it, the sweep deletes exactly the old files.
    let sweeper = labelport_core::sweep::Sweeper::new(
        Arc::new(labelport_aws::S3Store::new(stack.s3.clone(), &stack.bucket)),
        Arc::new(labelport_aws::SqsQueue::new(
            stack.sqs.clone(),
            &stack.notify_queue,
        )),
        labelport_core::sweep::SweepSettings::default(),
    );
    let report = sweeper
        .sweep_at(chrono::Utc::now() + chrono::Duration::minutes(61))
        .await
        .unwrap();
    assert_eq!(report.retired, std::slice::from_ref(&first), "{report:?}");
    let mut left = stack.keys("exports/listed/").await;
    left.sort();
    assert!(
        left.iter()
            .all(|k| k.starts_with(&format!("exports/listed/{second_export}/"))),
        "{left:?}"
    );
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(stack.keys("retiring/").await.is_empty());
    // The link answers 410 once the grace period has passed.
    let mut replaced: labelport_core::job::Job =
        serde_json::from_slice(&stack.get(&format!("jobs/{first}.json")).await.unwrap()).unwrap();
    replaced.replaced_at = Some(chrono::Utc::now() - chrono::Duration::minutes(61));
    stack
        .put(
            &format!("jobs/{first}.json"),
            serde_json::to_vec(&replaced).unwrap(),
        )
        .await;
    let (status, _, json) = stack.follow(&old_link, &[]).await;
    assert_eq!(
        (status, json["code"].as_str()),
        (410, Some("EXPORT_REPLACED")),
        "{json}"
    );
    let (_, _, json) = stack.status(&first, MANAGER).await;
    assert_eq!(json["replacedBy"], second_export.as_str());
    assert!(json.get("downloadUrl").is_none());

    // The latest, for every manager: its status, and its file straight away.
    let (status, _, json) = get("/v1/projects/listed/exports/latest".into(), second).await;
    assert_eq!(
        (status, json["id"].as_str()),
        (200, Some(second_export.as_str()))
    );
    let (status, headers, _) =
        get("/v1/projects/listed/exports/latest/download".into(), second).await;
    assert_eq!(status, 302);
    assert!(headers["location"]
        .to_str()
        .unwrap()
        .contains(&format!("exports/listed/{second_export}/")));
    let (status, _, _) = get("/v1/projects/listed/exports/latest".into(), LABELER).await;
    assert_eq!(status, 403, "a labeler is not a manager");

    // The list: newest first, filtered, a page at a time.
    let ids = |json: &serde_json::Value| -> Vec<String> {
        json["exports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, _, json) = get("/v1/projects/listed/exports".into(), MANAGER).await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(
        ids(&json),
        [queued.as_str(), second_export.as_str(), first.as_str()]
    );
    assert!(json["nextCursor"].is_null(), "{json}");
    let (_, _, json) = get("/v1/projects/listed/exports?state=QUEUED".into(), MANAGER).await;
    assert_eq!(ids(&json), [queued.as_str()]);
    let mut seen = Vec::new();
    let mut path = "/v1/projects/listed/exports?limit=1".to_owned();
    loop {
        let (status, _, json) = get(path.clone(), MANAGER).await;
        assert_eq!(status, 200, "{json}");
        seen.extend(ids(&json));
        match json["nextCursor"].as_str() {
            Some(cursor) => path = format!("/v1/projects/listed/exports?limit=1&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(
        seen,
        [queued.as_str(), second_export.as_str(), first.as_str()],
        "pages add up to the list"
    );
    for (query, field) in [
        ("limit=0", "query"),
        ("limit=101", "limit"),
        ("cursor=bm9wZQ", "cursor"),
        ("state=DONE", "query"),
    ] {
        let (status, _, json) = get(format!("/v1/projects/listed/exports?{query}"), MANAGER).await;
        assert_eq!(status, 400, "{query}: {json}");
        if field != "query" {
            assert_eq!(json["parameter"], field, "{query}");
        }
    }
    let (status, _, _) = get("/v1/projects/listed/exports".into(), LABELER).await;
    assert_eq!(status, 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_export_ends_cancelled_with_nothing_left_behind() {
    let stack = Stack::new().await;
    stack
        .seed(&config("stopped", Mode::Classification, 400))
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

#[tokio::test(flavor = "multi_thread")]
async fn an_export_past_its_retention_says_expired_and_its_links_are_gone() {
    let stack = Stack::new().await;
    stack.seed(&config("aged", Mode::Classification, 10)).await;
    let kept = stack.router_with(
        &stack.export_queue,
        labelport_core::api::ApiSettings {
            retention: Some(std::time::Duration::from_secs(30 * 86_400)),
            ..labelport_tests::api_settings()
        },
    );
    let id = request(&stack, "aged", r#"{"format":"CSV"}"#).await;
    run_worker(&stack).await;
    let link = stack
        .links
        .download_link(&id, None, chrono::Utc::now())
        .await
        .unwrap();
    let get = |path: String| {
        let kept = &kept;
        async move {
            let (status, _, json) =
                labelport_tests::call_router(kept, "GET", &path, Some(MANAGER), &[], "").await;
            (status, json)
        }
    };
    let path = link
        .strip_prefix(labelport_tests::API_URL)
        .unwrap()
        .to_owned();
    let (status, _) = get(path.clone()).await;
    assert_eq!(status, 302, "within its retention");
    let (_, json) = get(format!("/v1/exports/{id}")).await;
    assert_eq!(json["state"], "SUCCEEDED");

    // Thirty-one days later.
    let (s3, _) = backends(&stack);
    JobStore::new(s3)
        .update(&id, |job| {
            let mut old = job.clone();
            old.finished_at = Some(chrono::Utc::now() - chrono::Duration::days(31));
            Some(old)
        })
        .await
        .unwrap();
    let (status, json) = get(format!("/v1/exports/{id}")).await;
    assert_eq!(
        (status, json["state"].as_str()),
        (200, Some("EXPIRED")),
        "{json}"
    );
    assert!(json.get("downloadUrl").is_none(), "{json}");
    let (status, json) = get(path).await;
    assert_eq!(
        (status, json["code"].as_str()),
        (410, Some("EXPORT_EXPIRED")),
        "{json}"
    );
    let (status, _) = get("/v1/projects/aged/exports/latest/download".into()).await;
    assert_eq!(status, 410);
    let (_, json) = get("/v1/projects/aged/exports?state=EXPIRED".into()).await;
    assert_eq!(json["exports"][0]["id"], id.as_str(), "{json}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_still_failing_on_the_queues_last_delivery_is_recorded_failed() {
    let stack = Stack::new().await;
    stack
        .seed(&config("gaveup", Mode::Classification, 10))
        .await;
    let port = labelport_tests::RECEIVER_PORTS.start + 3;
    let secret = "whsec_e2e_0123456789";
    let down = Receiver::start(&stack, port, secret, "502");
    let id = request(&stack, "gaveup", &webhook_csv(port, secret)).await;
    run_worker(&stack).await;
    let notify = stack.receive(&stack.notify_queue).await.unwrap();
    assert_eq!(
        stack.notifier.handle_try(&notify, true).await.unwrap(),
        NotifyOutcome::Undeliverable,
        "consumed, not left for the dead-letter queue"
    );
    assert_eq!(down.requests().len(), 2);
    let (_, _, json) = stack.status(&id, MANAGER).await;
    assert_eq!(json["notification"], "FAILED");
    let why = json["deliveryError"].as_str().unwrap();
    assert!(
        why.contains("HTTP 502") && why.contains("last try"),
        "{why}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_request_delivers_by_webhook_and_into_a_customers_bucket_too() {
    use labelport_core::api::DropOutcome;
    let stack = Stack::new().await;
    stack
        .seed(&config("dropped", Mode::Classification, 10))
        .await;
    let port = labelport_tests::RECEIVER_PORTS.start + 4;
    let secret = "whsec_drop_0123456789";
    let receiver = Receiver::start(&stack, port, secret, "200");
    let body: &'static [u8] = Box::leak(webhook_csv(port, secret).into_bytes().into_boxed_slice());
    let DropOutcome::Accepted(id) = stack
        .drop_request(
            "requests/dropped/hook.json",
            MANAGER,
            body,
            "0055AED6DCD90281E5",
        )
        .await
    else {
        panic!("the webhook drop was not accepted")
    };
    run_worker(&stack).await;
    assert_eq!(run_notifier(&stack).await.1, NotifyOutcome::Posted);
    let got = receiver.requests();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["verified"], true);
    assert_eq!(got[0]["event"]["data"]["exportId"], id.as_str());
    let response = stack.get("responses/dropped/hook.json").await.unwrap();
    let record = stack.get(&format!("jobs/{id}.json")).await.unwrap();
    for (what, bytes) in [("response file", &response), ("job record", &record)] {
        assert!(
            !String::from_utf8_lossy(bytes).contains(secret),
            "the secret is in the {what}"
        );
    }

    let customer = format!("{}-drop", stack.bucket);
    stack
        .s3
        .create_bucket()
        .bucket(&customer)
        .send()
        .await
        .unwrap();
    let mut project: labelport_model::Project =
        serde_json::from_slice(&stack.get("projects/dropped/project.json").await.unwrap()).unwrap();
    project.exports.destinations = vec![labelport_model::Destination {
        bucket: customer.clone(),
        path: String::new(),
        role_arn: None,
    }];
    stack.set_manifest(&project).await;
    let body: &'static [u8] = Box::leak(
        format!(
            r#"{{"format":"CSV","delivery":{{"method":"EXTERNAL_OBJECT_STORAGE","bucket":"{customer}","path":"in"}}}}"#
        )
        .into_bytes()
        .into_boxed_slice(),
    );
    let DropOutcome::Accepted(id) = stack
        .drop_request(
            "requests/dropped/bucket.json",
            MANAGER,
            body,
            "0055AED6DCD90281E6",
        )
        .await
    else {
        panic!("the bucket drop was not accepted")
    };
    run_worker(&stack).await;
    let keys = stack.keys_in(&customer, "in/").await;
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys
        .iter()
        .any(|k| k.ends_with(".manifest.json") && k.contains(&id[id.len() - 8..])));
}
