//! `labelport convert`: another tool's export (a Label Studio JSON export and its
//! labeling config) to any labelport format, through the same pipeline as `export`.

use crate::export::{self, OutputArgs};
use anyhow::Context;
use labelport_engine::import::{Import, ImportError, ImportTool};
use labelport_engine::pipeline::Source;
use labelport_engine::source::decompress;
use std::path::PathBuf;

/// The tools whose exports labelport reads.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Tool {
    /// A Label Studio JSON export (one JSON array, or one task per line with
    /// `.jsonl`), plain, `.gz` or `.zst`, with the project's labeling config.
    LabelStudio,
}

/// Options of `labelport convert`.
#[derive(clap::Args)]
pub struct Args {
    /// The tool that made the export.
    #[arg(long)]
    from: Tool,
    /// The project's labeling config (Label Studio: Settings > Labeling Interface > Code).
    #[arg(long)]
    config: PathBuf,
    /// The export file.
    #[arg(long = "in")]
    input: PathBuf,
    #[command(flatten)]
    output: OutputArgs,
}

/// Runs the conversion.
pub fn run(args: Args) -> anyhow::Result<()> {
    let tool = match args.from {
        Tool::LabelStudio => ImportTool::LabelStudio,
    };
    let config = std::fs::read(&args.config)
        .with_context(|| format!("reading {}", args.config.display()))?;
    let name = args.input.display().to_string();
    // The same reading of the tool's settings and the same framing by file name as an
    // import through the API.
    let import = Import::read(tool, &config, &name).map_err(|e| match e {
        ImportError::Invalid {
            field: "source.config",
            message,
        } => anyhow::anyhow!("{}: {message}", args.config.display()),
        other => anyhow::anyhow!("{name}: {other}"),
    })?;
    let file = std::fs::File::open(&args.input).with_context(|| format!("opening {name}"))?;
    let total = match export::is_compressed(&name) {
        true => None,
        false => Some(
            file.metadata()
                .with_context(|| format!("reading {name}"))?
                .len(),
        ),
    };
    let reader = decompress(&name, Box::new(file)).with_context(|| format!("opening {name}"))?;
    let source = Source {
        name,
        reader,
        decoder: import.decoder,
    };
    export::write(
        &import.project,
        std::iter::once(Ok(source)),
        total,
        args.output,
    )
}
