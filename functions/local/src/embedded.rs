//! The embedded default: the same API, worker and notifier as on AWS, over a folder,
//! two in-process queues and an outbox of `.eml` files.

use crate::auth::LocalJwt;
use crate::outbox::OutboxMailer;
use crate::presign::LocalPresigner;
use crate::queue::InProcessQueue;
use crate::store::FsStore;
use labelport_core::api::{Api, ApiSettings};
use labelport_core::delivery::{Backends, DeliveryPolicy};
use labelport_core::error::chain;
use labelport_core::links::LinkSigner;
use labelport_core::notify::{Notifier, NotifierSettings};
use labelport_core::outbound::OutboundPolicy;
use labelport_core::ports::{FixedLinkKeys, LinkKeySet};
use labelport_core::seal::Sealer;
use labelport_core::sweep::{SweepSettings, Sweeper};
use labelport_core::tenancy::ExternalIds;
use labelport_core::worker::{Worker, WorkerSettings};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

/// The sender the outbox writes as.
pub const LOCAL_SENDER: &str = "labelport@localhost";

/// Everything the embedded default runs.
pub struct Embedded {
    /// The data folder (the "bucket").
    pub data: PathBuf,
    /// The store over the data folder.
    pub store: Arc<FsStore>,
    /// The API.
    pub api: Arc<Api>,
    /// Signs and serves local download links.
    pub presigner: Arc<LocalPresigner>,
    worker: Worker,
    sweeper: Sweeper,
    notifier: Notifier,
    exports: UnboundedReceiver<String>,
    notifications: UnboundedReceiver<String>,
}

impl Embedded {
    /// Opens the data folder; links point at `public_url` (where `labelport serve` listens).
    pub fn open(data: &Path, public_url: &str) -> std::io::Result<Self> {
        std::fs::create_dir_all(data)?;
        let store = Arc::new(FsStore::new(data));
        let (export_queue, exports) = InProcessQueue::new();
        let (notify_queue, notifications) = InProcessQueue::new();
        let jwt = Arc::new(LocalJwt::load_or_create(&data.join(".keys/jwt.key"))?);
        let presign_secret = crate::auth::load_or_create_key(&data.join(".keys/presign.key"))?;
        let presigner = Arc::new(LocalPresigner::new(public_url, presign_secret, data));
        // Webhooks from a laptop may reach the hosts in LABELPORT_WEBHOOK_ALLOW_HOSTS
        // (`127.0.0.1:9000`) over http, for trying a receiver locally.
        let outbound = OutboundPolicy::new(
            std::env::var("LABELPORT_WEBHOOK_ALLOW_HOSTS")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(str::to_owned)
                .collect(),
        );
        // Download links are signed with a key of their own; delete the file to revoke
        // every link handed out.
        let links = Arc::new(LinkSigner::new(
            Arc::new(FixedLinkKeys(LinkKeySet {
                current: crate::auth::load_or_create_key(&data.join(".keys/links.key"))?,
                previous: Vec::new(),
            })),
            public_url,
            Duration::from_secs(7 * 86_400),
        ));
        let buckets = Arc::new(crate::store::FolderBuckets::new(data));
        let api = Arc::new(
            Api::new(
                store.clone(),
                Arc::new(export_queue),
                presigner.clone(),
                jwt.clone(),
                links.clone(),
                ApiSettings {
                    public_url: public_url.to_owned(),
                    download_ttl: Duration::from_secs(300),
                    exports_prefix: "exports".into(),
                    // One person's laptop: no capacity to share, so no limit to keep.
                    max_active_per_project: 0,
                    max_active_per_tenant: 0,
                    // Nothing deletes old exports on a laptop: they do not expire.
                    retention: None,
                    // No S3 events on a laptop: request files are not read.
                    request_writers: Vec::new(),
                    // Folders stand in for customers' buckets: nobody to trust.
                    delivery_principals: Vec::new(),
                    delivery: DeliveryPolicy {
                        email_allow_list: Vec::new(),
                        outbound: outbound.clone(),
                        own_buckets: Vec::new(),
                    },
                },
            )
            .with_buckets(buckets.clone())
            // Folders stand in for customers' buckets; the ids are shown as on AWS.
            .with_external_ids(Arc::new(ExternalIds::new(Arc::new(FixedLinkKeys(
                LinkKeySet {
                    current: crate::auth::load_or_create_key(&data.join(".keys/external-id.key"))?,
                    previous: Vec::new(),
                },
            ))))),
        );
        let worker = Worker::new(
            store.clone(),
            store.clone(),
            Arc::new(notify_queue.clone()),
            WorkerSettings::default(),
        )
        .with_buckets(buckets);
        let sweeper = Sweeper::new(
            store.clone(),
            Arc::new(notify_queue),
            SweepSettings::default(),
        );
        let notifier = Notifier::new(
            store.clone(),
            Backends {
                mailer: Arc::new(OutboxMailer::new(data.join("outbox"), LOCAL_SENDER)),
                sealer: Arc::new(Sealer::new(links.keys())),
                outbound: outbound.clone(),
            },
            links,
            NotifierSettings {
                api_url: public_url.to_owned(),
                claim_timeout: Duration::from_secs(300),
            },
        );
        Ok(Embedded {
            data: data.to_path_buf(),
            store,
            api,
            presigner,
            worker,
            sweeper,
            notifier,
            exports,
            notifications,
        })
    }

    /// Runs every queued message, exports first, until both queues are empty.
    pub async fn drain(&mut self) {
        loop {
            if let Ok(body) = self.exports.try_recv() {
                self.run_export(&body).await;
            } else if let Ok(body) = self.notifications.try_recv() {
                self.run_notification(&body).await;
            } else {
                return;
            }
        }
    }

    /// Runs messages as they arrive, for `labelport serve`, and sweeps every 15 minutes
    /// as the worker's schedule does on AWS: the in-process queues die with the process,
    /// so an export interrupted by a restart is ended, not left QUEUED or RUNNING.
    pub async fn run_forever(mut self) {
        let mut sweeps = tokio::time::interval(Duration::from_secs(15 * 60));
        loop {
            tokio::select! {
                Some(body) = self.exports.recv() => self.run_export(&body).await,
                Some(body) = self.notifications.recv() => self.run_notification(&body).await,
                _ = sweeps.tick() => self.sweep().await,
                else => return,
            }
        }
    }

    async fn sweep(&self) {
        match self.sweeper.sweep().await {
            Ok(report) if report.ended.is_empty() => {}
            Ok(report) => tracing::info!(ended = ?report.ended, "abandoned exports ended"),
            Err(e) => tracing::error!(error = %chain(&e), "sweep failed"),
        }
    }

    async fn run_export(&self, body: &str) {
        match self.worker.handle(body).await {
            Ok(outcome) => tracing::info!(?outcome, "export message handled"),
            Err(e) => tracing::error!(error = %chain(&e), "export message failed"),
        }
    }

    async fn run_notification(&self, body: &str) {
        match self.notifier.handle(body).await {
            Ok(outcome) => tracing::info!(?outcome, "notify message handled"),
            Err(e) => tracing::error!(error = %chain(&e), "notify message failed"),
        }
    }
}
