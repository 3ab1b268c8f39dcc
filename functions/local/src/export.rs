//! `labelport export`: one project folder to one file, with the worker's pipeline,
//! encoders and filters but no queue and no job record.

use anyhow::Context;
use labelport_core::pipeline::{Options, PipelineError, Plan, Source};
use labelport_core::request::{ExportRequest, Filters, InvalidLines};
use labelport_core::source::{decompress, is_task_file};
use labelport_encoders::{Compression, FieldToggles, Format};
use labelport_model::{Project, TaskState};
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

/// Options of `labelport export`.
#[derive(clap::Args)]
pub struct Args {
    /// The project folder (holding project.json and tasks/).
    #[arg(long)]
    project: PathBuf,
    /// CSV or NDJSON.
    #[arg(long, value_parser = parse_format)]
    format: Format,
    /// The file to write (written whole or not at all).
    #[arg(long)]
    out: PathBuf,
    /// none, gzip or zstd.
    #[arg(long, default_value = "none", value_parser = parse_compression)]
    compression: Compression,
    /// Task states to keep, comma-separated (default: the format's).
    #[arg(long, value_delimiter = ',', value_parser = parse_state)]
    states: Option<Vec<TaskState>>,
    /// Workflow stages to keep, comma-separated (default: the format's).
    #[arg(long, value_delimiter = ',')]
    stages: Option<Vec<String>>,
    /// NDJSON: include each annotation's metadata.
    #[arg(long)]
    annotation_metadata: bool,
    /// NDJSON: include every submission, stage by stage.
    #[arg(long)]
    stage_history: bool,
    /// NDJSON: video key frames only.
    #[arg(long)]
    only_key_frames: bool,
    /// Skip malformed lines (counted and listed) instead of failing.
    #[arg(long)]
    skip_invalid_lines: bool,
    /// Encoder threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
}

fn parse_format(s: &str) -> Result<Format, String> {
    serde_json::from_value(serde_json::Value::String(s.to_uppercase())).map_err(|e| e.to_string())
}

fn parse_compression(s: &str) -> Result<Compression, String> {
    serde_json::from_value(serde_json::Value::String(s.to_lowercase())).map_err(|e| e.to_string())
}

fn parse_state(s: &str) -> Result<TaskState, String> {
    serde_json::from_value(serde_json::Value::String(s.to_lowercase())).map_err(|e| e.to_string())
}

/// Runs the export.
pub fn run(args: Args) -> anyhow::Result<()> {
    let manifest_path = args.project.join("project.json");
    let manifest = std::fs::read(&manifest_path)
        .with_context(|| format!("reading {}", manifest_path.display()))?;
    let project: Project = serde_json::from_slice(&manifest).with_context(|| {
        format!(
            "{} is not a valid project manifest",
            manifest_path.display()
        )
    })?;
    let request = ExportRequest {
        format: args.format,
        filters: Filters {
            states: args.states,
            stages: args.stages,
        },
        fields: FieldToggles {
            annotation_metadata: args.annotation_metadata,
            stage_history: args.stage_history,
            only_key_frames: args.only_key_frames,
        },
        compression: args.compression,
        delivery: Default::default(),
        invalid_lines: if args.skip_invalid_lines {
            InvalidLines::Skip
        } else {
            InvalidLines::Fail
        },
    }
    .validate(&project, "")
    .map_err(|e| anyhow::anyhow!("--{}: {}", flag_of(&e.field), e.message))?;
    let threads = args.threads.unwrap_or(Options::default().threads);
    let plan = Plan::new(&request, &project, threads)
        .map_err(|e| anyhow::anyhow!("--{}: {}", flag_of(&e.field), e.message))?;

    let tasks_dir = args.project.join("tasks");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&tasks_dir)
        .with_context(|| format!("listing {}", tasks_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(is_task_file)
        })
        .collect();
    files.sort();
    let sources = files.into_iter().map(|path| {
        let name = path.display().to_string();
        let file = std::fs::File::open(&path).map_err(|source| PipelineError::Read {
            file: name.clone(),
            source,
        })?;
        let reader = decompress(&name, Box::new(file)).map_err(|source| PipelineError::Read {
            file: name.clone(),
            source,
        })?;
        Ok(Source { name, reader })
    });

    // Written beside the target and renamed at the end: a failed export leaves no file.
    let tmp = args.out.with_extension("partial");
    let mut out = std::io::BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?,
    );
    let mut written = 0u64;
    let mut sink = |bytes: &[u8]| -> Result<(), labelport_core::ports::BoxError> {
        written += bytes.len() as u64;
        out.write_all(bytes).map_err(Into::into)
    };
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {elapsed} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    let started = Instant::now();
    let mut on_progress = |p: &labelport_core::job::Progress| {
        bar.set_message(format!(
            "{} tasks read, {} exported, {:.0} MB",
            p.tasks_read,
            p.tasks_exported,
            p.bytes_read as f64 / 1e6
        ));
        bar.tick();
    };
    let outcome = plan.run(sources, &mut sink, &mut on_progress);
    bar.finish_and_clear();
    let summary = match outcome {
        Ok(summary) => summary,
        Err(e) => {
            drop(out);
            let _ = std::fs::remove_file(&tmp);
            return Err(anyhow::anyhow!(labelport_core::error::chain(&e)));
        }
    };
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&tmp, &args.out)?;
    let secs = started.elapsed().as_secs_f64();
    let p = &summary.progress;
    eprintln!(
        "exported {} of {} tasks ({} filtered out, {} lines skipped) from {} files: {:.1} MB read, {:.1} MB written in {secs:.2} s ({:.0} MB/s, {:.0} tasks/s) → {}",
        p.tasks_exported,
        p.tasks_read,
        p.tasks_filtered,
        p.lines_skipped,
        p.files_read,
        p.bytes_read as f64 / 1e6,
        written as f64 / 1e6,
        p.bytes_read as f64 / 1e6 / secs,
        p.tasks_read as f64 / secs,
        args.out.display()
    );
    for skip in &summary.skipped {
        eprintln!(
            "skipped {}, line {}: {}",
            skip.file, skip.line, skip.message
        );
    }
    Ok(())
}

/// The CLI flag for a request field (`filters.states[0]` → `states`).
fn flag_of(field: &str) -> String {
    let last = field.rsplit('.').next().unwrap_or(field);
    let last = last.split('[').next().unwrap_or(last);
    let mut flag = String::new();
    for c in last.chars() {
        if c.is_ascii_uppercase() {
            flag.push('-');
            flag.push(c.to_ascii_lowercase());
        } else {
            flag.push(c);
        }
    }
    flag
}
