//! Requests to the API against the AWS emulator: the OpenAPI document, refused requests
//! and the problem details that say why, who may export, idempotency keys, the
//! per-project limit, and an export whose message cannot be queued.
//!
//! Run by `infra/test.sh`, which starts the emulator: `--features labelport-tests/e2e`.
#![cfg(feature = "e2e")]
#![allow(clippy::unwrap_used)]

use labelport_core::job::{JobState, JobStore};
use labelport_core::worker::Outcome;
use labelport_model::{Mode, ProjectState};
use labelport_tests::harness::{post_through, project_config};
use labelport_tests::{request, run_worker, Stack, LABELER, MANAGER};
use std::sync::Arc;

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
    stack
        .seed(&project_config("p", Mode::Classification, 10))
        .await;
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
    stack
        .seed(&project_config("p", Mode::Classification, 10))
        .await;
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

    let mut project = labelport_generate::project(&project_config("p", Mode::Classification, 10));
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
    stack
        .seed(&project_config("p", Mode::Classification, 10))
        .await;
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
async fn outsiders_get_404_and_a_body_that_is_not_json_gets_415() {
    let stack = Stack::new().await;
    stack
        .seed(&project_config("private", Mode::Classification, 10))
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
async fn an_unverified_address_is_not_the_member_it_names() {
    use tower::ServiceExt;
    let stack = Stack::new().await;
    stack
        .seed(&project_config("verified", Mode::Classification, 10))
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
async fn an_export_that_cannot_be_queued_never_waits_forever() {
    let stack = Stack::new().await;
    stack
        .seed(&project_config("unqueued", Mode::Classification, 10))
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

#[tokio::test(flavor = "multi_thread")]
async fn a_project_at_its_limit_gets_429_with_retry_after_until_an_export_ends() {
    let stack = Stack::new().await;
    stack
        .seed(&project_config("busy", Mode::Classification, 10))
        .await;
    stack
        .seed(&project_config("quiet", Mode::Classification, 10))
        .await;
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
