//! Writing a generated project to disk: its manifest and its task files, streamed
//! through one reused line buffer and one (possibly compressed) writer per file.

use crate::{project, write_task_line, Config, SourceCompression};
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// What [`write_project`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The task files, in order (not the manifest).
    pub files: Vec<PathBuf>,
    /// Tasks written.
    pub tasks: u64,
    /// Bytes of task lines written, before compression.
    pub bytes: u64,
}

/// Writes `{root}/projects/{id}/project.json` and the task files
/// `{root}/projects/{id}/tasks/part-00000.ndjson{ext}`, ... with
/// [`Config::tasks_per_file`] tasks each, streaming.
///
/// Task files already in that folder (`part-*.ndjson*`) are removed first, so that
/// a smaller run does not leave a bigger run's tail behind.
pub fn write_project(config: &Config, root: &Path) -> io::Result<Summary> {
    if config.tasks_per_file == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "tasks_per_file must be at least 1",
        ));
    }
    let dir = root.join("projects").join(&config.project_id);
    let tasks_dir = dir.join("tasks");
    fs::create_dir_all(&tasks_dir)?;

    let mut manifest = serde_json::to_vec_pretty(&project(config)).map_err(io::Error::other)?;
    manifest.push(b'\n');
    fs::write(dir.join("project.json"), manifest)?;

    for entry in fs::read_dir(&tasks_dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("part-") && name.contains(".ndjson") && entry.file_type()?.is_file() {
            fs::remove_file(entry.path())?;
        }
    }

    let mut summary = Summary {
        files: Vec::new(),
        tasks: 0,
        bytes: 0,
    };
    let mut line = Vec::with_capacity(16 * 1024);
    let mut index = 0;
    while index < config.tasks {
        let end = index
            .saturating_add(config.tasks_per_file)
            .min(config.tasks);
        let path = tasks_dir.join(format!(
            "part-{:05}.ndjson{}",
            summary.files.len(),
            config.compression.extension()
        ));
        let mut sink = Sink::create(&path, config.compression)?;
        for i in index..end {
            line.clear();
            write_task_line(config, i, &mut line);
            sink.write_all(&line)?;
            summary.bytes += line.len() as u64;
        }
        sink.finish()?;
        summary.tasks += end - index;
        summary.files.push(path);
        index = end;
    }
    Ok(summary)
}

/// A task file being written.
enum Sink {
    Plain(BufWriter<File>),
    Gzip(flate2::write::GzEncoder<BufWriter<File>>),
    Zstd(zstd::Encoder<'static, BufWriter<File>>),
}

impl Sink {
    fn create(path: &Path, compression: SourceCompression) -> io::Result<Sink> {
        let file = BufWriter::with_capacity(256 * 1024, File::create(path)?);
        Ok(match compression {
            SourceCompression::None => Sink::Plain(file),
            SourceCompression::Gzip => Sink::Gzip(flate2::write::GzEncoder::new(
                file,
                flate2::Compression::fast(),
            )),
            SourceCompression::Zstd => Sink::Zstd(zstd::Encoder::new(file, 3)?),
        })
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.write_all(bytes),
            Sink::Gzip(w) => w.write_all(bytes),
            Sink::Zstd(w) => w.write_all(bytes),
        }
    }

    fn finish(self) -> io::Result<()> {
        let mut file = match self {
            Sink::Plain(w) => w,
            Sink::Gzip(w) => w.finish()?,
            Sink::Zstd(w) => w.finish()?,
        };
        file.flush()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::tests::lines;
    use labelport_model::{Mode, Project, Role};
    use std::io::Read;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("labelport-generate-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn read_plain(path: &Path) -> Vec<u8> {
        let raw = fs::read(path).unwrap();
        let name = path.to_string_lossy();
        if name.ends_with(".gz") {
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(&raw[..])
                .read_to_end(&mut out)
                .unwrap();
            out
        } else if name.ends_with(".zst") {
            zstd::decode_all(&raw[..]).unwrap()
        } else {
            raw
        }
    }

    #[test]
    fn write_project_splits_tasks_into_files() {
        let root = scratch("split");
        let mut config = Config::new("split", Mode::Element, 25, 5);
        config.tasks_per_file = 10;
        let summary = write_project(&config, &root).unwrap();
        assert_eq!(summary.tasks, 25);
        assert_eq!(summary.files.len(), 3);
        let tasks = root.join("projects/split/tasks");
        assert_eq!(summary.files[2], tasks.join("part-00002.ndjson"));
        let mut written = Vec::new();
        for file in &summary.files {
            written.extend(fs::read(file).unwrap());
        }
        assert_eq!(written, lines(&config, 0..25));
        assert_eq!(summary.bytes, written.len() as u64);
        let counts: Vec<usize> = summary
            .files
            .iter()
            .map(|f| fs::read(f).unwrap().iter().filter(|b| **b == b'\n').count())
            .collect();
        assert_eq!(counts, [10, 10, 5]);

        // A smaller run replaces the bigger one.
        config.tasks = 5;
        let summary = write_project(&config, &root).unwrap();
        assert_eq!(summary.files.len(), 1);
        assert_eq!(fs::read_dir(&tasks).unwrap().count(), 1);

        config.tasks_per_file = 0;
        assert!(write_project(&config, &root).is_err());
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn compressed_files_hold_the_same_lines() {
        let root = scratch("compressed");
        let mut plain = Config::new("plain", Mode::Token, 30, 9);
        plain.tasks_per_file = 12;
        let expected: Vec<Vec<u8>> = write_project(&plain, &root)
            .unwrap()
            .files
            .iter()
            .map(|f| read_plain(f))
            .collect();
        for compression in [SourceCompression::Gzip, SourceCompression::Zstd] {
            let config = Config {
                compression,
                ..plain.clone()
            };
            let summary = write_project(&config, &root.join(compression.as_str())).unwrap();
            assert_eq!(summary.files.len(), 3);
            for (file, want) in summary.files.iter().zip(&expected) {
                assert!(file.to_string_lossy().ends_with(compression.extension()));
                assert_ne!(&fs::read(file).unwrap(), want);
                assert_eq!(&read_plain(file), want, "{}", file.display());
            }
            assert_eq!(
                summary.bytes,
                expected.iter().map(|e| e.len() as u64).sum::<u64>()
            );
        }
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn manifest_round_trips() {
        let root = scratch("manifest");
        for mode in Mode::ALL {
            let config = Config::new(format!("m-{mode}"), mode, 0, 1);
            let manifest = project(&config);
            assert_eq!(manifest.name, format!("Demo {mode} project"));
            assert_eq!(manifest.role_of("Manager@Example.com"), Some(Role::Manager));
            assert_eq!(manifest.members.len(), 7);
            let json = serde_json::to_string(&manifest).unwrap();
            assert_eq!(serde_json::from_str::<Project>(&json).unwrap(), manifest);
            let summary = write_project(&config, &root).unwrap();
            assert!(summary.files.is_empty());
            let file = root
                .join("projects")
                .join(&config.project_id)
                .join("project.json");
            let read: Project = serde_json::from_slice(&fs::read(file).unwrap()).unwrap();
            assert_eq!(read, manifest);
        }
        let entity = project(&Config::new("e", Mode::Entity, 0, 1));
        assert!(entity.labels.relations.contains(&"works_for".to_owned()));
        let form = project(&Config::new("f", Mode::EntityForm, 0, 1));
        assert_eq!(
            form.labels.form_fields[..3],
            ["name", "date of birth", "city"]
        );
        fs::remove_dir_all(&root).unwrap();
    }
}
