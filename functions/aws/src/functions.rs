//! Each function's backends, built once at cold start from its environment.
//!
//! | variable | used by | meaning |
//! | --- | --- | --- |
//! | `PLATFORM_BUCKET` | all | projects, job records, request drops, exports |
//! | `EXPORT_QUEUE_URL` | api | where accepted exports are queued |
//! | `NOTIFY_QUEUE_URL` | worker | where ended exports are announced |
//! | `PUBLIC_API_URL` | api, notifier | base of links in responses and e-mails |
//! | `SENDER_EMAIL` | notifier | the SES-verified sender |
//! | `METRICS_NAMESPACE` | all | CloudWatch namespace of the embedded-metric-format metrics (`labelport`) |
//! | `SOURCE_QUEUE_URL` | worker, notifier | the queue the function consumes: failed messages come back after a backoff (30 s doubling to 15 min) |
//! | `EXPORTS_PREFIX` | worker, api | folder of exports in the bucket (`exports`) |
//! | `DOWNLOAD_TTL_SECONDS` | api | life of a presigned download URL (300) |
//! | `WORKER_LEASE_SECONDS` | worker | age at which a RUNNING job counts as abandoned (960: the 900 s timeout and a minute) |
//! | `EMAIL_CLAIM` | api | JWT claim holding the caller's e-mail (`email`) |
//! | `MAX_ACTIVE_EXPORTS_PER_PROJECT` | api | queued or running exports a project may have before a request is a 429 (10; 0: no limit) |
//! | `MAX_ACTIVE_EXPORTS_PER_TENANT` | api | queued or running exports a tenant's projects may have together before a request is a 429 (50; 0: no limit) |
//! | `STALE_QUEUED_MINUTES` | worker (sweep) | a job QUEUED this long is failed `NOT_STARTED` (360) |
//! | `STALE_RUNNING_MINUTES` | worker (sweep) | a job whose attempt started this long ago is failed `ABANDONED` (120) |
//! | `LINK_KEYS_SECRET` | api, notifier | Secrets Manager secret (name or ARN) whose AWSCURRENT key signs download links and whose AWSPREVIOUS key still verifies them |
//! | `DOWNLOAD_LINK_DAYS` | api, notifier | life of a signed download link (7) |
//! | `EMAIL_ALLOW_LIST` | api | comma-separated addresses and `@domains` that may receive exports besides project members (empty) |
//! | `WEBHOOK_ALLOW_HOSTS` | api, notifier | test only: comma-separated `host:port` pairs a webhook may reach over http or at a private address (empty) |
//! | `EXPORT_RETENTION_DAYS` | api | days an export's files are kept (the bucket's lifecycle rule); after it the status says EXPIRED and downloads are 410 (0: kept) |
//! | `NOTIFY_MAX_RECEIVES` | notifier | the notify queue's `maxReceiveCount` (5): on that delivery a failing announcement is recorded FAILED |
//! | `EXTERNAL_ID_SECRET` | api | Secrets Manager secret (name or ARN) whose AWSCURRENT key derives each tenant's external id; never rotate it |
//! | `DELIVERY_PRINCIPALS` | api | comma-separated ARNs of the roles that write into customers' buckets, shown for their trust and bucket policies |
//! | `REQUEST_WRITER_IDS` | api | comma-separated unique ids (`AROA...`) of the roles that may drop request files; a file anyone else put is refused (empty: no drops) |
//! | `SERVICE_CLAIM` | api | claim naming the OAuth client of a client-credentials token (`client_id`); a token without an e-mail whose `sub` is that client is the project's `services` entry (empty: no services) |
//! | `EMAIL_VERIFIED_CLAIM` | api | claim that must be `true` for the e-mail to count (`email_verified`; empty: the IdP only issues verified addresses) |

use crate::buckets::CustomerBuckets;
use crate::config::{self, minutes, number, optional, required, seconds, ConfigError};
use crate::secrets::SecretsManagerLinkKeys;
use crate::{ApiGatewayClaims, S3Store, SesMailer, SqsQueue};
use labelport_core::api::{Api, ApiSettings};
use labelport_core::delivery::{Backends, DeliveryPolicy};
use labelport_core::links::LinkSigner;
use labelport_core::notify::{Notifier, NotifierSettings};
use labelport_core::outbound::OutboundPolicy;
use labelport_core::seal::Sealer;
use labelport_core::sweep::{SweepSettings, Sweeper};
use labelport_core::tenancy::ExternalIds;
use labelport_core::worker::{Worker, WorkerSettings};
use std::sync::Arc;
use std::time::Duration;

/// The platform bucket, `PLATFORM_BUCKET`.
fn platform_store(aws: &aws_config::SdkConfig) -> Result<Arc<S3Store>, ConfigError> {
    Ok(Arc::new(S3Store::new(
        config::s3_client(aws),
        required("PLATFORM_BUCKET")?,
    )))
}

/// The queue whose URL is in `variable`.
fn queue_at(
    aws: &aws_config::SdkConfig,
    variable: &'static str,
) -> Result<Arc<SqsQueue>, ConfigError> {
    Ok(Arc::new(SqsQueue::new(
        aws_sdk_sqs::Client::new(aws),
        required(variable)?,
    )))
}

/// The export-api function's API.
pub async fn api() -> Result<Arc<Api>, ConfigError> {
    let aws = config::aws().await;
    let store = platform_store(&aws)?;
    let queue = queue_at(&aws, "EXPORT_QUEUE_URL")?;
    let verified_claim = optional("EMAIL_VERIFIED_CLAIM", "email_verified");
    let service_claim = optional("SERVICE_CLAIM", "client_id");
    let auth = Arc::new(ApiGatewayClaims {
        email_claim: optional("EMAIL_CLAIM", "email"),
        verified_claim: (!verified_claim.is_empty()).then_some(verified_claim),
        service_claim: (!service_claim.is_empty()).then_some(service_claim),
    });
    let settings = ApiSettings {
        public_url: required("PUBLIC_API_URL")?,
        download_ttl: seconds("DOWNLOAD_TTL_SECONDS", 300)?,
        exports_prefix: optional("EXPORTS_PREFIX", "exports"),
        max_active_per_project: number("MAX_ACTIVE_EXPORTS_PER_PROJECT", 10)?,
        max_active_per_tenant: number("MAX_ACTIVE_EXPORTS_PER_TENANT", 50)?,
        retention: match number("EXPORT_RETENTION_DAYS", 0)? {
            0 => None,
            days => Some(Duration::from_secs(u64::from(days) * 86_400)),
        },
        request_writers: list("REQUEST_WRITER_IDS"),
        delivery_principals: list("DELIVERY_PRINCIPALS"),
        delivery: DeliveryPolicy {
            email_allow_list: list("EMAIL_ALLOW_LIST"),
            outbound: outbound(),
            own_buckets: vec![required("PLATFORM_BUCKET")?],
        },
    };
    let links = link_signer(&aws, &settings.public_url)?;
    let external_ids = Arc::new(ExternalIds::new(Arc::new(SecretsManagerLinkKeys::new(
        aws_sdk_secretsmanager::Client::new(&aws),
        required("EXTERNAL_ID_SECRET")?,
    ))));
    Ok(Arc::new(
        Api::new(store.clone(), queue, store, auth, links, settings)
            .with_buckets(Arc::new(CustomerBuckets::new(aws.clone())))
            .with_external_ids(external_ids),
    ))
}

/// A comma-separated list.
fn list(name: &'static str) -> Vec<String> {
    optional(name, "")
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Where webhooks may go: public https addresses, plus the test-only exemptions.
fn outbound() -> OutboundPolicy {
    let allow_hosts = list("WEBHOOK_ALLOW_HOSTS");
    if !allow_hosts.is_empty() {
        tracing::warn!(?allow_hosts, "WEBHOOK_ALLOW_HOSTS is set: webhooks may reach these private or plain-http addresses; this is for tests only");
    }
    OutboundPolicy::new(allow_hosts)
}

/// Signs download links with the keys in `LINK_KEYS_SECRET`.
fn link_signer(aws: &aws_config::SdkConfig, api_url: &str) -> Result<Arc<LinkSigner>, ConfigError> {
    let keys = Arc::new(SecretsManagerLinkKeys::new(
        aws_sdk_secretsmanager::Client::new(aws),
        required("LINK_KEYS_SECRET")?,
    ));
    let days = number("DOWNLOAD_LINK_DAYS", 7)?;
    Ok(Arc::new(LinkSigner::new(
        keys,
        api_url,
        Duration::from_secs(u64::from(days) * 86_400),
    )))
}

/// The retry backoff of a queue consumer: its own queue, `SOURCE_QUEUE_URL`. Without it
/// a failed message waits out the queue's visibility timeout.
pub async fn backoff() -> Option<crate::lambda::Backoff> {
    let queue_url = optional("SOURCE_QUEUE_URL", "");
    if queue_url.is_empty() {
        tracing::warn!(
            "SOURCE_QUEUE_URL is not set: failed messages wait out the visibility timeout"
        );
        return None;
    }
    let aws = config::aws().await;
    Some(crate::lambda::Backoff {
        sqs: aws_sdk_sqs::Client::new(&aws),
        queue_url,
        base: Duration::from_secs(30),
        max: Duration::from_secs(15 * 60),
    })
}

/// The functions' metrics: embedded-metric-format lines under `METRICS_NAMESPACE`.
pub fn metrics() -> Arc<crate::metrics::EmfMetrics> {
    Arc::new(crate::metrics::EmfMetrics::new(optional(
        "METRICS_NAMESPACE",
        "labelport",
    )))
}

/// The export-worker function's worker.
pub async fn worker() -> Result<Worker, ConfigError> {
    let aws = config::aws().await;
    let store = platform_store(&aws)?;
    let notify = queue_at(&aws, "NOTIFY_QUEUE_URL")?;
    let settings = WorkerSettings {
        exports_prefix: optional("EXPORTS_PREFIX", "exports"),
        lease: seconds("WORKER_LEASE_SECONDS", 960)?,
        ..WorkerSettings::default()
    };
    Ok(Worker::new(store.clone(), store, notify, settings)
        .with_metrics(metrics())
        .with_buckets(Arc::new(CustomerBuckets::new(aws.clone()))))
}

/// The export-worker function's sweeper, run by its schedule.
pub async fn sweeper() -> Result<Sweeper, ConfigError> {
    let aws = config::aws().await;
    let store = platform_store(&aws)?;
    let notify = queue_at(&aws, "NOTIFY_QUEUE_URL")?;
    let settings = SweepSettings {
        queued_for: minutes("STALE_QUEUED_MINUTES", 360)?,
        running_for: minutes("STALE_RUNNING_MINUTES", 120)?,
    };
    Ok(Sweeper::new(store, notify, settings))
}

/// How many times the notify queue delivers a message before its DLQ
/// (`NOTIFY_MAX_RECEIVES`, the queue's `maxReceiveCount`): the last try records a
/// delivery that still fails as failed.
pub fn notify_receives() -> Result<u32, ConfigError> {
    number("NOTIFY_MAX_RECEIVES", 5)
}

/// The export-notifier function's notifier.
pub async fn notifier() -> Result<Notifier, ConfigError> {
    let aws = config::aws().await;
    let store = platform_store(&aws)?;
    let mailer = Arc::new(SesMailer::new(
        aws_sdk_ses::Client::new(&aws),
        required("SENDER_EMAIL")?,
    ));
    let settings = NotifierSettings {
        api_url: required("PUBLIC_API_URL")?,
        claim_timeout: Duration::from_secs(5 * 60),
    };
    let links = link_signer(&aws, &settings.api_url)?;
    let backends = Backends {
        mailer,
        sealer: Arc::new(Sealer::new(links.keys())),
        outbound: outbound(),
    };
    Ok(Notifier::new(store, backends, links, settings).with_metrics(metrics()))
}

#[cfg(test)]
mod tests {
    use labelport_core::worker::MAX_ATTEMPTS;

    const TEMPLATE: &str = include_str!("../../../template.yaml");

    /// The value after `key:` in the lines of resource `resource` (up to the next resource).
    fn setting(resource: &str, key: &str) -> Option<u64> {
        let start = TEMPLATE.find(&format!("\n  {resource}:\n"))?;
        let body = &TEMPLATE[start + resource.len() + 5..];
        let end = body
            .find("\n  \n")
            .or_else(|| body.find("\n\n"))
            .unwrap_or(body.len());
        body[..end].lines().find_map(|line| {
            let value = line.trim().strip_prefix(key)?.strip_prefix(':')?;
            let value = value.split('#').next()?.trim().trim_matches('"');
            value.parse().ok()
        })
    }

    #[test]
    fn production_is_observable_and_bounded() {
        for (what, text) in [
            ("X-Ray on every function", "    Tracing: Active"),
            (
                "the worker's concurrency bounded",
                "MaximumConcurrency: !Ref WorkerMaxConcurrency",
            ),
            (
                "the notifier's concurrency bounded (SES's sending rate)",
                "MaximumConcurrency: !Ref NotifierMaxConcurrency",
            ),
            ("HTTP API access logs", "AccessLogSettings:"),
            (
                "failed S3 drops kept",
                "Destination: !GetAtt DropFailureQueue.Arn",
            ),
            (
                "job records written only by the functions",
                "Sid: OnlyTheFunctionsWriteJobs",
            ),
            (
                "the export queue's age watched",
                "Value: !GetAtt ExportQueue.QueueName",
            ),
            (
                "the notify queue's age watched",
                "Value: !GetAtt NotifyQueue.QueueName",
            ),
            (
                "exports expire by the same number of days the API says EXPIRED after",
                "ExpirationInDays: !Ref ExportRetentionDays",
            ),
            (
                "the API knows the retention",
                "EXPORT_RETENTION_DAYS: !Ref ExportRetentionDays",
            ),
            (
                "a per-project limit of running exports",
                "MAX_ACTIVE_EXPORTS_PER_PROJECT: !Ref MaxActiveExportsPerProject",
            ),
            (
                "concurrency reservable for the API",
                "ReservedConcurrentExecutions: !If [HasApiReservation, !Ref ApiReservedConcurrency, !Ref AWS::NoValue]",
            ),
            (
                "active markers written only by the functions",
                "- !Sub \"${PlatformBucket.Arn}/active/*\"",
            ),
            (
                "request files put only by the named writers, and by nobody when none is named",
                "Sid: NobodyDropsRequests",
            ),
            (
                "the API knows the request writers",
                "REQUEST_WRITER_IDS: !Join [\",\", !Ref RequestWriterRoleIds]",
            ),
            (
                "request files whose delete failed expire",
                "Id: expire-request-drops",
            ),
            (
                "customer roles never of this account",
                "aws:ResourceAccount: !Ref AWS::AccountId",
            ),
            (
                "KMS use only with the customers' listed keys",
                "Resource: !Ref CustomerKmsKeyArns",
            ),
            (
                "the API knows which claim names a service",
                "SERVICE_CLAIM: !Ref ServiceClaim",
            ),
            (
                "a tenant's cap on running exports",
                "MAX_ACTIVE_EXPORTS_PER_TENANT: !Ref MaxActiveExportsPerTenant",
            ),
            (
                "the unauthenticated download route throttled at the edge",
                "\"GET /v1/exports/{id}/download\":\n          ThrottlingRateLimit: !Ref DownloadRateLimit",
            ),
            (
                "tenant markers written only by the functions",
                "- !Sub \"${PlatformBucket.Arn}/tenants/*\"",
            ),
            (
                "the external id key is kept, never replaced",
                "EXTERNAL_ID_SECRET: !Ref ExternalIdKeySecret",
            ),
        ] {
            assert!(
                TEMPLATE.contains(text),
                "template.yaml lacks {what}: `{text}`"
            );
        }
        // An alarm nobody hears is no alarm: each tells the stack's own topic (created
        // unless AlarmTopicArn names one), so a deployment with every default has one.
        assert!(
            TEMPLATE.contains("CreatesAlarmTopic: !Equals [!Ref AlarmTopicArn, \"\"]")
                && TEMPLATE.contains(
                    "  AlarmTopic:\n    Type: AWS::SNS::Topic\n    Condition: CreatesAlarmTopic\n"
                ),
            "the stack creates an alarm topic unless AlarmTopicArn names one"
        );
        assert_eq!(
            TEMPLATE
                .matches(
                    "AlarmActions: [!If [CreatesAlarmTopic, !Ref AlarmTopic, !Ref AlarmTopicArn]]"
                )
                .count(),
            TEMPLATE.matches("Type: AWS::CloudWatch::Alarm").count(),
            "every alarm tells the alarm topic"
        );
        for function in [
            "ExportApiFunction",
            "ExportWorkerFunction",
            "ExportNotifierFunction",
        ] {
            for metric in ["Errors", "Throttles"] {
                let alarm = format!(
                    "  {}{metric}Alarm:\n",
                    function.trim_end_matches("Function")
                );
                assert!(
                    TEMPLATE.contains(&alarm),
                    "no {metric} alarm for {function}"
                );
            }
        }
        // A dashboard charts the three functions' metrics and shows every alarm.
        let dashboard = TEMPLATE
            .split_once("\n    Type: AWS::CloudWatch::Dashboard\n")
            .expect("a CloudWatch dashboard")
            .1;
        for metric in [
            r#"MetricName=\"Exports\""#,
            r#"MetricName=\"Duration\""#,
            r#""Requests", "Status""#,
            r#"MetricName=\"Deliveries\""#,
            "ApproximateAgeOfOldestMessage",
        ] {
            assert!(dashboard.contains(metric), "the dashboard lacks {metric}");
        }
        let lines: Vec<&str> = TEMPLATE.lines().collect();
        for pair in lines.windows(2) {
            if pair[1] == "    Type: AWS::CloudWatch::Alarm" {
                let alarm = pair[0].trim().trim_end_matches(':');
                assert!(
                    dashboard.contains(&format!("${{{alarm}.Arn}}")),
                    "the dashboard does not show {alarm}"
                );
            }
        }
        // The template's HTTP routes are the API's, and the routes API Gateway lets
        // through without a JWT are the ones the OpenAPI document marks open: the
        // signed download link and the document itself.
        let mut routes = Vec::new();
        let lines: Vec<&str> = TEMPLATE.lines().map(str::trim).collect();
        for (i, line) in lines.iter().enumerate() {
            let Some(method) = line.strip_prefix("Method: ") else {
                continue;
            };
            let path = lines[i + 1]
                .strip_prefix("Path: ")
                .expect("Path after Method");
            let open = lines.get(i + 3) == Some(&"Authorizer: NONE");
            routes.push((method.to_lowercase(), path.to_owned(), open));
        }
        routes.sort();
        let doc: serde_json::Value = serde_json::from_str(
            &labelport_core::api::openapi_document("https://api.example.com")
                .to_json()
                .expect("document"),
        )
        .expect("document JSON");
        let mut documented = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("operations") {
                let open = operation["security"] == serde_json::json!([{}]);
                documented.push((method.clone(), path.clone(), open));
            }
        }
        documented.sort();
        assert_eq!(
            routes, documented,
            "template.yaml's routes against the API's"
        );
        assert_eq!(
            TEMPLATE
                .matches("LINK_KEYS_SECRET: !Ref LinkKeysSecret")
                .count(),
            2,
            "the API and the notifier sign links with the same key"
        );
        assert_eq!(
            TEMPLATE
                .matches("aws:ResourceAccount: !Ref AWS::AccountId")
                .count(),
            TEMPLATE.matches("Sid: AssumeCustomerRoles").count(),
            "every role that assumes customers' roles excludes this account's"
        );
        assert!(
            !TEMPLATE.contains("kms:Decrypt\n                  Resource: \"*\""),
            "no KMS permission on every key"
        );
        assert_eq!(
            TEMPLATE.matches("ApplicationLogLevel: INFO").count(),
            3,
            "each function's log level comes from its LoggingConfig"
        );
    }

    #[test]
    fn the_queue_outlasts_the_worker_attempts_and_the_lease_outlasts_the_timeout() {
        let receives = setting("ExportQueue", "maxReceiveCount").expect("maxReceiveCount");
        assert!(
            receives > u64::from(MAX_ATTEMPTS),
            "maxReceiveCount {receives} must exceed the worker's {MAX_ATTEMPTS} attempts, or a job whose last attempt died stays RUNNING"
        );
        let timeout = setting("ExportWorkerFunction", "Timeout").expect("Timeout");
        let lease = setting("ExportWorkerFunction", "WORKER_LEASE_SECONDS").expect("lease");
        let visibility = setting("ExportQueue", "VisibilityTimeout").expect("VisibilityTimeout");
        assert!(
            lease > timeout,
            "lease {lease} s must exceed the timeout {timeout} s"
        );
        assert!(
            visibility > lease,
            "a redelivery must come after the lease expired"
        );
    }

    #[test]
    fn the_notifier_knows_its_queues_last_delivery() {
        let receives = setting("NotifyQueue", "maxReceiveCount").expect("maxReceiveCount");
        let told = setting("ExportNotifierFunction", "NOTIFY_MAX_RECEIVES").expect("env");
        assert_eq!(
            receives, told,
            "the notifier records a failing delivery on the queue's last delivery"
        );
    }

    #[test]
    fn the_sweeper_never_ends_a_job_a_retry_could_still_take() {
        assert!(
            TEMPLATE.contains("Schedule: rate(15 minutes)"),
            "the worker's sweep schedule"
        );
        let lease = setting("ExportWorkerFunction", "WORKER_LEASE_SECONDS").expect("lease");
        let visibility = setting("ExportQueue", "VisibilityTimeout").expect("VisibilityTimeout");
        for key in ["MinValue", "Default"] {
            let running = setting("StaleRunningMinutes", key).expect("StaleRunningMinutes") * 60;
            assert!(
                running > visibility + lease,
                "StaleRunningMinutes {key} ({running} s) must exceed the visibility timeout and the lease ({} s): a crashed attempt's retry comes that late",
                visibility + lease
            );
        }
    }
}
