//! export-notifier: tells the customer an export ended, once, even when SQS delivers
//! the message twice. The job record's `notification` is claimed by compare-and-swap
//! before sending and marked sent after, so concurrent deliveries send one e-mail.

use crate::error::chain;
use crate::job::{Job, JobError, JobState, JobStore, NotificationState};
use crate::messages::NotifyMessage;
use crate::output::FileRole;
use crate::ports::{Email, Mailer, ObjectStore};
use crate::request::Delivery;
use chrono::Utc;
use std::sync::Arc;
use std::time::Duration;

/// How the notifier runs.
#[derive(Debug, Clone)]
pub struct NotifierSettings {
    /// The API's public base URL; e-mails link to `{api}/v1/exports/{id}/download`.
    pub api_url: String,
    /// A claim older than this is taken to be a crashed notifier's.
    pub claim_timeout: Duration,
}

/// What happened to a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyOutcome {
    /// The result was marked available (download delivery).
    MarkedAvailable,
    /// The e-mail was sent.
    Emailed,
    /// It was done already: a repeated delivery.
    AlreadyNotified,
    /// Another notifier is sending it now.
    InProgressElsewhere,
}

/// Why a message must be retried.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// Not a notify message.
    #[error("malformed notify message")]
    Malformed(#[source] serde_json::Error),
    /// The job record.
    #[error("job record")]
    Job(#[from] JobError),
    /// The job has not ended; the worker only notifies ended jobs.
    #[error("export {0} has not ended")]
    NotEnded(String),
    /// The mailer failed.
    #[error("sending the e-mail for export {export_id}")]
    Mail {
        /// The export.
        export_id: String,
        /// The mailer's error.
        #[source]
        source: crate::ports::BoxError,
    },
}

/// The notifier and what it needs.
pub struct Notifier {
    jobs: JobStore,
    mailer: Arc<dyn Mailer>,
    settings: NotifierSettings,
}

impl Notifier {
    /// Reads job records from `store`, sends through `mailer`.
    pub fn new(
        store: Arc<dyn ObjectStore>,
        mailer: Arc<dyn Mailer>,
        settings: NotifierSettings,
    ) -> Self {
        Notifier {
            jobs: JobStore::new(store),
            mailer,
            settings,
        }
    }

    /// Handles one notify message body.
    pub async fn handle(&self, body: &str) -> Result<NotifyOutcome, NotifyError> {
        let message: NotifyMessage = serde_json::from_str(body).map_err(NotifyError::Malformed)?;
        let id = message.export_id;
        let timeout = chrono::Duration::from_std(self.settings.claim_timeout)
            .unwrap_or(chrono::Duration::MAX);
        let mut seen = None;
        let claimed = self
            .jobs
            .update(&id, |job| {
                seen = Some((
                    job.state,
                    job.notification.state,
                    job.notification.claimed_at,
                ));
                let claimable = match job.notification.state {
                    NotificationState::Pending => true,
                    NotificationState::Sending => job
                        .notification
                        .claimed_at
                        .is_none_or(|at| Utc::now() - at > timeout),
                    NotificationState::Sent => false,
                };
                (job.state.is_terminal() && claimable).then(|| {
                    let mut next = job.clone();
                    next.notification.state = NotificationState::Sending;
                    next.notification.claimed_at = Some(Utc::now());
                    next
                })
            })
            .await?;
        let Some(claimed) = claimed else {
            return match seen {
                Some((state, _, _)) if !state.is_terminal() => Err(NotifyError::NotEnded(id)),
                Some((_, NotificationState::Sent, _)) => Ok(NotifyOutcome::AlreadyNotified),
                _ => Ok(NotifyOutcome::InProgressElsewhere),
            };
        };
        let job = &claimed.job;
        let outcome = match &job.request.delivery {
            Delivery::FileStorage => NotifyOutcome::MarkedAvailable,
            Delivery::Email { recipients } => {
                let email = compose(job, recipients, &self.settings.api_url);
                if let Err(source) = self.mailer.send(&email).await {
                    tracing::warn!(export_id = %id, error = %chain(source.as_ref()), "e-mail not sent; releasing the claim");
                    let _ = self
                        .jobs
                        .update(&id, |j| {
                            (j.notification.state == NotificationState::Sending).then(|| {
                                let mut next = j.clone();
                                next.notification.state = NotificationState::Pending;
                                next.notification.claimed_at = None;
                                next
                            })
                        })
                        .await;
                    return Err(NotifyError::Mail {
                        export_id: id,
                        source,
                    });
                }
                NotifyOutcome::Emailed
            }
        };
        self.jobs
            .update(&id, |j| {
                (j.notification.state == NotificationState::Sending).then(|| {
                    let mut next = j.clone();
                    next.notification.state = NotificationState::Sent;
                    next.notification.sent_at = Some(Utc::now());
                    next
                })
            })
            .await?;
        tracing::info!(export_id = %id, outcome = ?outcome, "notified");
        Ok(outcome)
    }
}

/// The e-mail for an ended export. Links to the API, never to a presigned URL: those
/// die with the Lambda's temporary credentials, the API signs a fresh one per click.
pub fn compose(job: &Job, recipients: &[String], api_url: &str) -> Email {
    let api = api_url.trim_end_matches('/');
    let download = format!("{api}/v1/exports/{}/download", job.id);
    let status = format!("{api}/v1/exports/{}", job.id);
    let format = job.request.format.as_str();
    let (subject, text, html) = match (&job.state, &job.error) {
        (JobState::Succeeded, _) => {
            let p = &job.progress;
            let tasks = p.tasks_exported;
            let files = job.result.as_ref().map_or(&[][..], |r| r.files.as_slice());
            let parts = files.iter().filter(|f| f.role == FileRole::Export).count();
            let parts_text = if parts > 1 {
                format!(" in {parts} files (the link gives the first; the status lists all)")
            } else {
                String::new()
            };
            let report = files.iter().find(|f| f.role == FileRole::Errors).map(|f| {
                (
                    format!("{download}?file={}", f.name),
                    format!(
                        "Source lines skipped as malformed: {}. Annotations {format} cannot express: {}",
                        p.lines_skipped, p.annotations_refused
                    ),
                )
            });
            let (report_text, report_html) = match &report {
                Some((link, counts)) => (
                    format!("\n{counts}. Each is listed in the errors report: {link}\n"),
                    format!(
                        "<p>{}. Each is listed in the <a href=\"{link}\">errors report</a>.</p>",
                        html_escape(counts)
                    ),
                ),
                None => (String::new(), String::new()),
            };
            (
                format!("Your {format} export of {} is ready", job.project),
                format!(
                    "Your {format} export of project {} is ready: {tasks} tasks{parts_text}.\n\nDownload it (sign-in required): {download}\n{report_text}\nExport id: {}\n",
                    job.project, job.id
                ),
                format!(
                    "<p>Your {format} export of project <b>{}</b> is ready: {tasks} tasks{}.</p>\
                     <p><a href=\"{download}\">Download the export</a> (sign-in required).</p>{report_html}\
                     <p style=\"color:#666\">Export id: {}</p>",
                    html_escape(&job.project),
                    html_escape(&parts_text),
                    html_escape(&job.id)
                ),
            )
        }
        (_, error) => {
            let reason = error
                .as_ref()
                .map_or("unknown reason", |e| e.message.as_str());
            (
                format!("Your {format} export of {} failed", job.project),
                format!(
                    "Your {format} export of project {} failed: {reason}\n\nDetails: {status}\n\nExport id: {}\n",
                    job.project, job.id
                ),
                format!(
                    "<p>Your {format} export of project <b>{}</b> failed:</p><p>{}</p>\
                     <p><a href=\"{status}\">Details</a></p><p style=\"color:#666\">Export id: {}</p>",
                    html_escape(&job.project),
                    html_escape(reason),
                    html_escape(&job.id)
                ),
            )
        }
    };
    Email {
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
    use crate::error::Failure;
    use crate::request::ExportRequest;

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

    #[test]
    fn a_ready_email_links_to_the_api_not_to_storage() {
        let email = compose(
            &job(JobState::Succeeded),
            &["m@x.io".into()],
            "https://api.example.com/",
        );
        let link =
            "https://api.example.com/v1/exports/0192f0c5-3b7a-7cc3-9a2e-1f2d3c4b5a69/download";
        assert!(email.text.contains(link), "{}", email.text);
        assert!(
            email.html.contains(&format!("href=\"{link}\"")),
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
            "INVALID_SOURCE_LINE",
            "part-0.ndjson, line 3: expected `<`",
        ));
        let email = compose(&j, &["m@x.io".into()], "https://api");
        assert!(email.text.contains("line 3: expected `<`"));
        assert!(email.html.contains("expected `&lt;`"));
        assert_eq!(email.subject, "Your CSV export of demo failed");
    }
}
