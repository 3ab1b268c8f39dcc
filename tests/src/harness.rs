//! Builders the export-path tests share: the projects they seed, the stack's store and
//! notify queue for workers a test builds itself, and requests through another router.

use crate::{call_router, Stack, MANAGER};
use labelport_aws::{S3Store, SqsQueue};
use labelport_generate::Config;
use labelport_model::Mode;
use std::sync::Arc;

/// A project of `tasks` tasks with seed 7, spread over up to three task files so that
/// an export reads more than one.
pub fn project_config(project: &str, mode: Mode, tasks: u64) -> Config {
    let mut config = Config::new(project, mode, tasks, 7);
    config.tasks_per_file = tasks / 3 + 1;
    config
}

/// The export's store and notify queue, for workers built by a test.
pub fn backends(stack: &Stack) -> (Arc<S3Store>, Arc<SqsQueue>) {
    (
        Arc::new(S3Store::new(stack.s3.clone(), &stack.bucket)),
        Arc::new(SqsQueue::new(stack.sqs.clone(), &stack.notify_queue)),
    )
}

/// POSTs `body` to `project` through `router` as the manager.
pub async fn post_through(
    router: &axum::Router,
    project: &str,
    body: &str,
    idempotency_key: Option<&str>,
) -> (u16, http::HeaderMap, serde_json::Value) {
    let key = idempotency_key.map(|key| ("idempotency-key", key));
    call_router(
        router,
        "POST",
        &format!("/v1/projects/{project}/exports"),
        Some(MANAGER),
        key.as_slice(),
        body,
    )
    .await
}
