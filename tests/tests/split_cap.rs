//! NDJSON_SPLIT's cap on parts, end to end against the AWS emulator: an export that
//! would start part 1,001 fails with a reason a person can act on, and leaves no part
//! behind, instead of a status too large for Lambda's response.
//!
//! Run by `infra/test.sh`, which starts the emulator: `--features labelport-tests/e2e`.
#![cfg(feature = "e2e")]
#![allow(clippy::unwrap_used)]

use labelport_core::job::JobState;
use labelport_core::notify::NotifyOutcome;
use labelport_core::worker::Outcome;
use labelport_encoders::MAX_PARTS;
use labelport_generate::Config;
use labelport_model::Mode;
use labelport_tests::{request, run_notifier, run_worker, Stack, MANAGER};

#[tokio::test(flavor = "multi_thread")]
async fn a_split_export_of_one_task_per_part_over_1200_tasks_fails_naming_the_options() {
    let stack = Stack::new().await;
    let mut config = Config::new("many", Mode::Classification, 1_200, 3);
    config.tasks_per_file = 401;
    stack.seed(&config).await;

    // Every stage, so that every task but the previews is exported: over 1,000 parts.
    let id = request(
        &stack,
        "many",
        r#"{"format":"NDJSON_SPLIT","split":{"maxTasksPerFile":1},"filters":{"stages":["Label","Review","Complete"]}}"#,
    )
    .await;
    assert_eq!(run_worker(&stack).await.1, Outcome::Ran(JobState::Failed));
    let (_, _, json) = stack.status(&id, MANAGER).await;
    assert_eq!(json["state"], "FAILED", "{json}");
    assert_eq!(json["error"]["code"], "OUTPUT_LIMIT", "{json}");
    assert_eq!(
        json["error"]["message"],
        format!(
            "NDJSON_SPLIT would write more than {MAX_PARTS} parts; raise split.maxTasksPerFile \
             (now 1) or split.maxFileBytes (now 100000000), or export fewer tasks"
        ),
        "{json}"
    );
    assert!(
        stack.keys("exports/").await.is_empty(),
        "none of the 1,000 parts written is visible"
    );
    assert_eq!(
        stack.open_multipart_uploads().await,
        0,
        "every part's upload was aborted"
    );
    assert_eq!(run_notifier(&stack).await.1, NotifyOutcome::MarkedAvailable);

    // The advice works: 2 tasks per part fit in 1,000 parts.
    let id = request(
        &stack,
        "many",
        r#"{"format":"NDJSON_SPLIT","split":{"maxTasksPerFile":2},"filters":{"stages":["Label","Review","Complete"]}}"#,
    )
    .await;
    assert_eq!(
        run_worker(&stack).await.1,
        Outcome::Ran(JobState::Succeeded)
    );
    let (_, _, json) = stack.status(&id, MANAGER).await;
    let exported = json["progress"]["tasksExported"].as_u64().unwrap();
    assert!(
        exported > MAX_PARTS,
        "{exported} tasks: the first export needed more parts"
    );
    let parts = exported.div_ceil(2);
    assert_eq!(json["result"]["filesTotal"].as_u64(), Some(parts), "{json}");
    // The status lists 100 files at a time, each with its link, and pages to the rest.
    let mut names = Vec::new();
    let mut path = format!("/v1/exports/{id}");
    loop {
        let (status, _, page) = stack.call("GET", &path, Some(MANAGER), &[], "").await;
        assert_eq!(status, 200, "{page}");
        assert!(
            page.to_string().len() < 200_000,
            "a status page stays small: {} bytes",
            page.to_string().len()
        );
        let files = page["result"]["files"].as_array().unwrap();
        assert!(files.len() <= 100);
        names.extend(files.iter().map(|f| f["name"].as_str().unwrap().to_owned()));
        match page["result"]["nextFilesFrom"].as_u64() {
            Some(next) => path = format!("/v1/exports/{id}?filesFrom={next}"),
            None => break,
        }
    }
    assert_eq!(names.len() as u64, parts);
    names.dedup();
    assert_eq!(names.len() as u64, parts, "pages neither repeat nor skip");
    // The job record holds the file list once, not again inside the manifest.
    let record = stack.get(&format!("jobs/{id}.json")).await.unwrap();
    let record: serde_json::Value = serde_json::from_slice(&record).unwrap();
    assert!(record["result"]["manifest"].get("files").is_none());
    let (status, _, json) = stack
        .call(
            "GET",
            &format!("/v1/exports/{id}?filesFrom=x"),
            Some(MANAGER),
            &[],
            "",
        )
        .await;
    assert_eq!(status, 400, "{json}");
}
