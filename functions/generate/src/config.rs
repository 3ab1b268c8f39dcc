//! What to generate: the project, its size and seed, and how its task files are
//! split and compressed.

use labelport_model::Mode;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The project's identifier (its folder name, and part of every link and asset URL).
    pub project_id: String,
    /// The project's labelling mode: decides the assets and annotations.
    pub mode: Mode,
    /// How many tasks [`write_project`](crate::write_project) writes.
    pub tasks: u64,
    /// The seed: same seed, same bytes.
    pub seed: u64,
    /// Tasks per task file (the last file holds the rest). Must not be 0.
    pub tasks_per_file: u64,
    /// How task files are compressed.
    pub compression: SourceCompression,
}

impl Config {
    /// A configuration with 100 000 tasks per file and no compression.
    pub fn new(project_id: impl Into<String>, mode: Mode, tasks: u64, seed: u64) -> Self {
        Config {
            project_id: project_id.into(),
            mode,
            tasks,
            seed,
            tasks_per_file: 100_000,
            compression: SourceCompression::None,
        }
    }
}

/// How the generated task files are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SourceCompression {
    /// Plain `.ndjson`.
    #[default]
    None,
    /// `.ndjson.gz`.
    Gzip,
    /// `.ndjson.zst`.
    Zstd,
}

impl SourceCompression {
    /// What a task file's name ends with after `.ndjson`: `""`, `".gz"` or `".zst"`.
    pub fn extension(self) -> &'static str {
        match self {
            SourceCompression::None => "",
            SourceCompression::Gzip => ".gz",
            SourceCompression::Zstd => ".zst",
        }
    }

    /// The name [`FromStr`](std::str::FromStr) accepts: `none`, `gzip` or `zstd`.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceCompression::None => "none",
            SourceCompression::Gzip => "gzip",
            SourceCompression::Zstd => "zstd",
        }
    }
}

impl std::str::FromStr for SourceCompression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(SourceCompression::None),
            "gzip" => Ok(SourceCompression::Gzip),
            "zstd" => Ok(SourceCompression::Zstd),
            _ => Err(format!(
                "unknown compression `{s}`, expected one of none, gzip, zstd"
            )),
        }
    }
}

impl std::fmt::Display for SourceCompression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_names_and_extensions() {
        for c in [
            SourceCompression::None,
            SourceCompression::Gzip,
            SourceCompression::Zstd,
        ] {
            assert_eq!(c.as_str().parse::<SourceCompression>(), Ok(c));
        }
        assert_eq!(SourceCompression::Zstd.extension(), ".zst");
        assert_eq!(SourceCompression::Gzip.extension(), ".gz");
        assert_eq!(SourceCompression::default().extension(), "");
        assert!("brotli".parse::<SourceCompression>().is_err());
    }
}
