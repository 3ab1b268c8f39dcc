//! Export throughput against the parse floors, on the same generated lines.
//!
//! `cargo bench -p labelport-engine --bench pipeline [-- TASKS MODE [FORMAT,...]]`
//! (defaults: 300000 element, every format that fits). Prints MB/s of task lines for: serde_json validating each line
//! (`IgnoredAny`, the floor the README compares to), parsing into the borrowed `Task`,
//! and the whole pipeline (parse, check, filter, encode, order, assemble the files) for
//! every registered format that fits the mode, on one thread and on every core, and
//! CSV and NDJSON gzip-compressed. JSON_SIMPLE fits text modes: run it with `document`.
#![allow(clippy::unwrap_used, missing_docs)]

use labelport_encoders::{Compression, FieldToggles, Format, FormatOptions, Settings};
use labelport_engine::assembly::Files;
use labelport_engine::decode::NativeDecoder;
use labelport_engine::filter::TaskFilter;
use labelport_engine::pipeline::{self, Options, Output, Source};
use labelport_engine::store::BoxError;
use labelport_generate::{self as generate, Config};
use labelport_model::{Mode, Task};
use std::time::Instant;

/// The program CUSTOM is measured with (also `infra/bench_memory.sh`'s): a flat object
/// per task, as a typical program would give.
const CUSTOM_PROGRAM: &str =
    "{id: .task.taskId, state: .task.state, labels: [.task.tools[].title] | join(\"|\")}";

fn best_of<F: FnMut() -> u64>(runs: usize, mut f: F) -> (f64, u64) {
    let mut best = f64::MAX;
    let mut out = 0;
    for _ in 0..runs {
        let t = Instant::now();
        out = f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    (best, out)
}

/// Counts what would be written.
#[derive(Default)]
struct Counting {
    files: u64,
    bytes: u64,
}

impl Files for Counting {
    fn start(&mut self, _: &str, _: &str) -> Result<(), BoxError> {
        self.files += 1;
        Ok(())
    }
    fn write(&mut self, bytes: &[u8]) -> Result<(), BoxError> {
        self.bytes += bytes.len() as u64;
        Ok(())
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let tasks: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(300_000);
    let mode: Mode = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(Mode::Element);
    let config = Config::new("bench", mode, tasks, 1);
    let mut data = Vec::new();
    for i in 0..tasks {
        generate::write_task_line(&config, i, &mut data);
    }
    let data = bytes::Bytes::from(data);
    let mb = data.len() as f64 / 1e6;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("{tasks} {mode} tasks, {mb:.1} MB of task lines, {cores} cores\n");
    println!("| step | threads | MB/s | tasks/s | vs validation |");
    println!("| --- | --- | ---: | ---: | ---: |");

    let (secs, _) = best_of(5, || {
        let mut n = 0;
        for line in data.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            serde_json::from_slice::<serde::de::IgnoredAny>(line).unwrap();
            n += 1;
        }
        n
    });
    let floor = mb / secs;
    let row = |name: &str, threads: usize, secs: f64| {
        println!(
            "| {name} | {threads} | {:.0} | {:.0} | {:.2}× |",
            mb / secs,
            tasks as f64 / secs,
            (mb / secs) / floor
        );
    };
    row("serde_json validate (IgnoredAny)", 1, secs);
    let (secs, _) = best_of(5, || {
        let mut n = 0;
        for line in data.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let task: Task<'_> = serde_json::from_slice(line).unwrap();
            n += task.submissions.len() as u64;
        }
        n
    });
    row("parse into borrowed Task, from bytes", 1, secs);
    let (secs, _) = best_of(5, || {
        // What the pipeline does: one UTF-8 check for the whole block, then `&str` lines.
        let text = std::str::from_utf8(&data).unwrap();
        let mut n = 0;
        for line in text.split('\n').filter(|l| !l.is_empty()) {
            let task: Task<'_> = serde_json::from_str(line).unwrap();
            n += task.submissions.len() as u64;
        }
        n
    });
    row("parse into borrowed Task, from checked &str", 1, secs);

    let project = generate::project(&config);
    let filter = TaskFilter::default();
    let options = FormatOptions::default();
    // CUSTOM runs a program typical of its use: one flat object per task.
    // `BENCH_CUSTOM_PROGRAM` measures another.
    let program =
        std::env::var("BENCH_CUSTOM_PROGRAM").unwrap_or_else(|_| CUSTOM_PROGRAM.to_owned());
    let custom_options: FormatOptions = serde_json::from_value(serde_json::json!({
        "program": program
    }))
    .unwrap();
    // A third argument names the formats to run (`TSV_IOB,CONLL2003`); default: all that fit.
    let only: Option<Vec<&str>> = args.get(2).map(|names| names.split(',').collect());
    let mut runs: Vec<(Format, Compression)> = Format::all()
        .filter(|f| f.spec().fits(mode))
        .filter(|f| {
            only.as_ref()
                .is_none_or(|names| names.contains(&f.as_str()))
        })
        .map(|f| (f, Compression::None))
        .collect();
    for name in ["CSV", "NDJSON"] {
        if let Some(format) = Format::by_name(name)
            .filter(|f| f.spec().fits(mode))
            .filter(|_| only.is_none())
        {
            runs.push((format, Compression::Gzip));
        }
    }
    for (format, compression) in runs {
        let settings = Settings {
            project: &project,
            fields: FieldToggles::default(),
            compression,
            options: if format.as_str() == "CUSTOM" {
                &custom_options
            } else {
                &options
            },
        };
        let encoder = format.build(&settings).unwrap();
        for threads in [1, cores] {
            let options = Options {
                threads,
                compression,
                ..Options::default()
            };
            let (secs, written) = best_of(5, || {
                let sources = std::iter::once(Ok(Source {
                    name: "bench.ndjson".into(),
                    reader: Box::new(std::io::Cursor::new(data.clone())),
                    decoder: std::sync::Arc::new(NativeDecoder),
                }));
                let mut files = Counting::default();
                let output = Output {
                    files: &mut files,
                    base: "bench",
                    modified_unix_secs: 0,
                };
                pipeline::run(
                    sources,
                    encoder.as_ref(),
                    &filter,
                    &options,
                    output,
                    &mut |_| {},
                )
                .unwrap();
                files.bytes
            });
            let name = format!(
                "export {}{} ({:.0} MB out)",
                format.as_str(),
                compression.suffix(),
                written as f64 / 1e6
            );
            row(&name, threads, secs);
            if cores == 1 {
                break;
            }
        }
    }
}
