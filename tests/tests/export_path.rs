//! The export path end to end against the AWS emulator: API router → SQS → worker →
//! S3 multipart upload → SQS → notifier → SES, through the real AWS SDK adapters. Each
//! part's own cases are in the files beside this one, one concern a file.
//!
//! Run by `infra/test.sh`, which starts the emulator: `--features labelport-tests/e2e`.
#![cfg(feature = "e2e")]
#![allow(clippy::unwrap_used)]

use labelport_core::job::{JobState, JobStore};
use labelport_core::notify::NotifyOutcome;
use labelport_core::worker::Outcome;
use labelport_generate::SourceCompression;
use labelport_model::Mode;
use labelport_tests::harness::project_config;
use labelport_tests::{python, request, run_notifier, run_worker, sent_emails, Stack, MANAGER};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread")]
async fn csv_export_by_email_from_request_to_download() {
    let stack = Stack::new().await;
    let mut cfg = project_config("campaign", Mode::Classification, 3000);
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
    let project_dir = stack
        .seed(&project_config("vision", Mode::Element, 2000))
        .await;
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
