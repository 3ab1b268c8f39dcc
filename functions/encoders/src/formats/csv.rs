//! The campaign CSV: a header, then one line per task with the task's
//! identity, state, assignee, dates, time spent, comments and links, followed by
//! columns that depend on the project's mode. A row or document project's CSV is its
//! table instead (`crate::table`): the id, the row's cells or the document's text, and
//! the labels, the table pandas and Hugging Face `datasets` load.
//!
//! Lines end with `\n`; a cell is quoted (RFC 4180) only when it holds `,`, `"`,
//! `\r` or `\n`, with inner quotes doubled. Cells that join several values (classes,
//! answers, transcriptions) are written straight from the annotations: quoting is
//! decided over the parts first, so nothing is collected per task.
//!
//! The encoder does not filter: the caller decides which tasks are exported (seed
//! 000: annotated and validated tasks only, no preview tasks).

use crate::formats::tsv::DelimitedTable;
use crate::label_studio::LabelStudioCsv;
use crate::table::MODES;
use crate::tabular::{column_names, TableStyle, CELLS, EXCEL};
use crate::{
    Compat, ConfigError, Container, EncodeError, Encoder, FormatSpec, Out, Record, Settings, COMPAT,
};
use labelport_model::{Annotation, AnnotationKind, Mode, Project, TaskState};

/// The campaign CSV.
pub static FORMAT: FormatSpec = FormatSpec {
    name: "CSV",
    summary: "one row per task: identity, state, assignee, dates, time, comments, links, then mode columns; a row or document project's cells or text and labels",
    modes: None,
    default_states: Some(&[TaskState::Annotated, TaskState::Validated]),
    allowed_states: Some(&[TaskState::Annotated, TaskState::Validated]),
    default_stages: None,
    options: &[&CELLS, &EXCEL, &COMPAT],
    build: |settings| match Compat::of(settings.options)? {
        Some(Compat::LabelStudio) => Ok(Box::new(LabelStudioCsv::new(settings, FORMAT.name)?)),
        None if MODES.contains(&settings.project.mode) => DelimitedTable::build(settings, FORMAT.name, b',', "csv", "text/csv; charset=utf-8"),
        None => Ok(Box::new(CsvEncoder::new(settings)?)),
    },
};

/// The columns every campaign CSV starts with.
const BASE_COLUMNS: [&str; 8] = [
    "id",
    "state",
    "assignee_email",
    "created_at",
    "duration_seconds",
    "comment_count",
    "task_url",
    "element_url",
];

/// Put before a form field's column name when the name is taken (a field called `id`
/// becomes `form:id`), again until it is free.
pub const FORM_FIELD_PREFIX: &str = "form:";

/// Writes the campaign CSV.
///
/// Built through its [`Format`](crate::Format), which refuses the field toggles a CSV
/// cannot carry:
///
/// ```
/// use labelport_encoders::{FieldToggles, Format, FormatOptions, Out, Record, Settings};
/// use labelport_model::{Project, Task};
///
/// let project: Project = serde_json::from_str(
///     r#"{"schemaVersion":1,"id":"p","name":"P","mode":"classification","state":"running"}"#,
/// ).unwrap();
/// let options = FormatOptions::default();
/// let settings = |fields| Settings { project: &project, fields, compression: Default::default(), options: &options };
/// let csv: Format = "CSV".parse().unwrap();
/// let encoder = csv.build(&settings(FieldToggles::default())).unwrap();
///
/// let line = r#"{"id":"t1","asset":{"url":"s3://b/1.jpg"},"state":"validated",
///     "stage":"Complete","createdAt":"2024-01-01T00:00:00Z","durationMs":18069,
///     "submissions":[{"id":"s1","stage":"Label","origin":"human","completedAt":"x",
///     "annotations":[{"id":"a1","type":"class","label":"cat"},
///                    {"id":"a2","type":"class","label":"pet, small"}]}]}"#;
/// let task: Task<'_> = serde_json::from_str(line).unwrap();
///
/// let mut file = Vec::new();
/// encoder.header(&mut file);
/// let mut out = Out::new(encoder.separator());
/// out.begin_record();
/// encoder.encode(&Record { task: &task, raw: None, ordinal: 0 }, &mut out).unwrap();
/// out.end_record();
/// file.extend_from_slice(out.bytes());
/// encoder.footer(&mut file);
/// assert_eq!(
///     String::from_utf8(file).unwrap(),
///     "id,state,assignee_email,created_at,duration_seconds,comment_count,task_url,element_url,class\n\
///      t1,validated,,2024-01-01T00:00:00Z,18.069,0,,,\"cat|pet, small\"\n"
/// );
///
/// let history = FieldToggles { stage_history: true, ..FieldToggles::default() };
/// let err = csv.build(&settings(history)).err().unwrap();
/// assert_eq!(err.field, "fields.stageHistory");
/// ```
pub struct CsvEncoder {
    mode: Mode,
    style: TableStyle,
    /// The project's form fields, for entity form projects (one column each).
    form_fields: Vec<String>,
    /// Their column names: the field's name, prefixed where it is taken.
    form_columns: Vec<String>,
}

impl CsvEncoder {
    /// Builds the encoder for `project`'s mode. Every field toggle is refused: the
    /// CSV has one line per task and no room for metadata, history or frames.
    pub fn new(settings: &Settings<'_>) -> Result<Self, ConfigError> {
        settings.fields.refuse_all(FORMAT.name)?;
        let project: &Project = settings.project;
        let form_fields = match project.mode {
            Mode::EntityForm => project.labels.form_fields.clone(),
            Mode::Classification
            | Mode::Element
            | Mode::ElementGroup
            | Mode::Entity
            | Mode::Transcription
            | Mode::Row
            | Mode::Document
            | Mode::Token
            | Mode::Video => Vec::new(),
        };
        let form_columns = column_names(&BASE_COLUMNS, &form_fields, FORM_FIELD_PREFIX);
        Ok(CsvEncoder {
            mode: project.mode,
            style: TableStyle::from_settings(settings, b',')?,
            form_fields,
            form_columns,
        })
    }
}

impl Encoder for CsvEncoder {
    fn container(&self) -> Container {
        Container::File {
            extension: "csv",
            content_type: "text/csv; charset=utf-8",
        }
    }

    fn header(&self, out: &mut Vec<u8>) {
        let style = &self.style;
        style.start(out);
        out.extend_from_slice(BASE_COLUMNS.join(",").as_bytes());
        let column = match self.mode {
            Mode::Classification => "class",
            Mode::Element => "element_count",
            Mode::ElementGroup => "element_group_count",
            Mode::Entity | Mode::Token => "entity_count",
            Mode::Transcription => "transcription",
            Mode::Row | Mode::Document => "labels",
            Mode::Video => "object_count",
            Mode::EntityForm => {
                for column in &self.form_columns {
                    style.next(out);
                    style.text(out, column);
                }
                style.end_line(out);
                return;
            }
        };
        style.next(out);
        out.extend_from_slice(column.as_bytes());
        style.end_line(out);
    }

    fn encode(&self, record: &Record<'_, '_>, out: &mut Out) -> Result<(), EncodeError> {
        let mut n = itoa::Buffer::new();
        let task = record.task;
        let out = out.record();

        let style = &self.style;
        style.text(out, &task.id);
        style.next(out);
        out.extend_from_slice(task.state.as_str().as_bytes());
        style.next(out);
        style.text(out, task.assignee.as_deref().unwrap_or(""));
        style.next(out);
        style.timestamp(out, &task.created_at);
        style.next(out);
        write_seconds(out, task.duration_ms);
        style.next(out);
        out.extend_from_slice(n.format(task.comment_count).as_bytes());
        style.next(out);
        style.text(out, task.links.task.as_deref().unwrap_or(""));
        style.next(out);
        style.text(out, task.links.element.as_deref().unwrap_or(""));

        let annotations = task.annotations();
        let count = |kind: AnnotationKind| annotations.iter().filter(|a| a.kind == kind).count();
        match self.mode {
            Mode::Classification | Mode::Row | Mode::Document => {
                style.next(out);
                style.values(out, labels(annotations, AnnotationKind::Class));
            }
            Mode::Element => {
                let elements = annotations.iter().filter(|a| a.kind.is_element()).count();
                style.next(out);
                out.extend_from_slice(n.format(elements).as_bytes());
            }
            Mode::ElementGroup => {
                style.next(out);
                out.extend_from_slice(n.format(count(AnnotationKind::Group)).as_bytes());
            }
            Mode::Entity | Mode::Token => {
                style.next(out);
                out.extend_from_slice(n.format(count(AnnotationKind::Span)).as_bytes());
            }
            Mode::EntityForm => {
                for field in &self.form_fields {
                    let answers = annotations
                        .iter()
                        .filter(|a| {
                            a.kind == AnnotationKind::Answer
                                && a.field.as_deref() == Some(field.as_str())
                        })
                        .filter_map(|a| a.text.as_deref());
                    style.next(out);
                    style.values(out, answers);
                }
            }
            Mode::Transcription => {
                let texts = annotations
                    .iter()
                    .filter(|a| a.kind == AnnotationKind::Transcription)
                    .filter_map(|a| a.text.as_deref());
                style.next(out);
                style.joined(out, texts, b' ');
            }
            Mode::Video => {
                style.next(out);
                out.extend_from_slice(n.format(object_count(annotations)).as_bytes());
            }
        }
        style.end_line(out);
        Ok(())
    }
}

/// The labels of the annotations of `kind`, in order.
fn labels<'s>(
    annotations: &'s [Annotation<'_>],
    kind: AnnotationKind,
) -> impl Iterator<Item = &'s str> + Clone {
    annotations
        .iter()
        .filter(move |a| a.kind == kind)
        .filter_map(|a| a.label.as_deref())
}

/// Number of objects among the element annotations of a video task: one per
/// distinct track, plus one per element without a track. Up to 64 elements, pairs are
/// compared (no allocation, and cheaper than hashing); past that a set of track ids
/// keeps it linear, so a long video with thousands of tracks stays fast.
fn object_count(annotations: &[Annotation<'_>]) -> usize {
    const SMALL: usize = 64;
    let elements = || annotations.iter().filter(|a| a.kind.is_element());
    if annotations.len() > SMALL {
        let mut tracks = std::collections::HashSet::new();
        let mut loose = 0;
        for a in elements() {
            match a.track.as_deref() {
                Some(track) => {
                    tracks.insert(track);
                }
                None => loose += 1,
            }
        }
        return tracks.len() + loose;
    }
    let mut objects = 0;
    for (i, a) in annotations.iter().enumerate() {
        if !a.kind.is_element() {
            continue;
        }
        let first_of_its_track = match a.track.as_deref() {
            None => true,
            Some(track) => !annotations[..i]
                .iter()
                .any(|b| b.kind.is_element() && b.track.as_deref() == Some(track)),
        };
        if first_of_its_track {
            objects += 1;
        }
    }
    objects
}

/// Writes milliseconds as seconds with millisecond precision, trailing zeros trimmed:
/// 18069 → `18.069`, 18500 → `18.5`, 18000 → `18`, 0 → `0`.
fn write_seconds(out: &mut Vec<u8>, ms: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(ms / 1000).as_bytes());
    let frac = ms % 1000;
    if frac != 0 {
        // Each digit is below 10, so the casts are lossless.
        let digits = [
            b'0' + (frac / 100) as u8,
            b'0' + (frac / 10 % 10) as u8,
            b'0' + (frac % 10) as u8,
        ];
        let mut len = 3;
        while digits[len - 1] == b'0' {
            len -= 1;
        }
        out.push(b'.');
        out.extend_from_slice(&digits[..len]);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::formats::testing;
    use crate::{FieldToggles, FormatOptions};
    use labelport_model::{Project, Task};

    fn csv_encoder(fields: FieldToggles, project: &Project) -> Result<CsvEncoder, ConfigError> {
        CsvEncoder::new(&Settings {
            project,
            fields,
            compression: Default::default(),
            options: &FormatOptions::default(),
        })
    }

    const BASE: &str =
        "id,state,assignee_email,created_at,duration_seconds,comment_count,task_url,element_url";

    fn project(mode: &str, form_fields: &[&str]) -> Project {
        let json = serde_json::json!({
            "schemaVersion": 1,
            "id": "p1",
            "name": "Project",
            "mode": mode,
            "state": "running",
            "labels": { "formFields": form_fields },
        });
        serde_json::from_value(json).unwrap()
    }

    /// A task whose final submission holds `annotations` (a JSON array). An earlier
    /// submission holds other annotations, which must not be exported.
    fn task_json(annotations: &str) -> String {
        format!(
            r#"{{"id":"t1","asset":{{"url":"s3://bucket/1.jpg"}},"state":"validated","stage":"Complete",
            "assignee":"ada@example.com","createdAt":"2024-01-01T00:00:00Z","durationMs":18069,
            "commentCount":2,"links":{{"task":"https://app/t/1","element":"https://prov/e/1"}},
            "submissions":[
              {{"id":"s0","stage":"Label","origin":"machine","completedAt":"2024-01-01T00:01:00Z",
                "annotations":[{{"id":"old","type":"class","label":"stale"}},{{"id":"old2","type":"box","label":"x","bbox":{{"x":0,"y":0,"width":1,"height":1}}}}]}},
              {{"id":"s1","stage":"Review","origin":"human","completedAt":"2024-01-01T00:02:00Z",
                "annotations":{annotations}}}
            ]}}"#
        )
    }

    fn encode(project: &Project, task_json: &str) -> String {
        let encoder = csv_encoder(FieldToggles::default(), project).unwrap();
        testing::file(&encoder, &[task_json])
    }

    const PREFIX: &str = "t1,validated,ada@example.com,2024-01-01T00:00:00Z,18.069,2,https://app/t/1,https://prov/e/1";

    fn expect(mode: &str, annotations: &str, column: &str, cell: &str) {
        let got = encode(&project(mode, &[]), &task_json(annotations));
        assert_eq!(
            got,
            format!("{BASE},{column}\n{PREFIX},{cell}\n"),
            "mode {mode}"
        );
    }

    #[test]
    fn classification_joins_the_final_class_labels() {
        expect(
            "classification",
            r#"[{"id":"a","type":"class","label":"cat"},{"id":"b","type":"box","label":"nope","bbox":{"x":0,"y":0,"width":1,"height":1}},{"id":"c","type":"class","label":"dog"}]"#,
            "class",
            "cat|dog",
        );
        expect("classification", "[]", "class", "");
    }

    #[test]
    fn form_fields_named_like_base_columns_get_the_prefix() {
        let p = project("entity_form", &["id", "form:id", "state", "city"]);
        let anns = r#"[{"id":"a","type":"answer","field":"id","text":"X-1"},
                       {"id":"b","type":"answer","field":"form:id","text":"X-2"},
                       {"id":"c","type":"answer","field":"city","text":"Nice"}]"#;
        assert_eq!(
            encode(&p, &task_json(anns)),
            format!("{BASE},form:form:id,form:id,form:state,city\n{PREFIX},X-1,X-2,,Nice\n")
        );
    }

    #[test]
    fn formula_like_labels_are_neutralised_unless_raw_and_excel_adds_bom_and_crlf() {
        let p = project("classification", &[]);
        let task = task_json(
            r#"[{"id":"a","type":"class","label":"=HYPERLINK(\"x\")"},{"id":"b","type":"class","label":"a|b"}]"#,
        );
        let build = |options: serde_json::Value| {
            let options: FormatOptions = serde_json::from_value(options).unwrap();
            let encoder = CsvEncoder::new(&Settings {
                project: &p,
                fields: FieldToggles::default(),
                compression: Default::default(),
                options: &options,
            })
            .unwrap();
            testing::file(&encoder, &[&task])
        };
        assert_eq!(
            build(serde_json::json!({})),
            format!("{BASE},class\n{PREFIX},\"'=HYPERLINK(\"\"x\"\")|a\\|b\"\n")
        );
        assert_eq!(
            build(serde_json::json!({"cells": "raw"})),
            format!("{BASE},class\n{PREFIX},\"=HYPERLINK(\"\"x\"\")|a\\|b\"\n")
        );
        assert_eq!(
            build(serde_json::json!({"excel": true})),
            format!("\u{feff}{BASE},class\r\n{PREFIX},\"'=HYPERLINK(\"\"x\"\")|a\\|b\"\r\n")
        );
    }

    #[test]
    fn element_counts_boxes_polygons_and_points() {
        expect(
            "element",
            r#"[{"id":"a","type":"box","label":"car","bbox":{"x":0,"y":0,"width":1,"height":1}},
                {"id":"b","type":"polygon","label":"car","points":[[0,0],[1,0],[1,1]]},
                {"id":"c","type":"point","label":"eye","points":[[3,4]]},
                {"id":"d","type":"class","label":"day"}]"#,
            "element_count",
            "3",
        );
        expect("element", "[]", "element_count", "0");
    }

    #[test]
    fn element_group_counts_groups() {
        expect(
            "element_group",
            r#"[{"id":"a","type":"box","label":"car","bbox":{"x":0,"y":0,"width":1,"height":1}},
                {"id":"g1","type":"group","label":"fleet","members":["a"]},
                {"id":"g2","type":"group","label":"fleet","members":[]}]"#,
            "element_group_count",
            "2",
        );
    }

    #[test]
    fn entity_and_token_count_spans() {
        let spans = r#"[{"id":"a","type":"span","label":"PER","start":0,"end":3},
                        {"id":"b","type":"span","label":"ORG","tokenStart":4,"tokenEnd":5},
                        {"id":"c","type":"class","label":"news"}]"#;
        expect("entity", spans, "entity_count", "2");
        expect("token", spans, "entity_count", "2");
    }

    #[test]
    fn entity_form_has_one_column_per_field_in_form_order() {
        let p = project("entity_form", &["name", "city, country", "empty"]);
        let anns = r#"[{"id":"a","type":"answer","field":"city, country","text":"Paris"},
                       {"id":"b","type":"answer","field":"name","text":"Ada"},
                       {"id":"c","type":"answer","field":"name","text":"Lovelace"},
                       {"id":"d","type":"answer","field":"other","text":"ignored"}]"#;
        assert_eq!(
            encode(&p, &task_json(anns)),
            format!("{BASE},name,\"city, country\",empty\n{PREFIX},Ada|Lovelace,Paris,\n")
        );
        // A form without fields adds no column at all.
        let p = project("entity_form", &[]);
        assert_eq!(encode(&p, &task_json(anns)), format!("{BASE}\n{PREFIX}\n"));
    }

    #[test]
    fn transcription_joins_texts_with_a_space() {
        expect(
            "transcription",
            r#"[{"id":"a","type":"transcription","text":"Dear Sir,"},
                {"id":"b","type":"transcription","text":"yours","element":"e2"}]"#,
            "transcription",
            "\"Dear Sir, yours\"",
        );
    }

    #[test]
    fn a_row_or_document_project_writes_its_table_cells_safe_unless_raw() {
        let csv = |mode: &str, options: serde_json::Value| {
            let (mut project, task) = testing::tricky_row(&["product", "review"]);
            project.mode = mode.parse().unwrap();
            let task = task.replace("\"row\":", "\"text\":\"Dear Sir,\\n=1+1\",\"row\":");
            let encoder = testing::build("CSV", &project, options).unwrap();
            testing::file(encoder.as_ref(), &[&task])
        };
        assert_eq!(
            csv("row", serde_json::json!({})),
            "id,product,review,label\n\
             t1,\"Crème, \"\"fraîche\"\"\tx\",\"'=HYPERLINK(\"\"http://x\"\")\nبسيط\",spam\\|ham|-neutral\n"
        );
        assert_eq!(
            csv("document", serde_json::json!({"cells": "raw"})),
            "id,text,label\nt1,\"Dear Sir,\n=1+1\",spam\\|ham|-neutral\n"
        );
    }

    #[test]
    fn video_counts_distinct_tracks_and_untracked_elements() {
        let bbox = r#""bbox":{"x":0,"y":0,"width":1,"height":1}"#;
        let anns = format!(
            r#"[{{"id":"a","type":"box","label":"car",{bbox},"frame":0,"track":"t1","keyFrame":true}},
                {{"id":"b","type":"box","label":"car",{bbox},"frame":1,"track":"t1","keyFrame":false}},
                {{"id":"c","type":"box","label":"car",{bbox},"frame":0,"track":"t2"}},
                {{"id":"d","type":"box","label":"car",{bbox},"frame":3}},
                {{"id":"e","type":"point","label":"eye","points":[[1,1]],"frame":3}},
                {{"id":"f","type":"class","label":"day","track":"t3"}},
                {{"id":"g","type":"box","label":"car",{bbox},"frame":2,"track":"t2"}}]"#
        );
        expect("video", &anns, "object_count", "4");
    }

    #[test]
    fn cells_are_quoted_only_when_needed_and_quotes_doubled() {
        let p = project("classification", &[]);
        let anns = r#"[{"id":"a","type":"class","label":"say \"hi\""},
                       {"id":"b","type":"class","label":"été"},
                       {"id":"c","type":"class","label":"two\nlines"}]"#;
        let task = task_json(anns).replace(r#""id":"t1""#, r#""id":"t,1""#);
        let got = encode(&p, &task);
        let line = got.split_once('\n').unwrap().1;
        assert_eq!(
            line,
            "\"t,1\",validated,ada@example.com,2024-01-01T00:00:00Z,18.069,2,https://app/t/1,https://prov/e/1,\"say \"\"hi\"\"|été|two\nlines\"\n"
        );
        // Non-ASCII alone does not need quotes.
        let got = encode(
            &p,
            &task_json(r#"[{"id":"a","type":"class","label":"日本語"}]"#),
        );
        assert!(got.ends_with(",日本語\n"), "{got}");
        // A carriage return does.
        let got = encode(
            &p,
            &task_json(r#"[{"id":"a","type":"class","label":"a\rb"}]"#),
        );
        assert!(got.ends_with(",\"a\rb\"\n"), "{got}");
    }

    #[test]
    fn cells_of_tasks_without_assignee_links_or_submissions_are_empty() {
        let p = project("element", &[]);
        let line = r#"{"id":"t9","asset":{"url":"u"},"state":"annotated","stage":"Label","createdAt":"2024-02-02T00:00:00Z"}"#;
        assert_eq!(
            encode(&p, line),
            format!("{BASE},element_count\nt9,annotated,,2024-02-02T00:00:00Z,0,0,,,0\n")
        );
    }

    #[test]
    fn duration_is_seconds_with_trimmed_milliseconds() {
        let cases = [
            (18069, "18.069"),
            (18500, "18.5"),
            (18000, "18"),
            (0, "0"),
            (1, "0.001"),
            (10, "0.01"),
            (999, "0.999"),
            (120_050, "120.05"),
            (u64::MAX, "18446744073709551.615"),
        ];
        for (ms, want) in cases {
            let mut out = Vec::new();
            write_seconds(&mut out, ms);
            assert_eq!(String::from_utf8(out).unwrap(), want, "{ms} ms");
        }
    }

    #[test]
    fn every_mode_has_a_header_column() {
        for mode in Mode::ALL {
            let p = project(mode.as_str(), &["f"]);
            let encoder = csv_encoder(FieldToggles::default(), &p).unwrap();
            let mut out = Vec::new();
            encoder.header(&mut out);
            let header = String::from_utf8(out).unwrap();
            assert!(header.starts_with(BASE), "{mode}");
            assert_eq!(header.matches(',').count(), 8, "{mode}: {header}");
            assert!(header.ends_with('\n'));
        }
    }

    #[test]
    fn toggles_are_refused_naming_the_field() {
        let p = project("video", &[]);
        let cases = [
            (
                FieldToggles {
                    annotation_metadata: true,
                    ..FieldToggles::default()
                },
                "fields.annotationMetadata",
            ),
            (
                FieldToggles {
                    stage_history: true,
                    ..FieldToggles::default()
                },
                "fields.stageHistory",
            ),
            (
                FieldToggles {
                    only_key_frames: true,
                    ..FieldToggles::default()
                },
                "fields.onlyKeyFrames",
            ),
        ];
        for (fields, field) in cases {
            let err = csv_encoder(fields, &p).err().unwrap();
            assert_eq!(err.field, field);
            assert_eq!(
                err.message,
                "not available in the CSV format; use NDJSON or JSON"
            );
        }
        let all = FieldToggles {
            annotation_metadata: true,
            stage_history: true,
            only_key_frames: true,
        };
        assert_eq!(
            csv_encoder(all, &p).err().unwrap().field,
            "fields.annotationMetadata"
        );
    }

    #[test]
    fn the_file_reads_back_through_the_csv_crate() {
        let p = project("entity_form", &["na\"me", "notes"]);
        let encoder = csv_encoder(FieldToggles::default(), &p).unwrap();
        assert_eq!(
            encoder.container(),
            Container::File {
                extension: "csv",
                content_type: "text/csv; charset=utf-8"
            }
        );
        let tricky = [
            "plain",
            "comma, inside",
            "quote \" inside",
            "new\nline",
            "crlf\r\nline",
            "\"",
            "ünïcödé — ✓",
            "",
        ];
        let mut lines = Vec::new();
        for (i, text) in tricky.iter().enumerate() {
            let anns = serde_json::json!([
                {"id": "a", "type": "answer", "field": "na\"me", "text": text},
                {"id": "b", "type": "answer", "field": "na\"me", "text": "x"},
                {"id": "c", "type": "answer", "field": "notes", "text": text},
            ]);
            let task = task_json(&anns.to_string()).replace(
                r#""id":"t1""#,
                &format!(r#""id":{}"#, serde_json::json!(format!("{text}{i}"))),
            );
            lines.push(task);
        }
        let texts: Vec<&str> = lines.iter().map(String::as_str).collect();
        let out = testing::file(&encoder, &texts).into_bytes();

        let mut reader = ::csv::ReaderBuilder::new().from_reader(out.as_slice());
        let headers = reader.headers().unwrap().clone();
        assert_eq!(
            headers.iter().collect::<Vec<_>>(),
            [
                "id",
                "state",
                "assignee_email",
                "created_at",
                "duration_seconds",
                "comment_count",
                "task_url",
                "element_url",
                "na\"me",
                "notes"
            ]
        );
        let records: Vec<_> = reader.records().map(|r| r.unwrap()).collect();
        assert_eq!(records.len(), tricky.len());
        for (i, (record, text)) in records.iter().zip(tricky).enumerate() {
            assert_eq!(&record[0], format!("{text}{i}"));
            assert_eq!(&record[1], "validated");
            assert_eq!(&record[4], "18.069");
            assert_eq!(&record[8], format!("{text}|x"));
            assert_eq!(&record[9], text);
        }
    }

    #[test]
    fn video_objects_are_counted_in_linear_time_for_long_videos() {
        // 120,000 boxes on 40,000 tracks, plus loose ones: pairwise comparison would take
        // billions of steps; the count must still be exact.
        let mut annotations = Vec::new();
        for i in 0..120_000u32 {
            let track = if i % 10 == 9 {
                None
            } else {
                Some(format!("tr{}", i % 40_000))
            };
            annotations.push(serde_json::json!({
                "id": format!("a{i}"), "type": "box", "label": "car", "frame": i,
                "bbox": {"x": 0, "y": 0, "width": 1, "height": 1}, "track": track,
            }));
        }
        let text = task_json(&serde_json::Value::from(annotations).to_string());
        let task: Task<'_> = serde_json::from_str(&text).unwrap();
        let loose = 12_000;
        let tracks = (0..120_000u32)
            .filter(|i| i % 10 != 9)
            .map(|i| i % 40_000)
            .collect::<std::collections::HashSet<_>>()
            .len();
        assert_eq!(object_count(task.annotations()), tracks + loose);
        // Both paths count the same way: 60 boxes (54 tracked, 6 loose) on the small path;
        // the same boxes twice (the tracks again, 12 loose) on the large one.
        let few = &task.annotations()[..60];
        let many: Vec<_> = few.iter().cloned().chain(few.iter().cloned()).collect();
        assert_eq!((object_count(few), object_count(&many)), (60, 66));
    }
}
