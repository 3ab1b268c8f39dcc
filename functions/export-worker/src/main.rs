//! export-worker: runs the exports the export queue holds, and on its schedule ends the
//! ones nothing will end.
use labelport_aws::{config, functions, lambda};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    config::init_tracing();
    let worker = &functions::worker().await?;
    let sweeper = &functions::sweeper().await?;
    let backoff = &functions::backoff().await;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        lambda::worker_event(worker, sweeper, backoff.as_ref(), event.payload)
    }))
    .await
}
