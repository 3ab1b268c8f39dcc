//! Callers that are services: a client-credentials token (no e-mail; its `sub` is its
//! `client_id`) acts as the project's `services` entry for that client, with that role.
//! Against the AWS emulator, through the API Gateway claims adapter.
//!
//! Run by `infra/test.sh`, which starts the emulator: `--features labelport-tests/e2e`.
#![cfg(feature = "e2e")]
#![allow(clippy::unwrap_used)]

use labelport_core::job::JobState;
use labelport_core::worker::Outcome;
use labelport_generate::Config;
use labelport_model::{Mode, Role, Service};
use labelport_tests::{call_router_as, claims_with, run_worker, Stack};

/// The claims of a Cognito client-credentials access token.
fn service_token(client_id: &str) -> lambda_http::request::RequestContext {
    claims_with(&[
        ("sub", client_id),
        ("client_id", client_id),
        ("token_use", "access"),
        ("scope", "labelport/exports"),
    ])
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_exports_with_its_own_token_as_the_role_the_project_gives_it() {
    let stack = Stack::new().await;
    let cfg = Config::new("synced", Mode::Classification, 20, 3);
    stack.seed(&cfg).await;
    let mut project = labelport_generate::project(&cfg);
    project.services = vec![
        Service {
            client_id: "nightly-sync".into(),
            role: Role::Manager,
        },
        Service {
            client_id: "dashboard".into(),
            role: Role::Reviewer,
        },
    ];
    stack.set_manifest(&project).await;
    let call = |context, method: &'static str, path: String, body: &'static str| {
        let stack = &stack;
        async move { call_router_as(&stack.router, method, &path, Some(context), &[], body).await }
    };
    let create = "/v1/projects/synced/exports".to_owned();

    let (status, _, accepted) = call(
        service_token("nightly-sync"),
        "POST",
        create.clone(),
        r#"{"format":"CSV"}"#,
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["id"].as_str().unwrap().to_owned();
    assert_eq!(
        run_worker(&stack).await.1,
        Outcome::Ran(JobState::Succeeded)
    );
    let (status, _, json) = call(
        service_token("nightly-sync"),
        "GET",
        format!("/v1/exports/{id}"),
        "",
    )
    .await;
    assert_eq!(
        (status, json["state"].as_str()),
        (200, Some("SUCCEEDED")),
        "{json}"
    );
    assert_eq!(json["requestedBy"], "service:nightly-sync");

    // A service has no address: an e-mail needs its recipients named.
    let (status, _, json) = call(
        service_token("nightly-sync"),
        "POST",
        create.clone(),
        r#"{"format":"CSV","delivery":{"method":"EMAIL"}}"#,
    )
    .await;
    assert_eq!(
        (status, json["pointer"].as_str()),
        (400, Some("/delivery/recipients")),
        "{json}"
    );

    // A service with a lesser role, one the project does not list, and a person's
    // access token from the same app (no e-mail; its subject is the person, not the
    // client) do not get in.
    let persons_access_token = claims_with(&[
        ("sub", "3f1c2b9a-user"),
        ("client_id", "nightly-sync"),
        ("token_use", "access"),
        ("username", "alice"),
    ]);
    for (token, (refused_status, code)) in [
        (service_token("dashboard"), (403, "FORBIDDEN")),
        (service_token("someone-else"), (404, "PROJECT_NOT_FOUND")),
        (persons_access_token, (401, "UNAUTHENTICATED")),
    ] {
        let (status, _, json) = call(token, "POST", create.clone(), r#"{"format":"CSV"}"#).await;
        assert_eq!(
            (status, json["code"].as_str()),
            (refused_status, Some(code)),
            "{json}"
        );
        if status == 401 {
            assert!(
                json["detail"].as_str().unwrap().contains("not a service's"),
                "{json}"
            );
        }
    }
}
