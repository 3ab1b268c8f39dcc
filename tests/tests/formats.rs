//! The formats beyond one stream, end to end against the AWS emulator: requested through
//! the API (and the S3 drop), written by the worker into multipart uploads, listed by the
//! status, downloaded through `?file=`, and read back by readers labelport did not write
//! (Python's json and zipfile, libjq, requests).
//!
//! Run by `infra/test.sh`, which starts the emulator: `--features labelport-tests/e2e`.
#![cfg(feature = "e2e")]
#![allow(clippy::unwrap_used)]

use labelport_core::job::JobState;
use labelport_core::notify::NotifyOutcome;
use labelport_core::worker::Outcome;
use labelport_generate::{self as generate, Config};
use labelport_model::Mode;
use labelport_tests::{python, request, run_notifier, run_worker, sent_emails, Stack, MANAGER};
use serde_json::Value;

fn config(project: &str, mode: Mode, tasks: u64) -> Config {
    let mut config = Config::new(project, mode, tasks, 5);
    config.tasks_per_file = tasks / 3 + 1;
    config
}

/// Requests an export, runs the worker and the notifier, and returns its status.
async fn export(stack: &Stack, project: &str, body: &str) -> (String, Value) {
    let id = request(stack, project, body).await;
    assert_eq!(run_worker(stack).await.1, Outcome::Ran(JobState::Succeeded));
    run_notifier(stack).await;
    let (status, _, json) = stack.status(&id, MANAGER).await;
    assert_eq!(
        (status, json["state"].as_str()),
        (200, Some("SUCCEEDED")),
        "{json}"
    );
    (id, json)
}

fn files(status: &Value) -> Vec<Value> {
    status["result"]["files"].as_array().unwrap().clone()
}

fn name(file: &Value) -> &str {
    file["name"].as_str().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn json_family_read_back_by_json_jq_and_byte_for_byte() {
    let stack = Stack::new().await;
    let dir = stack.seed(&config("family", Mode::Entity, 1500)).await;
    let dir = dir.to_str().unwrap();

    // JSON, legacy structure with stage history: Python's json.load reads the whole file.
    let (id, status) = export(
        &stack,
        "family",
        r#"{"format":"JSON","structure":"legacy","fields":{"stageHistory":true}}"#,
    )
    .await;
    let json_file = &files(&status)[0];
    assert!(name(json_file).ends_with(".json"), "{json_file}");
    assert_eq!(json_file["contentType"], "application/json");
    assert_eq!(status["result"]["manifest"]["structure"], "legacy");
    let url = stack.download_url(&id, name(json_file)).await;
    let out = python(
        "check_formats.py",
        &["json", &url, dir, "--legacy", "--stage-history"],
    );
    assert_eq!(
        out.trim(),
        format!("{} elements match", status["progress"]["tasksExported"])
    );

    // NDJSON_SPLIT: several parts, each within its limits, re-joined by jq, and equal
    // byte for byte to the NDJSON export of the same tasks.
    let (split_id, split) = export(
        &stack,
        "family",
        r#"{"format":"NDJSON_SPLIT","split":{"maxFileBytes":1000000,"maxTasksPerFile":200}}"#,
    )
    .await;
    let parts = files(&split);
    assert!(parts.len() >= 3, "{split}");
    let mut urls = Vec::new();
    let mut joined = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        assert!(
            name(part).ends_with(&format!("-{:05}.ndjson", i + 1)),
            "{part}"
        );
        assert_eq!(part["role"], "export");
        urls.push(stack.download_url(&split_id, name(part)).await);
        joined.extend(stack.get(part["key"].as_str().unwrap()).await.unwrap());
    }
    let mut args = vec![
        "ndjson-parts",
        dir,
        "--max-bytes",
        "1000000",
        "--max-tasks",
        "200",
    ];
    args.extend(urls.iter().map(String::as_str));
    let out = python("check_formats.py", &args);
    assert!(
        out.contains(&format!("in {} parts match", parts.len())),
        "{out}"
    );
    let (_, whole) = export(&stack, "family", r#"{"format":"NDJSON"}"#).await;
    let whole = stack
        .get(files(&whole)[0]["key"].as_str().unwrap())
        .await
        .unwrap();
    assert!(
        whole == joined,
        "the parts concatenated are the NDJSON export"
    );

    // NATIVE: every source record, as it was, preview tasks aside.
    let (native_id, native) = export(&stack, "family", r#"{"format":"NATIVE"}"#).await;
    let url = stack
        .download_url(&native_id, name(&files(&native)[0]))
        .await;
    let out = python("check_formats.py", &["native", &url, dir]);
    assert!(out.contains("match their source byte for byte"), "{out}");
    assert_eq!(native["result"]["manifest"]["taskSchemaVersion"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_compressed_download_saves_exactly_the_listed_bytes() {
    let stack = Stack::new().await;
    stack
        .seed(&config("zipped", Mode::Classification, 600))
        .await;
    let (id, status) = export(
        &stack,
        "zipped",
        r#"{"format":"NDJSON_SPLIT","compression":"zstd","split":{"maxTasksPerFile":100}}"#,
    )
    .await;
    for file in files(&status) {
        assert!(name(&file).ends_with(".ndjson.zst"), "{file}");
        let url = stack.download_url(&id, name(&file)).await;
        let size = file["bytes"].to_string();
        python(
            "check_formats.py",
            &[
                "download",
                &url,
                file["sha256"].as_str().unwrap(),
                &size,
                "application/zstd",
            ],
        );
    }
    let (status, _, json) = stack.download_file(&id, "nope.ndjson").await;
    assert_eq!(
        (status, json["code"].as_str()),
        (404, Some("FILE_NOT_FOUND"))
    );
    assert_eq!(json["parameter"], "file");
    assert!(
        json["detail"]
            .as_str()
            .unwrap()
            .contains("-00001.ndjson.zst"),
        "{json}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn json_simple_is_a_zip_of_more_than_65535_entries_that_zipfile_tests_clean() {
    let stack = Stack::new().await;
    let cfg = config("docs", Mode::Document, 30_500);
    let dir = stack.seed(&cfg).await;
    // One document per task plus each labeler's last work on it.
    let entries: usize = (0..cfg.tasks)
        .map(|i| generate::task(&cfg, i))
        .filter(|t| !t.preview)
        .map(|t| {
            let mut labelers: Vec<_> = t
                .submissions
                .iter()
                .filter_map(|s| s.labeler.clone())
                .collect();
            labelers.sort();
            labelers.dedup();
            1 + labelers.len()
        })
        .sum();
    assert!(
        entries > 65_535,
        "{entries} entries do not reach Zip64's entry count"
    );
    let (id, status) = export(&stack, "docs", r#"{"format":"JSON_SIMPLE"}"#).await;
    let zip = &files(&status)[0];
    assert!(
        name(zip).starts_with("docs-json-simple-") && name(zip).ends_with(".zip"),
        "{zip}"
    );
    assert_eq!(zip["contentType"], "application/zip");
    assert!(
        status["progress"]["bytesSpooled"].as_u64().unwrap() > 0,
        "the directory was spooled"
    );
    let url = stack.download_url(&id, name(zip)).await;
    let out = python(
        "check_formats.py",
        &[
            "json-simple",
            &url,
            dir.to_str().unwrap(),
            "--entries",
            &entries.to_string(),
        ],
    );
    assert!(out.starts_with(&format!("{entries} entries")), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_errors_report_lists_what_was_skipped_or_left_out_and_the_email_links_it() {
    let stack = Stack::new().await;
    let cfg = config("faulty", Mode::Entity, 300);
    let dir = stack.seed(&cfg).await;
    // A fault in the second task file, on its 7th line.
    let key = "projects/faulty/tasks/part-00001.ndjson";
    let mut text = String::from_utf8(stack.get(key).await.unwrap()).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[6] = r#"{"id":"t-broken","asset":{"url":"u"},"state":"finished"}"#;
    text = lines.join("\n") + "\n";
    stack.put(key, text.into_bytes()).await;

    let (id, status) = export(
        &stack,
        "faulty",
        r#"{"format":"JSON_SIMPLE","invalidLines":"skip","delivery":{"method":"EMAIL"}}"#,
    )
    .await;
    let progress = &status["progress"];
    assert_eq!(progress["linesSkipped"], 1);
    // JSON_SIMPLE has no relations: each one in a document or a labeler's work is refused.
    let refused = progress["annotationsRefused"].as_u64().unwrap();
    assert!(refused > 0, "{progress}");
    let all = files(&status);
    let report = all.last().unwrap();
    assert_eq!(
        (name(report), report["role"].as_str()),
        ("errors.ndjson", Some("errors"))
    );
    let url = stack.download_url(&id, "errors.ndjson").await;
    python(
        "check_formats.py",
        &[
            "report",
            &url,
            "--skipped",
            &format!("{key}:7"),
            "--refused",
            &refused.to_string(),
        ],
    );
    assert!(dir.exists());

    let emails: Vec<_> = sent_emails()
        .into_iter()
        .filter(|m| m["body"].to_string().contains(&id))
        .collect();
    assert_eq!(emails.len(), 1);
    let body = emails[0]["body"].to_string();
    let report = labelport_tests::api_links(&emails[0])
        .into_iter()
        .find(|l| l.ends_with("&file=errors.ndjson"))
        .unwrap_or_else(|| panic!("no link to the errors report in {body}"));
    let (status, headers, _) = stack.follow(&report, &[]).await;
    assert_eq!(status, 302, "{report}");
    assert!(headers["location"]
        .to_str()
        .unwrap()
        .contains("errors.ndjson"));
    assert!(
        body.contains(&format!(
            "Source lines skipped as malformed: 1. Annotations JSON_SIMPLE cannot express: {refused}."
        )),
        "{body}"
    );

    // An export with nothing to report has no report.
    stack.seed(&config("clean", Mode::Entity, 100)).await;
    let (_, clean) = export(
        &stack,
        "clean",
        r#"{"format":"NDJSON","invalidLines":"skip"}"#,
    )
    .await;
    assert!(
        files(&clean).iter().all(|f| f["role"] == "export"),
        "{clean}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_request_can_ask_for_any_format_and_its_options() {
    let stack = Stack::new().await;
    stack.seed(&config("dropped", Mode::Token, 200)).await;
    let outcome = stack
        .drop_request(
            "requests/dropped/split.json",
            MANAGER,
            br#"{"format":"NDJSON_SPLIT","split":{"maxTasksPerFile":25}}"#,
            "00A1",
        )
        .await;
    let labelport_core::api::DropOutcome::Accepted(id) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(
        run_worker(&stack).await.1,
        Outcome::Ran(JobState::Succeeded)
    );
    assert_eq!(run_notifier(&stack).await.1, NotifyOutcome::MarkedAvailable);
    let (_, _, status) = stack.status(&id, MANAGER).await;
    let parts = files(&status);
    let exported = status["progress"]["tasksExported"].as_u64().unwrap();
    assert_eq!(parts.len() as u64, exported.div_ceil(25), "{status}");

    // A bad option in a dropped file is refused with its path, in the response file.
    stack
        .drop_request(
            "requests/dropped/bad.json",
            MANAGER,
            br#"{"format":"NDJSON_SPLIT","split":{"maxTasksPerFile":0}}"#,
            "00A2",
        )
        .await;
    let response: Value =
        serde_json::from_slice(&stack.get("responses/dropped/bad.json").await.unwrap()).unwrap();
    assert_eq!(
        response["error"]["pointer"], "/split/maxTasksPerFile",
        "{response}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tables_of_row_and_document_projects_read_back_by_csv_json_pandas_datasets_and_openpyxl() {
    const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
    let stack = Stack::new().await;
    let rows = stack.seed(&config("rows", Mode::Row, 900)).await;
    let docs = stack.seed(&config("docs", Mode::Document, 600)).await;
    let (rows, docs) = (rows.to_str().unwrap(), docs.to_str().unwrap());
    let cases = [
        (
            "rows",
            rows,
            r#"{"format":"TSV"}"#,
            "tsv",
            &[][..],
            "text/tab-separated-values; charset=utf-8",
        ),
        (
            "rows",
            rows,
            r#"{"format":"TSV","excel":true,"cells":"raw"}"#,
            "tsv",
            &["--excel", "--raw"][..],
            "text/tab-separated-values; charset=utf-8",
        ),
        (
            "rows",
            rows,
            r#"{"format":"HUGGINGFACE_CSV"}"#,
            "huggingface-csv",
            &[][..],
            "text/csv; charset=utf-8",
        ),
        (
            "docs",
            docs,
            r#"{"format":"HUGGINGFACE_CSV"}"#,
            "huggingface-csv",
            &[][..],
            "text/csv; charset=utf-8",
        ),
        (
            "rows",
            rows,
            r#"{"format":"JSON_TABULAR"}"#,
            "json-tabular",
            &[][..],
            "application/json",
        ),
        (
            "docs",
            docs,
            r#"{"format":"JSON_TABULAR"}"#,
            "json-tabular",
            &[][..],
            "application/json",
        ),
        (
            "rows",
            rows,
            r#"{"format":"XLSX","maxRowsPerSheet":150}"#,
            "xlsx",
            &["--max-rows", "150"][..],
            XLSX,
        ),
        (
            "docs",
            docs,
            r#"{"format":"XLSX","cells":"raw"}"#,
            "xlsx",
            &["--raw"][..],
            XLSX,
        ),
    ];
    for (project, dir, body, checker, flags, content_type) in cases {
        let (id, status) = export(&stack, project, body).await;
        let file = &files(&status)[0];
        assert_eq!(file["contentType"], content_type, "{body}");
        let url = stack.download_url(&id, name(file)).await;
        let mut args = vec![checker, url.as_str(), dir];
        args.extend_from_slice(flags);
        let out = python("check_tables.py", &args);
        assert!(out.contains("rows match"), "{body}: {out}");
        assert_ne!(status["progress"]["tasksExported"], 0, "{body}");
    }

    // The generated reviews hold formula-like text: safe by default, kept with raw.
    let (id, status) = export(&stack, "rows", r#"{"format":"TSV"}"#).await;
    let key = files(&status)[0]["key"].as_str().unwrap().to_owned();
    let text = String::from_utf8(stack.get(&key).await.unwrap()).unwrap();
    assert!(text.contains("\t'=SUM(A1:A3) stars, no less\t"), "{id}");
    assert!(!text.contains("\t=SUM("));
    // HUGGINGFACE_CSV is training data: the same texts as they are (the reader check
    // above compared them byte for byte through pandas and datasets).
    let (id, status) = export(&stack, "rows", r#"{"format":"HUGGINGFACE_CSV"}"#).await;
    let key = files(&status)[0]["key"].as_str().unwrap().to_owned();
    let text = String::from_utf8(stack.get(&key).await.unwrap()).unwrap();
    assert!(text.contains(",\"=SUM(A1:A3) stars, no less\","), "{id}");
    assert!(text.contains("-\t5% off | next time"), "{id}");
    assert!(!text.contains("'=") && !text.contains("'-\t5%"), "{id}");

    // An XLSX compresses itself: asking for compression is a 400 on it.
    let (code, _, json) = stack
        .call(
            "POST",
            "/v1/projects/rows/exports",
            Some(MANAGER),
            &[],
            r#"{"format":"XLSX","compression":"gzip"}"#,
        )
        .await;
    assert_eq!(
        (code, json["pointer"].as_str()),
        (400, Some("/compression")),
        "{json}"
    );

    // A table does not fit an image project: a 400 naming the modes it fits.
    stack.seed(&config("images", Mode::Element, 10)).await;
    let (code, _, json) = stack
        .call(
            "POST",
            "/v1/projects/images/exports",
            Some(MANAGER),
            &[],
            r#"{"format":"TSV"}"#,
        )
        .await;
    assert_eq!(
        (code, json["pointer"].as_str()),
        (400, Some("/format")),
        "{json}"
    );
    assert!(
        json["detail"]
            .as_str()
            .unwrap()
            .contains("it fits row, document"),
        "{json}"
    );

    // From the S3 drop too, options included.
    let outcome = stack
        .drop_request(
            "requests/docs/table.json",
            MANAGER,
            br#"{"format":"HUGGINGFACE_CSV"}"#,
            "00B1",
        )
        .await;
    assert!(
        matches!(outcome, labelport_core::api::DropOutcome::Accepted(_)),
        "{outcome:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn assessments_long_and_wide_read_back_by_csv_with_their_filters() {
    let stack = Stack::new().await;
    let dir = stack.seed(&config("assess", Mode::Element, 1200)).await;
    let dir = dir.to_str().unwrap();
    let cases: [(&str, &str, &[&str]); 4] = [
        (r#"{"format":"LONG_CSV"}"#, "long-csv", &[]),
        (
            r#"{"format":"LONG_CSV","assessments":"latest","filters":{"dataSources":["camera-south","upload"]}}"#,
            "long-csv",
            &["--latest", "--data-sources", "camera-south,upload"],
        ),
        (r#"{"format":"WIDE_CSV"}"#, "wide-csv", &[]),
        (
            r#"{"format":"WIDE_CSV","assessments":"latest","filters":{"batches":["batch-002"]},"excel":false}"#,
            "wide-csv",
            &["--latest", "--batches", "batch-002"],
        ),
    ];
    let mut exported = Vec::new();
    for (body, checker, flags) in cases {
        let (id, status) = export(&stack, "assess", body).await;
        let file = &files(&status)[0];
        assert_eq!(file["contentType"], "text/csv; charset=utf-8", "{body}");
        let url = stack.download_url(&id, name(file)).await;
        let mut args = vec![checker, url.as_str(), dir];
        args.extend_from_slice(flags);
        let out = python("check_tables.py", &args);
        assert!(out.contains("rows match"), "{body}: {out}");
        exported.push(status["progress"]["tasksExported"].as_u64().unwrap());
    }
    assert!(
        exported[1] < exported[0] && exported[3] < exported[2],
        "the filters keep fewer tasks: {exported:?}"
    );

    // An empty filter list is refused, naming it.
    let (code, _, json) = stack
        .call(
            "POST",
            "/v1/projects/assess/exports",
            Some(MANAGER),
            &[],
            r#"{"format":"WIDE_CSV","filters":{"dataSources":[]}}"#,
        )
        .await;
    assert_eq!(
        (code, json["pointer"].as_str()),
        (400, Some("/filters/dataSources")),
        "{json}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn token_formats_give_back_the_spans_to_seqeval_and_json() {
    let stack = Stack::new().await;
    let tokens = stack.seed(&config("tokens", Mode::Token, 900)).await;
    let text = stack.seed(&config("text", Mode::Entity, 900)).await;
    let (tokens, text) = (tokens.to_str().unwrap(), text.to_str().unwrap());
    let cases: [(&str, &str, &str, &[&str]); 9] = [
        ("tokens", tokens, r#"{"format":"PLAIN"}"#, &["plain"]),
        ("text", text, r#"{"format":"PLAIN"}"#, &["plain"]),
        (
            "tokens",
            tokens,
            r#"{"format":"JSON_ADVANCED"}"#,
            &["json-advanced"],
        ),
        (
            "text",
            text,
            r#"{"format":"JSON_ADVANCED"}"#,
            &["json-advanced"],
        ),
        ("tokens", tokens, r#"{"format":"TSV_IOB"}"#, &["tsv-iob"]),
        (
            "text",
            text,
            r#"{"format":"TSV_IOB","tagging":"iob1"}"#,
            &["tsv-iob", "--iob1"],
        ),
        (
            "tokens",
            tokens,
            r#"{"format":"CONLL2003"}"#,
            &["conll2003"],
        ),
        ("text", text, r#"{"format":"CONLL2003"}"#, &["conll2003"]),
        (
            "text",
            text,
            r#"{"format":"TSV_NON_IOB"}"#,
            &["tsv-non-iob"],
        ),
    ];
    for (project, dir, body, checker) in cases {
        let (id, status) = export(&stack, project, body).await;
        let url = stack.download_url(&id, name(&files(&status)[0])).await;
        let mut args = vec![checker[0], url.as_str(), dir];
        args.extend_from_slice(&checker[1..]);
        let out = python("check_tokens.py", &args);
        assert!(out.contains(" match"), "{body}: {out}");
    }
    // A bad tagging is a 400 naming it; a token format does not fit an image project.
    let (code, _, json) = stack
        .call(
            "POST",
            "/v1/projects/text/exports",
            Some(MANAGER),
            &[],
            r#"{"format":"CONLL2003","tagging":"bioes"}"#,
        )
        .await;
    assert_eq!(
        (code, json["pointer"].as_str()),
        (400, Some("/tagging")),
        "{json}"
    );
}

/// The cloud-ML import files, read back by Python's csv, json, zipfile and ast and by
/// seqeval against the generated tasks, each held to its service's rules.
#[tokio::test]
async fn cloud_ml_import_files_meet_each_services_rules() {
    let stack = Stack::new().await;
    let mut dirs = std::collections::HashMap::new();
    for (project, mode) in [
        ("tokens", Mode::Token),
        ("text", Mode::Entity),
        ("rows", Mode::Row),
        ("docs", Mode::Document),
    ] {
        let dir = stack.seed(&config(project, mode, 700)).await;
        dirs.insert(project, dir.to_str().unwrap().to_owned());
    }
    let cases: [(&str, &str, &[&str]); 12] = [
        (
            "text",
            r#"{"format":"AMAZON_COMPREHEND_CSV"}"#,
            &["comprehend-entities"],
        ),
        (
            "tokens",
            r#"{"format":"AMAZON_COMPREHEND_CSV"}"#,
            &["comprehend-entities"],
        ),
        (
            "rows",
            r#"{"format":"AMAZON_COMPREHEND_CSV"}"#,
            &["comprehend-classes"],
        ),
        ("text", r#"{"format":"AZURE_AUTOML_CSV"}"#, &["azure-ner"]),
        ("tokens", r#"{"format":"AZURE_AUTOML_CSV"}"#, &["azure-ner"]),
        (
            "rows",
            r#"{"format":"AZURE_AUTOML_CSV"}"#,
            &["azure-classes"],
        ),
        (
            "docs",
            r#"{"format":"AZURE_AUTOML_CSV","classification":"single-label"}"#,
            &["azure-classes", "--single-label"],
        ),
        ("rows", r#"{"format":"GCP_VERTEX_AI_CSV"}"#, &["vertex-csv"]),
        (
            "rows",
            r#"{"format":"GCP_VERTEX_AI_CSV","classification":"single-label"}"#,
            &["vertex-csv", "--single-label"],
        ),
        (
            "text",
            r#"{"format":"GCP_VERTEX_AI_JSONL"}"#,
            &["vertex-jsonl"],
        ),
        (
            "tokens",
            r#"{"format":"GCP_VERTEX_AI_JSONL"}"#,
            &["vertex-jsonl"],
        ),
        (
            "docs",
            r#"{"format":"GCP_VERTEX_AI_JSONL"}"#,
            &["vertex-jsonl"],
        ),
    ];
    for (project, body, checker) in cases {
        let (id, status) = export(&stack, project, body).await;
        let url = stack.download_url(&id, name(&files(&status)[0])).await;
        let mut args = vec![checker[0], url.as_str(), dirs[project].as_str()];
        args.extend_from_slice(&checker[1..]);
        let out = python("check_cloud_ml.py", &args);
        assert!(out.contains(" match"), "{body}: {out}");
        // Single-label leaves out the documents with several classes, and says so.
        let left_out = status["progress"]["tasksLeftOut"].as_u64().unwrap();
        assert_eq!(
            left_out > 0,
            body.contains("single-label"),
            "{body}: {status}"
        );
        // Relations have no place in these files: counted, and summed in one line of
        // the errors report rather than listed one by one.
        let omitted = status["progress"]["annotationsOmitted"].as_u64().unwrap();
        assert_eq!(
            omitted > 0,
            matches!(project, "text" | "tokens"),
            "{body}: {status}"
        );
        if omitted > 0 {
            let report = files(&status).last().unwrap().clone();
            let report = stack.get(report["key"].as_str().unwrap()).await.unwrap();
            let last = report
                .trim_ascii_end()
                .rsplit(|b| *b == b'\n')
                .next()
                .unwrap();
            let last: Value = serde_json::from_slice(last).unwrap();
            assert_eq!(last["annotations"].as_u64(), Some(omitted), "{last}");
            assert!(
                last["reason"].as_str().unwrap().starts_with("relations:"),
                "{last}"
            );
        }
    }
    // Bad requests name the field: a column the project lacks, an option of another
    // mode, a format that cannot express the project.
    for (project, body, pointer) in [
        (
            "rows",
            r#"{"format":"GCP_VERTEX_AI_CSV","textColumns":["review","nope"]}"#,
            "/textColumns/1",
        ),
        (
            "text",
            r#"{"format":"AZURE_AUTOML_CSV","classification":"single-label"}"#,
            "/classification",
        ),
        ("text", r#"{"format":"GCP_VERTEX_AI_CSV"}"#, "/format"),
    ] {
        let (code, _, json) = stack
            .call(
                "POST",
                &format!("/v1/projects/{project}/exports"),
                Some(MANAGER),
                &[],
                body,
            )
            .await;
        assert_eq!(
            (code, json["pointer"].as_str()),
            (400, Some(pointer)),
            "{body}: {json}"
        );
    }
}

/// CUSTOM against jq itself: each program run by libjq on the NDJSON export's lines
/// gives what labelport's CUSTOM export holds; a task the program fails on is in the
/// errors report with its id; a program that does not compile is a 400 saying where.
#[tokio::test(flavor = "multi_thread")]
async fn custom_programs_give_what_jq_gives() {
    let stack = Stack::new().await;
    stack.seed(&config("imgs", Mode::Element, 900)).await;
    let (id, status) = export(&stack, "imgs", r#"{"format":"NDJSON"}"#).await;
    let ndjson = stack.download_url(&id, name(&files(&status)[0])).await;
    let programs: [(&str, Option<&str>); 5] = [
        (
            r#"select(.task.state == "validated") | {id: .task.taskId, tools: (.task.tools | length)}"#,
            None,
        ),
        (r#".task.tools | map(.title) | unique"#, None),
        (
            r#""\(.task.taskId): \(.task.tools | length) tools, first \(.task.tools[0].title // "none")""#,
            None,
        ),
        (
            r#"[.task.taskId, .task.state, (.task.tools | length), .externalId] | @csv"#,
            None,
        ),
        (
            r#".task.tools[] | {id: .objectId, label: .title, x: (.bbox.left // .point[0])}"#,
            Some("id,label,x"),
        ),
    ];
    for (program, columns) in programs {
        let mut body = serde_json::json!({"format": "CUSTOM", "program": program});
        if let Some(columns) = columns {
            body["output"] = "csv".into();
            body["columns"] = columns.split(',').collect::<Vec<_>>().into();
        }
        let (id, status) = export(&stack, "imgs", &body.to_string()).await;
        let url = stack.download_url(&id, name(&files(&status)[0])).await;
        let mut args = vec![url.as_str(), ndjson.as_str(), program];
        if let Some(columns) = columns {
            args.extend(["--csv", columns]);
        }
        let out = python("check_custom.py", &args);
        assert!(out.contains(" outputs match (0 tasks"), "{program}: {out}");
    }

    // A program that fails on some tasks: the others are exported, the failed ones are
    // in the errors report by task id, as many as jq fails on.
    let failing =
        r#"if (.task.tools | length) > 3 then error("too many tools") else .task.taskId end"#;
    let body = serde_json::json!({"format": "CUSTOM", "program": failing}).to_string();
    let (id, status) = export(&stack, "imgs", &body).await;
    let url = stack.download_url(&id, name(&files(&status)[0])).await;
    let out = python("check_custom.py", &[&url, &ndjson, failing]);
    let failed: u64 = out
        .split('(')
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(failed > 0, "{out}");
    assert_eq!(
        status["progress"]["tasksLeftOut"].as_u64(),
        Some(failed),
        "{status}"
    );
    let all = files(&status);
    let report_file = all.last().unwrap();
    assert_eq!(name(report_file), "errors.ndjson", "{status}");
    let report = stack
        .get(report_file["key"].as_str().unwrap())
        .await
        .unwrap();
    let report = String::from_utf8(report).unwrap();
    assert_eq!(report.lines().count() as u64, failed);
    for line in report.lines() {
        let line: Value = serde_json::from_str(line).unwrap();
        assert!(line["taskId"].is_string(), "{line}");
        assert_eq!(
            line["reason"],
            "the program failed on this task: too many tools"
        );
    }

    // Requests refused with the field and the reason.
    for (body, pointer, says) in [
        (
            r#"{"format":"CUSTOM","program":".task | map("}"#,
            "/program",
            "line 1, column 12: expected closing parenthesis",
        ),
        (
            r#"{"format":"CUSTOM","program":"env"}"#,
            "/program",
            "env/0 is not defined",
        ),
        (r#"{"format":"CUSTOM"}"#, "/program", "needs a jq program"),
        (
            r#"{"format":"CUSTOM","program":".","output":"csv"}"#,
            "/columns",
            "needs its columns",
        ),
    ] {
        let (code, _, json) = stack
            .call(
                "POST",
                "/v1/projects/imgs/exports",
                Some(MANAGER),
                &[],
                body,
            )
            .await;
        assert_eq!(
            (code, json["pointer"].as_str()),
            (400, Some(pointer)),
            "{body}: {json}"
        );
        assert!(
            json["detail"].as_str().unwrap().contains(says),
            "{body}: {json}"
        );
    }
}

/// COCO, YOLO and VOC of image and video projects, read back by pycocotools, globox,
/// xml.etree and PyYAML against the generated shapes clipped to their images; what a
/// format cannot hold is in the errors report, exactly.
#[tokio::test(flavor = "multi_thread")]
async fn image_formats_read_back_by_pycocotools_and_globox_with_every_refusal_reported() {
    let stack = Stack::new().await;
    let images = stack.seed(&config("images", Mode::Element, 1_200)).await;
    let videos = stack.seed(&config("videos", Mode::Video, 150)).await;
    let (images, videos) = (images.to_str().unwrap(), videos.to_str().unwrap());
    let cases: [(&str, &str, &str, &[&str]); 8] = [
        ("images", images, r#"{"format":"COCO"}"#, &["coco"]),
        (
            "images",
            images,
            r#"{"format":"COCO","compression":"gzip"}"#,
            &["coco"],
        ),
        ("images", images, r#"{"format":"YOLO"}"#, &["yolo"]),
        (
            "images",
            images,
            r#"{"format":"YOLO","yolo":{"task":"segment"}}"#,
            &["yolo-segment"],
        ),
        ("images", images, r#"{"format":"VOC"}"#, &["voc"]),
        (
            "videos",
            videos,
            r#"{"format":"COCO","fields":{"onlyKeyFrames":true}}"#,
            &["coco", "--key-frames"],
        ),
        ("videos", videos, r#"{"format":"YOLO"}"#, &["yolo"]),
        ("videos", videos, r#"{"format":"VOC"}"#, &["voc"]),
    ];
    let mut documents = Vec::new();
    for (project, dir, body, checker) in cases {
        let (id, status) = export(&stack, project, body).await;
        let all = files(&status);
        let url = stack.download_url(&id, name(&all[0])).await;
        let mut args = vec![checker[0], url.as_str(), dir];
        let report;
        if all.len() > 1 {
            report = stack.download_url(&id, "errors.ndjson").await;
            args.extend(["--report", report.as_str()]);
        }
        args.extend_from_slice(&checker[1..]);
        let out = python("check_vision.py", &args);
        assert!(out.contains(" annotations match"), "{body}: {out}");
        // Points and shapes outside their image are in every image project's report.
        let refused = status["progress"]["annotationsRefused"].as_u64().unwrap();
        assert_eq!(refused > 0, project == "images", "{body}: {status}");
        if body == r#"{"format":"COCO"}"# {
            documents.push(stack.get(all[0]["key"].as_str().unwrap()).await.unwrap());
        }
    }
    // Two exports of the same project give the same ids and names, byte for byte.
    let (_, status) = export(&stack, "images", r#"{"format":"COCO"}"#).await;
    let second = stack
        .get(files(&status)[0]["key"].as_str().unwrap())
        .await
        .unwrap();
    assert!(documents[0] == second, "a second COCO export differs");

    // Bad requests name the field at fault.
    let tokens = stack.seed(&config("tokens", Mode::Token, 50)).await;
    assert!(tokens.exists());
    for (project, body, pointer) in [
        (
            "images",
            r#"{"format":"YOLO","yolo":{"task":"pose"}}"#,
            "/yolo/task",
        ),
        (
            "images",
            r#"{"format":"COCO","fields":{"stageHistory":true}}"#,
            "/fields/stageHistory",
        ),
        ("tokens", r#"{"format":"VOC"}"#, "/format"),
    ] {
        let (code, _, json) = stack
            .call(
                "POST",
                &format!("/v1/projects/{project}/exports"),
                Some(MANAGER),
                &[],
                body,
            )
            .await;
        assert_eq!(
            (code, json["pointer"].as_str()),
            (400, Some(pointer)),
            "{body}: {json}"
        );
    }

    // The S3 drop takes them too.
    let outcome = stack
        .drop_request(
            "requests/images/voc.json",
            MANAGER,
            br#"{"format":"VOC"}"#,
            "00B1",
        )
        .await;
    assert!(
        matches!(outcome, labelport_core::api::DropOutcome::Accepted(_)),
        "{outcome:?}"
    );
    assert_eq!(
        run_worker(&stack).await.1,
        Outcome::Ran(JobState::Succeeded)
    );
}

/// A Label Studio export uploaded under the project's imports/ folder, converted
/// through the API and the S3 drop instead of the project's task files, and read back
/// by pycocotools and globox as the project's own; bad sources are 400s naming the
/// field.
#[tokio::test(flavor = "multi_thread")]
async fn a_label_studio_export_converts_through_the_api_and_the_drop() {
    let stack = Stack::new().await;
    let cfg = config("studio", Mode::Element, 900);
    let dir = stack.seed(&cfg).await;
    let (export_file, xml, tasks) =
        generate::label_studio::write_export(&cfg, &stack.scratch.join("ls")).unwrap();
    assert!(tasks > 100);
    let export_key = "projects/studio/imports/2024/export.json";
    let config_key = "projects/studio/imports/2024/labeling.xml";
    stack
        .put(export_key, std::fs::read(&export_file).unwrap())
        .await;
    stack.put(config_key, std::fs::read(&xml).unwrap()).await;
    let source = format!(
        r#""source":{{"tool":"LABEL_STUDIO","export":"{export_key}","config":"{config_key}"}}"#
    );
    let dir = dir.to_str().unwrap();

    let (id, status) = export(
        &stack,
        "studio",
        &format!(r#"{{"format":"COCO",{source}}}"#),
    )
    .await;
    assert_eq!(
        status["progress"]["tasksRead"].as_u64(),
        Some(tasks),
        "{status}"
    );
    let all = files(&status);
    let url = stack.download_url(&id, name(&all[0])).await;
    let report = stack.download_url(&id, "errors.ndjson").await;
    let out = python(
        "check_vision.py",
        &["coco", &url, dir, "--label-studio", "--report", &report],
    );
    assert!(out.contains(" annotations match"), "{out}");

    // The converter's own CSV of the same export, record by record.
    let (id, status) = export(
        &stack,
        "studio",
        &format!(r#"{{"format":"CSV","compat":"label-studio",{source}}}"#),
    )
    .await;
    let url = stack.download_url(&id, name(&files(&status)[0])).await;
    let out = python(
        "check_peer.py",
        &[
            "csv",
            &url,
            export_file.to_str().unwrap(),
            xml.to_str().unwrap(),
        ],
    );
    assert!(out.contains(" rows of "), "{out}");

    let drop_body = format!(r#"{{"format":"YOLO","yolo":{{"task":"segment"}},{source}}}"#);
    let outcome = stack
        .drop_request(
            "requests/studio/yolo.json",
            MANAGER,
            drop_body.leak().as_bytes(),
            "00C1",
        )
        .await;
    let labelport_core::api::DropOutcome::Accepted(id) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(
        run_worker(&stack).await.1,
        Outcome::Ran(JobState::Succeeded)
    );
    let (_, _, status) = stack.status(&id, MANAGER).await;
    let all = files(&status);
    let url = stack.download_url(&id, name(&all[0])).await;
    let report = stack.download_url(&id, "errors.ndjson").await;
    let out = python(
        "check_vision.py",
        &[
            "yolo-segment",
            &url,
            dir,
            "--label-studio",
            "--report",
            &report,
        ],
    );
    assert!(out.contains(" annotations match"), "{out}");

    for (body, pointer) in [
        (
            r#"{"format":"COCO","source":{"tool":"LABEL_STUDIO","export":"projects/other/imports/e.json","config":"projects/studio/imports/2024/labeling.xml"}}"#.to_owned(),
            "/source/export",
        ),
        (
            r#"{"format":"COCO","source":{"tool":"LABEL_STUDIO","export":"projects/studio/imports/2024/export.json","config":"projects/studio/imports/none.xml"}}"#.to_owned(),
            "/source/config",
        ),
        (
            r#"{"format":"COCO","source":{"tool":"LABEL_STUDIO","export":"projects/studio/imports/missing.json","config":"projects/studio/imports/2024/labeling.xml"}}"#.to_owned(),
            "/source/export",
        ),
        (
            r#"{"format":"COCO","source":{"tool":"CVAT","export":"x","config":"y"}}"#.to_owned(),
            "/source/tool",
        ),
        (format!(r#"{{"format":"TSV_IOB",{source}}}"#), "/format"),
        // Its columns come from a labeling config: the project's own tasks have none.
        (r#"{"format":"CSV","compat":"label-studio"}"#.to_owned(), "/compat"),
    ] {
        let (code, _, json) = stack
            .call("POST", "/v1/projects/studio/exports", Some(MANAGER), &[], &body)
            .await;
        assert_eq!((code, json["pointer"].as_str()), (400, Some(pointer)), "{body}: {json}");
    }
}
