//! NDJSON: one task per line, compact JSON, in the task structure the JSON family
//! shares (see [`crate::task_json`]): `asset`, `externalId`, `metadata`, `batches`,
//! `task` with `tools`, `classifications`, `relations` and, on request,
//! `stageHistory`; or the legacy structure with `"structure": "legacy"`.

use crate::task_json::TaskJson;
use crate::{
    ConfigError, Container, EncodeError, Encoder, FieldToggles, FormatSpec, Out, Record, Settings,
    Structure,
};
use labelport_model::Task;

/// NDJSON, one task per line.
pub static FORMAT: FormatSpec = FormatSpec {
    name: "NDJSON",
    summary:
        "one task per line: tools, classifications, relations, optional metadata and stage history",
    modes: None,
    default_states: None,
    allowed_states: None,
    default_stages: Some(&["Complete"]),
    options: &[&crate::STRUCTURE],
    build: |settings| Ok(Box::new(NdjsonEncoder::from_settings(settings)?)),
};

/// Writes one task per line.
///
/// ```
/// use labelport_encoders::{Format, FormatOptions, Out, Record, Settings};
/// use labelport_model::{Project, Task};
///
/// let project: Project = serde_json::from_str(
///     r#"{"schemaVersion":1,"id":"p","name":"P","mode":"element","state":"running"}"#,
/// ).unwrap();
/// let options: FormatOptions = serde_json::from_str(r#"{"structure":"current"}"#).unwrap();
/// let settings = Settings {
///     project: &project,
///     fields: Default::default(),
///     compression: Default::default(),
///     options: &options,
/// };
/// let encoder = Format::by_name("NDJSON").unwrap().build(&settings).unwrap();
///
/// let line = r#"{"id":"t1","asset":{"url":"s3://b/1.jpg","width":640},"state":"validated",
///     "stage":"Complete","createdAt":"2024-01-01T00:00:00Z","durationMs":18069,
///     "submissions":[{"id":"s1","stage":"Label","origin":"human","completedAt":"x",
///     "annotations":[{"id":"a1","type":"point","label":"eye","points":[[1.5,2]]}]}]}"#;
/// let task: Task<'_> = serde_json::from_str(line).unwrap();
///
/// let mut out = Out::new(encoder.separator());
/// out.begin_record();
/// encoder.encode(&Record { task: &task, raw: None, ordinal: 0 }, &mut out).unwrap();
/// out.end_record();
/// assert_eq!(
///     std::str::from_utf8(out.bytes()).unwrap(),
///     concat!(
///         r#"{"asset":"s3://b/1.jpg","externalId":null,"metadata":{"width":640},"batches":[],"#,
///         r#""task":{"taskId":"t1","state":"validated","stage":"Complete","#,
///         r#""createdAt":"2024-01-01T00:00:00Z","totalDuration":18069,"commentCount":0,"#,
///         r#""tools":[{"objectId":"a1","title":"eye","point":[1.5,2.0],"classifications":[]}],"#,
///         r#""classifications":[],"relations":[]}}"#,
///         "\n"
///     )
/// );
/// ```
pub struct NdjsonEncoder {
    json: TaskJson,
}

impl NdjsonEncoder {
    /// An encoder with these toggles and structure.
    pub fn new(fields: FieldToggles, structure: Structure) -> Self {
        NdjsonEncoder {
            json: TaskJson { fields, structure },
        }
    }

    /// Reads the `structure` option. NDJSON honours every toggle, for every mode.
    pub fn from_settings(settings: &Settings<'_>) -> Result<Self, ConfigError> {
        let structure = settings.options.get("structure")?.unwrap_or_default();
        Ok(NdjsonEncoder::new(settings.fields, structure))
    }

    /// Appends one line; on error the buffer is left as it was.
    pub fn line(&self, task: &Task<'_>, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        match self.json.write(task, out) {
            Ok(()) => {
                out.push(b'\n');
                Ok(())
            }
            Err(e) => {
                out.truncate(start);
                Err(e)
            }
        }
    }
}

impl Encoder for NdjsonEncoder {
    fn container(&self) -> Container {
        Container::File {
            extension: "ndjson",
            content_type: "application/x-ndjson",
        }
    }

    fn encode(&self, record: &Record<'_, '_>, out: &mut Out) -> Result<(), EncodeError> {
        self.line(record.task, out.record())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::FormatOptions;
    use labelport_model::Project;
    use serde_json::{json, Value};

    fn project() -> Project {
        serde_json::from_value(json!({
            "schemaVersion": 1, "id": "p1", "name": "P", "mode": "video", "state": "running"
        }))
        .unwrap()
    }

    fn encoder(
        annotation_metadata: bool,
        stage_history: bool,
        only_key_frames: bool,
    ) -> NdjsonEncoder {
        let fields = FieldToggles {
            annotation_metadata,
            stage_history,
            only_key_frames,
        };
        let _ = project();
        NdjsonEncoder::new(fields, Structure::Current)
    }

    fn encode_value(encoder: &NdjsonEncoder, task: &Value) -> String {
        let text = task.to_string();
        let task: Task<'_> = serde_json::from_str(&text).unwrap();
        let mut out = Vec::new();
        encoder.line(&task, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// Parses one encoded line, checking it is exactly one compact line.
    fn parse_line(line: &str) -> Value {
        assert!(line.ends_with('\n'));
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        serde_json::from_str(line).unwrap()
    }

    fn minimal_task() -> Value {
        json!({
            "id": "t1", "asset": {"url": "s3://b/1.jpg"}, "state": "annotated",
            "stage": "Label", "createdAt": "2024-01-01T00:00:00Z"
        })
    }

    #[test]
    fn a_minimal_task_is_one_exact_line() {
        let got = encode_value(&encoder(false, false, false), &minimal_task());
        assert_eq!(
            got,
            concat!(
                r#"{"asset":"s3://b/1.jpg","externalId":null,"metadata":{},"batches":[],"#,
                r#""task":{"taskId":"t1","state":"annotated","stage":"Label","#,
                r#""createdAt":"2024-01-01T00:00:00Z","totalDuration":0,"commentCount":0,"#,
                r#""tools":[],"classifications":[],"relations":[]}}"#,
                "\n"
            )
        );
        // With the history toggle and no submission, the history is empty.
        let got = encode_value(&encoder(true, true, true), &minimal_task());
        assert!(
            got.ends_with("\"relations\":[],\"stageHistory\":[]}}\n"),
            "{got}"
        );
    }

    /// A video task with two submissions: a model's, then a person's.
    fn rich_task() -> Value {
        json!({
            "id": "t\"7", "state": "validated", "stage": "Complete",
            "asset": {"url": "https://x/v.mp4", "externalId": "ext-7", "width": 1920,
                      "height": 1080, "frameCount": 300, "text": "ignored"},
            "assignee": "ada@example.com", "createdAt": "2024-01-01T00:00:00Z",
            "updatedAt": "2024-01-02T00:00:00Z", "updatedBy": "bob@example.com",
            "durationMs": 18069, "commentCount": 3, "batches": ["b1", "b2"],
            "submissions": [
                {"id": "s0", "stage": "Prelabel", "origin": "machine", "model": "det-v2",
                 "completedAt": "2024-01-01T00:01:00Z", "durationMs": 0,
                 "annotations": [
                    {"id": "m1", "type": "box", "label": "car", "confidence": 0.5,
                     "bbox": {"x": 1.0, "y": 2.0, "width": 3.0, "height": 4.0},
                     "frame": 0, "keyFrame": false, "track": "tr1"}
                 ]},
                {"id": "s1", "stage": "Label", "origin": "human", "labeler": "ada@example.com",
                 "startedAt": "2024-01-01T00:02:00Z", "completedAt": "2024-01-01T00:03:00Z",
                 "durationMs": 18069,
                 "annotations": [
                    {"id": "b1", "type": "box", "label": "car",
                     "bbox": {"x": 559.1259640102828, "y": 370.25,
                              "width": 462.72493573264785, "height": 243.03492884864167},
                     "frame": 0, "keyFrame": true, "track": "tr1",
                     "attributes": [{"name": "occluded", "value": "no", "confidence": 0.9},
                                    {"name": "color", "value": "red"}],
                     "createdAt": 1686656626604i64, "createdBy": "ada@example.com",
                     "confidence": 1.0},
                    {"id": "b2", "type": "box", "label": "car",
                     "bbox": {"x": 560, "y": 371, "width": 462, "height": 243},
                     "frame": 1, "keyFrame": false, "track": "tr1"},
                    {"id": "c1", "type": "class", "label": "day"},
                    {"id": "g1", "type": "group", "label": "fleet", "members": ["b1", "b2"]}
                 ]}
            ]
        })
    }

    #[test]
    fn a_rich_task_has_the_exact_structure_and_key_order() {
        let got = encode_value(&encoder(false, false, false), &rich_task());
        let want = concat!(
            r#"{"asset":"https://x/v.mp4","externalId":"ext-7","#,
            r#""metadata":{"width":1920,"height":1080,"frameCount":300},"batches":["b1","b2"],"#,
            r#""task":{"taskId":"t\"7","state":"validated","stage":"Complete","#,
            r#""createdAt":"2024-01-01T00:00:00Z","updatedAt":"2024-01-02T00:00:00Z","#,
            r#""updatedBy":"bob@example.com","assignee":"ada@example.com","#,
            r#""totalDuration":18069,"commentCount":3,"tools":["#,
            r#"{"objectId":"b1","title":"car","bounding-box":{"x":559.1259640102828,"#,
            r#""y":370.25,"height":243.03492884864167,"width":462.72493573264785},"#,
            r#""frame":0,"keyFrame":true,"track":"tr1","classifications":["#,
            r#"{"title":"occluded","answer":"no","confidence":0.9},{"title":"color","answer":"red"}]},"#,
            r#"{"objectId":"b2","title":"car","bounding-box":{"x":560.0,"y":371.0,"height":243.0,"#,
            r#""width":462.0},"frame":1,"keyFrame":false,"track":"tr1","classifications":[]},"#,
            r#"{"objectId":"g1","title":"fleet","group":["b1","b2"],"classifications":[]}],"#,
            r#""classifications":[{"objectId":"c1","tool":"class","title":"day","answer":"day","#,
            r#""classifications":[]}],"relations":[]}}"#,
            "\n"
        );
        assert_eq!(got, want);
        // The same bytes serde_json would write for the parsed value (key order kept
        // by comparing text, number formatting by comparing values).
        let parsed = parse_line(&got);
        assert_eq!(
            parsed["task"]["tools"][0]["bounding-box"]["x"],
            json!(559.1259640102828)
        );
    }

    #[test]
    fn annotation_metadata_adds_an_object_to_every_annotation() {
        let got = encode_value(&encoder(true, false, false), &rich_task());
        let v = parse_line(&got);
        let tools = v["task"]["tools"].as_array().unwrap();
        assert_eq!(
            tools[0]["metadata"],
            json!({"createdAt": 1686656626604i64, "createdBy": "ada@example.com", "confidence": 1.0})
        );
        assert!(got.contains(
            r#""metadata":{"createdAt":1686656626604,"createdBy":"ada@example.com","confidence":1.0}}"#
        ));
        assert_eq!(tools[1]["metadata"], json!({}));
        assert_eq!(v["task"]["classifications"][0]["metadata"], json!({}));
        // Without the toggle there is none.
        let v = parse_line(&encode_value(&encoder(false, false, false), &rich_task()));
        assert!(v["task"]["tools"][0].get("metadata").is_none());
    }

    #[test]
    fn stage_history_lists_every_submission_oldest_first() {
        let got = encode_value(&encoder(false, true, false), &rich_task());
        let v = parse_line(&got);
        let history = v["task"]["stageHistory"].as_array().unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(
            history[0],
            json!({
                "stage": "Prelabel", "origin": "machine", "completedBy": "det-v2",
                "completedAt": "2024-01-01T00:01:00Z", "duration": 0,
                "tools": [{"objectId": "m1", "title": "car",
                           "bounding-box": {"x": 1.0, "y": 2.0, "height": 4.0, "width": 3.0},
                           "frame": 0, "keyFrame": false, "track": "tr1", "classifications": []}],
                "classifications": [], "relations": []
            })
        );
        assert!(got.contains(
            r#""stageHistory":[{"stage":"Prelabel","origin":"machine","completedBy":"det-v2","completedAt":"2024-01-01T00:01:00Z","duration":0,"tools":[{"objectId":"m1""#
        ));
        assert!(got.contains(
            r#"{"stage":"Label","origin":"human","completedBy":"ada@example.com","startedAt":"2024-01-01T00:02:00Z","completedAt":"2024-01-01T00:03:00Z","duration":18069,"tools":[{"objectId":"b1""#
        ));
        // The final submission's stage entry holds the task's current annotations.
        assert_eq!(history[1]["tools"], v["task"]["tools"]);
        assert_eq!(history[1]["classifications"], v["task"]["classifications"]);
        // A submission by neither a labeler nor a model has no completedBy.
        let mut task = rich_task();
        task["submissions"][0]["model"] = Value::Null;
        let v = parse_line(&encode_value(&encoder(false, true, false), &task));
        assert!(v["task"]["stageHistory"][0].get("completedBy").is_none());
        // Without the toggle there is no history.
        let v = parse_line(&encode_value(&encoder(false, false, false), &rich_task()));
        assert!(v["task"].get("stageHistory").is_none());
    }

    #[test]
    fn only_key_frames_drops_interpolated_frames_everywhere() {
        let v = parse_line(&encode_value(&encoder(false, true, true), &rich_task()));
        let ids = |tools: &Value| -> Vec<String> {
            tools
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["objectId"].as_str().unwrap().to_owned())
                .collect()
        };
        // b2 (keyFrame false) goes; g1 (no keyFrame) and b1 (true) stay.
        assert_eq!(ids(&v["task"]["tools"]), ["b1", "g1"]);
        assert_eq!(ids(&v["task"]["stageHistory"][1]["tools"]), ["b1", "g1"]);
        assert_eq!(v["task"]["stageHistory"][0]["tools"], json!([]));
        // Without the toggle, every frame is there.
        let v = parse_line(&encode_value(&encoder(false, true, false), &rich_task()));
        assert_eq!(ids(&v["task"]["tools"]), ["b1", "b2", "g1"]);
        assert_eq!(ids(&v["task"]["stageHistory"][0]["tools"]), ["m1"]);
    }

    #[test]
    fn every_geometry_and_classification_kind() {
        let mut task = minimal_task();
        task["submissions"] = json!([{
            "id": "s1", "stage": "Label", "origin": "human", "completedAt": "x",
            "annotations": [
                {"id": "p", "type": "polygon", "label": "roof", "points": [[0, 0], [1.5, 0], [1, -2.25]]},
                {"id": "q", "type": "point", "label": "eye", "points": [[3, 4]]},
                {"id": "s", "type": "span", "label": "PER", "start": 0, "end": 3, "text": "Ada"},
                {"id": "k", "type": "span", "label": "ORG", "tokenStart": 4, "tokenEnd": 6},
                {"id": "st", "type": "span", "label": "LOC", "start": 7, "end": 9,
                 "tokenStart": 2, "tokenEnd": 3},
                {"id": "f", "type": "answer", "field": "name", "text": "Ada\nLovelace"},
                {"id": "tr", "type": "transcription", "text": "Dear Sir", "element": "e2"},
                {"id": "tr2", "type": "transcription", "text": "yours"}
            ],
            "relations": [{"id": "r1", "label": "works_for", "from": "s", "to": "k"}]
        }]);
        let got = encode_value(&encoder(false, false, false), &task);
        let want = concat!(
            r#""tools":["#,
            r#"{"objectId":"p","title":"roof","polygon":[[0.0,0.0],[1.5,0.0],[1.0,-2.25]],"classifications":[]},"#,
            r#"{"objectId":"q","title":"eye","point":[3.0,4.0],"classifications":[]},"#,
            r#"{"objectId":"s","title":"PER","span":{"start":0,"end":3,"text":"Ada"},"classifications":[]},"#,
            r#"{"objectId":"k","title":"ORG","tokens":{"start":4,"end":6},"classifications":[]},"#,
            r#"{"objectId":"st","title":"LOC","span":{"start":7,"end":9},"tokens":{"start":2,"end":3},"classifications":[]}],"#,
            r#""classifications":["#,
            r#"{"objectId":"f","tool":"text","title":"name","answer":"Ada\nLovelace","classifications":[]},"#,
            r#"{"objectId":"tr","tool":"transcription","title":"transcription","answer":"Dear Sir","element":"e2","classifications":[]},"#,
            r#"{"objectId":"tr2","tool":"transcription","title":"transcription","answer":"yours","classifications":[]}],"#,
            r#""relations":[{"objectId":"r1","title":"works_for","from":"s","to":"k"}]}}"#,
            "\n"
        );
        assert!(got.ends_with(want), "{got}");
        parse_line(&got);
    }

    #[test]
    fn the_seed_box_is_written_digit_for_digit() {
        // Set in Rust: serde_json without `float_roundtrip` reads 370.33893919793013
        // one unit in the last place off, which is the reader's business, not ours.
        let mut task_json = minimal_task();
        task_json["submissions"] = json!([{
            "id": "s1", "stage": "Consensus_2", "origin": "human", "completedAt": "x",
            "annotations": [{"id": "46977649fb0d3fe07aaf604", "type": "box", "label": "BB",
                             "bbox": {"x": 0, "y": 0, "width": 0, "height": 0}}]
        }]);
        let text = task_json.to_string();
        let mut task: Task<'_> = serde_json::from_str(&text).unwrap();
        task.submissions[0].annotations[0].bbox = Some(labelport_model::BoundingBox {
            x: 559.1259640102828,
            y: 370.33893919793013,
            height: 243.03492884864167,
            width: 462.72493573264785,
            rotation: None,
        });
        let mut out = Vec::new();
        encoder(false, false, false).line(&task, &mut out).unwrap();
        let got = String::from_utf8(out).unwrap();
        assert!(
            got.contains(concat!(
                r#""tools":[{"objectId":"46977649fb0d3fe07aaf604","title":"BB","#,
                r#""bounding-box":{"x":559.1259640102828,"y":370.33893919793013,"#,
                r#""height":243.03492884864167,"width":462.72493573264785},"classifications":[]}]"#
            )),
            "{got}"
        );
    }

    #[test]
    fn non_finite_geometry_is_an_error_and_leaves_the_buffer_untouched() {
        let anns = [
            json!({"id": "bx", "type": "box", "label": "car",
                   "bbox": {"x": 0, "y": 0, "width": 1, "height": 1}}),
            json!({"id": "pg", "type": "polygon", "label": "roof",
                   "points": [[0, 0], [1, 0], [1, 1]]}),
        ];
        let enc = encoder(false, false, false);
        for (ann, id) in anns.iter().zip(["bx", "pg"]) {
            let mut task_json = minimal_task();
            task_json["submissions"] = json!([{
                "id": "s1", "stage": "Label", "origin": "human", "completedAt": "x",
                "annotations": [ann]
            }]);
            let text = task_json.to_string();
            for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
                let mut task: Task<'_> = serde_json::from_str(&text).unwrap();
                let a = &mut task.submissions[0].annotations[0];
                match a.bbox.as_mut() {
                    Some(b) => b.height = bad,
                    None => a.points[2][1] = bad,
                }
                let mut out = b"previous line\n".to_vec();
                let err = enc.line(&task, &mut out).unwrap_err();
                assert_eq!(err.0, format!("annotation {id}: non-finite coordinate"));
                assert_eq!(out, b"previous line\n");
            }
        }
        // A non-finite confidence, only written with metadata, is refused too.
        let mut task_json = minimal_task();
        task_json["submissions"] = json!([{
            "id": "s1", "stage": "Label", "origin": "human", "completedAt": "x",
            "annotations": [{"id": "c", "type": "class", "label": "day"}]
        }]);
        let text = task_json.to_string();
        let mut task: Task<'_> = serde_json::from_str(&text).unwrap();
        task.submissions[0].annotations[0].confidence = Some(f64::NAN);
        let mut out = Vec::new();
        assert!(encoder(false, false, false).line(&task, &mut out).is_ok());
        let mut out = Vec::new();
        let err = encoder(true, false, false)
            .line(&task, &mut out)
            .unwrap_err();
        assert_eq!(err.0, "annotation c: non-finite confidence");
        assert!(out.is_empty());
    }

    #[test]
    fn an_incomplete_annotation_is_an_error_naming_it() {
        let mut task = minimal_task();
        task["submissions"] = json!([{
            "id": "s1", "stage": "Label", "origin": "human", "completedAt": "x",
            "annotations": [{"id": "a9", "type": "box", "label": "car"}]
        }]);
        let text = task.to_string();
        let task: Task<'_> = serde_json::from_str(&text).unwrap();
        let err = encoder(false, false, false)
            .line(&task, &mut Vec::new())
            .unwrap_err();
        assert_eq!(err.0, "annotation a9: a box needs `bbox`");
    }

    #[test]
    fn every_toggle_and_structure_is_accepted_and_the_format_is_described() {
        let project = project();
        for structure in ["current", "legacy"] {
            let options: FormatOptions =
                serde_json::from_value(json!({ "structure": structure })).unwrap();
            for bits in 0..8u8 {
                let fields = FieldToggles {
                    annotation_metadata: bits & 1 != 0,
                    stage_history: bits & 2 != 0,
                    only_key_frames: bits & 4 != 0,
                };
                let settings = Settings {
                    project: &project,
                    fields,
                    compression: Default::default(),
                    options: &options,
                };
                let enc = crate::Format::by_name("NDJSON")
                    .unwrap()
                    .build(&settings)
                    .unwrap();
                assert_eq!(
                    enc.container(),
                    Container::File {
                        extension: "ndjson",
                        content_type: "application/x-ndjson"
                    }
                );
                let mut out = Vec::new();
                enc.header(&mut out);
                enc.footer(&mut out);
                assert!(out.is_empty());
            }
        }
    }

    #[test]
    fn the_legacy_structure_renames_and_keeps_stage_metadata_only() {
        let enc = NdjsonEncoder::new(
            FieldToggles {
                stage_history: true,
                ..FieldToggles::default()
            },
            Structure::Legacy,
        );
        let text = rich_task().to_string();
        let task: Task<'_> = serde_json::from_str(&text).unwrap();
        let mut out = Vec::new();
        enc.line(&task, &mut out).unwrap();
        let v = parse_line(std::str::from_utf8(&out).unwrap());
        let current = parse_line(&encode_value(&encoder(false, true, false), &rich_task()));
        assert!(v.get("task").is_none());
        let tasks = v["tasks"].as_array().unwrap();
        assert_eq!(tasks.len(), 1);
        let t = &tasks[0];
        assert_eq!(t["objects"], current["task"]["tools"]);
        assert_eq!(t["classifications"], current["task"]["classifications"]);
        assert_eq!(t["duration"], current["task"]["totalDuration"]);
        assert!(t.get("tools").is_none() && t.get("totalDuration").is_none());
        let stages = t["stageHistory"].as_array().unwrap();
        assert_eq!(
            stages.len(),
            current["task"]["stageHistory"].as_array().unwrap().len()
        );
        for (legacy, now) in stages
            .iter()
            .zip(current["task"]["stageHistory"].as_array().unwrap())
        {
            assert_eq!(legacy["stage"], now["stage"]);
            assert_eq!(legacy["completedAt"], now["completedAt"]);
            assert_eq!(legacy["duration"], now["duration"]);
            assert!(legacy.get("tools").is_none() && legacy.get("objects").is_none());
        }
        assert_eq!(v["asset"], current["asset"]);
    }

    #[test]
    fn lines_append_to_the_buffer() {
        let enc = encoder(true, true, false);
        let text = rich_task().to_string();
        let task: Task<'_> = serde_json::from_str(&text).unwrap();
        let mut out = Vec::new();
        for _ in 0..3 {
            enc.line(&task, &mut out).unwrap();
        }
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines.iter().all(|l| *l == lines[0]));
        let v: Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(v["task"]["taskId"], "t\"7");
    }

    /// Rough throughput: `cargo test --release -p labelport-encoders -- --ignored --nocapture`.
    #[test]
    #[ignore = "throughput measurement, run with --release --ignored --nocapture"]
    fn throughput() {
        let text = rich_task().to_string();
        let task: Task<'_> = serde_json::from_str(&text).unwrap();
        let encoders = [
            ("ndjson", encoder(false, false, false)),
            ("ndjson+meta+history", encoder(true, true, false)),
        ];
        for (name, enc) in encoders {
            let mut out = Vec::with_capacity(1 << 20);
            let n = 2_000_000u32;
            let mut bytes = 0usize;
            let started = std::time::Instant::now();
            for _ in 0..n {
                out.clear();
                enc.line(&task, &mut out).unwrap();
                bytes += out.len();
            }
            let secs = started.elapsed().as_secs_f64();
            println!(
                "{name}: {:.2} M tasks/s, {:.0} MB/s ({} bytes/task)",
                f64::from(n) / secs / 1e6,
                bytes as f64 / secs / 1e6,
                bytes / n as usize
            );
        }
    }
}
