//! Delivery by EXTERNAL_OBJECT_STORAGE, against the AWS emulator: into the customer's
//! bucket through their role and the tenant's external id, encrypted with their key,
//! the manifest last; a listed bucket that does not exist is refused at request time.
//!
//! Run by `infra/test.sh`, which starts the emulator: `--features labelport-tests/e2e`.
#![cfg(feature = "e2e")]
#![allow(clippy::unwrap_used)]

use labelport_core::job::JobState;
use labelport_core::notify::NotifyOutcome;
use labelport_core::worker::Outcome;
use labelport_model::Mode;
use labelport_tests::harness::project_config;
use labelport_tests::{run_notifier, run_worker, Stack, MANAGER};

#[tokio::test(flavor = "multi_thread")]
async fn an_export_lands_in_the_customers_bucket_through_their_role_manifest_last() {
    let stack = Stack::new().await;
    let cfg = project_config("theirs", Mode::Classification, 30);
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
