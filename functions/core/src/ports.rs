//! The ports: what the domain needs from the outside world, as small traits. Each
//! has a cloud adapter (`labelport-aws`) and a local one (`labelport-local`).

use async_trait::async_trait;
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

// The object store is the engine's port (sources are read through it); it is listed
// here with the others because the adapters implement them all.
pub use labelport_engine::store::{
    BoxError, Condition, Object, ObjectInfo, ObjectStore, StoreError, Upload, MIN_PART_SIZE,
};

/// A message queue (the export queue, the notify queue).
#[async_trait]
pub trait Queue: Send + Sync + 'static {
    /// Enqueues one message.
    async fn send(&self, body: String) -> Result<(), BoxError>;
}

/// An e-mail with a text and an HTML part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// Recipients.
    pub to: Vec<String>,
    /// Subject line.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML body.
    pub html: String,
}

/// Sends e-mail.
#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    /// Sends one message.
    async fn send(&self, mail: &Mail) -> Result<(), BoxError>;
}

/// The `Content-Disposition` that makes a browser save a download as `filename`.
/// Quotes, backslashes and line breaks are replaced: the name cannot break the header.
pub fn attachment(filename: &str) -> String {
    format!(
        "attachment; filename=\"{}\"",
        filename.replace(['"', '\\', '\r', '\n'], "_")
    )
}

/// A webhook POST, to an address the outbound policy checked ([`crate::outbound`]).
#[derive(Debug, Clone)]
pub struct WebhookPost<'a> {
    /// The receiver's URL: the host name for TLS and `Host`, and the path.
    pub url: &'a url::Url,
    /// The addresses the URL's host resolved to when it was checked: the only ones the
    /// client may connect to, so that a name resolving elsewhere a moment later (DNS
    /// rebinding) cannot steer the request inside the network.
    pub addrs: &'a [SocketAddr],
    /// The request's headers.
    pub headers: &'a [(&'a str, String)],
    /// The event.
    pub body: Bytes,
    /// The longest the client may take to connect. The whole request's limit is the
    /// policy's, which the client need not know.
    pub connect_timeout: Duration,
}

/// Why a webhook POST got no answer.
#[derive(Debug, thiserror::Error)]
pub enum NoAnswer {
    /// The client could not be set up.
    #[error("no HTTP client: {0}")]
    NoClient(#[source] BoxError),
    /// The client gave up waiting (the policy's own limit is said as its duration).
    #[error("no answer in time")]
    TimedOut,
    /// None of the addresses accepted a connection.
    #[error("could not connect")]
    Connect(#[source] BoxError),
    /// Anything else.
    #[error("the request failed")]
    Failed(#[source] BoxError),
}

/// Sends webhooks. Only [`crate::outbound::OutboundPolicy`] holds one, so every POST has
/// passed its checks; a fake in tests answers as told. One implementation serves AWS
/// and the laptop alike (`outbound::ReqwestClient`): neither has an HTTP service of its
/// own, so their adapters would be the same code.
#[async_trait]
pub trait WebhookClient: Send + Sync + 'static {
    /// POSTs `post.body` to `post.url`, connecting only to `post.addrs` and following
    /// no redirect, and returns the answer's status code. The answer's body is not read:
    /// a receiver cannot make the notifier hold more than its status line and headers.
    async fn post(&self, post: WebhookPost<'_>) -> Result<u16, NoAnswer>;
}

/// Makes short-lived download URLs for stored objects.
#[async_trait]
pub trait Presigner: Send + Sync + 'static {
    /// A URL that downloads `key` as `filename` until `expires_in` has passed.
    async fn download_url(
        &self,
        key: &str,
        filename: &str,
        expires_in: Duration,
    ) -> Result<String, BoxError>;
}

/// The keys download links are signed with: the current one signs, every one verifies.
#[derive(Clone, PartialEq, Eq)]
pub struct LinkKeySet {
    /// Signs new links.
    pub current: Vec<u8>,
    /// Keys rotated out that links already sent may still carry.
    pub previous: Vec<Vec<u8>>,
}

impl std::fmt::Debug for LinkKeySet {
    // Keys never reach a log, however a value is printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LinkKeySet {{ previous: {} }}", self.previous.len())
    }
}

/// Where link keys come from: Secrets Manager on AWS, a key file locally.
#[async_trait]
pub trait LinkKeys: Send + Sync + 'static {
    /// The key set; `fresh` asks to bypass any cache (a link matched no cached key).
    async fn keys(&self, fresh: bool) -> Result<LinkKeySet, BoxError>;
}

/// A key set that never changes (the local key file).
pub struct FixedLinkKeys(pub LinkKeySet);

#[async_trait]
impl LinkKeys for FixedLinkKeys {
    async fn keys(&self, _fresh: bool) -> Result<LinkKeySet, BoxError> {
        Ok(self.0.clone())
    }
}

/// A customer's bucket that exports are delivered into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketTarget {
    /// The bucket.
    pub bucket: String,
    /// The folder the export goes into (empty: the bucket's top). Credentials for the
    /// target reach this folder only.
    pub path: String,
    /// Its region, when not the platform's.
    pub region: Option<String>,
    /// The customer's role to assume (cross-account); without it, the platform's own
    /// writer role, which the customer's bucket policy grants.
    pub role_arn: Option<String>,
    /// The external id the customer's role requires.
    pub external_id: Option<String>,
    /// A KMS key to encrypt with (SSE-KMS).
    pub kms_key_id: Option<String>,
}

/// Opens customers' buckets.
#[async_trait]
pub trait Buckets: Send + Sync + 'static {
    /// A store on the target bucket, with the target's credentials.
    async fn open(&self, target: &BucketTarget) -> Result<Arc<dyn ObjectStore>, BoxError>;
}

/// No customer buckets: where delivery into them is not set up.
pub struct NoBuckets;

#[async_trait]
impl Buckets for NoBuckets {
    async fn open(&self, _target: &BucketTarget) -> Result<Arc<dyn ObjectStore>, BoxError> {
        Err("delivery into customer buckets is not set up on this deployment".into())
    }
}

/// How one export attempt ended, for dashboards and alarms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportEnded<'a> {
    /// The export.
    pub export_id: &'a str,
    /// Its project.
    pub project: &'a str,
    /// Its format (`CSV`).
    pub format: &'a str,
    /// `SUCCEEDED`, `FAILED`, or `RETRIED` for an attempt that will be tried again.
    pub outcome: &'a str,
    /// The failure's code, if it failed.
    pub code: Option<&'a str>,
    /// Tasks exported.
    pub tasks: u64,
    /// Source bytes read.
    pub bytes_read: u64,
    /// Bytes written (every file).
    pub bytes_written: u64,
    /// From the attempt's start to its end.
    pub duration: Duration,
    /// Which attempt this was.
    pub attempt: u32,
}

/// One HTTP request the API answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestServed<'a> {
    /// The method and the matched route's template, never its ids
    /// (`POST /v1/projects/{project}/exports`); `UNMATCHED` for no route.
    pub route: &'a str,
    /// The response's status code.
    pub status: u16,
    /// From the request's arrival to its response.
    pub duration: Duration,
}

/// One notify message handled: what the delivery method did, or that it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryEnded<'a> {
    /// The export, when the message named one.
    pub export_id: Option<&'a str>,
    /// The delivery method (`FILE_STORAGE`, `EMAIL`, `CUSTOM_WEBHOOK`,
    /// `EXTERNAL_OBJECT_STORAGE`); `UNKNOWN` when the job could not be read.
    pub method: &'a str,
    /// The outcome (`EMAILED`, `POSTED`, `STORED`, `MARKED_AVAILABLE`, `UNDELIVERABLE`,
    /// `ALREADY_NOTIFIED`), `HELD` when another notifier holds the claim, or `FAILED`
    /// for a try that will be retried.
    pub outcome: &'a str,
}

/// Where the functions report what they did: CloudWatch metrics on AWS (embedded metric
/// format), nothing locally. Every method but the worker's has a no-op default.
pub trait Metrics: Send + Sync + 'static {
    /// An export attempt ended.
    fn export_ended(&self, ended: &ExportEnded<'_>);
    /// The API answered a request.
    fn request_served(&self, _served: &RequestServed<'_>) {}
    /// The notifier handled a message.
    fn delivery_ended(&self, _ended: &DeliveryEnded<'_>) {}
}

/// Metrics that go nowhere.
pub struct NoMetrics;

impl Metrics for NoMetrics {
    fn export_ended(&self, _: &ExportEnded<'_>) {}
}
