//! export-notifier: tells customers their exports ended (download or e-mail).
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use labelport_aws::{config, functions, lambda};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    config::init_tracing();
    let notifier = &functions::notifier().await?;
    let backoff = &functions::backoff().await;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| async move {
        Ok::<SqsBatchResponse, Error>(
            lambda::sqs_batch(event.payload, backoff.as_ref(), |body| async move {
                notifier.handle(&body).await
            })
            .await,
        )
    }))
    .await
}
