//! Two tenants on one deployment: a project delivers only into the buckets its settings
//! list, a customer role is assumed with its own tenant's external id (never one a request
//! names), and nothing one tenant asks for reaches the other's bucket, through the API or
//! a dropped request file. Against the AWS emulator.
//!
//! Run by `infra/test.sh`, which starts the emulator: `--features labelport-tests/e2e`.
#![cfg(feature = "e2e")]
#![allow(clippy::unwrap_used)]

use labelport_core::api::DropOutcome;
use labelport_core::job::JobState;
use labelport_core::worker::Outcome;
use labelport_generate::Config;
use labelport_model::{Destination, Mode};
use labelport_tests::{run_worker, Stack, MANAGER};

const ACME_ROLE: &str = "arn:aws:iam::210987654321:role/acme-writer";
const GLOBEX_ROLE: &str = "arn:aws:iam::310987654321:role/globex-writer";

/// Projects `acme-a`, `acme-b` (tenant acme) and `globex` (tenant globex), each listing
/// its tenant's buckets; returns acme's and globex's bucket.
async fn two_tenants(stack: &Stack) -> (String, String) {
    let acme_bucket = format!("{}-acme", stack.bucket);
    let globex_bucket = format!("{}-globex", stack.bucket);
    for bucket in [&acme_bucket, &globex_bucket] {
        stack
            .s3
            .create_bucket()
            .bucket(bucket)
            .send()
            .await
            .unwrap();
    }
    for (project, tenant, bucket, role) in [
        ("acme-a", "acme", &acme_bucket, ACME_ROLE),
        ("acme-b", "acme", &acme_bucket, ACME_ROLE),
        ("globex", "globex", &globex_bucket, GLOBEX_ROLE),
    ] {
        let cfg = Config::new(project, Mode::Classification, 12, 5);
        stack.seed(&cfg).await;
        let mut manifest = labelport_generate::project(&cfg);
        manifest.exports.tenant = Some(tenant.into());
        manifest.exports.destinations = vec![
            // Through the bucket's policy, into its ingest folder.
            Destination {
                bucket: bucket.clone(),
                path: "ingest".into(),
                role_arn: None,
            },
            // Through the customer's role, into its exports folder.
            Destination {
                bucket: bucket.clone(),
                path: "exports".into(),
                role_arn: Some(role.into()),
            },
        ];
        stack.set_manifest(&manifest).await;
    }
    (acme_bucket, globex_bucket)
}

async fn post(stack: &Stack, project: &str, delivery: &str) -> (u16, serde_json::Value) {
    let body = format!(r#"{{"format":"CSV","delivery":{delivery}}}"#);
    let (status, _, json) = stack
        .call(
            "POST",
            &format!("/v1/projects/{project}/exports"),
            Some(MANAGER),
            &[],
            &body,
        )
        .await;
    (status, json)
}

async fn identity(stack: &Stack, project: &str) -> serde_json::Value {
    let (status, _, json) = stack
        .call(
            "GET",
            &format!("/v1/projects/{project}/delivery-identity"),
            Some(MANAGER),
            &[],
            "",
        )
        .await;
    assert_eq!(status, 200, "{json}");
    json
}

#[tokio::test(flavor = "multi_thread")]
async fn one_tenant_never_reaches_the_others_bucket_or_role() {
    let stack = Stack::new().await;
    let (acme_bucket, globex_bucket) = two_tenants(&stack).await;

    for (delivery, pointer, why) in [
        (
            format!(
                r#"{{"method":"EXTERNAL_OBJECT_STORAGE","bucket":"{globex_bucket}","path":"ingest"}}"#
            ),
            "/delivery/bucket",
            "not a destination of project acme-a",
        ),
        (
            format!(
                r#"{{"method":"EXTERNAL_OBJECT_STORAGE","bucket":"{globex_bucket}","path":"exports","roleArn":"{GLOBEX_ROLE}"}}"#
            ),
            "/delivery/bucket",
            "not a destination of project acme-a",
        ),
        (
            format!(
                r#"{{"method":"EXTERNAL_OBJECT_STORAGE","bucket":"{acme_bucket}","path":"exports","roleArn":"{GLOBEX_ROLE}"}}"#
            ),
            "/delivery/roleArn",
            "not the role",
        ),
        (
            format!(
                r#"{{"method":"EXTERNAL_OBJECT_STORAGE","bucket":"{acme_bucket}","path":"exports","roleArn":"{ACME_ROLE}","externalId":"labelport-globex"}}"#
            ),
            "/delivery/externalId",
            "issued by the platform",
        ),
        (
            format!(
                r#"{{"method":"EXTERNAL_OBJECT_STORAGE","bucket":"{acme_bucket}","path":"elsewhere"}}"#
            ),
            "/delivery/path",
            "outside the folders",
        ),
    ] {
        let (status, json) = post(&stack, "acme-a", &delivery).await;
        assert_eq!(status, 400, "{delivery}: {json}");
        assert_eq!(json["pointer"], pointer, "{delivery}: {json}");
        assert!(json["detail"].as_str().unwrap().contains(why), "{json}");
    }
    assert!(
        stack.keys_in(&globex_bucket, "").await.is_empty(),
        "not even an access probe reached globex's bucket"
    );

    // The same refusal through a dropped request file.
    let body: &'static [u8] = Box::leak(
        format!(r#"{{"format":"CSV","delivery":{{"method":"EXTERNAL_OBJECT_STORAGE","bucket":"{globex_bucket}"}}}}"#)
            .into_bytes()
            .into_boxed_slice(),
    );
    let refused = stack
        .drop_request(
            "requests/acme-a/steal.json",
            MANAGER,
            body,
            "0055AED6DCD90281CC",
        )
        .await;
    let DropOutcome::Refused(e) = &refused else {
        panic!("{refused:?}")
    };
    assert_eq!(e.problem().pointer.as_deref(), Some("/delivery/bucket"));

    // Each tenant's external id is its own, shared by its projects, and is the one its
    // exports are written with.
    let (a, b, g) = (
        identity(&stack, "acme-a").await,
        identity(&stack, "acme-b").await,
        identity(&stack, "globex").await,
    );
    assert_eq!(a["externalId"], b["externalId"], "one id per tenant");
    assert_ne!(a["externalId"], g["externalId"], "tenants' ids differ");
    assert!(a["externalId"].as_str().unwrap().starts_with("labelport-"));
    assert_eq!(a["principals"].as_array().unwrap().len(), 2, "{a}");

    let (status, accepted) = post(
        &stack,
        "acme-a",
        r#"{"method":"EXTERNAL_OBJECT_STORAGE","bucket":"BUCKET","path":"exports/nightly"}"#
            .replace("BUCKET", &acme_bucket)
            .as_str(),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    let (_, _, status_json) = stack
        .status(accepted["id"].as_str().unwrap(), MANAGER)
        .await;
    let delivery = &status_json["request"]["delivery"];
    assert_eq!(delivery["roleArn"], ACME_ROLE, "the destination's role");
    assert_eq!(delivery["externalId"], a["externalId"], "acme's own id");
    assert_eq!(
        run_worker(&stack).await.1,
        Outcome::Ran(JobState::Succeeded)
    );

    // Through the bucket's policy, into acme's ingest folder: lands there, nowhere else.
    let (status, accepted) = post(
        &stack,
        "acme-b",
        &format!(r#"{{"method":"EXTERNAL_OBJECT_STORAGE","bucket":"{acme_bucket}","path":"ingest/2026"}}"#),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(
        run_worker(&stack).await.1,
        Outcome::Ran(JobState::Succeeded)
    );
    let acme_keys = stack.keys_in(&acme_bucket, "").await;
    assert_eq!(
        acme_keys
            .iter()
            .filter(|k| k.starts_with("exports/nightly/acme-a-csv-"))
            .count(),
        2,
        "{acme_keys:?}"
    );
    assert_eq!(
        acme_keys
            .iter()
            .filter(|k| k.starts_with("ingest/2026/acme-b-csv-"))
            .count(),
        2,
        "{acme_keys:?}"
    );
    assert!(stack.keys_in(&globex_bucket, "").await.is_empty());
}

/// Customers' buckets that cannot be opened, with the words an SDK error carries.
struct Unreachable;

const SDK_WORDS: &str = "AccessDenied: User: arn:aws:sts::111122223333:assumed-role/labelport-export-worker/i-0abc is not authorized; request id 4442587FB7D0A2F9";

#[async_trait::async_trait]
impl labelport_core::ports::Buckets for Unreachable {
    async fn open(
        &self,
        _target: &labelport_core::ports::BucketTarget,
    ) -> Result<
        std::sync::Arc<dyn labelport_core::ports::ObjectStore>,
        labelport_core::ports::BoxError,
    > {
        Err(SDK_WORDS.into())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bucket_that_cannot_be_opened_is_retried_and_the_sdks_words_stay_in_the_log() {
    let stack = Stack::new().await;
    let (acme_bucket, _) = two_tenants(&stack).await;
    let (status, accepted) = post(
        &stack,
        "acme-a",
        &format!(
            r#"{{"method":"EXTERNAL_OBJECT_STORAGE","bucket":"{acme_bucket}","path":"ingest"}}"#
        ),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["id"].as_str().unwrap();
    let body = stack.receive(&stack.export_queue).await.unwrap();
    let store = std::sync::Arc::new(labelport_aws::S3Store::new(stack.s3.clone(), &stack.bucket));
    let worker = labelport_core::worker::Worker::new(
        store.clone(),
        store,
        std::sync::Arc::new(labelport_aws::SqsQueue::new(
            stack.sqs.clone(),
            &stack.notify_queue,
        )),
        labelport_core::worker::WorkerSettings::default(),
    )
    .with_buckets(std::sync::Arc::new(Unreachable));
    let error = worker.handle(&body).await.unwrap_err();
    assert!(
        matches!(error, labelport_core::worker::WorkerError::Retry { .. }),
        "{error:?}"
    );
    let (_, _, json) = stack.status(id, MANAGER).await;
    assert_eq!(json["state"], "QUEUED", "back for the retry: {json}");
    assert_eq!(json["error"]["code"], "DESTINATION_UNAVAILABLE", "{json}");
    let said = json.to_string();
    for word in ["AccessDenied", "arn:aws:sts", "4442587FB7D0A2F9"] {
        assert!(!said.contains(word), "the status carries {word}: {said}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_at_its_cap_waits_while_other_tenants_export() {
    let stack = Stack::new().await;
    two_tenants(&stack).await;
    let capped = stack.router_with(
        &stack.export_queue,
        labelport_core::api::ApiSettings {
            max_active_per_tenant: 2,
            ..labelport_tests::api_settings()
        },
    );
    let post = |project: &'static str| {
        let capped = &capped;
        async move {
            labelport_tests::call_router(
                capped,
                "POST",
                &format!("/v1/projects/{project}/exports"),
                Some(MANAGER),
                &[],
                r#"{"format":"CSV"}"#,
            )
            .await
        }
    };
    assert_eq!(post("acme-a").await.0, 202);
    assert_eq!(post("acme-b").await.0, 202);
    // acme's two projects hold its two places; each is far from its own project limit.
    let (status, headers, json) = post("acme-a").await;
    assert_eq!(status, 429, "{json}");
    assert_eq!(json["code"], "TOO_MANY_EXPORTS");
    assert_eq!(headers["retry-after"], "60");
    assert!(
        json["detail"]
            .as_str()
            .unwrap()
            .contains("your organisation"),
        "{json}"
    );
    // Another tenant is not held back by acme.
    assert_eq!(post("globex").await.0, 202);
    // One of acme's ends: a place is free again.
    assert_eq!(
        run_worker(&stack).await.1,
        Outcome::Ran(JobState::Succeeded)
    );
    assert_eq!(post("acme-b").await.0, 202);
    assert_eq!(post("acme-b").await.0, 429);
}
