//! Request files dropped under `requests/`: only the deployment's request writers may
//! drop them, every handled file is deleted, and a server error is retried, not written
//! off as a refusal. Against the AWS emulator.
//!
//! Run by `infra/test.sh`, which starts the emulator: `--features labelport-tests/e2e`.
#![cfg(feature = "e2e")]
#![allow(clippy::unwrap_used)]

use labelport_core::api::{DropError, DropOutcome};
use labelport_generate::Config;
use labelport_model::Mode;
use labelport_tests::{Stack, MANAGER, REQUEST_WRITER};

#[tokio::test(flavor = "multi_thread")]
async fn a_file_put_by_anyone_but_a_request_writer_is_refused_and_deleted() {
    let stack = Stack::new().await;
    stack
        .seed(&Config::new("guarded", Mode::Classification, 10, 3))
        .await;
    // Someone in the account with s3:PutObject, acting as a manager by metadata: a
    // webhook to their own receiver, say.
    for (writer, why) in [
        ("AWS:AROAINTRUDEREXAMPLE:someone", "another role"),
        ("AWS:AIDAINTRUDERUSER", "a user"),
        ("", "no principal in the event"),
        (
            &format!("AWS:{REQUEST_WRITER}X:platform") as &str,
            "an id that only starts like the writer's",
        ),
    ] {
        let outcome = stack
            .drop_request_by(
                writer,
                "requests/guarded/sneaky.json",
                MANAGER,
                br#"{"format":"CSV"}"#,
                "0055AED6DCD90281AA",
            )
            .await
            .unwrap();
        let DropOutcome::Refused(e) = &outcome else {
            panic!("{why}: {outcome:?}")
        };
        assert_eq!(
            (e.status.as_u16(), e.code),
            (403, "NOT_A_REQUEST_WRITER"),
            "{why}"
        );
        assert_eq!(
            stack.get("requests/guarded/sneaky.json").await,
            None,
            "{why}: deleted"
        );
        let response: serde_json::Value =
            serde_json::from_slice(&stack.get("responses/guarded/sneaky.json").await.unwrap())
                .unwrap();
        assert_eq!(response["error"]["code"], "NOT_A_REQUEST_WRITER", "{why}");
    }
    assert_eq!(
        stack.receive(&stack.export_queue).await,
        None,
        "no export was queued"
    );
    assert!(
        stack.keys("jobs/").await.is_empty(),
        "no export was created"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_drop_that_meets_a_server_error_is_retried_not_refused() {
    let stack = Stack::new().await;
    stack
        .seed(&Config::new("flaky", Mode::Classification, 10, 3))
        .await;
    // The export queue is unavailable (a queue URL that does not exist).
    let missing_queue = format!("{}-missing", stack.export_queue);
    let api = stack.api_with(&missing_queue, labelport_tests::api_settings());
    let writer = format!("AWS:{REQUEST_WRITER}:platform");
    stack
        .put(
            "requests/flaky/nightly.json",
            br#"{"format":"CSV"}"#.to_vec(),
        )
        .await;
    let put_with_requester = || async {
        stack
            .s3
            .copy_object()
            .bucket(&stack.bucket)
            .key("requests/flaky/nightly.json")
            .copy_source(format!("{}/requests/flaky/nightly.json", stack.bucket))
            .metadata("requested-by", MANAGER)
            .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
            .send()
            .await
            .unwrap();
    };
    put_with_requester().await;
    let error = api
        .accept_dropped_request("requests/flaky/nightly.json", "0055AED6DCD90281BB", &writer)
        .await
        .unwrap_err();
    assert!(matches!(error, DropError::Unavailable(_)), "{error:?}");
    assert!(
        stack.get("requests/flaky/nightly.json").await.is_some(),
        "the file stays for Lambda's retry"
    );
    assert_eq!(
        stack.get("responses/flaky/nightly.json").await,
        None,
        "no refusal was written"
    );

    // Lambda's retry, with the queue back, queues the same export once.
    let retried = stack
        .api
        .accept_dropped_request("requests/flaky/nightly.json", "0055AED6DCD90281BB", &writer)
        .await
        .unwrap();
    let DropOutcome::Accepted(id) = retried else {
        panic!("{retried:?}")
    };
    let queued: serde_json::Value =
        serde_json::from_str(&stack.receive(&stack.export_queue).await.unwrap_or_default())
            .unwrap();
    assert_eq!(queued["exportId"], serde_json::json!(id));
    assert!(queued["correlationId"].is_string(), "{queued}");
    assert_eq!(stack.get("requests/flaky/nightly.json").await, None);
}
