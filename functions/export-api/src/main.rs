//! export-api: the HTTP API (API Gateway, JWT authorizer) and S3 request drops.
use labelport_aws::{config, functions, lambda};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    config::init_tracing();
    let api = functions::api().await?;
    // One embedded-metric-format line per request: its route template and status.
    let router = labelport_core::api::metered(
        labelport_core::api::router(api.clone()),
        functions::metrics(),
    );
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        lambda::api_event(api.clone(), router.clone(), event)
    }))
    .await
}
