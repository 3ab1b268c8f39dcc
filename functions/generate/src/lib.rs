//! The deterministic data generator: demo, test and benchmark projects. Fixtures and
//! demo data live here, apart from the schema in `labelport-model`.
//!
//! Task `index` of a project is a function of `(config, index)` alone: a small
//! hand-written PRNG (splitmix64) is seeded by mixing [`Config::seed`] with the
//! index, so a test can regenerate task 1234 of a ten-million-task project
//! without generating the 1233 before it, and the same seed gives byte-identical
//! lines on every platform and with every version of the dependencies (only
//! integer arithmetic, exact divisions and serde_json's shortest float printing).
//! Changing what this module draws changes the data: do it on purpose.
//!
//! [`write_project`] streams: one reused line buffer, one buffered (and possibly
//! compressed) writer per task file, so ten million tasks need no more memory
//! than ten.
//!
//! ```
//! use labelport_generate as generate;
//! use labelport_model::{Mode, Task};
//! let config = generate::Config::new("demo", Mode::Entity, 1_000, 42);
//! let mut line = Vec::new();
//! generate::write_task_line(&config, 7, &mut line);
//! let task: Task<'_> = serde_json::from_slice(&line).unwrap();
//! assert_eq!(task.id, generate::task_id(7));
//! assert!(task.annotations().iter().all(|a| a.check().is_ok()));
//! ```

use labelport_model::{
    Annotation, AnnotationKind, Asset, Attribute, BoundingBox, Cell, LabelSchema, Links, Member,
    Mode, Origin, Project, ProjectState, Relation, Role, Submission, Task, TaskState,
    SCHEMA_VERSION,
};
use std::borrow::Cow;

pub mod label_studio;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The project's identifier (its folder name, and part of every link and asset URL).
    pub project_id: String,
    /// The project's labelling mode: decides the assets and annotations.
    pub mode: Mode,
    /// How many tasks [`write_project`] writes.
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

/// The generated project's manifest.
pub fn project(config: &Config) -> Project {
    let spec = ModeSpec::of(config.mode);
    let mut members = vec![
        Member {
            email: MANAGER.to_owned(),
            role: Role::Manager,
        },
        Member {
            email: REVIEWER.to_owned(),
            role: Role::Reviewer,
        },
    ];
    members.extend(LABELERS.iter().map(|email| Member {
        email: (*email).to_owned(),
        role: Role::Labeler,
    }));
    let strings = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect();
    Project {
        schema_version: SCHEMA_VERSION,
        id: config.project_id.clone(),
        name: format!("Demo {} project", config.mode),
        mode: config.mode,
        state: ProjectState::Running,
        members,
        services: Vec::new(),
        labels: LabelSchema {
            classes: strings(spec.classes),
            relations: strings(spec.relations),
            attributes: strings(spec.attributes),
            form_fields: strings(spec.form_fields),
            tools: Vec::new(),
            class_ids: Default::default(),
        },
        stages: strings(&[STAGE_LABEL, STAGE_REVIEW, STAGE_COMPLETE]),
        columns: match config.mode {
            Mode::Row => strings(&ROW_COLUMNS),
            _ => Vec::new(),
        },
        exports: Default::default(),
        asset_key: None,
    }
}

/// The data sources images come from, in turn.
pub const DATA_SOURCES: [&str; 3] = ["camera-north", "camera-south", "upload"];

/// The columns of a row project's table, in order.
pub const ROW_COLUMNS: [&str; 4] = ["product", "review", "rating", "country"];

/// The id of task `index`: `t` and at least 8 digits (`t00000042`).
pub fn task_id(index: u64) -> String {
    format!("t{index:08}")
}

/// Task `index` of the generated project, as a record.
///
/// A function of `(config.project_id, config.mode, config.seed, index)` only.
pub fn task(config: &Config, index: u64) -> Task<'static> {
    TaskGen::new(config, index).task()
}

/// Appends task `index` to `out` as one line of compact JSON, newline included.
pub fn write_task_line(config: &Config, index: u64, out: &mut Vec<u8>) {
    let task = task(config, index);
    // Writing a record of strings, numbers and booleans into memory cannot fail.
    serde_json::to_writer(&mut *out, &task).expect("a generated task serializes");
    out.push(b'\n');
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

// ---------------------------------------------------------------------------
// Randomness

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
/// Seeds the stream of image edge cases (boxes past an edge, turned, outside).
const EDGE_SEED: u64 = 0xED6E_5EED_0000_0001;

/// The splitmix64 output function: a bijective 64-bit mixer.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// splitmix64, seeded from (seed, index).
struct Rng(u64);

impl Rng {
    fn new(seed: u64, index: u64) -> Rng {
        Rng(mix64(seed ^ mix64(index.wrapping_add(GOLDEN))))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        mix64(self.0)
    }

    /// Uniform in `0..n` (`n > 0`), by multiply-shift.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `per_mille / 1000`.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    fn pick<'s, T>(&mut self, items: &'s [T]) -> &'s T {
        &items[self.below(items.len() as u64) as usize]
    }

    fn word(&mut self, words: &[&'static str]) -> &'static str {
        words[self.below(words.len() as u64) as usize]
    }

    /// A confidence in 0.5..1, in thousandths.
    fn confidence(&mut self) -> f64 {
        self.range(500, 999) as f64 / 1000.0
    }
}

// ---------------------------------------------------------------------------
// Fixed vocabulary

const MANAGER: &str = "manager@example.com";
const REVIEWER: &str = "reviewer@example.com";
const LABELERS: [&str; 5] = [
    "labeler1@example.com",
    "labeler2@example.com",
    "labeler3@example.com",
    "labeler4@example.com",
    "labeler5@example.com",
];
const STAGE_LABEL: &str = "Label";
const STAGE_REVIEW: &str = "Review";
const STAGE_COMPLETE: &str = "Complete";

/// 2024-01-01T00:00:00Z.
const YEAR_START: i64 = 1_704_067_200;
const DAY: i64 = 86_400;

const PEOPLE: &[&str] = &[
    "Zoë Martin",
    "José Álvarez",
    "Ada Lovelace",
    "Li Wei",
    "Grace Hopper",
    "Søren Kierkegaard",
];
const ORGS: &[&str] = &[
    "Acme, Inc.",
    "Globex",
    "Initech",
    "Umbrella Corp.",
    "Café Müller",
];
const PLACES: &[&str] = &["São Paulo", "Paris", "Zürich", "New York", "Kraków"];
const DATES: &[&str] = &["12 March 2019", "1990-04-12", "Friday", "1 May 2024"];

/// What a mode's projects contain.
struct ModeSpec {
    classes: &'static [&'static str],
    relations: &'static [&'static str],
    attributes: &'static [&'static str],
    form_fields: &'static [&'static str],
    extension: &'static str,
    model: &'static str,
}

const ENTITY_CLASSES: &[&str] = &["person", "organization", "location", "date"];
const ENTITY_RELATIONS: &[&str] = &["works_for", "located_in", "lives_in", "born_on"];
const GROUP_ELEMENT_CLASSES: &[&str] = &["person", "face", "hand", "bag"];
const GROUP_CLASSES: &[&str] = &["family", "crowd"];

impl ModeSpec {
    fn of(mode: Mode) -> ModeSpec {
        let spec = |classes, relations, attributes, form_fields, extension, model| ModeSpec {
            classes,
            relations,
            attributes,
            form_fields,
            extension,
            model,
        };
        match mode {
            Mode::Classification => spec(
                &["cat", "dog", "bird", "fish, tropical", "other \"unsure\""],
                &[],
                &[],
                &[],
                "jpg",
                "resnet50-classifier@1.4.2",
            ),
            Mode::Element => spec(
                &[
                    "car",
                    "pedestrian",
                    "cyclist",
                    "traffic sign, temporary",
                    "café terrace",
                ],
                &[],
                &["occluded", "truncated", "color"],
                &[],
                "jpg",
                "yolov8-detector@2.1.0",
            ),
            Mode::ElementGroup => spec(
                &["person", "face", "hand", "bag", "family", "crowd"],
                &[],
                &["occluded", "truncated"],
                &[],
                "jpg",
                "yolov8-detector@2.1.0",
            ),
            Mode::Entity => spec(
                ENTITY_CLASSES,
                ENTITY_RELATIONS,
                &[],
                &[],
                "txt",
                "ner-base@0.9.1",
            ),
            Mode::EntityForm => spec(
                &[],
                &[],
                &[],
                &["name", "date of birth", "city", "remarks"],
                "txt",
                "form-extractor@1.0.3",
            ),
            Mode::Transcription => spec(&[], &[], &[], &[], "jpg", "ocr-handwriting@3.2.0"),
            Mode::Row => spec(
                &["positive", "negative", "neutral", "spam | promotional, ads"],
                &[],
                &[],
                &[],
                "csv",
                "sentiment-small@0.4.0",
            ),
            Mode::Document => spec(
                &[
                    "invoice",
                    "contract",
                    "letter",
                    "report, annual",
                    "reçu fiscal",
                ],
                &[],
                &[],
                &[],
                "txt",
                "doc-classifier@2.0.0",
            ),
            Mode::Token => spec(
                ENTITY_CLASSES,
                ENTITY_RELATIONS,
                &[],
                &[],
                "txt",
                "ner-base@0.9.1",
            ),
            Mode::Video => spec(
                &["car", "person", "dog", "bicycle"],
                &[],
                &["occluded", "truncated"],
                &[],
                "mp4",
                "bytetrack@1.1.0",
            ),
        }
    }
}

/// A sentence with placeholders `{P}` person, `{O}` organization, `{L}` location,
/// `{D}` date, and the relations between its placeholders (by position).
struct Sentence {
    text: &'static str,
    relations: &'static [(&'static str, usize, usize)],
}

const SENTENCES: &[Sentence] = &[
    Sentence {
        text: "{P} works for {O} in {L}.",
        relations: &[("works_for", 0, 1), ("located_in", 1, 2)],
    },
    Sentence {
        text: "{P} joined {O} on {D}.",
        relations: &[("works_for", 0, 1)],
    },
    Sentence {
        text: "{P} was born in {L} on {D}.",
        relations: &[("lives_in", 0, 1), ("born_on", 0, 2)],
    },
    Sentence {
        text: "{O} opened an office in {L}, said {P}.",
        relations: &[("located_in", 0, 1), ("works_for", 2, 0)],
    },
    Sentence {
        text: "\"We are hiring,\" said {P} of {O} today.",
        relations: &[("works_for", 0, 1)],
    },
    Sentence {
        text: "Note:\n{P} visits {L} on {D}.",
        relations: &[],
    },
];

const TRANSCRIPTIONS: &[&str] = &[
    "Dear Sir,",
    "Meet me at the café at 5",
    "Total: 42,50 €",
    "He said \"hi\" and left",
    "Zoë & José",
    "line1\nline2",
    "Rua Augusta, São Paulo",
    "Please return by Friday.",
    "No. 17",
];

const REMARKS: &[&str] = &[
    "none",
    "say \"hi\"",
    "a, b",
    "line1\nline2",
    "prefers Zoë",
    "moved to São Paulo",
];

const PRODUCTS: &[&str] = &[
    "Espresso machine",
    "Crème fraîche, 200 g",
    "USB-C cable",
    "Hiking boots",
];
const REVIEWS: &[&str] = &[
    "Works great.",
    "Broke after \"two\" days",
    "Très bien!\nWould buy again.",
    "meh",
    "Fast delivery, good price",
    "=SUM(A1:A3) stars, no less",
    "@support ممتاز جدا",
    "-\t5% off | next time",
];
const COUNTRIES: &[&str] = &["Brazil", "France", "Deutschland", "日本", "USA"];

const COLORS: &[&str] = &["red", "blue", "gris foncé", "black, matte"];
const SIZES: &[(u32, u32)] = &[(640, 480), (1024, 768), (1280, 720), (1920, 1080)];

// ---------------------------------------------------------------------------
// One task

/// What the human label submission holds, and the asset it is about.
struct Content {
    asset: Asset<'static>,
    annotations: Vec<Annotation<'static>>,
    relations: Vec<Relation<'static>>,
}

struct TaskGen<'c> {
    config: &'c Config,
    spec: ModeSpec,
    rng: Rng,
    index: u64,
    id: String,
    next_annotation: u32,
}

fn annotation(id: String, kind: AnnotationKind) -> Annotation<'static> {
    Annotation::new(Cow::Owned(id), kind)
}

fn borrowed(s: &'static str) -> Cow<'static, str> {
    Cow::Borrowed(s)
}

/// Seconds since the Unix epoch as RFC 3339 UTC (`2024-03-05T12:34:56Z`).
fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(DAY);
    let rem = secs.rem_euclid(DAY);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// A submission in the making: who, when, how long.
struct Work {
    origin: Origin,
    who: &'static str,
    stage: &'static str,
    start: i64,
    duration_ms: u64,
}

impl Work {
    fn end(&self) -> i64 {
        self.start + self.duration_ms.div_ceil(1000) as i64
    }
}

impl<'c> TaskGen<'c> {
    fn new(config: &'c Config, index: u64) -> Self {
        TaskGen {
            config,
            spec: ModeSpec::of(config.mode),
            rng: Rng::new(config.seed, index),
            index,
            id: task_id(index),
            next_annotation: 0,
        }
    }

    fn annotation(&mut self, kind: AnnotationKind) -> Annotation<'static> {
        self.next_annotation += 1;
        annotation(format!("a{}", self.next_annotation), kind)
    }

    fn task(mut self) -> Task<'static> {
        let state = match self.rng.below(1000) {
            0..100 => TaskState::Pending,
            100..500 => TaskState::Annotated,
            500..850 => TaskState::Validated,
            850..950 => TaskState::Rejected,
            _ => TaskState::Skipped,
        };
        let preview = self.rng.chance(20);
        let created = YEAR_START + self.rng.below(330 * DAY as u64) as i64;
        let labeler = self.rng.word(&LABELERS);
        let content = self.content();
        let project = &self.config.project_id;

        let mut submissions = Vec::new();
        let mut works = Vec::new();
        let (stage, assignee, updated_at, updated_by);
        if state == TaskState::Pending {
            stage = STAGE_LABEL;
            if self.rng.chance(500) {
                assignee = Some(labeler);
                updated_at = Some(created + self.rng.range(60, 3 * DAY as u64) as i64);
                updated_by = Some(MANAGER);
            } else {
                (assignee, updated_at, updated_by) = (None, None, None);
            }
        } else {
            let mut at = created;
            if state != TaskState::Skipped && self.rng.chance(300) {
                let work = Work {
                    origin: Origin::Machine,
                    who: self.spec.model,
                    stage: STAGE_LABEL,
                    start: at + self.rng.range(1, 60) as i64,
                    duration_ms: self.rng.range(200, 3_000),
                };
                at = work.end();
                let annotations = self.machine_copy(&content.annotations, &work);
                works.push((work, annotations, Vec::new()));
            }
            let work = Work {
                origin: Origin::Human,
                who: labeler,
                stage: STAGE_LABEL,
                start: at + self.rng.range(60, 10 * DAY as u64) as i64,
                duration_ms: self.rng.range(5_000, 600_000),
            };
            at = work.end();
            let (mut annotations, relations) = if state == TaskState::Skipped {
                (Vec::new(), Vec::new())
            } else {
                (content.annotations, content.relations)
            };
            self.stamp(&mut annotations, &work);
            let reviewed = matches!(state, TaskState::Validated | TaskState::Rejected);
            // Now and then the labeler gets a class wrong and the reviewer corrects it.
            let mistake = if state == TaskState::Validated && self.rng.chance(150) {
                self.mistake_target(&annotations)
            } else {
                None
            };
            let mut labeled = if reviewed {
                annotations.clone()
            } else {
                std::mem::take(&mut annotations)
            };
            if let Some(n) = mistake {
                self.mislabel(&mut labeled[n]);
            }
            works.push((work, labeled, relations.clone()));
            if reviewed {
                let work = Work {
                    origin: Origin::Human,
                    who: REVIEWER,
                    stage: STAGE_REVIEW,
                    start: at + self.rng.range(60, 5 * DAY as u64) as i64,
                    duration_ms: self.rng.range(2_000, 180_000),
                };
                if let Some(n) = mistake {
                    self.stamp(&mut annotations[n..=n], &work);
                }
                works.push((work, annotations, relations));
            }
            stage = match state {
                TaskState::Annotated if self.rng.chance(600) => STAGE_REVIEW,
                TaskState::Annotated => STAGE_COMPLETE,
                TaskState::Validated if self.rng.chance(100) => STAGE_REVIEW,
                TaskState::Validated => STAGE_COMPLETE,
                _ => STAGE_LABEL,
            };
            assignee = self.rng.chance(900).then_some(labeler);
            let last = works.last().map(|(w, _, _)| (w.end(), w.who));
            updated_at = last.map(|(end, _)| end);
            updated_by = last.map(|(_, who)| who);
        }

        let mut duration_ms = 0;
        for (n, (work, annotations, relations)) in works.into_iter().enumerate() {
            duration_ms += work.duration_ms;
            submissions.push(Submission {
                id: Cow::Owned(format!("{}-s{}", self.id, n + 1)),
                stage: borrowed(work.stage),
                origin: work.origin,
                labeler: (work.origin == Origin::Human).then_some(borrowed(work.who)),
                model: (work.origin == Origin::Machine).then_some(borrowed(work.who)),
                started_at: Some(Cow::Owned(rfc3339(work.start))),
                completed_at: Cow::Owned(rfc3339(work.end())),
                duration_ms: work.duration_ms,
                annotations,
                relations,
            });
        }

        let comment_count = if self.rng.chance(600) {
            0
        } else {
            self.rng.range(1, 5) as u32
        };
        let mut batches = vec![Cow::Owned(format!("batch-{:03}", self.index / 1000 + 1))];
        if self.rng.chance(50) {
            batches.push(borrowed("priority"));
        }
        Task {
            links: Links {
                task: Some(Cow::Owned(format!(
                    "https://app.example.com/projects/{project}/tasks/{}",
                    self.id
                ))),
                element: Some(Cow::Owned(format!(
                    "https://assets.example.com/{}",
                    self.id
                ))),
            },
            id: Cow::Owned(self.id),
            asset: content.asset,
            state,
            stage: borrowed(stage),
            preview,
            assignee: assignee.map(borrowed),
            created_at: Cow::Owned(rfc3339(created)),
            updated_at: updated_at.map(|t| Cow::Owned(rfc3339(t))),
            updated_by: updated_by.map(borrowed),
            duration_ms,
            comment_count,
            batches,
            submissions,
        }
    }

    /// Marks annotations as made during `work`.
    fn stamp(&mut self, annotations: &mut [Annotation<'static>], work: &Work) {
        let start_ms = work.start * 1000;
        for a in annotations {
            a.created_at = Some(start_ms + self.rng.below(work.duration_ms) as i64);
            a.created_by = Some(borrowed(work.who));
        }
    }

    /// A model's pre-label: the same objects with confidences, sometimes a wrong class.
    fn machine_copy(
        &mut self,
        annotations: &[Annotation<'static>],
        work: &Work,
    ) -> Vec<Annotation<'static>> {
        let mut copy = annotations.to_vec();
        self.stamp(&mut copy, work);
        for a in &mut copy {
            a.confidence = Some(self.rng.confidence());
            for attribute in &mut a.attributes {
                attribute.confidence = Some(self.rng.confidence());
            }
        }
        if self.rng.chance(250) {
            if let Some(n) = self.mistake_target(&copy) {
                self.mislabel(&mut copy[n]);
            }
        }
        copy
    }

    /// An annotation whose class could be got wrong: a labelled one, not a group
    /// (its class is about its members) nor a video box (its class is its track's).
    fn mistake_target(&mut self, annotations: &[Annotation<'static>]) -> Option<usize> {
        if annotations.is_empty() {
            return None;
        }
        let n = self.rng.below(annotations.len() as u64) as usize;
        let a = &annotations[n];
        let fits = a.label.is_some()
            && a.kind != AnnotationKind::Group
            && a.track.is_none()
            && self.label_pool(a.kind).len() > 1;
        fits.then_some(n)
    }

    /// Gives an annotation another class of its pool.
    fn mislabel(&mut self, a: &mut Annotation<'static>) {
        let pool = self.label_pool(a.kind);
        let current = pool
            .iter()
            .position(|l| a.label.as_deref() == Some(*l))
            .unwrap_or(0);
        let other = (current + 1 + self.rng.below(pool.len() as u64 - 1) as usize) % pool.len();
        a.label = Some(borrowed(pool[other]));
    }

    /// The classes an annotation of this kind may take in this mode.
    fn label_pool(&self, kind: AnnotationKind) -> &'static [&'static str] {
        match (self.config.mode, kind) {
            (Mode::ElementGroup, AnnotationKind::Group) => GROUP_CLASSES,
            (Mode::ElementGroup, _) => GROUP_ELEMENT_CLASSES,
            _ => self.spec.classes,
        }
    }

    fn asset(&mut self) -> Asset<'static> {
        let external_id = self
            .rng
            .chance(950)
            .then(|| Cow::Owned(format!("ext-{}", &self.id[1..])));
        Asset {
            url: Cow::Owned(format!(
                "s3://labelport-demo-assets/{}/{}.{}",
                self.config.project_id, self.id, self.spec.extension
            )),
            external_id,
            data_source: None,
            text: None,
            tokens: Vec::new(),
            row: Vec::new(),
            frame_count: None,
            width: None,
            height: None,
        }
    }

    fn image(&mut self) -> Asset<'static> {
        let mut asset = self.asset();
        // Every 25th image has the file name of the one before it, in another folder:
        // formats that name images by file must still give each its own name.
        if self.index % 25 == 7 {
            asset.url = Cow::Owned(format!(
                "s3://labelport-demo-assets/{}/camera-b/{}.{}",
                self.config.project_id,
                task_id(self.index - 1),
                self.spec.extension
            ));
        }
        // From the index, not the random stream: the rest of the task stays as it was.
        asset.data_source = Some(borrowed(DATA_SOURCES[(self.index % 3) as usize]));
        let (width, height) = *self.rng.pick(SIZES);
        asset.width = Some(width);
        asset.height = Some(height);
        asset
    }

    fn content(&mut self) -> Content {
        let mut relations = Vec::new();
        let (asset, annotations) = match self.config.mode {
            Mode::Classification => {
                let asset = self.image();
                let mut classes = vec![self.class(self.spec.classes)];
                if self.rng.chance(150) {
                    let second = self.class(self.spec.classes);
                    if second.label != classes[0].label {
                        classes.push(second);
                    }
                }
                (asset, classes)
            }
            Mode::Element => {
                let asset = self.image();
                let size = (asset.width.unwrap_or(640), asset.height.unwrap_or(480));
                let count = self.rng.range(0, 6);
                let elements = (0..count)
                    .map(|_| {
                        let kind = match self.rng.below(100) {
                            0..60 => AnnotationKind::Box,
                            60..85 => AnnotationKind::Polygon,
                            _ => AnnotationKind::Point,
                        };
                        self.element(kind, self.spec.classes, size)
                    })
                    .collect();
                (asset, elements)
            }
            Mode::ElementGroup => {
                let asset = self.image();
                let size = (asset.width.unwrap_or(640), asset.height.unwrap_or(480));
                let count = self.rng.range(2, 6);
                let mut annotations: Vec<_> = (0..count)
                    .map(|_| {
                        let kind = if self.rng.chance(800) {
                            AnnotationKind::Box
                        } else {
                            AnnotationKind::Point
                        };
                        self.element(kind, GROUP_ELEMENT_CLASSES, size)
                    })
                    .collect();
                for _ in 0..self.rng.range(1, 3) {
                    let mut members: Vec<Cow<'static, str>> = Vec::new();
                    for element in &annotations[..count as usize] {
                        if self.rng.chance(500) {
                            members.push(element.id.clone());
                        }
                    }
                    if members.is_empty() {
                        let n = self.rng.below(count) as usize;
                        members.push(annotations[n].id.clone());
                    }
                    let mut group = self.annotation(AnnotationKind::Group);
                    group.label = Some(borrowed(self.rng.word(GROUP_CLASSES)));
                    group.members = members;
                    annotations.push(group);
                }
                (asset, annotations)
            }
            Mode::Entity | Mode::Token => {
                let tokens = self.config.mode == Mode::Token;
                let mut asset = self.asset();
                let doc = self.entity_text();
                let mut ids = Vec::with_capacity(doc.spans.len());
                let mut annotations = Vec::with_capacity(doc.spans.len());
                for span in &doc.spans {
                    // Labelers miss an entity now and then.
                    if self.rng.chance(50) {
                        ids.push(None);
                        continue;
                    }
                    let mut a = self.annotation(AnnotationKind::Span);
                    a.label = Some(borrowed(span.label));
                    if tokens {
                        a.token_start = Some(span.token_start);
                        a.token_end = Some(span.token_end);
                        a.text = Some(Cow::Owned(
                            doc.tokens[span.token_start as usize..span.token_end as usize]
                                .join(" "),
                        ));
                    } else {
                        a.start = Some(span.start);
                        a.end = Some(span.end);
                        a.text = Some(borrowed(span.text));
                    }
                    ids.push(Some(a.id.clone()));
                    annotations.push(a);
                }
                for (label, from, to) in doc.relations {
                    if let (Some(Some(from)), Some(Some(to))) = (ids.get(from), ids.get(to)) {
                        relations.push(Relation {
                            id: Cow::Owned(format!("r{}", relations.len() + 1)),
                            label: borrowed(label),
                            from: from.clone(),
                            to: to.clone(),
                        });
                    }
                }
                if tokens {
                    asset.tokens = doc.tokens.into_iter().map(Cow::Owned).collect();
                } else {
                    asset.text = Some(Cow::Owned(doc.text));
                }
                (asset, annotations)
            }
            Mode::EntityForm => {
                let mut asset = self.asset();
                let name = self.rng.word(PEOPLE);
                let birth = format!(
                    "{}-{:02}-{:02}",
                    self.rng.range(1940, 2005),
                    self.rng.range(1, 12),
                    self.rng.range(1, 28)
                );
                let city = self.rng.word(PLACES);
                let remarks = self.rng.word(REMARKS);
                asset.text = Some(Cow::Owned(format!(
                    "Name: {name}\nDate of birth: {birth}\nCity: {city}\nRemarks: {remarks}\n"
                )));
                let answers: [Cow<'static, str>; 4] = [
                    borrowed(name),
                    Cow::Owned(birth),
                    borrowed(city),
                    borrowed(remarks),
                ];
                let mut annotations = Vec::new();
                for (field, text) in self.spec.form_fields.iter().zip(answers) {
                    if self.rng.chance(100) {
                        continue;
                    }
                    let mut a = self.annotation(AnnotationKind::Answer);
                    a.field = Some(borrowed(field));
                    a.text = Some(text);
                    annotations.push(a);
                }
                (asset, annotations)
            }
            Mode::Transcription => {
                let asset = self.image();
                let count = self.rng.range(1, 4);
                let whole = self.rng.chance(200);
                let annotations = (0..count)
                    .map(|k| {
                        let mut a = self.annotation(AnnotationKind::Transcription);
                        a.text = Some(borrowed(self.rng.word(TRANSCRIPTIONS)));
                        if !(whole && k == 0) {
                            a.element = Some(Cow::Owned(format!("{}-line{}", self.id, k + 1)));
                        }
                        a
                    })
                    .collect();
                (asset, annotations)
            }
            Mode::Row => {
                let mut asset = self.asset();
                let rating = self.rng.range(1, 5);
                let cells: [(&'static str, Cow<'static, str>); 4] = [
                    (ROW_COLUMNS[0], borrowed(self.rng.word(PRODUCTS))),
                    (ROW_COLUMNS[1], borrowed(self.rng.word(REVIEWS))),
                    (ROW_COLUMNS[2], Cow::Owned(rating.to_string())),
                    (ROW_COLUMNS[3], borrowed(self.rng.word(COUNTRIES))),
                ];
                asset.row = cells
                    .into_iter()
                    .map(|(column, value)| Cell {
                        column: borrowed(column),
                        value,
                    })
                    .collect();
                let sentiment = match rating {
                    1 | 2 => "negative",
                    3 => "neutral",
                    _ => "positive",
                };
                let mut classes = vec![{
                    let mut a = self.annotation(AnnotationKind::Class);
                    a.label = Some(borrowed(sentiment));
                    a
                }];
                if self.rng.chance(100) {
                    let mut a = self.annotation(AnnotationKind::Class);
                    a.label = Some(borrowed("spam | promotional, ads"));
                    classes.push(a);
                }
                (asset, classes)
            }
            Mode::Document => {
                let mut asset = self.asset();
                let kind = self.rng.below(self.spec.classes.len() as u64) as usize;
                asset.text = Some(Cow::Owned(self.document_text(kind)));
                let mut chosen = vec![kind];
                for _ in 0..self.rng.range(0, 2) {
                    let other = self.rng.below(self.spec.classes.len() as u64) as usize;
                    if !chosen.contains(&other) {
                        chosen.push(other);
                    }
                }
                let classes = chosen
                    .into_iter()
                    .map(|k| {
                        let mut a = self.annotation(AnnotationKind::Class);
                        a.label = Some(borrowed(self.spec.classes[k]));
                        a
                    })
                    .collect();
                (asset, classes)
            }
            Mode::Video => self.video(),
        };
        Content {
            asset,
            annotations,
            relations,
        }
    }

    fn class(&mut self, pool: &'static [&'static str]) -> Annotation<'static> {
        let mut a = self.annotation(AnnotationKind::Class);
        a.label = Some(borrowed(self.rng.word(pool)));
        a
    }

    /// Attributes of an element: each of the project's, sometimes, with a confidence now and then.
    fn attributes(&mut self) -> Vec<Attribute<'static>> {
        let mut attributes = Vec::new();
        for name in self.spec.attributes {
            if !self.rng.chance(600) {
                continue;
            }
            let value = if *name == "color" {
                self.rng.word(COLORS)
            } else if self.rng.chance(300) {
                "yes"
            } else {
                "no"
            };
            let confidence = self.rng.chance(500).then(|| self.rng.confidence());
            attributes.push(Attribute {
                name: borrowed(name),
                value: borrowed(value),
                confidence,
            });
        }
        attributes
    }

    /// A box, polygon or point inside a `width` x `height` image, in tenths of pixels.
    fn element(
        &mut self,
        kind: AnnotationKind,
        pool: &'static [&'static str],
        (width, height): (u32, u32),
    ) -> Annotation<'static> {
        let mut a = self.annotation(kind);
        a.label = Some(borrowed(self.rng.word(pool)));
        let (w, h) = (u64::from(width) * 10, u64::from(height) * 10);
        let tenth = |v: u64| v as f64 / 10.0;
        let bw = self.rng.range(w / 20, w / 2);
        let bh = self.rng.range(h / 20, h / 2);
        let x = self.rng.below(w - bw + 1);
        let y = self.rng.below(h - bh + 1);
        // What image formats must clip, turn or refuse, from a stream of its own so the
        // rest of the task stays as it was.
        let mut edge = Rng::new(
            self.config.seed ^ EDGE_SEED,
            self.index << 10 | u64::from(self.next_annotation),
        );
        let (sx, sy) = (w as f64 / 10.0, h as f64 / 10.0);
        match kind {
            AnnotationKind::Box => {
                let mut b = BoundingBox {
                    x: tenth(x),
                    y: tenth(y),
                    width: tenth(bw),
                    height: tenth(bh),
                    rotation: None,
                };
                match edge.below(1000) {
                    // Past the right or the bottom edge, or over the top-left corner.
                    0..30 => b.x = sx - b.width / 2.0,
                    30..50 => b.y = sy - b.height / 3.0,
                    50..60 => (b.x, b.y) = (-b.width / 4.0, -b.height / 4.0),
                    // Wholly outside the image: nothing is left once clipped.
                    60..64 => b.x = sx + 5.0,
                    // Turned about its top-left corner, by whole degrees.
                    64..140 => {
                        b.rotation = Some(edge.range(1, 89) as f64 - 45.0 * edge.below(2) as f64)
                    }
                    _ => {}
                }
                a.bbox = Some(b);
            }
            AnnotationKind::Polygon => {
                // Points around the box's perimeter, clockwise from its top-left corner.
                let n = self.rng.range(3, 6);
                let perimeter = 2 * (bw + bh);
                a.points = (0..n)
                    .map(|k| {
                        let slot = perimeter / n;
                        let t = k * slot + self.rng.below(slot / 2 + 1);
                        let (px, py) = on_perimeter(x, y, bw, bh, t);
                        [tenth(px), tenth(py)]
                    })
                    .collect();
                // Now and then a polygon reaches past the left edge: moved whole, so it
                // stays a simple polygon.
                if edge.chance(40) {
                    // In whole tenths, so the coordinates keep one decimal.
                    let shift = (x + bw / 3) as f64;
                    for point in &mut a.points {
                        point[0] = ((point[0] * 10.0).round() - shift) / 10.0;
                    }
                }
            }
            _ => a.points = vec![[tenth(x + bw / 2), tenth(y + bh / 2)]],
        }
        a.attributes = self.attributes();
        a
    }

    fn video(&mut self) -> (Asset<'static>, Vec<Annotation<'static>>) {
        let mut asset = self.asset();
        let (width, height) = (1280u32, 720u32);
        asset.width = Some(width);
        asset.height = Some(height);
        // At least 120 frames: a track spans at most 30 x 3 frames.
        let frames = self.rng.range(120, 600) as u32;
        asset.frame_count = Some(frames);
        let mut annotations = Vec::new();
        for track in 1..=self.rng.range(1, 3) {
            let label = self.rng.word(self.spec.classes);
            let track_id = format!("track-{track}");
            let step = self.rng.range(10, 30) as u32;
            let keys = self.rng.range(2, 4) as u32;
            let first = self.rng.below(u64::from(frames - step * (keys - 1))) as u32;
            // Box corners in tenths of pixels at each key frame; interpolated midway.
            let (w, h) = (u64::from(width) * 10, u64::from(height) * 10);
            let mut previous: Option<(u32, [u64; 4])> = None;
            for k in 0..keys {
                let frame = first + k * step;
                let geometry = match previous {
                    None => {
                        let bw = self.rng.range(w / 20, w / 4);
                        let bh = self.rng.range(h / 20, h / 4);
                        [self.rng.below(w - bw), self.rng.below(h - bh), bw, bh]
                    }
                    // The object moves up to a tenth of the frame and grows or
                    // shrinks by up to a tenth between key frames.
                    Some((_, [x, y, bw, bh])) => {
                        let bw = (bw * self.rng.range(90, 110) / 100).clamp(w / 20, w / 4);
                        let bh = (bh * self.rng.range(90, 110) / 100).clamp(h / 20, h / 4);
                        let x = (x + self.rng.range(0, w / 5)).saturating_sub(w / 10);
                        let y = (y + self.rng.range(0, h / 5)).saturating_sub(h / 10);
                        [x.min(w - bw), y.min(h - bh), bw, bh]
                    }
                };
                if let Some((before, g0)) = previous {
                    if self.rng.chance(700) {
                        let mid = [0, 1, 2, 3].map(|i| (g0[i] + geometry[i]) / 2);
                        annotations.push(self.video_box(
                            label,
                            &track_id,
                            (before + frame) / 2,
                            false,
                            mid,
                        ));
                    }
                }
                annotations.push(self.video_box(label, &track_id, frame, true, geometry));
                previous = Some((frame, geometry));
            }
        }
        (asset, annotations)
    }

    fn video_box(
        &mut self,
        label: &'static str,
        track: &str,
        frame: u32,
        key_frame: bool,
        [x, y, width, height]: [u64; 4],
    ) -> Annotation<'static> {
        let mut a = self.annotation(AnnotationKind::Box);
        a.label = Some(borrowed(label));
        let tenth = |v: u64| v as f64 / 10.0;
        a.bbox = Some(BoundingBox {
            x: tenth(x),
            y: tenth(y),
            width: tenth(width),
            height: tenth(height),
            rotation: None,
        });
        a.frame = Some(frame);
        a.key_frame = Some(key_frame);
        a.track = Some(Cow::Owned(track.to_owned()));
        a.attributes = self.attributes();
        a
    }

    fn entity_text(&mut self) -> EntityText {
        let mut doc = EntityText::default();
        let sentences = self.rng.range(1, 3);
        for s in 0..sentences {
            if s > 0 {
                doc.literal(if self.rng.chance(200) { "\n" } else { " " });
            }
            let sentence = self.rng.pick(SENTENCES);
            let first = doc.spans.len();
            let mut rest = sentence.text;
            while let Some(open) = rest.find('{') {
                doc.literal(&rest[..open]);
                let (label, pool) = match rest.as_bytes().get(open + 1) {
                    Some(b'P') => ("person", PEOPLE),
                    Some(b'O') => ("organization", ORGS),
                    Some(b'L') => ("location", PLACES),
                    _ => ("date", DATES),
                };
                doc.entity(label, self.rng.word(pool));
                rest = &rest[open + 3..];
            }
            doc.literal(rest);
            for (label, from, to) in sentence.relations {
                doc.relations.push((label, first + from, first + to));
            }
        }
        doc
    }

    fn document_text(&mut self, kind: usize) -> String {
        let person = self.rng.word(PEOPLE);
        let org = self.rng.word(ORGS);
        let place = self.rng.word(PLACES);
        let number = self.rng.range(1000, 9999);
        let mut text = String::new();
        let _ = match kind {
            0 => write!(
                text,
                "INVOICE #{number}\nBill to: {person}, {place}\nTotal: €{},{:02}",
                number / 3,
                number % 100
            ),
            1 => write!(
                text,
                "SERVICE AGREEMENT between {org} and {person}, signed in {place}."
            ),
            2 => write!(
                text,
                "Dear {person},\nthank you for visiting {org} in {place}.\nBest regards"
            ),
            3 => write!(
                text,
                "Annual report: {org} grew revenue by {}%, a \"record\" year.",
                number % 40
            ),
            _ => write!(text, "Reçu fiscal n° {number} — {org}, {place}"),
        };
        text
    }
}

/// The point at distance `t` along the perimeter of a box, clockwise from its
/// top-left corner.
fn on_perimeter(x: u64, y: u64, width: u64, height: u64, t: u64) -> (u64, u64) {
    if t < width {
        return (x + t, y);
    }
    let t = t - width;
    if t < height {
        return (x + width, y + t);
    }
    let t = t - height;
    if t < width {
        return (x + width - t, y + height);
    }
    let t = (t - width).min(height);
    (x, y + height - t)
}

/// A text made of sentences, with its entities as character and token spans.
#[derive(Default)]
struct EntityText {
    text: String,
    chars: u32,
    tokens: Vec<String>,
    spans: Vec<EntitySpan>,
    relations: Vec<(&'static str, usize, usize)>,
}

struct EntitySpan {
    label: &'static str,
    text: &'static str,
    start: u32,
    end: u32,
    token_start: u32,
    token_end: u32,
}

impl EntityText {
    fn literal(&mut self, s: &str) {
        self.text.push_str(s);
        self.chars += s.chars().count() as u32;
        for word in s.split_whitespace() {
            let core = word.trim_start_matches(['"', '(']);
            for c in word[..word.len() - core.len()].chars() {
                self.tokens.push(c.to_string());
            }
            let trimmed = core.trim_end_matches(['"', ')', '.', ',', ':', ';']);
            if !trimmed.is_empty() {
                self.tokens.push(trimmed.to_owned());
            }
            for c in core[trimmed.len()..].chars() {
                self.tokens.push(c.to_string());
            }
        }
    }

    fn entity(&mut self, label: &'static str, text: &'static str) {
        let start = self.chars;
        self.text.push_str(text);
        self.chars += text.chars().count() as u32;
        let token_start = self.tokens.len() as u32;
        self.tokens
            .extend(text.split_whitespace().map(str::to_owned));
        self.spans.push(EntitySpan {
            label,
            text,
            start,
            end: self.chars,
            token_start,
            token_end: self.tokens.len() as u32,
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::io::Read;

    fn lines(config: &Config, range: std::ops::Range<u64>) -> Vec<u8> {
        let mut out = Vec::new();
        for i in range {
            write_task_line(config, i, &mut out);
        }
        out
    }

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
    fn task_ids_are_zero_padded_to_eight_digits() {
        assert_eq!(task_id(0), "t00000000");
        assert_eq!(task_id(42), "t00000042");
        assert_eq!(task_id(123_456_789), "t123456789");
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(YEAR_START), "2024-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(YEAR_START + 59 * DAY + 3_723),
            "2024-02-29T01:02:03Z"
        );
        assert_eq!(rfc3339(YEAR_START + 366 * DAY - 1), "2024-12-31T23:59:59Z");
    }

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

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        for mode in Mode::ALL {
            let a = Config::new("p", mode, 100, 7);
            assert_eq!(lines(&a, 0..100), lines(&a, 0..100), "{mode}");
            // A task does not depend on the tasks before it.
            assert_eq!(
                lines(&a, 57..58),
                lines(&a, 0..100)
                    .split_inclusive(|b| *b == b'\n')
                    .nth(57)
                    .unwrap()
            );
            let b = Config::new("p", mode, 100, 8);
            let (la, lb) = (lines(&a, 0..100), lines(&b, 0..100));
            let differing = la
                .split(|b| *b == b'\n')
                .zip(lb.split(|b| *b == b'\n'))
                .filter(|(x, y)| x != y)
                .count();
            assert!(differing > 90, "{mode}: only {differing} lines differ");
        }
    }

    #[test]
    fn images_carry_the_edge_cases_image_formats_must_handle() {
        let config = Config::new("edges", Mode::Element, 2_000, 42);
        let (mut past, mut outside, mut turned, mut polygons_past) = (0, 0, 0, 0);
        let mut names = std::collections::HashMap::new();
        for i in 0..config.tasks {
            let task = task(&config, i);
            let name = task.asset.url.rsplit('/').next().unwrap().to_owned();
            *names.entry(name).or_insert(0) += 1;
            let (w, h) = (
                f64::from(task.asset.width.unwrap()),
                f64::from(task.asset.height.unwrap()),
            );
            for a in task.submissions.iter().flat_map(|s| &s.annotations) {
                if let Some(b) = a.bbox {
                    turned += usize::from(b.is_rotated());
                    if b.x >= w {
                        outside += 1;
                    } else if b.x < 0.0 || b.y < 0.0 || b.x + b.width > w || b.y + b.height > h {
                        past += 1;
                    }
                }
                polygons_past +=
                    usize::from(a.points.len() > 2 && a.points.iter().any(|p| p[0] < 0.0));
            }
        }
        assert!(
            past > 50 && outside > 3 && turned > 100 && polygons_past > 10,
            "{past} past an edge, {outside} outside, {turned} turned, {polygons_past} polygons"
        );
        assert_eq!(
            names.values().filter(|n| **n > 1).count(),
            80,
            "shared file names"
        );
    }

    /// Pins the bytes: if this fails, the generator's output changed, and every test
    /// or benchmark that regenerates task `i` sees other data. Update on purpose.
    #[test]
    fn output_is_pinned() {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for mode in Mode::ALL {
            for byte in lines(&Config::new("demo", mode, 50, 42), 0..50) {
                hash = (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
            }
        }
        assert_eq!(
            hash, 0x4dbc_1caf_3715_f340,
            "generator output changed: {hash:#x}"
        );
    }

    fn check_task(mode: Mode, task: &Task<'_>) {
        let ctx = format!("{mode} {}", task.id);
        assert!(task.created_at.starts_with("2024-"), "{ctx}");
        let in_2024 = |t: &str| t.starts_with("2024-") && t.ends_with('Z') && t.len() == 20;
        assert!(in_2024(&task.created_at), "{ctx}");
        if let Some(updated) = &task.updated_at {
            assert!(in_2024(updated) && **updated >= *task.created_at, "{ctx}");
        }
        assert!(task.comment_count <= 5);
        assert_eq!(
            task.duration_ms,
            task.submissions.iter().map(|s| s.duration_ms).sum::<u64>(),
            "{ctx}"
        );
        match task.state {
            TaskState::Pending => {
                assert!(task.submissions.is_empty());
                assert_eq!(task.stage, STAGE_LABEL);
            }
            state => {
                assert!((1..=3).contains(&task.submissions.len()), "{ctx}");
                let reviewed = matches!(state, TaskState::Validated | TaskState::Rejected);
                let last = task.final_submission().unwrap();
                assert_eq!(last.stage == STAGE_REVIEW, reviewed, "{ctx}");
                if matches!(state, TaskState::Annotated | TaskState::Validated) {
                    assert_ne!(task.stage, STAGE_LABEL, "{ctx}");
                } else {
                    assert_eq!(task.stage, STAGE_LABEL, "{ctx}");
                }
                if state == TaskState::Skipped {
                    assert!(task.annotations().is_empty(), "{ctx}");
                }
            }
        }
        let mut previous = task.created_at.to_string();
        for s in &task.submissions {
            let started = s.started_at.as_deref().unwrap();
            assert!(
                started >= previous.as_str() && *s.completed_at >= *started,
                "{ctx}"
            );
            assert!(in_2024(&s.completed_at), "{ctx}");
            previous = s.completed_at.to_string();
            match s.origin {
                Origin::Human => assert!(s.labeler.is_some() && s.model.is_none()),
                Origin::Machine => assert!(s.model.is_some() && s.labeler.is_none()),
            }
            let ids: HashSet<&str> = s.annotations.iter().map(|a| &*a.id).collect();
            assert_eq!(ids.len(), s.annotations.len(), "{ctx}: duplicate ids");
            for a in &s.annotations {
                a.check()
                    .unwrap_or_else(|field| panic!("{ctx}: {} lacks {field}", a.id));
                for m in &a.members {
                    assert!(ids.contains(&**m), "{ctx}: member {m}");
                }
                if let (Some(start), Some(end)) = (a.start, a.end) {
                    let text = task.asset.text.as_deref().unwrap();
                    let covered: String = text
                        .chars()
                        .skip(start as usize)
                        .take((end - start) as usize)
                        .collect();
                    assert_eq!(Some(covered.as_str()), a.text.as_deref(), "{ctx}");
                }
                if let (Some(start), Some(end)) = (a.token_start, a.token_end) {
                    assert!(
                        start < end && end as usize <= task.asset.tokens.len(),
                        "{ctx}"
                    );
                    let covered = task.asset.tokens[start as usize..end as usize].join(" ");
                    assert_eq!(Some(covered.as_str()), a.text.as_deref(), "{ctx}");
                }
                if let Some(frame) = a.frame {
                    assert!(frame < task.asset.frame_count.unwrap(), "{ctx}");
                    assert!(a.track.is_some() && a.key_frame.is_some(), "{ctx}");
                }
                // Geometry may reach past an edge (formats must clip it), never far.
                let (w, h) = (
                    f64::from(task.asset.width.unwrap_or(0)),
                    f64::from(task.asset.height.unwrap_or(0)),
                );
                if let Some(b) = a.bbox {
                    assert!(b.width > 0.0 && b.height > 0.0, "{ctx}");
                    for [x, y] in b.corners() {
                        assert!((-w..=2.0 * w).contains(&x), "{ctx}");
                        assert!((-h..=2.0 * h).contains(&y), "{ctx}");
                    }
                }
                for p in &a.points {
                    assert!((-w..=w).contains(&p[0]), "{ctx}");
                    assert!((0.0..=h).contains(&p[1]), "{ctx}");
                }
            }
            for r in &s.relations {
                assert!(
                    ids.contains(&*r.from) && ids.contains(&*r.to),
                    "{ctx}: {}",
                    r.id
                );
            }
        }
    }

    #[test]
    fn every_mode_writes_lines_that_parse_and_check() {
        for mode in Mode::ALL {
            let config = Config::new("demo", mode, 2_000, 1);
            let manifest = project(&config);
            let bytes = lines(&config, 0..2_000);
            let mut states = [0u32; 5];
            let mut previews = 0;
            let mut annotations = 0;
            for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let task: Task<'_> = serde_json::from_slice(line).unwrap();
                check_task(mode, &task);
                states[TaskState::ALL
                    .iter()
                    .position(|s| *s == task.state)
                    .unwrap()] += 1;
                previews += u32::from(task.preview);
                if let Some(assignee) = &task.assignee {
                    assert_eq!(manifest.role_of(assignee), Some(Role::Labeler));
                }
                for a in task.annotations() {
                    annotations += 1;
                    if let Some(label) = &a.label {
                        assert!(
                            manifest.labels.classes.iter().any(|c| c == label),
                            "{label}"
                        );
                    }
                    if let Some(field) = &a.field {
                        assert!(manifest.labels.form_fields.iter().any(|f| f == field));
                    }
                    for attribute in &a.attributes {
                        assert!(manifest
                            .labels
                            .attributes
                            .contains(&attribute.name.to_string()));
                    }
                }
                for r in task.relations() {
                    assert!(manifest.labels.relations.contains(&r.label.to_string()));
                }
            }
            assert!(annotations > 1_000, "{mode}: {annotations} annotations");
            // pending 10%, annotated 40%, validated 35%, rejected 10%, skipped 5%
            let expected = [200, 800, 700, 200, 100];
            for (got, want) in states.iter().zip(expected) {
                assert!(got.abs_diff(want) < want / 4 + 20, "{mode}: {states:?}");
            }
            assert!((10..=80).contains(&previews), "{mode}: {previews} previews");
        }
    }

    #[test]
    fn some_strings_need_escaping() {
        let mut all = Vec::new();
        for mode in Mode::ALL {
            all.extend(lines(&Config::new("demo", mode, 200, 3), 0..200));
        }
        let text = String::from_utf8(all).unwrap();
        for needle in ["\\\"", "\\n", "Zoë", "São Paulo", "a, b", "say \\\"hi\\\""] {
            assert!(text.contains(needle), "{needle}");
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
