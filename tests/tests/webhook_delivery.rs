//! Delivery by CUSTOM_WEBHOOK, against the AWS emulator and a receiver process: signed
//! as the README says, retried after a 5xx and never after a 4xx, retried by the queue
//! while the receiver does not answer, recorded FAILED on the queue's last delivery,
//! and never sent to an address inside the network.
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
use labelport_tests::{request, run_notifier, run_worker, Stack, MANAGER};

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_is_signed_retried_after_5xx_never_after_4xx_and_never_sent_inside() {
    let stack = Stack::new().await;
    stack
        .seed(&project_config("hooked", Mode::Classification, 20))
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

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_that_does_not_answer_is_retried_by_the_queue_with_every_attempt_recorded() {
    let stack = Stack::new().await;
    stack
        .seed(&project_config("silent", Mode::Classification, 10))
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
async fn a_webhook_still_failing_on_the_queues_last_delivery_is_recorded_failed() {
    let stack = Stack::new().await;
    stack
        .seed(&project_config("gaveup", Mode::Classification, 10))
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
