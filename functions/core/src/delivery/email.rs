//! EMAIL: a message with a text and an HTML part, through SES on AWS and the outbox
//! locally. Recipients are the project's members, or addresses the platform allows:
//! the service never mails an export to whoever a request names.

use super::{Announced, Announcement, Backends, DeliveryError, DeliveryMethod, Notice, Requested};
use crate::error::RequestError;
use crate::job::JobState;
use crate::ports::Mail;
use crate::project::is_email;
use async_trait::async_trait;
use serde::de::{Error as _, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use std::fmt;

/// At most this many recipients per export.
pub const MAX_RECIPIENTS: usize = 10;

/// E-mail with a signed download link.
pub struct Email;

/// EMAIL's fields of `delivery`.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EmailParams {
    // A doc string continued with `\`, not wrapped: the OpenAPI document shows it as one
    // line, as it always has.
    #[doc = "Who gets the e-mail: members of the project, or addresses the platform \
             allows. Default: the requester."]
    #[serde(default, deserialize_with = "recipients")]
    #[schema(format = Email, max_items = 10)]
    pub recipients: Vec<String>,
}

#[async_trait]
impl DeliveryMethod for Email {
    type Params = EmailParams;

    fn name(&self) -> &'static str {
        "EMAIL"
    }

    fn summary(&self) -> &'static str {
        "an e-mail with a signed download link to each recipient (`recipients`: project members or allowed addresses; the requester by default)"
    }

    fn accept(
        &self,
        mut params: EmailParams,
        requested: &Requested<'_>,
    ) -> Result<EmailParams, RequestError> {
        let recipients = &mut params.recipients;
        if recipients.is_empty() {
            if !is_email(requested.requester) {
                return Err(RequestError::new(
                    "delivery.recipients",
                    "is required when a service asks for the export: a service has no address of its own",
                ));
            }
            recipients.push(requested.requester.to_owned());
        }
        if recipients.len() > MAX_RECIPIENTS {
            return Err(RequestError::new(
                "delivery.recipients",
                format!("at most {MAX_RECIPIENTS} recipients"),
            ));
        }
        for (i, r) in recipients.iter().enumerate() {
            let field = format!("delivery.recipients[{i}]");
            if !is_email(r) {
                return Err(RequestError::new(field, "not an e-mail address"));
            }
            let member = requested.project.role_of(r).is_some();
            if !member && !allowed(r, &requested.policy.email_allow_list) {
                return Err(RequestError::new(
                    field,
                    format!(
                        "{r} is neither a member of project {} nor an address this platform allows exports to be sent to",
                        requested.project.id
                    ),
                ));
            }
        }
        Ok(params)
    }

    async fn announce(
        &self,
        notice: &Notice<'_>,
        params: &Map<String, Value>,
        backends: &Backends,
    ) -> Result<Announcement, DeliveryError> {
        let recipients: Vec<String> = params
            .get("recipients")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        // One message per recipient: nobody learns who else received the export. A send
        // that fails part-way reports whom it reached; the job records them and the retry
        // sends to the others only.
        let already = &notice.job.notification.sent_to;
        let mut reached = Vec::new();
        for recipient in &recipients {
            if already.iter().any(|r| r.eq_ignore_ascii_case(recipient)) {
                continue;
            }
            let message = compose(notice, std::slice::from_ref(recipient));
            if let Err(source) = backends.mailer.send(&message).await {
                return Err(DeliveryError {
                    what: format!("sending the e-mail for export {}", notice.job.id),
                    permanent: false,
                    attempts: Vec::new(),
                    reached,
                    source: Some(source),
                });
            }
            reached.push(recipient.clone());
        }
        Ok(Announced::Emailed.into())
    }
}

/// `recipients`: a list of strings, each checked as an address by `accept`. Anything
/// but a list, `null` too, is refused whole, and an item that is not a string by its
/// index, with the messages the API has always given.
fn recipients<'de, D: Deserializer<'de>>(field: D) -> Result<Vec<String>, D::Error> {
    const NOT_A_LIST: &str = "must be a list of e-mail addresses";

    /// One item: any error in it is that it is not a string.
    struct Recipient(String);

    impl<'de> Deserialize<'de> for Recipient {
        fn deserialize<D: Deserializer<'de>>(item: D) -> Result<Self, D::Error> {
            String::deserialize(item)
                .map(Recipient)
                .map_err(|_| D::Error::custom("must be an e-mail address (a string)"))
        }
    }

    /// Takes a list; refuses each other kind of JSON value with one message (serde's
    /// default names the kind it got).
    struct List;

    impl<'de> Visitor<'de> for List {
        type Value = Vec<String>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(NOT_A_LIST)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Self::Value, A::Error> {
            let mut list = Vec::new();
            while let Some(Recipient(address)) = items.next_element()? {
                list.push(address);
            }
            Ok(list)
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Err(E::custom(NOT_A_LIST))
        }

        fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Err(E::custom(NOT_A_LIST))
        }

        fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Err(E::custom(NOT_A_LIST))
        }

        fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Err(E::custom(NOT_A_LIST))
        }

        fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Err(E::custom(NOT_A_LIST))
        }

        fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Err(E::custom(NOT_A_LIST))
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
            Err(A::Error::custom(NOT_A_LIST))
        }
    }

    field.deserialize_any(List)
}

/// Whether `address` is on the allow-list: the address itself, or its `@domain`.
fn allowed(address: &str, allow_list: &[String]) -> bool {
    let address = address.to_ascii_lowercase();
    let domain = address.rfind('@').map(|at| &address[at..]);
    allow_list.iter().any(|entry| {
        let entry = entry.to_ascii_lowercase();
        entry == address || Some(entry.as_str()) == domain
    })
}

/// The e-mail for an ended export. Its links are signed links to the API, which work
/// without signing in and make a fresh presigned URL at each click (a presigned URL put
/// in a mail would die with the credentials that signed it).
pub fn compose(notice: &Notice<'_>, recipients: &[String]) -> Mail {
    let job = notice.job;
    let format = job.request.format.as_str();
    let until = notice.links_expire.format("%-d %B %Y").to_string();
    let (subject, text, html) = match (&job.state, &job.error, &notice.download) {
        (JobState::Succeeded, _, Some(download)) => {
            let p = &job.progress;
            let tasks = p.tasks_exported;
            let parts = job.result.as_ref().map_or(0, |r| {
                r.files
                    .iter()
                    .filter(|f| f.role == labelport_engine::assembly::FileRole::Export)
                    .count()
            });
            let parts_text = if parts > 1 {
                format!(" in {parts} files (the link gives the first; the status lists all)")
            } else {
                String::new()
            };
            let counts = format!(
                "Source lines skipped as malformed: {}. Annotations {format} cannot express: {}. Tasks {format} left out: {}",
                p.lines_skipped, p.annotations_refused, p.tasks_left_out
            );
            let (report_text, report_html) = match &notice.report {
                Some(link) => (
                    format!("\n{counts}. Each is listed in the errors report: {link}\n"),
                    format!(
                        "<p>{}. Each is listed in the <a href=\"{}\">errors report</a>.</p>",
                        html_escape(&counts),
                        html_escape(link)
                    ),
                ),
                None => (String::new(), String::new()),
            };
            (
                format!("Your {format} export of {} is ready", job.project),
                format!(
                    "Your {format} export of project {} is ready: {tasks} tasks{parts_text}.\n\nDownload it (the link works until {until}): {download}\n{report_text}\nExport id: {}\n",
                    job.project, job.id
                ),
                format!(
                    "<p>Your {format} export of project <b>{}</b> is ready: {tasks} tasks{}.</p>\
                     <p><a href=\"{}\">Download the export</a> (the link works until {until}).</p>{report_html}\
                     <p style=\"color:#666\">Export id: {}</p>",
                    html_escape(&job.project),
                    html_escape(&parts_text),
                    html_escape(download),
                    html_escape(&job.id)
                ),
            )
        }
        (_, error, _) => {
            let reason = error
                .as_ref()
                .map_or("unknown reason", |e| e.message.as_str());
            let status = &notice.status;
            (
                format!("Your {format} export of {} failed", job.project),
                format!(
                    "Your {format} export of project {} failed: {reason}\n\nDetails (sign-in required): {status}\n\nExport id: {}\n",
                    job.project, job.id
                ),
                format!(
                    "<p>Your {format} export of project <b>{}</b> failed:</p><p>{}</p>\
                     <p><a href=\"{}\">Details</a> (sign-in required)</p><p style=\"color:#666\">Export id: {}</p>",
                    html_escape(&job.project),
                    html_escape(reason),
                    html_escape(status),
                    html_escape(&job.id)
                ),
            )
        }
    };
    Mail {
        to: recipients.to_vec(),
        subject,
        text,
        html,
    }
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::delivery::RegisteredMethod;
    use crate::error::Failure;
    use crate::job::Job;
    use crate::request::ExportRequest;
    use serde_json::json;

    fn job(state: JobState) -> Job {
        let request = ExportRequest::parse(br#"{"format":"CSV"}"#).unwrap();
        let mut job = Job::new(
            "0192f0c5-3b7a-7cc3-9a2e-1f2d3c4b5a69".into(),
            "demo".into(),
            "m@x.io".into(),
            request,
        );
        job.state = state;
        job
    }

    fn notice<'a>(job: &'a Job, download: Option<&str>) -> Notice<'a> {
        Notice {
            job,
            download: download.map(str::to_owned),
            report: None,
            files: Vec::new(),
            status: "https://api/v1/exports/0192f0c5-3b7a-7cc3-9a2e-1f2d3c4b5a69".into(),
            links_expire: chrono::DateTime::from_timestamp(1_767_225_600, 0).unwrap(),
        }
    }

    #[test]
    fn a_ready_email_carries_the_signed_link_and_when_it_expires() {
        let job = job(JobState::Succeeded);
        let link = "https://api.example.com/v1/exports/0192f0c5-3b7a-7cc3-9a2e-1f2d3c4b5a69/download?exp=1767225600&sig=abc_-";
        let email = compose(&notice(&job, Some(link)), &["m@x.io".into()]);
        assert!(email.text.contains(link), "{}", email.text);
        assert!(
            email.text.contains("until 1 January 2026"),
            "{}",
            email.text
        );
        assert!(
            email
                .html
                .contains(&format!("href=\"{}\"", html_escape(link))),
            "{}",
            email.html
        );
        assert!(!email.text.contains("X-Amz-Signature"));
        assert_eq!(email.subject, "Your CSV export of demo is ready");
    }

    #[test]
    fn a_failure_email_says_why_escaped() {
        let mut j = job(JobState::Failed);
        j.error = Some(Failure::new(
            crate::error::FailureCode::InvalidSourceLine,
            "part-0.ndjson, line 3: expected `<`",
        ));
        let email = compose(&notice(&j, None), &["m@x.io".into()]);
        assert!(email.text.contains("line 3: expected `<`"));
        assert!(email.html.contains("expected `&lt;`"));
        assert_eq!(email.subject, "Your CSV export of demo failed");
    }

    #[test]
    fn recipients_that_are_not_a_list_of_strings_are_refused_where_they_go_wrong() {
        let project = labelport_generate::project(&labelport_generate::Config::new(
            "p1",
            labelport_model::Mode::Classification,
            1,
            1,
        ));
        let policy = crate::delivery::DeliveryPolicy::default();
        let requested = Requested {
            project: &project,
            requester: "manager@example.com",
            policy: &policy,
        };
        for (recipients, field, why) in [
            (
                json!("a@b.co"),
                "delivery.recipients",
                "must be a list of e-mail addresses",
            ),
            (
                json!(null),
                "delivery.recipients",
                "must be a list of e-mail addresses",
            ),
            (
                json!({}),
                "delivery.recipients",
                "must be a list of e-mail addresses",
            ),
            (
                json!(["manager@example.com", 5]),
                "delivery.recipients[1]",
                "must be an e-mail address (a string)",
            ),
        ] {
            let mut given = Map::new();
            given.insert("recipients".into(), recipients.clone());
            let e = RegisteredMethod::accept(&Email, &given, &requested).unwrap_err();
            assert_eq!(
                (e.field.as_str(), e.message.as_str()),
                (field, why),
                "{recipients}"
            );
        }
        let fields = RegisteredMethod::fields(&Email);
        assert_eq!(
            fields["properties"]["recipients"]["maxItems"],
            json!(MAX_RECIPIENTS),
            "the schema states the limit accept holds"
        );
    }

    #[test]
    fn the_allow_list_takes_addresses_and_domains_without_case() {
        let list = vec!["ops@partner.com".to_owned(), "@Example.org".to_owned()];
        assert!(allowed("OPS@partner.com", &list));
        assert!(allowed("anyone@example.org", &list));
        assert!(!allowed("anyone@partner.com", &list));
        assert!(!allowed("x@sub.example.org", &list));
        assert!(!allowed("x@evil-example.org", &list));
    }
}
