//! Helpers for the end-to-end tests: a fresh bucket and two queues on the AWS emulator
//! (moto's server, started by `infra/test.sh`), the three handlers wired to them
//! through the real AWS adapters, and the Python readers that check the outputs.
#![allow(clippy::unwrap_used, missing_docs)]

pub mod fakes;
pub mod harness;
pub mod webhooks;

use aws_lambda_events::apigw::{
    ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerJwtDescription,
    ApiGatewayV2httpRequestContext,
};
use aws_sdk_s3::primitives::ByteStream;
use labelport_aws::buckets::CustomerBuckets;
use labelport_aws::secrets::SecretsManagerLinkKeys;
use labelport_aws::{ApiGatewayClaims, S3Store, SesMailer, SqsQueue};
use labelport_core::api::{Api, ApiSettings};
use labelport_core::delivery::{Backends, DeliveryPolicy};
use labelport_core::links::LinkSigner;
use labelport_core::notify::{Notifier, NotifierSettings};
use labelport_core::outbound::OutboundPolicy;
use labelport_core::ports::{FixedLinkKeys, LinkKeySet};
use labelport_core::seal::Sealer;
use labelport_core::tenancy::ExternalIds;
use labelport_core::worker::{Worker, WorkerSettings};
use labelport_generate::{self as generate, Config};
use labelport_model::Project;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

pub const MANAGER: &str = "manager@example.com";
pub const LABELER: &str = "labeler1@example.com";
pub const SENDER: &str = "exports@labelport.test";
pub const API_URL: &str = "https://api.labelport.test";

/// Fails loudly when the emulator is not running: these tests must never pass vacuously.
fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| {
        panic!("AWS_ENDPOINT_URL is not set: run the tests with infra/test.sh, which starts the AWS emulator")
    })
}

pub fn ses_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL_SES").unwrap_or_else(|_| endpoint())
}

/// The unique id of the role the tests' platform drops request files with.
pub const REQUEST_WRITER: &str = "AROATESTREQUESTWRITER";

/// The settings of the stack's API.
pub fn api_settings() -> ApiSettings {
    ApiSettings {
        public_url: API_URL.into(),
        download_ttl: Duration::from_secs(300),
        exports_prefix: "exports".into(),
        max_active_per_project: 10,
        max_active_per_tenant: 50,
        retention: None,
        request_writers: vec![REQUEST_WRITER.into()],
        delivery_principals: vec![
            "arn:aws:iam::123456789012:role/labelport-export-worker".into(),
            "arn:aws:iam::123456789012:role/labelport-export-api".into(),
        ],
        delivery: DeliveryPolicy {
            email_allow_list: Vec::new(),
            outbound: test_outbound(),
            own_buckets: Vec::new(),
        },
    }
}

/// The port the tests' webhook receivers listen on, the one exemption from the
/// public-https rule (test-only, as in production it is empty).
pub const RECEIVER_PORTS: std::ops::Range<u16> = 18_080..18_090;

fn test_outbound() -> OutboundPolicy {
    OutboundPolicy::new(RECEIVER_PORTS.map(|p| format!("127.0.0.1:{p}")).collect())
}

fn api_over(
    aws: &aws_config::SdkConfig,
    store: Arc<dyn labelport_core::ports::ObjectStore>,
    presigner: Arc<S3Store>,
    sqs: &aws_sdk_sqs::Client,
    export_queue: &str,
    links: Arc<LinkSigner>,
    settings: ApiSettings,
) -> Arc<Api> {
    Arc::new(
        Api::new(
            store,
            Arc::new(SqsQueue::new(sqs.clone(), export_queue)),
            presigner,
            Arc::new(ApiGatewayClaims::default()),
            links,
            settings,
        )
        .with_buckets(Arc::new(CustomerBuckets::new(aws.clone())))
        .with_external_ids(Arc::new(ExternalIds::new(Arc::new(FixedLinkKeys(
            LinkKeySet {
                current: b"the tests' external id key, 32 bytes or more".to_vec(),
                previous: Vec::new(),
            },
        ))))),
    )
}

/// A signer over the link keys in Secrets Manager secret `secret` (a fresh cache).
pub fn link_signer(aws: &aws_config::SdkConfig, secret: &str) -> Arc<LinkSigner> {
    Arc::new(LinkSigner::new(
        Arc::new(SecretsManagerLinkKeys::new(
            aws_sdk_secretsmanager::Client::new(aws),
            secret,
        )),
        API_URL,
        Duration::from_secs(7 * 86_400),
    ))
}

/// A random key as Secrets Manager's `GenerateSecretString` makes them: 64 letters and digits.
pub fn new_link_key() -> String {
    uuid::Uuid::new_v4().simple().to_string() + &uuid::Uuid::new_v4().simple().to_string()
}

/// A bucket and two queues of its own on the emulator, and the handlers over them.
pub struct Stack {
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub bucket: String,
    pub export_queue: String,
    pub notify_queue: String,
    pub api: Arc<Api>,
    pub router: axum::Router,
    pub worker: Worker,
    pub notifier: Notifier,
    /// Signs links as the API does, with the stack's own Secrets Manager secret.
    pub links: Arc<LinkSigner>,
    /// That secret's name.
    pub link_secret: String,
    pub aws: aws_config::SdkConfig,
    pub scratch: PathBuf,
}

/// The generated projects and downloads go with the stack: a full test run would
/// otherwise leave gigabytes in the temporary directory.
impl Drop for Stack {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

impl Stack {
    pub async fn new() -> Stack {
        endpoint();
        let aws = labelport_aws::config::aws().await;
        let s3 = labelport_aws::config::s3_client(&aws);
        let sqs = aws_sdk_sqs::Client::new(&aws);
        let ses = aws_sdk_ses::Client::new(&aws);
        let id = uuid::Uuid::new_v4().simple().to_string();
        let bucket = format!("lp-{}", &id[..20]);
        s3.create_bucket().bucket(&bucket).send().await.unwrap();
        let export_queue = create_queue(&sqs, &format!("export-{id}")).await;
        let notify_queue = create_queue(&sqs, &format!("notify-{id}")).await;
        ses.verify_email_identity()
            .email_address(SENDER)
            .send()
            .await
            .unwrap();

        let link_secret = format!("links-{id}");
        aws_sdk_secretsmanager::Client::new(&aws)
            .create_secret()
            .name(&link_secret)
            .secret_string(new_link_key())
            .send()
            .await
            .unwrap();
        let links = link_signer(&aws, &link_secret);
        let store = Arc::new(S3Store::new(s3.clone(), &bucket));
        let api = api_over(
            &aws,
            store.clone(),
            store.clone(),
            &sqs,
            &export_queue,
            links.clone(),
            api_settings(),
        );
        let router = labelport_core::api::router(api.clone());
        let worker = Worker::new(
            store.clone(),
            store.clone(),
            Arc::new(SqsQueue::new(sqs.clone(), &notify_queue)),
            WorkerSettings {
                threads: 2,
                ..WorkerSettings::default()
            },
        )
        .with_buckets(Arc::new(CustomerBuckets::new(aws.clone())));
        let notifier = Notifier::new(
            store,
            Backends {
                mailer: Arc::new(SesMailer::new(ses, SENDER)),
                sealer: Arc::new(Sealer::new(links.keys())),
                outbound: test_outbound(),
            },
            links.clone(),
            NotifierSettings {
                api_url: API_URL.into(),
                claim_timeout: Duration::from_secs(300),
            },
        );
        let scratch = std::env::temp_dir().join(format!("labelport-e2e-{id}"));
        std::fs::create_dir_all(&scratch).unwrap();
        Stack {
            s3,
            sqs,
            bucket,
            export_queue,
            notify_queue,
            api,
            router,
            worker,
            notifier,
            links,
            link_secret,
            aws,
            scratch,
        }
    }

    /// A router over this stack's bucket with other settings or another export queue.
    pub fn router_with(&self, export_queue: &str, settings: ApiSettings) -> axum::Router {
        labelport_core::api::router(self.api_with(export_queue, settings))
    }

    /// An API over this stack's bucket with other settings or another export queue.
    pub fn api_with(&self, export_queue: &str, settings: ApiSettings) -> Arc<Api> {
        let store = Arc::new(S3Store::new(self.s3.clone(), &self.bucket));
        api_over(
            &self.aws,
            store.clone(),
            store,
            &self.sqs,
            export_queue,
            self.links.clone(),
            settings,
        )
    }

    /// An API over `store` (this stack's bucket with faults injected, say).
    pub fn api_over(&self, store: Arc<dyn labelport_core::ports::ObjectStore>) -> Arc<Api> {
        api_over(
            &self.aws,
            store,
            Arc::new(S3Store::new(self.s3.clone(), &self.bucket)),
            &self.sqs,
            &self.export_queue,
            self.links.clone(),
            api_settings(),
        )
    }

    /// Generates a project locally and uploads its manifest and task files.
    pub async fn seed(&self, config: &Config) -> PathBuf {
        let root = self.scratch.join(&config.project_id);
        generate::write_project(config, &root).unwrap();
        self.upload_tree(&root).await;
        root.join("projects").join(&config.project_id)
    }

    /// Uploads every file under `root` with its relative path as key.
    pub async fn upload_tree(&self, root: &Path) {
        let mut pending = vec![root.to_path_buf()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                } else {
                    let key = path
                        .strip_prefix(root)
                        .unwrap()
                        .to_string_lossy()
                        .replace('\\', "/");
                    self.put(&key, std::fs::read(&path).unwrap()).await;
                }
            }
        }
    }

    /// Drops a request file as `requested_by` (its `x-amz-meta-requested-by`) and hands
    /// it to the API as the S3 event numbered `sequencer` would, put by the platform's
    /// request writer.
    pub async fn drop_request(
        &self,
        key: &str,
        requested_by: &str,
        body: &'static [u8],
        sequencer: &str,
    ) -> labelport_core::api::DropOutcome {
        self.drop_request_by(
            &format!("AWS:{REQUEST_WRITER}:platform"),
            key,
            requested_by,
            body,
            sequencer,
        )
        .await
        .unwrap()
    }

    /// [`Stack::drop_request`] with the S3 event naming `writer` as the principal that
    /// put the file.
    pub async fn drop_request_by(
        &self,
        writer: &str,
        key: &str,
        requested_by: &str,
        body: &'static [u8],
        sequencer: &str,
    ) -> Result<labelport_core::api::DropOutcome, labelport_core::api::DropError> {
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .metadata("requested-by", requested_by)
            .body(ByteStream::from_static(body))
            .send()
            .await
            .unwrap();
        self.api
            .accept_dropped_request(key, sequencer, writer)
            .await
    }

    pub async fn put(&self, key: &str, body: Vec<u8>) {
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body))
            .send()
            .await
            .unwrap();
    }

    /// Rewrites a project's manifest.
    pub async fn set_manifest(&self, project: &Project) {
        let key = format!("projects/{}/project.json", project.id);
        self.put(&key, serde_json::to_vec(project).unwrap()).await;
    }

    pub async fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.get_in(&self.bucket, key).await
    }

    /// An object of another bucket on the emulator (a customer's).
    pub async fn get_in(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        match self.s3.get_object().bucket(bucket).key(key).send().await {
            Ok(out) => Some(out.body.collect().await.unwrap().into_bytes().to_vec()),
            Err(_) => None,
        }
    }

    pub async fn keys(&self, prefix: &str) -> Vec<String> {
        self.keys_in(&self.bucket, prefix).await
    }

    /// The keys under `prefix` in another bucket on the emulator (a customer's).
    pub async fn keys_in(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let out = self
            .s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .send()
            .await
            .unwrap();
        out.contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect()
    }

    pub async fn open_multipart_uploads(&self) -> usize {
        let out = self
            .s3
            .list_multipart_uploads()
            .bucket(&self.bucket)
            .send()
            .await
            .unwrap();
        out.uploads().len()
    }

    /// Receives one message from a queue (waiting up to 5 s); returns its body.
    pub async fn receive(&self, queue: &str) -> Option<String> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(1)
            .wait_time_seconds(5)
            .send()
            .await
            .unwrap();
        let message = out.messages().first()?.clone();
        self.sqs
            .delete_message()
            .queue_url(queue)
            .receipt_handle(message.receipt_handle().unwrap())
            .send()
            .await
            .unwrap();
        message.body().map(str::to_owned)
    }

    /// Sends `body` to `queue` and receives it again as the SQS event Lambda would hand
    /// a consumer on its `receive_count`th delivery, receipt handle included.
    pub async fn deliver_as_event(
        &self,
        queue: &str,
        body: &str,
        receive_count: u32,
    ) -> aws_lambda_events::event::sqs::SqsEvent {
        self.sqs
            .send_message()
            .queue_url(queue)
            .message_body(body)
            .send()
            .await
            .unwrap();
        let received = self
            .sqs
            .receive_message()
            .queue_url(queue)
            .wait_time_seconds(2)
            .send()
            .await
            .unwrap();
        let message = &received.messages()[0];
        serde_json::from_value(serde_json::json!({"Records": [{
            "messageId": message.message_id().unwrap(),
            "receiptHandle": message.receipt_handle().unwrap(),
            "body": message.body().unwrap(),
            "attributes": {"ApproximateReceiveCount": receive_count.to_string()}
        }]}))
        .unwrap()
    }

    /// Sends a request through the router as API Gateway would, with `email` in the JWT claims.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        email: Option<&str>,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, http::HeaderMap, serde_json::Value) {
        call_router(&self.router, method, path, email, headers, body).await
    }
}

/// [`Stack::call`] through another router (other settings, another queue).
pub async fn call_router(
    router: &axum::Router,
    method: &str,
    path: &str,
    email: Option<&str>,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, http::HeaderMap, serde_json::Value) {
    call_router_as(
        router,
        method,
        path,
        email.map(claims_context),
        headers,
        body,
    )
    .await
}

/// [`call_router`] with the request context the JWT authorizer attaches (`None`: a
/// route without the authorizer), any claims.
pub async fn call_router_as(
    router: &axum::Router,
    method: &str,
    path: &str,
    context: Option<lambda_http::request::RequestContext>,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, http::HeaderMap, serde_json::Value) {
    use tower::ServiceExt;
    let mut request = http::Request::builder().method(method).uri(path);
    // A JSON body goes with its media type, as clients send it, unless the test sets one.
    let typed = headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-type"));
    if !body.is_empty() && !typed {
        request = request.header("content-type", "application/json");
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut request = request
        .body(axum::body::Body::from(body.to_owned()))
        .unwrap();
    if let Some(context) = context {
        request.extensions_mut().insert(context);
    }
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, headers, json)
}

impl Stack {
    /// `GET /v1/exports/{id}` as `email`.
    pub async fn status(&self, id: &str, email: &str) -> (u16, http::HeaderMap, serde_json::Value) {
        self.call("GET", &format!("/v1/exports/{id}"), Some(email), &[], "")
            .await
    }

    /// Follows a signed link (as the e-mail and the status give them) with no token.
    pub async fn follow(
        &self,
        link: &str,
        headers: &[(&str, &str)],
    ) -> (u16, http::HeaderMap, serde_json::Value) {
        let path = link
            .strip_prefix(API_URL)
            .unwrap_or_else(|| panic!("{link} is not a link to the API"));
        self.call("GET", path, None, headers, "").await
    }

    /// `GET` of a fresh signed link to export `id`'s first file.
    pub async fn download(&self, id: &str) -> (u16, http::HeaderMap, serde_json::Value) {
        let link = self
            .links
            .download_link(id, None, chrono::Utc::now())
            .await
            .unwrap();
        self.follow(&link, &[]).await
    }

    /// `GET` of a fresh signed link to `file` of export `id`.
    pub async fn download_file(
        &self,
        id: &str,
        file: &str,
    ) -> (u16, http::HeaderMap, serde_json::Value) {
        let link = self
            .links
            .download_link(id, Some(file), chrono::Utc::now())
            .await
            .unwrap();
        self.follow(&link, &[]).await
    }

    /// The presigned URL behind `file`'s link in the export's status.
    pub async fn download_url(&self, id: &str, file: &str) -> String {
        let (_, _, status) = self.status(id, MANAGER).await;
        let files = status["result"]["files"].as_array().unwrap();
        let entry = files
            .iter()
            .find(|f| f["name"] == file)
            .unwrap_or_else(|| panic!("no {file} in {status}"));
        let (code, headers, json) = self
            .follow(entry["downloadUrl"].as_str().unwrap(), &[])
            .await;
        assert_eq!(code, 302, "{file}: {json}");
        headers["location"].to_str().unwrap().to_owned()
    }
}

/// POSTs an export as the manager and returns its id.
pub async fn request(stack: &Stack, project: &str, body: &str) -> String {
    let (status, headers, json) = stack
        .call(
            "POST",
            &format!("/v1/projects/{project}/exports"),
            Some(MANAGER),
            &[],
            body,
        )
        .await;
    assert_eq!(status, 202, "{json}");
    let id = json["id"].as_str().unwrap().to_owned();
    assert_eq!(headers["location"], format!("/v1/exports/{id}"));
    id
}

/// Takes the next export message off the real queue and runs the worker on it.
pub async fn run_worker(stack: &Stack) -> (String, labelport_core::worker::Outcome) {
    let body = stack
        .receive(&stack.export_queue)
        .await
        .expect("an export message was queued");
    let outcome = stack.worker.handle(&body).await.unwrap();
    (body, outcome)
}

pub async fn run_notifier(stack: &Stack) -> (String, labelport_core::notify::NotifyOutcome) {
    let body = stack
        .receive(&stack.notify_queue)
        .await
        .expect("a notify message was queued");
    let outcome = stack.notifier.handle(&body).await.unwrap();
    (body, outcome)
}

/// The request context API Gateway's JWT authorizer attaches: an `email` claim and a
/// verified one.
pub fn claims_context(email: &str) -> lambda_http::request::RequestContext {
    claims_with(&[("email", email), ("email_verified", "true")])
}

/// A request context with exactly these JWT claims.
pub fn claims_with(claims: &[(&str, &str)]) -> lambda_http::request::RequestContext {
    let mut jwt = ApiGatewayRequestAuthorizerJwtDescription::default();
    for (name, value) in claims {
        jwt.claims.insert((*name).into(), (*value).into());
    }
    let mut authorizer = ApiGatewayRequestAuthorizer::default();
    authorizer.jwt = Some(jwt);
    let mut context = ApiGatewayV2httpRequestContext::default();
    context.authorizer = Some(authorizer);
    lambda_http::request::RequestContext::ApiGatewayV2(context)
}

async fn create_queue(sqs: &aws_sdk_sqs::Client, name: &str) -> String {
    sqs.create_queue()
        .queue_name(name)
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned()
}

/// Runs one of the Python checkers in `infra/` (readers written by others: csv, json, gzip).
pub fn python(script: &str, args: &[&str]) -> String {
    let python = std::env::var("LABELPORT_PYTHON").unwrap_or_else(|_| "python3".into());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let output = Command::new(&python)
        .arg(root.join("infra").join(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {python}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{script} {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Every e-mail the emulator's SES has accepted, as JSON.
pub fn sent_emails() -> Vec<serde_json::Value> {
    let out = python("sent_emails.py", &[&ses_endpoint()]);
    serde_json::from_str(&out).unwrap()
}

/// The links to the API in a sent e-mail's text, in order (`&amp;` in its HTML undone).
pub fn api_links(email: &serde_json::Value) -> Vec<String> {
    let text = email["body"].to_string();
    let mut links = Vec::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find(API_URL) {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || "-._~/?&=%:;".contains(c)))
            .unwrap_or(tail.len());
        let link = tail[..end].replace("&amp;", "&");
        if !links.contains(&link) {
            links.push(link);
        }
        rest = &tail[end..];
    }
    links
}
