//! Link keys from Secrets Manager: the secret's `AWSCURRENT` version signs, it and
//! `AWSPREVIOUS` verify. Rotating the secret (`put-secret-value`, or a rotation
//! schedule) therefore keeps every link made with the key before it working.
//!
//! Keys are cached for five minutes. A link that matches no cached key makes one fresh
//! read (at most one every ten seconds), so a key rotated a moment ago is picked up
//! before its links are refused, and a flood of forged links costs no more reads.

use async_trait::async_trait;
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use labelport_core::ports::{BoxError, LinkKeySet, LinkKeys};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// The shortest key accepted: 32 bytes, HMAC-SHA256's own strength.
pub const MIN_KEY_BYTES: usize = 32;

/// Link keys in a Secrets Manager secret.
pub struct SecretsManagerLinkKeys {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
    cache: Mutex<Option<(Instant, LinkKeySet)>>,
}

const MAX_AGE: Duration = Duration::from_secs(5 * 60);
const MIN_REFRESH: Duration = Duration::from_secs(10);

impl SecretsManagerLinkKeys {
    /// Keys in secret `secret_id` (its name or ARN).
    pub fn new(client: aws_sdk_secretsmanager::Client, secret_id: impl Into<String>) -> Self {
        SecretsManagerLinkKeys {
            client,
            secret_id: secret_id.into(),
            cache: Mutex::new(None),
        }
    }

    async fn version(&self, stage: &str) -> Result<Option<Vec<u8>>, BoxError> {
        let read = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .version_stage(stage)
            .send()
            .await;
        let out = match read {
            Ok(out) => out,
            // A secret never rotated has no AWSPREVIOUS.
            Err(e) if stage != "AWSCURRENT" && e.code() == Some("ResourceNotFoundException") => {
                return Ok(None)
            }
            Err(e) => {
                return Err(format!(
                    "reading the {stage} link key: {}",
                    e.code().unwrap_or("error")
                )
                .into())
            }
        };
        let key = match (out.secret_string(), out.secret_binary()) {
            (Some(text), _) => text.as_bytes().to_vec(),
            (None, Some(blob)) => blob.as_ref().to_vec(),
            (None, None) => return Err(format!("the {stage} link key is empty").into()),
        };
        if key.len() < MIN_KEY_BYTES {
            return Err(format!(
                "the {stage} link key has {} bytes; it needs at least {MIN_KEY_BYTES}",
                key.len()
            )
            .into());
        }
        Ok(Some(key))
    }
}

#[async_trait]
impl LinkKeys for SecretsManagerLinkKeys {
    async fn keys(&self, fresh: bool) -> Result<LinkKeySet, BoxError> {
        let mut cache = self.cache.lock().await;
        if let Some((read_at, keys)) = cache.as_ref() {
            let age = read_at.elapsed();
            if age < MIN_REFRESH || (!fresh && age < MAX_AGE) {
                return Ok(keys.clone());
            }
        }
        let current = self
            .version("AWSCURRENT")
            .await?
            .ok_or("the link key secret has no current version")?;
        let previous = self.version("AWSPREVIOUS").await?.into_iter().collect();
        let keys = LinkKeySet { current, previous };
        *cache = Some((Instant::now(), keys.clone()));
        Ok(keys)
    }
}
