//! Which exports a project has, against the AWS emulator: listed newest first, the
//! latest for any manager, a new one replacing the old (whose files the sweep deletes
//! after a grace period), and an export past its retention expired with its links.
//!
//! Run by `infra/test.sh`, which starts the emulator: `--features labelport-tests/e2e`.
#![cfg(feature = "e2e")]
#![allow(clippy::unwrap_used)]

use labelport_core::job::JobStore;
use labelport_model::Mode;
use labelport_tests::harness::{backends, project_config};
use labelport_tests::{request, run_worker, Stack, LABELER, MANAGER};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread")]
async fn exports_are_listed_newest_first_the_latest_is_any_managers_and_a_new_one_replaces_the_old()
{
    let stack = Stack::new().await;
    let cfg = project_config("listed", Mode::Classification, 20);
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
async fn an_export_past_its_retention_says_expired_and_its_links_are_gone() {
    let stack = Stack::new().await;
    stack
        .seed(&project_config("aged", Mode::Classification, 10))
        .await;
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
