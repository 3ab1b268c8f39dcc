//! export-worker: runs the exports the export queue holds.
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use labelport_aws::{config, functions, lambda};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    config::init_tracing();
    let worker = &functions::worker().await?;
    let backoff = &functions::backoff().await;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| async move {
        Ok::<SqsBatchResponse, Error>(
            lambda::sqs_batch(event.payload, backoff.as_ref(), |body| async move {
                worker.handle(&body).await
            })
            .await,
        )
    }))
    .await
}
