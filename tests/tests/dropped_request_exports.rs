//! Exports started by a request file dropped under `requests/`, against the AWS
//! emulator: one export per put however often S3 reports it, and delivery by webhook
//! and into a customer's bucket as from the API. Who may drop a file, and what a server
//! error does to a drop, are in `request_drops.rs`.
//!
//! Run by `infra/test.sh`, which starts the emulator: `--features labelport-tests/e2e`.
#![cfg(feature = "e2e")]
#![allow(clippy::unwrap_used)]

use labelport_core::job::JobState;
use labelport_core::notify::NotifyOutcome;
use labelport_core::worker::Outcome;
use labelport_model::Mode;
use labelport_tests::harness::project_config;
use labelport_tests::webhooks::{webhook_csv, Receiver};
use labelport_tests::{run_notifier, run_worker, Stack, MANAGER};

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_request_file_starts_the_same_export_once() {
    let stack = Stack::new().await;
    stack.seed(&project_config("drop", Mode::Entity, 50)).await;
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
async fn a_dropped_request_delivers_by_webhook_and_into_a_customers_bucket_too() {
    use labelport_core::api::DropOutcome;
    let stack = Stack::new().await;
    stack
        .seed(&project_config("dropped", Mode::Classification, 10))
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
