//! CUSTOM_WEBHOOK: a signed JSON event POSTed to the customer's URL when the export ends.
//!
//! The signature is the one Stripe and GitHub users know: header
//! `Labelport-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` with the
//! request's `secret`. A receiver recomputes it, compares in constant time and refuses
//! a `t` more than five minutes old, so a captured request cannot be replayed later. The
//! event's `id` is the same on every retry, so a receiver can drop repeats.
//!
//! The URL is checked when the export is asked for (https, a public address) and again
//! when it is called, connecting only to the addresses checked (`crate::outbound`).
//! A receiver that answers 5xx, or not at all, is tried again with backoff and jitter;
//! one that answers 4xx or a redirect is not. Every attempt is recorded on the job. The
//! secret is sealed on the job, never logged, never shown.

use super::{
    params, Announced, Announcement, Backends, DeliveryError, DeliveryMethod, Notice, Prepare,
    Requested,
};
use crate::error::RequestError;
use crate::job::{DeliveryAttempt, JobState};
use crate::outbound::Posted;
use async_trait::async_trait;
use bytes::Bytes;
use chrono::Utc;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::Sha256;
use std::time::{Duration, Instant};

/// Attempts per notifier run; SQS retries the run after its backoff.
const ATTEMPTS: u32 = 2;
/// Secrets shorter than this are refused: they would be guessable.
const MIN_SECRET: usize = 16;
/// Secrets longer than this are refused.
const MAX_SECRET: usize = 256;

/// A signed POST to the customer's URL.
pub struct Webhook;

/// CUSTOM_WEBHOOK's fields of `delivery`. Both are required; they are options here so
/// that `accept` says so in its own words, in the order it always has (the URL first).
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WebhookParams {
    /// Where the event is POSTed: https, port 443, on a public address, no redirects.
    #[serde(default, deserialize_with = "params::string")]
    #[schema(required = true, value_type = String, format = "uri", pattern = "^https://", max_length = 2048)]
    pub url: Option<String>,
    /// Signs each event (`Labelport-Signature`). Never stored in clear, logged or shown.
    #[serde(default, deserialize_with = "params::string")]
    #[schema(required = true, value_type = String, min_length = 16, max_length = 256, write_only)]
    pub secret: Option<String>,
}

#[async_trait]
impl DeliveryMethod for Webhook {
    type Params = WebhookParams;

    fn name(&self) -> &'static str {
        "CUSTOM_WEBHOOK"
    }

    fn summary(&self) -> &'static str {
        "a signed JSON event POSTed to `url` (https, public), signed with `secret` (16+ characters)"
    }

    fn accept(
        &self,
        params: WebhookParams,
        requested: &Requested<'_>,
    ) -> Result<WebhookParams, RequestError> {
        let Some(url) = &params.url else {
            return Err(RequestError::new("delivery.url", "is required"));
        };
        requested
            .policy
            .outbound
            .check_url(url)
            .map_err(|refused| RequestError::new("delivery.url", refused.0))?;
        match &params.secret {
            Some(secret) if (MIN_SECRET..=MAX_SECRET).contains(&secret.len()) => {}
            Some(_) => {
                return Err(RequestError::new(
                    "delivery.secret",
                    format!("must be {MIN_SECRET} to {MAX_SECRET} characters"),
                ))
            }
            None => {
                return Err(RequestError::new(
                    "delivery.secret",
                    "is required: the events are signed with it",
                ))
            }
        }
        Ok(params)
    }

    async fn prepare(
        &self,
        mut params: Map<String, Value>,
        prepare: &Prepare<'_>,
    ) -> Result<Map<String, Value>, RequestError> {
        let url = params
            .get("url")
            .and_then(Value::as_str)
            .unwrap_or_default();
        prepare
            .policy
            .outbound
            .resolve(url)
            .await
            .map_err(|refused| RequestError::new("delivery.url", refused.0))?;
        let secret = match params.remove("secret") {
            Some(Value::String(secret)) => secret,
            _ => return Err(RequestError::new("delivery.secret", "is required")),
        };
        let sealed = prepare
            .sealer
            .seal(&secret, prepare.project)
            .await
            .map_err(|e| {
                tracing::error!(error = %crate::error::chain(&e), "sealing a webhook secret");
                RequestError::new("delivery.secret", "could not be stored safely; try again")
            })?;
        params.insert("sealedSecret".into(), Value::from(sealed));
        Ok(params)
    }

    async fn announce(
        &self,
        notice: &Notice<'_>,
        params: &Map<String, Value>,
        backends: &Backends,
    ) -> Result<Announcement, DeliveryError> {
        let job = notice.job;
        let url = params
            .get("url")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let sealed = params
            .get("sealedSecret")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let secret = backends
            .sealer
            .open(sealed, &job.project)
            .await
            .map_err(|e| DeliveryError {
                reached: Vec::new(),
                what: "the webhook's secret could not be opened".into(),
                permanent: matches!(e, crate::seal::SealError::Unopenable),
                attempts: Vec::new(),
                source: Some(Box::new(e)),
            })?;
        let mut attempts = Vec::new();
        let destination = match backends.outbound.resolve(url).await {
            Ok(destination) => destination,
            Err(refused) => {
                attempts.push(DeliveryAttempt {
                    at: Utc::now(),
                    outcome: format!("refused: {refused}"),
                    duration_ms: 0,
                });
                return Err(DeliveryError {
                    reached: Vec::new(),
                    what: format!("the webhook URL was refused: {refused}"),
                    permanent: true,
                    attempts,
                    source: None,
                });
            }
        };
        let body = Bytes::from(event_body(notice));
        for attempt in 1..=ATTEMPTS {
            let started = Instant::now();
            let at = Utc::now();
            let headers = [
                ("content-type", "application/json".to_owned()),
                (
                    "labelport-signature",
                    signature_header(secret.as_bytes(), at.timestamp(), &body),
                ),
                ("labelport-event-id", event_id(notice)),
            ];
            let answer = backends
                .outbound
                .post(&destination, &headers, body.clone())
                .await;
            let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            let outcome = match &answer {
                Posted::Status(code) => format!("HTTP {code}"),
                Posted::NoAnswer(why) => why.clone(),
            };
            attempts.push(DeliveryAttempt {
                at,
                outcome: outcome.clone(),
                duration_ms,
            });
            match answer {
                Posted::Status(200..=299) => {
                    return Ok(Announcement {
                        announced: Announced::Posted,
                        attempts,
                    })
                }
                Posted::Status(code @ 300..=499) => {
                    return Err(DeliveryError {
                        reached: Vec::new(),
                        what: format!(
                            "the webhook receiver answered {code}{}; it is not called again",
                            if code < 400 {
                                " (redirects are not followed)"
                            } else {
                                ""
                            }
                        ),
                        permanent: true,
                        attempts,
                        source: None,
                    })
                }
                _ if attempt < ATTEMPTS => {
                    // 1 to 2 seconds: enough for a restart, short of the function's time.
                    let pause = Duration::from_millis(1000 + rand::random::<u64>() % 1000);
                    tokio::time::sleep(pause).await;
                }
                _ => {}
            }
        }
        let last = attempts.last().map_or(String::new(), |a| a.outcome.clone());
        Err(DeliveryError {
            reached: Vec::new(),
            what: format!(
                "the webhook receiver did not accept the event ({last}); it will be tried again"
            ),
            permanent: false,
            attempts,
            source: None,
        })
    }
}

/// The event's id: the same for every attempt at one export's ending.
fn event_id(notice: &Notice<'_>) -> String {
    format!(
        "{}.{}",
        notice.job.id,
        notice.job.state.as_str().to_ascii_lowercase()
    )
}

/// The event a receiver gets, as bytes.
pub fn event_body(notice: &Notice<'_>) -> Vec<u8> {
    let job = notice.job;
    let succeeded = job.state == JobState::Succeeded;
    let files: Vec<Value> = notice
        .files
        .iter()
        .map(|(file, link)| {
            json!({
                "name": file.name,
                "bytes": file.bytes,
                "sha256": file.sha256,
                "contentType": file.content_type,
                "role": file.role,
                "downloadUrl": link,
            })
        })
        .collect();
    let event = json!({
        "id": event_id(notice),
        "type": if succeeded { "export.succeeded" } else { "export.failed" },
        "createdAt": job.finished_at.unwrap_or_else(Utc::now),
        "data": {
            "exportId": job.id,
            "project": job.project,
            "format": job.request.format.as_str(),
            "state": job.state,
            "tasks": job.progress.tasks_exported,
            "downloadUrl": notice.download,
            "linksExpireAt": succeeded.then_some(notice.links_expire),
            "files": files,
            "error": job.error.as_ref().map(|e| json!({"code": e.code, "message": e.message})),
            "statusUrl": notice.status,
        }
    });
    serde_json::to_vec(&event).unwrap_or_default()
}

/// `t=<timestamp>,v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub fn signature_header(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::delivery::{Backends, DeliveryPolicy, RegisteredMethod, Requested};
    use crate::job::Job;
    use crate::outbound::OutboundPolicy;
    use crate::ports::{
        BoxError, FixedLinkKeys, LinkKeySet, Mail, Mailer, NoAnswer, WebhookClient, WebhookPost,
    };
    use crate::request::ExportRequest;
    use crate::seal::Sealer;
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};

    #[test]
    fn the_signature_is_hmac_over_timestamp_dot_body() {
        // Computed independently: python3 -c 'import hmac,hashlib;
        // print(hmac.new(b"whsec_0123456789abcdef", b"1767225600.{}", hashlib.sha256).hexdigest())'
        assert_eq!(
            signature_header(b"whsec_0123456789abcdef", 1_767_225_600, b"{}"),
            "t=1767225600,v1=2ce92a306c119aa115f73e8f2f75c783e6e2cc2f5827da283bf02da0d5d1eec1"
        );
    }

    #[test]
    fn the_request_names_what_is_wrong_with_the_url_and_the_secret() {
        let project = labelport_generate::project(&labelport_generate::Config::new(
            "p1",
            labelport_model::Mode::Classification,
            1,
            1,
        ));
        let policy = DeliveryPolicy::default();
        let requested = Requested {
            project: &project,
            requester: "m@x.io",
            policy: &policy,
        };
        let check = |params: Value| {
            RegisteredMethod::accept(&Webhook, params.as_object().unwrap(), &requested)
        };
        let secret = "0123456789abcdef";
        for (params, field, why) in [
            (json!({"secret": secret}), "delivery.url", "is required"),
            (
                json!({"url": "http://169.254.169.254/", "secret": secret}),
                "delivery.url",
                "https",
            ),
            (
                json!({"url": "https://10.0.0.1/", "secret": secret}),
                "delivery.url",
                "not a public address",
            ),
            (
                json!({"url": "https://[::1]/", "secret": secret}),
                "delivery.url",
                "not a public address",
            ),
            (
                json!({"url": "https://hooks.example.com/"}),
                "delivery.secret",
                "is required",
            ),
            (
                json!({"url": "https://hooks.example.com/", "secret": "short"}),
                "delivery.secret",
                "16 to 256",
            ),
            (
                json!({"url": "https://hooks.example.com/", "secret": secret, "headers": {}}),
                "delivery.headers",
                "unknown field `headers`: CUSTOM_WEBHOOK takes secret, url",
            ),
            (
                json!({"url": null, "secret": secret}),
                "delivery.url",
                "must be a string",
            ),
            (
                json!({"url": "https://hooks.example.com/", "secret": 5}),
                "delivery.secret",
                "must be a string",
            ),
        ] {
            let e = check(params.clone()).unwrap_err();
            assert_eq!(e.field, field, "{params}");
            assert!(e.message.contains(why), "{params}: {}", e.message);
        }
        let accepted = json!({"url": "https://hooks.example.com/x", "secret": secret});
        assert_eq!(Value::from(check(accepted.clone()).unwrap()), accepted);
    }

    #[test]
    fn the_schema_states_the_limits_accept_holds() {
        let fields = RegisteredMethod::fields(&Webhook);
        let secret = &fields["properties"]["secret"];
        assert_eq!(
            (&secret["minLength"], &secret["maxLength"]),
            (&json!(MIN_SECRET), &json!(MAX_SECRET))
        );
        assert_eq!(fields["required"], json!(["url", "secret"]));
    }

    const SECRET: &str = "whsec_0123456789abcdef";
    /// The one receiver address the tests' policy exempts from the public-https rule.
    const RECEIVER: &str = "127.0.0.1:18080";

    /// A POST as the receiver got it.
    struct Received {
        addrs: Vec<SocketAddr>,
        headers: Vec<(String, String)>,
        body: Bytes,
    }

    /// A receiver answering each POST with the next of its statuses (the last repeats);
    /// `None` never answers.
    struct Scripted {
        answers: Vec<Option<u16>>,
        received: Mutex<Vec<Received>>,
    }

    #[async_trait]
    impl WebhookClient for Scripted {
        async fn post(&self, post: WebhookPost<'_>) -> Result<u16, NoAnswer> {
            let answer = {
                let mut received = self.received.lock().unwrap();
                received.push(Received {
                    addrs: post.addrs.to_vec(),
                    headers: post
                        .headers
                        .iter()
                        .map(|(n, v)| ((*n).to_owned(), v.clone()))
                        .collect(),
                    body: post.body,
                });
                self.answers[(received.len() - 1).min(self.answers.len() - 1)]
            };
            match answer {
                Some(status) => Ok(status),
                None => futures::future::pending().await,
            }
        }
    }

    struct NoMail;

    #[async_trait]
    impl Mailer for NoMail {
        async fn send(&self, _: &Mail) -> Result<(), BoxError> {
            Err("no mail in these tests".into())
        }
    }

    /// Announces a succeeded export to a receiver answering `answers`.
    async fn announce(
        answers: &[Option<u16>],
    ) -> (Result<Announcement, DeliveryError>, Vec<Received>) {
        let sealer = Sealer::new(Arc::new(FixedLinkKeys(LinkKeySet {
            current: vec![7; 32],
            previous: Vec::new(),
        })));
        let mut job = Job::new(
            "0192f0c5-3b7a-7cc3-9a2e-1f2d3c4b5a69".into(),
            "demo".into(),
            "m@x.io".into(),
            ExportRequest::parse(br#"{"format":"CSV"}"#).unwrap(),
        );
        job.state = JobState::Succeeded;
        let notice = Notice {
            job: &job,
            download: Some("https://api/v1/exports/x/download?sig=s".into()),
            report: None,
            files: Vec::new(),
            status: "https://api/v1/exports/x".into(),
            links_expire: chrono::DateTime::from_timestamp(1_767_225_600, 0).unwrap(),
        };
        let mut params = Map::new();
        params.insert("url".into(), format!("http://{RECEIVER}/hook").into());
        let sealed = sealer.seal(SECRET, "demo").await.unwrap();
        params.insert("sealedSecret".into(), sealed.into());
        let receiver = Arc::new(Scripted {
            answers: answers.to_vec(),
            received: Mutex::default(),
        });
        let backends = Backends {
            mailer: Arc::new(NoMail),
            sealer: Arc::new(sealer),
            outbound: OutboundPolicy::new(vec![RECEIVER.into()]).with_client(receiver.clone()),
        };
        let announced = DeliveryMethod::announce(&Webhook, &notice, &params, &backends).await;
        let received = std::mem::take(&mut *receiver.received.lock().unwrap());
        (announced, received)
    }

    fn outcomes(attempts: &[DeliveryAttempt]) -> Vec<&str> {
        attempts.iter().map(|a| a.outcome.as_str()).collect()
    }

    fn header<'a>(received: &'a Received, name: &str) -> &'a str {
        let found = received.headers.iter().find(|(n, _)| n == name);
        found.map_or("", |(_, v)| v.as_str())
    }

    #[tokio::test(start_paused = true)]
    async fn a_5xx_is_tried_again_with_the_same_signed_event_to_the_checked_address() {
        let (announced, received) = announce(&[Some(503), Some(204)]).await;
        let announced = announced.unwrap();
        assert_eq!(announced.announced, Announced::Posted);
        assert_eq!(outcomes(&announced.attempts), ["HTTP 503", "HTTP 204"]);
        assert_eq!(received.len(), 2);
        assert_eq!(
            received[0].body, received[1].body,
            "a retry sends the same event"
        );
        for post in &received {
            assert_eq!(post.addrs, [RECEIVER.parse::<SocketAddr>().unwrap()]);
            assert_eq!(
                header(post, "labelport-event-id"),
                "0192f0c5-3b7a-7cc3-9a2e-1f2d3c4b5a69.succeeded"
            );
            let signature = header(post, "labelport-signature");
            let t: i64 = signature[2..signature.find(',').unwrap()].parse().unwrap();
            assert_eq!(
                signature,
                signature_header(SECRET.as_bytes(), t, &post.body)
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_redirect_or_a_4xx_is_an_answer_and_not_tried_again() {
        for (status, why) in [
            (
                302,
                "answered 302 (redirects are not followed); it is not called again",
            ),
            (410, "answered 410; it is not called again"),
        ] {
            let (announced, received) = announce(&[Some(status), Some(200)]).await;
            let refused = announced.unwrap_err();
            assert!(refused.permanent, "{status}");
            assert!(refused.what.ends_with(why), "{}", refused.what);
            assert_eq!(received.len(), 1, "{status}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_receiver_that_never_answers_is_cut_off_at_the_policys_timeout_and_retried_later() {
        let (announced, received) = announce(&[None]).await;
        let failed = announced.unwrap_err();
        assert!(!failed.permanent, "SQS tries the run again");
        assert_eq!(
            outcomes(&failed.attempts),
            ["no answer within 10s", "no answer within 10s"]
        );
        assert_eq!(received.len(), 2);
    }
}
