//! CUSTOM programs written to exhaust the worker, end to end against the AWS emulator:
//! each ends as a refusal of every task or a failed export, with the reason, and the
//! worker serves the next message as if nothing had happened.
//!
//! Run by `infra/test.sh`, which starts the emulator: `--features labelport-tests/e2e`.
#![cfg(feature = "e2e")]
#![allow(clippy::unwrap_used)]

use labelport_core::job::JobState;
use labelport_core::worker::Outcome;
use labelport_generate::Config;
use labelport_model::Mode;
use labelport_tests::{request, run_worker, Stack, MANAGER};
use serde_json::Value;
use std::time::Instant;

/// Requests CUSTOM `program`, runs the worker on it, and returns its status.
async fn custom_export(stack: &Stack, program: &str, ends: JobState) -> Value {
    let body = serde_json::json!({"format": "CUSTOM", "program": program}).to_string();
    let id = request(stack, "hostile", &body).await;
    let started = Instant::now();
    assert_eq!(run_worker(stack).await.1, Outcome::Ran(ends), "{program}");
    let took = started.elapsed();
    let (code, _, status) = stack.status(&id, MANAGER).await;
    assert_eq!(code, 200, "{status}");
    let progress = &status["progress"];
    eprintln!(
        "{program}: {ends:?} in {took:?} ({} tasks read, {} left out)",
        progress["tasksRead"], progress["tasksLeftOut"]
    );
    status
}

/// The errors report of an export: one JSON object a line.
async fn errors_report(stack: &Stack, status: &Value) -> Vec<Value> {
    let files = status["result"]["files"].as_array().unwrap();
    let report = files
        .iter()
        .find(|f| f["name"] == "errors.ndjson")
        .unwrap_or_else(|| panic!("no errors report in {status}"));
    let bytes = stack.get(report["key"].as_str().unwrap()).await.unwrap();
    let text = String::from_utf8(bytes).unwrap();
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_programs_are_refused_and_the_worker_goes_on() {
    let stack = Stack::new().await;
    let mut config = Config::new("hostile", Mode::Element, 1000, 11);
    config.tasks_per_file = 400;
    stack.seed(&config).await;

    // Programs that grow a value without end: every task is left out with the bound it
    // broke, and the export holds what was left.
    for (program, says) in [
        (
            r#"reduce range(31) as $i ("x"; . + .)"#,
            "the program failed on this task: the program built a string longer than 16 MiB",
        ),
        (
            "reduce range(1e6) as $i (0; [.])",
            "the program failed on this task: the program built a value nested more than 256 deep",
        ),
    ] {
        let status = custom_export(&stack, program, JobState::Succeeded).await;
        let progress = &status["progress"];
        let left_out = progress["tasksLeftOut"].as_u64().unwrap();
        assert!(left_out > 0, "{status}");
        assert_eq!(progress["tasksExported"], 0, "{status}");
        let report = errors_report(&stack, &status).await;
        assert_eq!(report.len() as u64, left_out, "{status}");
        for line in report {
            assert!(line["taskId"].is_string(), "{line}");
            assert_eq!(line["reason"], says, "{program}");
        }
    }

    // 1 MB per task is within a task's bound; the tasks of one block together are not:
    // the export fails, saying so, before the block's output is held in memory.
    let status = custom_export(&stack, r#""x" * 1000000"#, JobState::Failed).await;
    assert_eq!(status["state"], "FAILED", "{status}");
    assert_eq!(status["error"]["code"], "OUTPUT_LIMIT", "{status}");
    let message = status["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("the program's outputs passed 32 MiB for one block of tasks"),
        "{status}"
    );

    // The same worker serves the next export.
    let status = custom_export(&stack, "{id: .task.taskId}", JobState::Succeeded).await;
    assert_eq!(status["state"], "SUCCEEDED", "{status}");
    assert!(
        status["progress"]["tasksExported"].as_u64().unwrap() > 0,
        "{status}"
    );
    assert_eq!(status["progress"]["tasksLeftOut"], 0, "{status}");
}
