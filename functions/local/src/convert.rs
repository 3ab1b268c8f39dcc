//! `labelport convert`: another tool's export (a Label Studio JSON export and its
//! labeling config) to any labelport format, through the same pipeline as `export`.

use crate::export::{self, OutputArgs};
use anyhow::Context;
use labelport_engine::decode::label_studio::LabelStudioDecoder;
use labelport_engine::decode::label_studio_config::LabelingConfig;
use labelport_engine::decode::Framing;
use labelport_engine::pipeline::Source;
use labelport_engine::source::decompress;
use std::path::PathBuf;
use std::sync::Arc;

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
    let Tool::LabelStudio = args.from;
    let xml = std::fs::read_to_string(&args.config)
        .with_context(|| format!("reading {}", args.config.display()))?;
    let config = LabelingConfig::parse(&xml).with_context(|| args.config.display().to_string())?;
    let name = args.input.display().to_string();
    let stem = args
        .input
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.split('.').next())
        .filter(|s| !s.is_empty())
        .unwrap_or("label-studio");
    let project = config.project(stem, stem);
    let plain = name.trim_end_matches(".gz").trim_end_matches(".zst");
    let framing = if plain.ends_with(".jsonl") || plain.ends_with(".ndjson") {
        Framing::Lines
    } else {
        Framing::JsonArray
    };
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
        decoder: Arc::new(LabelStudioDecoder::new(config, framing)),
    };
    export::write(&project, std::iter::once(Ok(source)), total, args.output)
}
