//! `labelport`: the embedded default. Runs the whole export path on a laptop with no
//! AWS account: a folder for the bucket, in-process queues, an outbox for e-mail.
#![deny(missing_docs)]

mod auth;
mod convert;
mod demo;
mod embedded;
mod export;
mod outbox;
mod presign;
mod queue;
mod serve;
mod store;

use clap::{Parser, Subcommand};
use labelport_generate::{self as generate, SourceCompression};
use labelport_model::Mode;
use std::path::PathBuf;

/// labelport: export labelled data (CSV, NDJSON, JSON, ...), locally or on AWS Lambda.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a sample project, then run request → queue → worker → notifier in-process.
    Demo(demo::Args),
    /// Serve the API on localhost with the embedded backends.
    Serve(serve::Args),
    /// Print a token the local API accepts.
    Token {
        /// The caller's e-mail (the demo project's manager is manager@example.com).
        #[arg(long)]
        email: String,
        /// The data folder whose key signs the token.
        #[arg(long, default_value = "labelport-data")]
        data: PathBuf,
        /// Hours until the token expires.
        #[arg(long, default_value_t = 12)]
        hours: i64,
    },
    /// Write a deterministic sample project (manifest and task files).
    Generate {
        /// Number of tasks.
        #[arg(long)]
        tasks: u64,
        /// Project mode.
        #[arg(long, default_value = "classification")]
        mode: Mode,
        /// Seed: the same seed gives the same bytes.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The root folder; the project goes to `{out}/projects/{project}/`.
        #[arg(long)]
        out: PathBuf,
        /// Project id.
        #[arg(long, default_value = "demo")]
        project: String,
        /// Tasks per task file.
        #[arg(long, default_value_t = 100_000)]
        tasks_per_file: u64,
        /// Compression of the task files: none, gzip or zstd.
        #[arg(long, default_value = "none")]
        compression: SourceCompression,
        /// Also write the finished tasks as Label Studio exports them, with the
        /// labeling config, under `{out}/label-studio/` (for `labelport convert`).
        #[arg(long)]
        label_studio: bool,
    },
    /// Export a project folder to a file, in one shot: no queue, same encoders and filters.
    /// Exits 3 when the format refused annotations or left tasks out (listed in the
    /// errors report), unless --allow-loss; 1 on any other error.
    Export(export::Args),
    /// Convert another tool's export (Label Studio's JSON and its labeling config) to
    /// any format, in flat memory. Exits as `export` does.
    Convert(convert::Args),
    /// List every format: its name, the project modes it fits, its options.
    Formats,
    /// Print the API's OpenAPI 3.1 document (what `GET /v1/openapi.json` serves).
    Openapi {
        /// The API's base URL, for the document's `servers`.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
    },
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            // A complete export that holds less than its source has its own status, so
            // a script can tell it from a failure.
            match e.downcast_ref::<export::Lossy>() {
                Some(_) => std::process::ExitCode::from(export::EXIT_LOSS),
                None => std::process::ExitCode::FAILURE,
            }
        }
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Demo(args) => runtime()?.block_on(demo::run(args)),
        Command::Serve(args) => runtime()?.block_on(serve::run(args)),
        Command::Token { email, data, hours } => {
            anyhow::ensure!(
                labelport_core::project::is_email(&email),
                "--email: not an e-mail address"
            );
            let jwt = auth::LocalJwt::load_or_create(&data.join(".keys/jwt.key"))?;
            println!("{}", jwt.issue(&email, hours)?);
            Ok(())
        }
        Command::Generate {
            tasks,
            mode,
            seed,
            out,
            project,
            tasks_per_file,
            compression,
            label_studio,
        } => {
            anyhow::ensure!(
                labelport_core::project::is_project_id(&project),
                "--project: must be lower-case letters, digits, '-', '_' or '.'"
            );
            anyhow::ensure!(tasks_per_file > 0, "--tasks-per-file must be at least 1");
            let mut config = generate::Config::new(project, mode, tasks, seed);
            config.tasks_per_file = tasks_per_file;
            config.compression = compression;
            let started = std::time::Instant::now();
            let summary = generate::write_project(&config, &out)?;
            let secs = started.elapsed().as_secs_f64();
            println!(
                "wrote {} tasks ({:.1} MB) in {} files under {} in {secs:.2} s",
                summary.tasks,
                summary.bytes as f64 / 1e6,
                summary.files.len(),
                out.join("projects").join(&config.project_id).display()
            );
            if label_studio {
                let (export, xml, tasks) = generate::label_studio::write_export(&config, &out)?;
                println!(
                    "wrote {tasks} finished tasks as a Label Studio export: {} (config {})",
                    export.display(),
                    xml.display()
                );
            }
            Ok(())
        }
        Command::Export(args) => export::run(args),
        Command::Convert(args) => convert::run(args),
        Command::Openapi { url } => {
            println!(
                "{}",
                labelport_core::api::openapi_document(&url).to_pretty_json()?
            );
            Ok(())
        }
        Command::Formats => {
            let width = labelport_encoders::Format::all()
                .map(|f| f.as_str().len())
                .max()
                .unwrap_or(0)
                + 2;
            for format in labelport_encoders::Format::all() {
                let spec = format.spec();
                let modes = match spec.modes {
                    None => "every mode".to_owned(),
                    Some(modes) => modes
                        .iter()
                        .map(|m| m.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                };
                println!("{:<width$}{}", spec.name, spec.summary);
                println!("{:<width$}modes: {modes}", "");
                if !spec.options.is_empty() {
                    let keys: Vec<&str> = spec.options.iter().map(|o| o.key).collect();
                    println!("{:<width$}options: {}", "", keys.join(", "));
                }
            }
            Ok(())
        }
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}
