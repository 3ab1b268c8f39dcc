//! export-notifier: tells customers their exports ended (e-mail, webhook, or nothing to
//! send); on the last delivery SQS allows, a delivery that still fails is recorded as
//! failed instead of going to the DLQ unexplained.
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use labelport_aws::{config, functions, lambda};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    config::init_tracing();
    let notifier = &functions::notifier().await?;
    let backoff = &functions::backoff().await;
    let last = functions::notify_receives()?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| async move {
        Ok::<SqsBatchResponse, Error>(
            lambda::sqs_batch_counted(
                event.payload,
                backoff.as_ref(),
                |body, receives| async move { notifier.handle_try(&body, receives >= last).await },
            )
            .await,
        )
    }))
    .await
}
