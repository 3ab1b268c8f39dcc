//! Lambda glue: SQS batches with partial failures, and the API function's two event
//! sources (HTTP API requests and S3 drops of request files).

use aws_lambda_events::event::s3::S3Event;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use labelport_core::api::{Api, DropOutcome};
use labelport_core::error::chain;
use lambda_http::request::LambdaRequest;
use lambda_runtime::{Error, LambdaEvent, Service};
use serde_json::Value;
use std::future::Future;
use std::sync::Arc;

/// Runs `handle` on each message of a batch and reports the ones that failed, so SQS
/// retries only those (`ReportBatchItemFailures` in template.yaml).
pub async fn sqs_batch<F, Fut, T, E>(event: SqsEvent, handle: F) -> SqsBatchResponse
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    T: std::fmt::Debug,
    E: std::error::Error + 'static,
{
    let mut response = SqsBatchResponse::default();
    for message in event.records {
        let id = message.message_id.unwrap_or_default();
        let outcome = match message.body {
            Some(body) => handle(body).await.map_err(|e| chain(&e)),
            None => Err("message without a body".to_owned()),
        };
        match outcome {
            Ok(outcome) => tracing::info!(message_id = %id, ?outcome, "message handled"),
            Err(error) => {
                tracing::error!(message_id = %id, %error, "message failed; SQS will retry it");
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                response.batch_item_failures.push(failure);
            }
        }
    }
    response
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
            match api.accept_dropped_request(&key).await {
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
    let request: LambdaRequest = serde_json::from_value(payload)?;
    let mut adapter = lambda_http::Adapter::from(router);
    let response = adapter.call(LambdaEvent::new(request, context)).await?;
    Ok(serde_json::to_value(response)?)
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
    fn s3_events_are_told_from_http_events() {
        assert!(is_s3_event(
            &serde_json::json!({"Records":[{"eventSource":"aws:s3"}]})
        ));
        assert!(!is_s3_event(
            &serde_json::json!({"version":"2.0","routeKey":"$default"})
        ));
    }
}
