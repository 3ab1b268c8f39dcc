//! `labelport demo`: the whole export path in one process, on a generated project.

use crate::embedded::Embedded;
use anyhow::Context;
use labelport_core::job::{Job, JobState, JobStore};
use labelport_core::request::ExportRequest;
use labelport_core::service::Caller;
use labelport_engine::filter::TaskFilter;
use labelport_generate::{self as generate, Config};
use labelport_model::{Mode, Task};
use std::io::BufRead;
use std::path::PathBuf;
use std::time::Instant;

const PROJECT: &str = "demo";
const MANAGER: &str = "manager@example.com";

/// Options of `labelport demo`.
#[derive(clap::Args)]
pub struct Args {
    /// The data folder (the local "bucket").
    #[arg(long, default_value = "labelport-data")]
    data: PathBuf,
    /// Tasks in the sample project.
    #[arg(long, default_value_t = 200_000)]
    tasks: u64,
    /// The sample project's mode.
    #[arg(long, default_value = "classification")]
    mode: Mode,
    /// Generator seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// Runs the demo.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let config = Config::new(PROJECT, args.mode, args.tasks, args.seed);
    let project_dir = args.data.join("projects").join(PROJECT);
    if project_dir.exists() {
        std::fs::remove_dir_all(&project_dir)
            .with_context(|| format!("replacing {}", project_dir.display()))?;
    }
    let started = Instant::now();
    let generated = generate::write_project(&config, &args.data)?;
    println!(
        "1. generated project `{PROJECT}` ({} mode): {} tasks, {:.1} MB in {} files under {} ({:.2} s)",
        args.mode,
        generated.tasks,
        generated.bytes as f64 / 1e6,
        generated.files.len(),
        project_dir.display(),
        started.elapsed().as_secs_f64()
    );

    let mut embedded = Embedded::open(&args.data, "http://127.0.0.1:8080")?;
    let caller = Caller::person(MANAGER, true);
    let requests = [
        r#"{"format":"CSV","delivery":{"method":"EMAIL"}}"#,
        r#"{"format":"NDJSON","fields":{"stageHistory":true},"filters":{"stages":["Complete"]}}"#,
    ];
    let mut ids = Vec::new();
    for body in requests {
        let accepted = embedded
            .api
            .exports()
            .create(&caller, PROJECT, body.as_bytes(), None, None)
            .await?;
        println!(
            "2. {MANAGER} requested {body} -> export {} {:?}",
            accepted.id, accepted.state
        );
        ids.push(accepted.id);
    }

    let started = Instant::now();
    embedded.drain().await;
    let secs = started.elapsed().as_secs_f64();

    let jobs = JobStore::new(embedded.store.clone());
    let mut read = 0u64;
    for id in &ids {
        let job = jobs.get(id).await?.job;
        read += job.progress.bytes_read;
        report(&embedded, &job)?;
        check_rows(&config, &job)?;
    }
    println!(
        "4. worker: both exports in {secs:.2} s, {:.0} MB of task lines read ({:.0} MB/s, {:.0} tasks/s)",
        read as f64 / 1e6,
        read as f64 / 1e6 / secs,
        (2 * generated.tasks) as f64 / secs
    );
    let outbox = embedded.data.join("outbox");
    let mut mails: Vec<_> = std::fs::read_dir(&outbox)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    mails.sort();
    if let Some(mail) = mails.last() {
        let text = std::fs::read_to_string(mail)?;
        let subject = text
            .lines()
            .find(|l| l.starts_with("Subject: "))
            .unwrap_or_default();
        let link = text
            .lines()
            .find(|l| l.contains("/download"))
            .unwrap_or_default();
        println!(
            "5. notifier: e-mail written to {}\n   {subject}\n   {}",
            mail.display(),
            link.trim()
        );
    }
    println!(
        "\nNext: `labelport serve` serves the API on http://127.0.0.1:8080 over the same folder;\n`labelport token --email {MANAGER}` prints a token for it."
    );
    Ok(())
}

fn report(embedded: &Embedded, job: &Job) -> anyhow::Result<()> {
    let format = job.request.format.as_str();
    if job.state != JobState::Succeeded {
        let why = job
            .error
            .as_ref()
            .map_or("unknown".to_owned(), |e| e.message.clone());
        anyhow::bail!(
            "the {format} export {} ended {:?}: {why}",
            job.id,
            job.state
        );
    }
    let Some(file) = job.result.as_ref().and_then(|r| r.files.first()) else {
        anyhow::bail!("the {format} export {} has no file", job.id);
    };
    let path = embedded.data.join(&file.key);
    println!(
        "3. {format} export {}: {} of {} tasks, {:.1} MB, sha256 {}…\n   {}",
        job.id,
        job.progress.tasks_exported,
        job.progress.tasks_read,
        file.bytes as f64 / 1e6,
        &file.sha256[..12],
        path.display()
    );
    let reader = std::io::BufReader::new(std::fs::File::open(&path)?);
    for line in reader.lines().take(if format == "CSV" { 4 } else { 1 }) {
        let line = line?;
        let shown: String = line.chars().take(160).collect();
        let more = if shown.len() < line.len() { " …" } else { "" };
        println!("   | {shown}{more}");
    }
    Ok(())
}

/// The export's row count must equal the generated tasks the request's filters keep.
fn check_rows(config: &Config, job: &Job) -> anyhow::Result<()> {
    let request: &ExportRequest = &job.request;
    let spec = request.spec();
    let states = spec.effective_states();
    let filter = TaskFilter::new(states.as_deref(), spec.effective_stages());
    let mut line = Vec::new();
    let mut expected = 0u64;
    for index in 0..config.tasks {
        line.clear();
        generate::write_task_line(config, index, &mut line);
        let task: Task<'_> = serde_json::from_slice(&line)?;
        expected += u64::from(filter.keep(&task));
    }
    anyhow::ensure!(
        job.progress.tasks_exported == expected,
        "the {} export has {} rows but the filters keep {expected} generated tasks",
        request.format.as_str(),
        job.progress.tasks_exported
    );
    println!("   ✓ {expected} rows, one per generated task the filters keep");
    Ok(())
}
