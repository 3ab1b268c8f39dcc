//! Lambda glue: SQS batches with partial failures, the API function's two event
//! sources (HTTP API requests and S3 drops of request files), and the worker's two (its
//! queue, and the schedule that sweeps abandoned jobs).

use aws_lambda_events::event::s3::S3Event;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use labelport_core::api::{Api, DropOutcome};
use labelport_core::error::chain;
use labelport_core::error::RedeliverAfter;
use labelport_core::messages;
use labelport_core::sweep::Sweeper;
use labelport_core::worker::Worker;
use lambda_http::request::LambdaRequest;
use lambda_runtime::{Error, LambdaEvent, Service};
use serde_json::Value;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument as _;

/// How long a failed message waits before SQS delivers it again: exponential in its
/// receive count with jitter, instead of the queue's visibility timeout (which must cover
/// the longest run, 90 minutes for exports), so a passing storage hiccup costs seconds.
#[derive(Debug, Clone)]
pub struct Backoff {
    /// The client that changes the message's visibility.
    pub sqs: aws_sdk_sqs::Client,
    /// The queue the messages come from.
    pub queue_url: String,
    /// The wait after the first failure, before jitter.
    pub base: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Backoff {
    /// The wait before delivery number `receive_count + 1`: `base × 2^(count − 1)`, at
    /// most `max`, then somewhere between half and all of it, so messages that failed
    /// together do not come back together.
    pub fn delay(&self, receive_count: u32) -> Duration {
        let doublings = receive_count.saturating_sub(1).min(20);
        let full = self.base.saturating_mul(1 << doublings).min(self.max);
        full.mul_f64(0.5 + rand::random::<f64>() / 2.0)
    }

    /// Makes `receipt` visible again after `delay`. A failure only means the queue's own
    /// visibility timeout applies: logged, not fatal.
    async fn apply(&self, message_id: &str, receipt: &str, delay: Duration) {
        // SQS's longest visibility timeout is 12 hours.
        let delay = delay.min(Duration::from_secs(12 * 3600));
        let changed = self
            .sqs
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(i32::try_from(delay.as_secs()).unwrap_or(i32::MAX))
            .send()
            .await;
        match changed {
            Ok(_) => tracing::info!(message_id, delay_s = delay.as_secs(), "retry scheduled"),
            Err(e) => {
                tracing::warn!(message_id, error = %chain(&e), "could not schedule the retry; the queue's visibility timeout applies")
            }
        }
    }
}

/// Runs `handle` on each message of a batch and reports the ones that failed, so SQS
/// retries only those (`ReportBatchItemFailures` in template.yaml), after `backoff`.
pub async fn sqs_batch<F, Fut, T, E>(
    event: SqsEvent,
    backoff: Option<&Backoff>,
    handle: F,
) -> SqsBatchResponse
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    T: std::fmt::Debug,
    E: std::error::Error + 'static,
{
    sqs_batch_counted(event, backoff, |body, _| handle(body)).await
}

/// [`sqs_batch`], telling `handle` how many times SQS has delivered the message (this
/// time included), so a handler can give up cleanly on the last delivery before the DLQ.
pub async fn sqs_batch_counted<F, Fut, T, E>(
    event: SqsEvent,
    backoff: Option<&Backoff>,
    handle: F,
) -> SqsBatchResponse
where
    F: Fn(String, u32) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    T: std::fmt::Debug,
    E: std::error::Error + 'static,
{
    // The messages of a batch run at once: one slow receiver (a webhook that takes its
    // full timeout) does not hold the others back toward the function's timeout.
    let handled = event.records.into_iter().map(|message| {
        let handle = &handle;
        // Every line of the message's handling carries its export's correlation id.
        let span = tracing::info_span!(
            "message",
            correlation_id = tracing::field::Empty
        );
        if let Some(id) = message.body.as_deref().and_then(correlation_of) {
            span.record("correlation_id", id.as_str());
        }
        async move {
            let id = message.message_id.unwrap_or_default();
            let receive_count = message
                .attributes
                .get("ApproximateReceiveCount")
                .and_then(|n| n.parse().ok())
                .unwrap_or(1);
            // A handler's error may say when its message should come back (a job held
            // by a running attempt: when the attempt's lease ends).
            let outcome = match message.body {
                Some(body) => handle(body, receive_count)
                    .await
                    .map_err(|e| (chain(&e), RedeliverAfter::of(&e))),
                None => Err(("message without a body".to_owned(), None)),
            };
            match outcome {
                Ok(outcome) => {
                    tracing::info!(message_id = %id, ?outcome, "message handled");
                    None
                }
                Err((error, asked)) => {
                    if asked.is_some() {
                        tracing::info!(message_id = %id, %error, "message returned to the queue until then");
                    } else {
                        tracing::error!(message_id = %id, %error, "message failed; SQS will retry it");
                    }
                    if let (Some(backoff), Some(receipt)) =
                        (backoff, message.receipt_handle.as_deref())
                    {
                        let delay = asked.unwrap_or_else(|| backoff.delay(receive_count));
                        backoff.apply(&id, receipt, delay).await;
                    }
                    let mut failure = BatchItemFailure::default();
                    failure.item_identifier = id;
                    Some(failure)
                }
            }
        }
        .instrument(span)
    });
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = futures::future::join_all(handled)
        .await
        .into_iter()
        .flatten()
        .collect();
    response
}

/// The worker function: SQS batches of export messages go to the worker; the events of
/// its schedule (EventBridge's `Scheduled Event`) run the sweeper and answer its report.
pub async fn worker_event(
    worker: &Worker,
    sweeper: &Sweeper,
    backoff: Option<&Backoff>,
    payload: Value,
) -> Result<Value, Error> {
    if is_scheduled_event(&payload) {
        let report = sweeper.sweep().await.map_err(|e| chain(&e))?;
        return Ok(serde_json::to_value(report)?);
    }
    let event: SqsEvent = serde_json::from_value(payload)?;
    let response = sqs_batch(
        event,
        backoff,
        |body| async move { worker.handle(&body).await },
    )
    .await;
    Ok(serde_json::to_value(response)?)
}

/// The `correlationId` of a message body ([`labelport_core::messages`]), when it has a
/// well-formed one.
fn correlation_of(body: &str) -> Option<String> {
    let body: Value = serde_json::from_str(body).ok()?;
    body["correlationId"]
        .as_str()
        .filter(|id| messages::is_well_formed(id))
        .map(str::to_owned)
}

fn is_scheduled_event(payload: &Value) -> bool {
    payload["source"] == "aws.events" && payload["detail-type"] == "Scheduled Event"
}

/// The API function: HTTP API events go to the router, S3 events to the drop handler.
pub async fn api_event(
    api: Arc<Api>,
    router: axum::Router,
    event: LambdaEvent<Value>,
) -> Result<Value, Error> {
    let LambdaEvent { payload, context } = event;
    if is_s3_event(&payload) {
        let event: S3Event = serde_json::from_value(payload)?;
        let mut accepted = Vec::new();
        for record in event.records {
            let Some(key) = record.s3.object.key.as_deref() else {
                continue;
            };
            let key = decode_s3_key(key);
            // S3 may report one put twice; the sequencer tells puts of one key apart.
            let event_id = record
                .s3
                .object
                .sequencer
                .as_deref()
                .or(record.s3.object.version_id.as_deref())
                .unwrap_or_default();
            // Who put the object: checked against the deployment's request writers.
            let writer = record
                .principal_id
                .principal_id
                .as_deref()
                .unwrap_or_default();
            match api.accept_dropped_request(&key, event_id, writer).await {
                Ok(DropOutcome::Accepted(id)) => {
                    tracing::info!(key, export_id = %id, "dropped request accepted");
                    accepted.push(id);
                }
                Ok(DropOutcome::Refused(e)) => {
                    tracing::warn!(key, code = e.code, error = %e.message, "dropped request refused")
                }
                Ok(DropOutcome::Ignored(why)) => tracing::info!(key, why, "not a request file"),
                // Lambda's async retries (and the on-failure destination) take it from here.
                Err(e) => return Err(chain(&e).into()),
            }
        }
        return Ok(serde_json::json!({ "accepted": accepted }));
    }
    let mut payload = payload;
    let correlation_id = correlate(&mut payload);
    let request: LambdaRequest = serde_json::from_value(payload)?;
    let mut adapter = lambda_http::Adapter::from(router);
    let response = adapter
        .call(LambdaEvent::new(request, context))
        .instrument(tracing::info_span!(
            "request",
            correlation_id = correlation_id.as_str()
        ))
        .await?;
    Ok(serde_json::to_value(response)?)
}

/// The HTTP request's correlation id: its `x-correlation-id` header when well-formed,
/// else API Gateway's request id, else a new one. It is put in the header (replacing a
/// malformed one) so the router records the same id on the export it creates.
fn correlate(payload: &mut Value) -> String {
    let header = payload["headers"][messages::CORRELATION_HEADER].as_str();
    let request_id = payload["requestContext"]["requestId"].as_str();
    let id = messages::correlation_id([header, request_id]);
    if let Some(headers) = payload.get_mut("headers").and_then(Value::as_object_mut) {
        headers.insert(
            messages::CORRELATION_HEADER.to_owned(),
            Value::from(id.as_str()),
        );
    } else if let Some(event) = payload.as_object_mut() {
        event.insert(
            "headers".to_owned(),
            serde_json::json!({ messages::CORRELATION_HEADER: id.as_str() }),
        );
    }
    id
}

fn is_s3_event(payload: &Value) -> bool {
    payload["Records"]
        .as_array()
        .and_then(|r| r.first())
        .is_some_and(|r| r["eventSource"] == "aws:s3")
}

/// S3 event keys are URL-encoded with `+` for spaces.
fn decode_s3_key(key: &str) -> String {
    let bytes = key.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_keys_are_url_decoded() {
        assert_eq!(
            decode_s3_key("requests/demo/a+b%2Bc.json"),
            "requests/demo/a b+c.json"
        );
        assert_eq!(decode_s3_key("requests/demo/x%2"), "requests/demo/x%2");
    }

    #[test]
    fn an_http_request_is_correlated_by_its_header_else_its_request_id() {
        let mut event = serde_json::json!({
            "headers": {"x-correlation-id": "from-the-caller"},
            "requestContext": {"requestId": "JTHoQiM4oAMEVTQ="}
        });
        assert_eq!(correlate(&mut event), "from-the-caller");
        let mut event = serde_json::json!({
            "headers": {"x-correlation-id": "not well formed"},
            "requestContext": {"requestId": "JTHoQiM4oAMEVTQ="}
        });
        assert_eq!(correlate(&mut event), "JTHoQiM4oAMEVTQ=");
        assert_eq!(event["headers"]["x-correlation-id"], "JTHoQiM4oAMEVTQ=");
        let mut event = serde_json::json!({"requestContext": {}});
        let id = correlate(&mut event);
        assert_eq!(event["headers"]["x-correlation-id"], id.as_str());
        assert_eq!(
            correlation_of(r#"{"exportId":"x","correlationId":"c-1"}"#).as_deref(),
            Some("c-1")
        );
        assert_eq!(correlation_of(r#"{"exportId":"x"}"#), None);
    }

    #[test]
    fn s3_events_are_told_from_http_events() {
        assert!(is_s3_event(
            &serde_json::json!({"Records":[{"eventSource":"aws:s3"}]})
        ));
        assert!(!is_s3_event(
            &serde_json::json!({"version":"2.0","routeKey":"$default"})
        ));
    }

    #[test]
    fn schedule_events_are_told_from_queue_events() {
        assert!(is_scheduled_event(
            &serde_json::json!({"source":"aws.events","detail-type":"Scheduled Event","detail":{}})
        ));
        assert!(!is_scheduled_event(
            &serde_json::json!({"Records":[{"eventSource":"aws:sqs"}]})
        ));
    }

    #[test]
    fn backoff_doubles_with_jitter_and_stops_at_its_maximum() {
        let backoff = Backoff {
            sqs: aws_sdk_sqs::Client::from_conf(
                aws_sdk_sqs::Config::builder()
                    .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
                    .build(),
            ),
            queue_url: "q".into(),
            base: Duration::from_secs(30),
            max: Duration::from_secs(900),
        };
        for _ in 0..200 {
            for (count, full) in [(1, 30), (2, 60), (3, 120), (5, 480), (6, 900), (40, 900)] {
                let delay = backoff.delay(count).as_secs_f64();
                let full = f64::from(full);
                assert!(
                    delay >= full / 2.0 && delay <= full,
                    "receive {count}: {delay} s"
                );
            }
        }
    }
}
