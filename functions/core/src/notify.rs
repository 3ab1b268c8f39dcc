//! export-notifier: tells the customer an export ended, once, even when SQS delivers
//! the message twice. The job record's `notification` is claimed by compare-and-swap
//! before the delivery method announces it and marked sent after, so concurrent
//! deliveries send one e-mail. What is sent, and how, is the method's
//! ([`crate::delivery`]).

use crate::delivery::{Announced, Announcement, Backends, DeliveryError, Notice};
use crate::error::{chain, RedeliverAfter};
use crate::job::{Job, JobError, JobStore, NotificationState};
use crate::links::{LinkError, LinkSigner};
use crate::messages::NotifyMessage;
use crate::ports::{DeliveryEnded, Metrics, NoMetrics, ObjectStore};
use chrono::Utc;
use labelport_engine::assembly::FileRole;
use std::sync::Arc;
use std::time::Duration;

/// How the notifier runs.
#[derive(Debug, Clone)]
pub struct NotifierSettings {
    /// The API's public base URL, for the status link.
    pub api_url: String,
    /// A claim older than this is taken to be a crashed notifier's.
    pub claim_timeout: Duration,
}

/// How long after a claim expires a message held back by it comes again.
const CLAIM_MARGIN: Duration = Duration::from_secs(5);

/// What happened to a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyOutcome {
    /// The result was marked available (download delivery).
    MarkedAvailable,
    /// The e-mail was sent.
    Emailed,
    /// The webhook receiver accepted the event.
    Posted,
    /// The export is in the customer's bucket.
    Stored,
    /// The delivery was refused for good; the job's notification says why.
    Undeliverable,
    /// It was done already: a repeated delivery.
    AlreadyNotified,
}

impl NotifyOutcome {
    /// Its name in metrics (`EMAILED`).
    pub fn name(&self) -> &'static str {
        match self {
            NotifyOutcome::MarkedAvailable => "MARKED_AVAILABLE",
            NotifyOutcome::Emailed => "EMAILED",
            NotifyOutcome::Posted => "POSTED",
            NotifyOutcome::Stored => "STORED",
            NotifyOutcome::Undeliverable => "UNDELIVERABLE",
            NotifyOutcome::AlreadyNotified => "ALREADY_NOTIFIED",
        }
    }
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
    /// The delivery method could not announce the export.
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
    /// The job names a delivery method this build does not have.
    #[error("export {0} names an unknown delivery method")]
    UnknownMethod(String),
    /// Another notifier holds the claim. The message is not acknowledged: that
    /// notifier may fail to record its outcome, and then only this message can finish.
    #[error("export {export_id}'s notification is being sent elsewhere")]
    Held {
        /// The export.
        export_id: String,
        /// When the claim expires: the message should come back then.
        #[source]
        until: RedeliverAfter,
    },
    /// The links could not be signed.
    #[error("signing the links of export {export_id}")]
    Links {
        /// The export.
        export_id: String,
        /// Why.
        #[source]
        source: LinkError,
    },
}

/// The notifier and what it needs.
pub struct Notifier {
    jobs: JobStore,
    backends: Backends,
    links: Arc<LinkSigner>,
    settings: NotifierSettings,
    metrics: Arc<dyn Metrics>,
}

impl Notifier {
    /// Reads job records from `store`, announces through `backends` with links signed
    /// by `links`.
    pub fn new(
        store: Arc<dyn ObjectStore>,
        backends: Backends,
        links: Arc<LinkSigner>,
        settings: NotifierSettings,
    ) -> Self {
        Notifier {
            jobs: JobStore::new(store),
            backends,
            links,
            settings,
            metrics: Arc::new(NoMetrics),
        }
    }

    /// Reports every handled message's method and outcome to `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<dyn Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// What the delivery method is handed: the job and its signed links.
    async fn notice<'a>(&self, job: &'a Job) -> Result<Notice<'a>, LinkError> {
        let now = Utc::now();
        let all = job.result.as_ref().map_or(&[][..], |r| r.files.as_slice());
        // Files in a customer's bucket are fetched from there, not through links.
        let files: Vec<&crate::job::ResultFile> =
            all.iter().filter(|f| f.bucket.is_none()).collect();
        let download = match files.iter().find(|f| f.role == FileRole::Export) {
            Some(_) => Some(self.links.download_link(&job.id, None, now).await?),
            None => None,
        };
        let report = match files.iter().find(|f| f.role == FileRole::Errors) {
            Some(f) => Some(
                self.links
                    .download_link(&job.id, Some(&f.name), now)
                    .await?,
            ),
            None => None,
        };
        let mut linked = Vec::with_capacity(files.len());
        for file in files.iter().copied() {
            let link = self
                .links
                .download_link(&job.id, Some(&file.name), now)
                .await?;
            linked.push((file, link));
        }
        let ttl = chrono::Duration::from_std(self.links.ttl()).unwrap_or(chrono::Duration::days(7));
        Ok(Notice {
            job,
            download,
            report,
            files: linked,
            status: format!(
                "{}/v1/exports/{}",
                self.settings.api_url.trim_end_matches('/'),
                job.id
            ),
            links_expire: now + ttl,
        })
    }

    /// Handles one notify message body.
    pub async fn handle(&self, body: &str) -> Result<NotifyOutcome, NotifyError> {
        self.handle_try(body, false).await
    }

    /// Handles one notify message body; on the `last` delivery the queue allows, a
    /// delivery that fails again is recorded as failed for good (and the message
    /// consumed) rather than left pending in the dead-letter queue.
    pub async fn handle_try(&self, body: &str, last: bool) -> Result<NotifyOutcome, NotifyError> {
        let mut seen = (None, None);
        let handled = self.deliver(body, last, &mut seen).await;
        let (export_id, method) = seen;
        self.metrics.delivery_ended(&DeliveryEnded {
            export_id: export_id.as_deref(),
            method: method.unwrap_or("UNKNOWN"),
            outcome: match &handled {
                Ok(outcome) => outcome.name(),
                Err(NotifyError::Held { .. }) => "HELD",
                Err(_) => "FAILED",
            },
        });
        handled
    }

    /// [`Notifier::handle_try`], noting in `seen` the export and its delivery method
    /// once they are known.
    async fn deliver(
        &self,
        body: &str,
        last: bool,
        seen_job: &mut (Option<String>, Option<&'static str>),
    ) -> Result<NotifyOutcome, NotifyError> {
        let message: NotifyMessage = serde_json::from_str(body).map_err(NotifyError::Malformed)?;
        let id = message.export_id;
        seen_job.0 = Some(id.clone());
        let timeout = chrono::Duration::from_std(self.settings.claim_timeout)
            .unwrap_or(chrono::Duration::MAX);
        let mut seen = None;
        let claimed = self
            .jobs
            .update(&id, |job| {
                seen_job.1 = job.request.delivery.registered().map(|m| m.name());
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
                    NotificationState::Sent | NotificationState::Failed => false,
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
                Some((_, NotificationState::Sent | NotificationState::Failed, _)) => {
                    Ok(NotifyOutcome::AlreadyNotified)
                }
                // Back when the claim expires: by then the holder has recorded what it
                // did, or this message takes the claim over.
                Some((_, _, claimed_at)) => {
                    let expires = claimed_at.unwrap_or_else(Utc::now) + timeout;
                    let left = (expires - Utc::now()).to_std().unwrap_or_default();
                    Err(NotifyError::Held {
                        export_id: id,
                        until: RedeliverAfter(left + CLAIM_MARGIN),
                    })
                }
                None => Err(NotifyError::Job(JobError::NotFound(id))),
            };
        };
        let job = &claimed.job;
        let announcement = match self.announce(job).await {
            Ok(announcement) => announcement,
            Err(NotifyError::Delivery(mut e)) if e.permanent || last => {
                // Trying again cannot help, or there is no next time: record why, and stop.
                if !e.permanent {
                    e.what = format!("{} (given up: this was the last try)", e.what);
                }
                tracing::warn!(export_id = %id, error = %e.what, "delivery failed for good");
                self.jobs
                    .update_patiently(&id, |j| {
                        (j.notification.state == NotificationState::Sending).then(|| {
                            let mut next = j.clone();
                            next.notification.state = NotificationState::Failed;
                            next.notification.error = Some(e.what.clone());
                            next.notification.record(&e.attempts);
                            next.notification.sent_to.extend(e.reached.iter().cloned());
                            next
                        })
                    })
                    .await?;
                return Ok(NotifyOutcome::Undeliverable);
            }
            Err(e) => {
                tracing::warn!(export_id = %id, error = %chain(&e), "not announced; releasing the claim");
                let (attempts, reached) = match &e {
                    NotifyError::Delivery(d) => (d.attempts.clone(), d.reached.clone()),
                    _ => (Vec::new(), Vec::new()),
                };
                // If even this write fails, the claim expires and the message, returned
                // to the queue, takes it over then (`Held`).
                let released = self
                    .jobs
                    .update_patiently(&id, |j| {
                        (j.notification.state == NotificationState::Sending).then(|| {
                            let mut next = j.clone();
                            next.notification.state = NotificationState::Pending;
                            next.notification.claimed_at = None;
                            next.notification.record(&attempts);
                            next.notification.sent_to.extend(reached.iter().cloned());
                            next
                        })
                    })
                    .await;
                if let Err(release) = released {
                    tracing::error!(export_id = %id, error = %chain(&release), "the claim was not released; it expires");
                }
                return Err(e);
            }
        };
        let outcome = match announcement.announced {
            Announced::Nothing => NotifyOutcome::MarkedAvailable,
            Announced::Emailed => NotifyOutcome::Emailed,
            Announced::Posted => NotifyOutcome::Posted,
            Announced::Stored => NotifyOutcome::Stored,
        };
        self.jobs
            .update_patiently(&id, |j| {
                (j.notification.state == NotificationState::Sending).then(|| {
                    let mut next = j.clone();
                    next.notification.state = NotificationState::Sent;
                    next.notification.sent_at = Some(Utc::now());
                    next.notification.record(&announcement.attempts);
                    next
                })
            })
            .await?;
        tracing::info!(export_id = %id, outcome = ?outcome, "notified");
        Ok(outcome)
    }
}

impl Notifier {
    async fn announce(&self, job: &Job) -> Result<Announcement, NotifyError> {
        if job.state == crate::job::JobState::Cancelled {
            // A manager cancelled it: there is nothing to deliver or to report.
            return Ok(Announced::Nothing.into());
        }
        let method = job
            .request
            .delivery
            .registered()
            .ok_or_else(|| NotifyError::UnknownMethod(job.id.clone()))?;
        let notice = self
            .notice(job)
            .await
            .map_err(|source| NotifyError::Links {
                export_id: job.id.clone(),
                source,
            })?;
        Ok(method
            .announce(&notice, &job.request.delivery.params, &self.backends)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{
        BoxError, Condition, FixedLinkKeys, LinkKeySet, Mail, Mailer, Object, ObjectInfo,
        StoreError, Upload,
    };
    use async_trait::async_trait;
    use bytes::Bytes;

    /// A store with nothing in it.
    struct Empty;

    #[async_trait]
    impl ObjectStore for Empty {
        async fn get(&self, key: &str) -> Result<Object, StoreError> {
            Err(StoreError::NotFound(key.to_owned()))
        }
        async fn put(
            &self,
            key: &str,
            _: Bytes,
            _: &str,
            _: Condition,
        ) -> Result<String, StoreError> {
            Err(StoreError::NotFound(key.to_owned()))
        }
        async fn delete(&self, _: &str) -> Result<(), StoreError> {
            Ok(())
        }
        async fn list(&self, _: &str) -> Result<Vec<ObjectInfo>, StoreError> {
            Ok(Vec::new())
        }
        async fn open(
            &self,
            key: &str,
        ) -> Result<Box<dyn tokio::io::AsyncRead + Send + Unpin>, StoreError> {
            Err(StoreError::NotFound(key.to_owned()))
        }
        async fn create_upload(&self, key: &str, _: &str) -> Result<Box<dyn Upload>, StoreError> {
            Err(StoreError::NotFound(key.to_owned()))
        }
    }

    struct NoMail;

    #[async_trait]
    impl Mailer for NoMail {
        async fn send(&self, _: &Mail) -> Result<(), BoxError> {
            Err("no mail".into())
        }
    }

    #[derive(Default)]
    struct Recorded(std::sync::Mutex<Vec<(Option<String>, String, String)>>);

    impl Metrics for Recorded {
        fn export_ended(&self, _: &crate::ports::ExportEnded<'_>) {}
        fn delivery_ended(&self, ended: &DeliveryEnded<'_>) {
            if let Ok(mut seen) = self.0.lock() {
                seen.push((
                    ended.export_id.map(str::to_owned),
                    ended.method.to_owned(),
                    ended.outcome.to_owned(),
                ));
            }
        }
    }

    #[tokio::test]
    async fn every_message_is_reported_with_its_method_and_outcome() {
        let keys = Arc::new(FixedLinkKeys(LinkKeySet {
            current: vec![7; 32],
            previous: Vec::new(),
        }));
        let recorded = Arc::new(Recorded::default());
        let notifier = Notifier::new(
            Arc::new(Empty),
            Backends {
                mailer: Arc::new(NoMail),
                sealer: Arc::new(crate::seal::Sealer::new(keys.clone())),
                outbound: Default::default(),
            },
            Arc::new(LinkSigner::new(
                keys,
                "https://api",
                Duration::from_secs(60),
            )),
            NotifierSettings {
                api_url: "https://api".into(),
                claim_timeout: Duration::from_secs(300),
            },
        )
        .with_metrics(recorded.clone());
        assert!(notifier.handle("not json").await.is_err());
        assert!(notifier.handle(r#"{"exportId":"01gone"}"#).await.is_err());
        let seen = recorded.0.lock().map(|s| s.clone()).unwrap_or_default();
        assert_eq!(
            seen,
            [
                (None, "UNKNOWN".to_owned(), "FAILED".to_owned()),
                (
                    Some("01gone".to_owned()),
                    "UNKNOWN".to_owned(),
                    "FAILED".to_owned()
                ),
            ]
        );
        assert_eq!(NotifyOutcome::AlreadyNotified.name(), "ALREADY_NOTIFIED");
    }
}
