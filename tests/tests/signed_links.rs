//! Downloads by signed link, against the AWS emulator: no token needed; tampered,
//! expired and retired-key links refused; only the export's own files ever presigned.
//!
//! Run by `infra/test.sh`, which starts the emulator: `--features labelport-tests/e2e`.
#![cfg(feature = "e2e")]
#![allow(clippy::unwrap_used)]

use labelport_core::job::{JobState, JobStore};
use labelport_core::notify::NotifyOutcome;
use labelport_core::worker::Outcome;
use labelport_model::Mode;
use labelport_tests::harness::project_config;
use labelport_tests::{request, run_notifier, run_worker, sent_emails, Stack, LABELER, MANAGER};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread")]
async fn a_file_key_outside_the_exports_folder_is_never_presigned() {
    let stack = Stack::new().await;
    stack
        .seed(&project_config("fenced", Mode::Classification, 10))
        .await;
    let id = request(&stack, "fenced", r#"{"format":"CSV"}"#).await;
    assert_eq!(
        run_worker(&stack).await.1,
        Outcome::Ran(JobState::Succeeded)
    );
    let jobs = JobStore::new(Arc::new(labelport_aws::S3Store::new(
        stack.s3.clone(),
        &stack.bucket,
    )));
    let (status, _, _) = stack.download(&id).await;
    assert_eq!(status, 302, "the export's own file is served");
    // A record whose key was changed to point at another object.
    for key in [
        "projects/fenced/project.json".to_owned(),
        format!("exports/fenced/{id}/../../other/secret.csv"),
        format!("exports/other/{id}/x.csv"),
    ] {
        let current = jobs.get(&id).await.unwrap();
        let mut tampered = current.job.clone();
        tampered.result.as_mut().unwrap().files[0].key = key.clone();
        jobs.swap(&current, tampered).await.unwrap();
        let (status, headers, json) = stack.download(&id).await;
        assert_eq!(
            (status, json["code"].as_str()),
            (404, Some("FILE_NOT_FOUND")),
            "{key}"
        );
        assert!(headers.get("location").is_none());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_links_need_no_token_and_refuse_tampering_expiry_and_retired_keys() {
    let stack = Stack::new().await;
    stack
        .seed(&project_config("linked", Mode::Classification, 20))
        .await;
    // A labeler is a member: the e-mail may go to them, one message each.
    let id = request(
        &stack,
        "linked",
        &format!(
            r#"{{"format":"CSV","delivery":{{"method":"EMAIL","recipients":["{MANAGER}","{LABELER}"]}}}}"#
        ),
    )
    .await;
    assert_eq!(
        run_worker(&stack).await.1,
        Outcome::Ran(JobState::Succeeded)
    );
    assert_eq!(run_notifier(&stack).await.1, NotifyOutcome::Emailed);
    let emails: Vec<_> = sent_emails()
        .into_iter()
        .filter(|m| m["body"].to_string().contains(&id))
        .collect();
    let mut to: Vec<_> = emails
        .iter()
        .map(|m| m["destinations"]["ToAddresses"].clone())
        .collect();
    to.sort_by_key(|t| t.to_string());
    assert_eq!(
        to,
        vec![serde_json::json!([LABELER]), serde_json::json!([MANAGER])],
        "one e-mail per recipient, each addressed to them alone"
    );
    let link = labelport_tests::api_links(&emails[0])
        .into_iter()
        .find(|l| l.contains("/download?"))
        .unwrap();
    let (status, headers, _) = stack.follow(&link, &[]).await;
    assert_eq!(status, 302);
    assert!(headers["location"]
        .to_str()
        .unwrap()
        .contains("X-Amz-Signature="));

    // A recipient outside the project is refused when the export is asked for.
    let (status, _, json) = stack
        .call(
            "POST",
            "/v1/projects/linked/exports",
            Some(MANAGER),
            &[],
            r#"{"format":"CSV","delivery":{"method":"EMAIL","recipients":["someone@elsewhere.com"]}}"#,
        )
        .await;
    assert_eq!(
        (status, json["pointer"].as_str()),
        (400, Some("/delivery/recipients/0")),
        "{json}"
    );

    // Without a signature the route says where links come from, token or not.
    let (status, _, json) = stack
        .call(
            "GET",
            &format!("/v1/exports/{id}/download"),
            Some(MANAGER),
            &[],
            "",
        )
        .await;
    assert_eq!(
        (status, json["code"].as_str()),
        (401, Some("SIGNED_LINK_REQUIRED")),
        "{json}"
    );

    // Tampered: another export's id, another file, a later expiry, a changed signature.
    let (path, query) = link.split_once('?').unwrap();
    let exp: i64 = query
        .split('&')
        .find_map(|p| p.strip_prefix("exp="))
        .unwrap()
        .parse()
        .unwrap();
    let other = request(&stack, "linked", r#"{"format":"CSV"}"#).await;
    for tampered in [
        link.replace(&id, &other),
        format!("{link}&file=errors.ndjson"),
        link.replace(&format!("exp={exp}"), &format!("exp={}", exp + 86_400)),
        format!("{path}?exp={exp}&sig=AAAA{}", &query[query.len() - 10..]),
    ] {
        let (status, _, json) = stack.follow(&tampered, &[]).await;
        assert_eq!(
            (status, json["code"].as_str()),
            (403, Some("LINK_INVALID")),
            "{tampered}"
        );
    }
    // A person who clicked it gets a page that says what to do.
    let (status, headers, _) = stack
        .follow(&link.replace(&id, &other), &[("accept", "text/html,*/*")])
        .await;
    assert_eq!(status, 403);
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");

    // Expired: signed properly, eight days ago.
    let old = stack
        .links
        .download_link(&id, None, chrono::Utc::now() - chrono::Duration::days(8))
        .await
        .unwrap();
    let (status, _, json) = stack.follow(&old, &[]).await;
    assert_eq!(
        (status, json["code"].as_str()),
        (410, Some("LINK_EXPIRED")),
        "{json}"
    );
    assert!(json["detail"].as_str().unwrap().contains("fresh one"));

    // Rotating the key (Secrets Manager's AWSCURRENT moves to AWSPREVIOUS) keeps the links
    // already sent; the rotation after that retires them.
    let secrets = aws_sdk_secretsmanager::Client::new(&stack.aws);
    for round in 1..=2 {
        secrets
            .put_secret_value()
            .secret_id(&stack.link_secret)
            .secret_string(labelport_tests::new_link_key())
            .send()
            .await
            .unwrap();
        let rotated = labelport_tests::link_signer(&stack.aws, &stack.link_secret);
        let (_, query) = link.split_once('?').unwrap();
        let part = |name: &str| {
            query
                .split('&')
                .find_map(|p| p.strip_prefix(&format!("{name}=")))
                .unwrap()
                .to_owned()
        };
        let (exp, sig) = (part("exp"), part("sig"));
        let checked = rotated
            .verify(
                &id,
                &labelport_core::links::LinkQuery {
                    file: None,
                    exp: &exp,
                    sig: &sig,
                },
                chrono::Utc::now(),
            )
            .await;
        match round {
            1 => assert!(checked.is_ok(), "after one rotation: {checked:?}"),
            _ => assert!(
                matches!(checked, Err(labelport_core::links::LinkError::Invalid)),
                "after two: {checked:?}"
            ),
        }
        let fresh = rotated
            .download_link(&id, None, chrono::Utc::now())
            .await
            .unwrap();
        assert_ne!(fresh, link, "new links are signed with the new key");
    }
}
