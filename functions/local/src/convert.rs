//! `labelport convert`: another tool's export (a Label Studio JSON export and its
//! labeling config) to any labelport format, through the same pipeline as `export`.

use crate::export::{self, OutputArgs};
use anyhow::Context;
use labelport_engine::import::{Import, ImportError, ImportTool};
use labelport_engine::pipeline::Source;
use labelport_engine::source::{decompress, framing_for};
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};

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
    let input = Input::open(&args.input)?;
    let name = input.name.clone();
    // The same reading of the tool's settings and the same framing by file name as an
    // import through the API.
    let import = Import::read(tool, &config, &input.framed_as).map_err(|e| match e {
        ImportError::Invalid {
            field: "source.config",
            message,
        } => anyhow::anyhow!("{}: {message}", args.config.display()),
        other => anyhow::anyhow!("{name}: {other}"),
    })?;
    let total = match export::is_compressed(&input.framed_as) {
        true => None,
        false => Some(
            input
                .file
                .metadata()
                .with_context(|| format!("reading {name}"))?
                .len(),
        ),
    };
    let reader = decompress(&input.framed_as, Box::new(input.file))
        .with_context(|| format!("opening {name}"))?;
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

/// The export file to read: the file itself, or the one export inside a `.zip` (as a
/// tool's download often comes), unpacked by the `zip` crate into a temporary file the
/// pipeline reads from disk, never into memory.
struct Input {
    /// As errors show it: `export.zip!/project-1.json` for an entry.
    name: String,
    /// The name its framing and compression are chosen by: the file's, or the entry's.
    framed_as: String,
    file: std::fs::File,
}

impl Input {
    fn open(path: &Path) -> anyhow::Result<Input> {
        let name = path.display().to_string();
        let file = std::fs::File::open(path).with_context(|| format!("opening {name}"))?;
        if !name.to_ascii_lowercase().ends_with(".zip") {
            return Ok(Input {
                framed_as: name.clone(),
                name,
                file,
            });
        }
        let mut archive =
            zip::ZipArchive::new(file).with_context(|| format!("{name} is not a ZIP archive"))?;
        let mut exports: Vec<String> = Vec::new();
        for entry in archive.file_names() {
            let entry = entry.with_context(|| format!("reading the entries of {name}"))?;
            if !entry.ends_with('/') && framing_for(&entry).is_some() {
                exports.push(entry.into_owned());
            }
        }
        let [entry] = exports.as_slice() else {
            anyhow::bail!(
                "{name} holds {} exports (.json, .jsonl or .ndjson, optionally .gz or .zst); convert takes a ZIP with one",
                exports.len()
            );
        };
        let mut spool = tempfile::tempfile().context("creating a temporary file")?;
        let mut inside = archive
            .by_name(entry)
            .with_context(|| format!("reading {entry} in {name}"))?;
        // The entry's CRC is checked as its last byte is read.
        std::io::copy(&mut inside, &mut spool)
            .with_context(|| format!("unpacking {entry} from {name}"))?;
        spool.seek(SeekFrom::Start(0))?;
        Ok(Input {
            name: format!("{name}!/{entry}"),
            framed_as: entry.clone(),
            file: spool,
        })
    }
}
