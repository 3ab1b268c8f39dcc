//! `labelport export`: one project folder to the export's files, with the worker's
//! source listing, decoders, pipeline, encoders and filters, but no queue and no job
//! record.

use crate::store::FsStore;
use anyhow::Context;
use labelport_encoders::{Compression, FieldToggles, Format, FormatOptions};
use labelport_engine::assembly::{FileRole, Files, REPORT_NAME};
use labelport_engine::pipeline::{InvalidLines, Options, Output, PipelineError, Source};
use labelport_engine::plan::{ExportSpec, FieldError, Filters, Plan};
use labelport_engine::progress::Progress;
use labelport_engine::source;
use labelport_engine::store::BoxError;
use labelport_model::{Project, TaskState};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Options of `labelport export`.
#[derive(clap::Args)]
pub struct Args {
    /// The project folder (holding project.json and tasks/).
    #[arg(long)]
    project: PathBuf,
    #[command(flatten)]
    output: OutputArgs,
}

/// What to write and which tasks: the flags `export` and `convert` share.
#[derive(clap::Args)]
pub struct OutputArgs {
    /// The format, by name (`labelport formats` lists them).
    #[arg(long)]
    format: Format,
    /// Where to write: the file of a one-file format; for a format that writes parts,
    /// the name they take after (`--out x.ndjson` gives x-00001.ndjson, ...). An errors
    /// report, if any, goes beside it as `{name}.errors.ndjson`. Written whole or not at all.
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
    /// Keep only tasks whose asset came from these data sources, comma-separated.
    #[arg(long, value_delimiter = ',')]
    data_sources: Option<Vec<String>>,
    /// Keep only tasks in these batches (workflow orders), comma-separated.
    #[arg(long, value_delimiter = ',')]
    batches: Option<Vec<String>>,
    /// Keep only tasks these labelers (e-mails, comma-separated) submitted work on.
    #[arg(long, value_delimiter = ',')]
    labelers: Option<Vec<String>>,
    /// The format's options as the API takes them, a JSON object
    /// (`{"structure":"legacy"}`, `{"split":{"maxTasksPerFile":1000}}`).
    #[arg(long, value_parser = parse_options)]
    options: Option<FormatOptions>,
    /// JSON family: include each annotation's metadata.
    #[arg(long)]
    annotation_metadata: bool,
    /// JSON family: include every submission, stage by stage.
    #[arg(long)]
    stage_history: bool,
    /// Video: key frames only (the JSON family, COCO, YOLO and VOC).
    #[arg(long)]
    only_key_frames: bool,
    /// Skip malformed lines (counted, and listed in the errors report) instead of failing.
    #[arg(long)]
    skip_invalid_lines: bool,
    /// Encoder threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Exit 0 even when the format refused annotations or left tasks out (they are in
    /// the errors report either way). Without it such an export exits with
    /// [`EXIT_LOSS`], so a script cannot miss that the file holds less than the project.
    #[arg(long)]
    allow_loss: bool,
}

/// The exit status of an export or conversion that was written whole but holds less
/// than its source: annotations the format refused, or tasks it left out.
pub const EXIT_LOSS: u8 = 3;

/// An export written whole that lost annotations or tasks (see [`EXIT_LOSS`]).
#[derive(Debug, thiserror::Error)]
#[error("{refused} annotations refused and {left_out} tasks left out by {format}, each listed in {report}; pass --allow-loss to accept that")]
pub struct Lossy {
    refused: u64,
    left_out: u64,
    format: &'static str,
    report: String,
}

fn parse_compression(s: &str) -> Result<Compression, String> {
    serde_json::from_value(serde_json::Value::String(s.to_lowercase())).map_err(|e| e.to_string())
}

fn parse_state(s: &str) -> Result<TaskState, String> {
    serde_json::from_value(serde_json::Value::String(s.to_lowercase())).map_err(|e| e.to_string())
}

fn parse_options(s: &str) -> Result<FormatOptions, String> {
    serde_json::from_str(s).map_err(|e| format!("not a JSON object: {e}"))
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
    // The same listing and opening as the worker's, over the project folder.
    let store: Arc<FsStore> = Arc::new(FsStore::new(&args.project));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let sources = runtime
        .block_on(source::list_sources(store.as_ref(), "tasks/"))
        .with_context(|| format!("listing {}", args.project.join("tasks").display()))?;
    // Decompressed sizes are not known beforehand: a compressed source shows no total.
    let total = sources
        .iter()
        .all(|f| !is_compressed(&f.key))
        .then(|| sources.iter().map(|f| f.size).sum());
    let sources = source::open_all(store, sources, runtime.handle().clone());
    write(&project, sources, total, args.output)
}

/// Whether a source's name says it is compressed (its bytes on disk are not the bytes
/// the progress counts).
pub fn is_compressed(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".gz") || lower.ends_with(".zst")
}

/// Writes `sources`, tasks of `project`, as `args` asks; `total_bytes`, when known, is
/// what the sources hold, for the progress bar's total and ETA.
pub fn write(
    project: &Project,
    sources: impl Iterator<Item = Result<Source, PipelineError>> + Send,
    total_bytes: Option<u64>,
    args: OutputArgs,
) -> anyhow::Result<()> {
    let filters = Filters {
        states: args.states,
        stages: args.stages,
        data_sources: args.data_sources,
        batches: args.batches,
        labelers: args.labelers,
    };
    let options = args.options.unwrap_or_default();
    let spec = ExportSpec {
        format: args.format,
        filters: &filters,
        fields: FieldToggles {
            annotation_metadata: args.annotation_metadata,
            stage_history: args.stage_history,
            only_key_frames: args.only_key_frames,
        },
        compression: args.compression,
        invalid_lines: if args.skip_invalid_lines {
            InvalidLines::Skip
        } else {
            InvalidLines::Fail
        },
        options: &options,
    };
    let flag_error = |e: FieldError| anyhow::anyhow!("--{}: {}", flag_of(&e.field), e.message);
    spec.check(project).map_err(flag_error)?;
    let threads = args.threads.unwrap_or(Options::default().threads);
    let plan = Plan::new(&spec, project, threads).map_err(flag_error)?;

    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("--out: creating {}", dir.display()))?;
    }
    let mut files = FolderFiles::new(&args.out);
    let base = files.base.clone();
    let bar = progress_bar(total_bytes);
    let started = Instant::now();
    let mut on_progress = |p: &Progress| {
        bar.set_message(format!(
            "{} tasks read, {} exported",
            p.tasks_read, p.tasks_exported
        ));
        bar.set_position(p.bytes_read);
    };
    let modified = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let output = Output {
        files: &mut files,
        base: &base,
        modified_unix_secs: modified,
    };
    let outcome = plan.run(sources, output, &mut on_progress);
    bar.finish_and_clear();
    let summary = match outcome {
        Ok(summary) => summary,
        Err(e) => {
            files.discard();
            return Err(anyhow::Error::new(e));
        }
    };
    let written = files.commit()?;
    let secs = started.elapsed().as_secs_f64();
    let p = &summary.progress;
    let bytes_out: u64 = written.iter().map(|(_, bytes)| bytes).sum();
    eprintln!(
        "exported {} of {} tasks ({} filtered out, {} left out by the format, {} lines skipped, {} annotations refused, {} omitted by design) from {} files: {:.1} MB read, {:.1} MB written in {secs:.2} s ({:.0} MB/s, {:.0} tasks/s)",
        p.tasks_exported,
        p.tasks_read,
        p.tasks_filtered,
        p.tasks_left_out,
        p.lines_skipped,
        p.annotations_refused,
        p.annotations_omitted,
        p.files_read,
        p.bytes_read as f64 / 1e6,
        bytes_out as f64 / 1e6,
        p.bytes_read as f64 / 1e6 / secs,
        p.tasks_read as f64 / secs,
    );
    let mut report = None;
    for ((path, bytes), file) in written.iter().zip(&summary.written.files) {
        let what = match file.role {
            FileRole::Export => "",
            FileRole::Errors => {
                report = Some(path.display().to_string());
                " (errors report: what was skipped or left out, one line each)"
            }
        };
        eprintln!("→ {} ({bytes} bytes){what}", path.display());
    }
    if (p.annotations_refused > 0 || p.tasks_left_out > 0) && !args.allow_loss {
        return Err(Lossy {
            refused: p.annotations_refused,
            left_out: p.tasks_left_out,
            format: spec.format.as_str(),
            report: report.unwrap_or_else(|| "the errors report".to_owned()),
        }
        .into());
    }
    Ok(())
}

/// A bar with bytes, rate and ETA when the sources' size is known; a spinner otherwise.
fn progress_bar(total_bytes: Option<u64>) -> indicatif::ProgressBar {
    let (bar, template) = match total_bytes {
        Some(total) => (
            indicatif::ProgressBar::new(total),
            "{bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec}, {eta} left: {msg}",
        ),
        None => (
            indicatif::ProgressBar::new_spinner(),
            "{spinner} {elapsed} {bytes} read: {msg}",
        ),
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

/// The export's files in a folder: each written as `.partial` beside its final name and
/// renamed into place by [`FolderFiles::commit`], so a failed export leaves nothing.
struct FolderFiles {
    /// `--out` itself.
    out: PathBuf,
    /// `--out` without its extensions: what parts and the report are named after.
    base: String,
    dir: PathBuf,
    current: Option<(PathBuf, BufWriter<File>, u64)>,
    /// (partial, final, bytes) of every file started.
    files: Vec<(PathBuf, PathBuf, u64)>,
}

impl FolderFiles {
    fn new(out: &Path) -> Self {
        let file_name = out.file_name().and_then(|n| n.to_str()).unwrap_or("export");
        let base = file_name
            .split('.')
            .next()
            .filter(|b| !b.is_empty())
            .unwrap_or("export");
        FolderFiles {
            out: out.to_path_buf(),
            base: base.to_owned(),
            dir: out.parent().map(Path::to_path_buf).unwrap_or_default(),
            current: None,
            files: Vec::new(),
        }
    }

    fn close_current(&mut self) -> std::io::Result<()> {
        if let Some((_, writer, bytes)) = self.current.take() {
            writer
                .into_inner()
                .map_err(|e| e.into_error())?
                .sync_all()?;
            if let Some(last) = self.files.last_mut() {
                last.2 = bytes;
            }
        }
        Ok(())
    }

    /// Renames every file into place; returns each final path and size.
    fn commit(mut self) -> anyhow::Result<Vec<(PathBuf, u64)>> {
        self.close_current()?;
        let mut done = Vec::new();
        for (partial, path, bytes) in std::mem::take(&mut self.files) {
            std::fs::rename(&partial, &path)
                .with_context(|| format!("renaming {} into place", partial.display()))?;
            done.push((path, bytes));
        }
        Ok(done)
    }

    fn discard(mut self) {
        self.current = None;
        for (partial, _, _) in std::mem::take(&mut self.files) {
            let _ = std::fs::remove_file(partial);
        }
    }
}

impl Files for FolderFiles {
    fn start(&mut self, name: &str, _content_type: &str) -> Result<(), BoxError> {
        self.close_current()?;
        let path = if name == REPORT_NAME {
            self.dir.join(format!("{}.errors.ndjson", self.base))
        } else if self.files.is_empty() && !name.starts_with(&format!("{}-", self.base)) {
            // The one file of a one-file format is exactly what --out names.
            self.out.clone()
        } else {
            self.dir.join(name)
        };
        let mut partial = path.clone().into_os_string();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let file =
            File::create(&partial).map_err(|e| format!("creating {}: {e}", partial.display()))?;
        self.current = Some((partial.clone(), BufWriter::with_capacity(1 << 20, file), 0));
        self.files.push((partial, path, 0));
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), BoxError> {
        match self.current.as_mut() {
            Some((_, writer, written)) => {
                *written += bytes.len() as u64;
                writer.write_all(bytes).map_err(Into::into)
            }
            None => Err("a write before any file was started".into()),
        }
    }
}

/// The CLI flag for a request field (`filters.states[0]` → `states`).
fn flag_of(field: &str) -> String {
    let first = field.split(['.', '[']).next().unwrap_or(field);
    if matches!(first, "filters" | "fields") {
        let last = field.rsplit('.').next().unwrap_or(field);
        let last = last.split('[').next().unwrap_or(last);
        return kebab(last);
    }
    if matches!(first, "format" | "compression" | "invalidLines") {
        return kebab(first);
    }
    // Anything else is a format option.
    format!("options: {field}")
}

fn kebab(name: &str) -> String {
    let mut flag = String::new();
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            flag.push('-');
            flag.push(c.to_ascii_lowercase());
        } else {
            flag.push(c);
        }
    }
    flag
}
