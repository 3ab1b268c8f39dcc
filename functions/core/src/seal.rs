//! Sealing secrets a request carries (a webhook's signing secret) so the job record
//! never holds them in clear: AES-256-GCM under a key derived from the platform's link
//! key set, the project as associated data (a sealed value copied into another
//! project's job does not open). A rotated key still opens what it sealed: every key of
//! the set is tried.

use crate::ports::{BoxError, LinkKeys};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::Arc;

const PREFIX: &str = "v1.";

/// Why a value could not be sealed or opened. Never carries the value.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The keys could not be read.
    #[error("reading the sealing keys")]
    Keys(#[source] BoxError),
    /// The sealed value is not one of ours, was changed, or its key is gone.
    #[error("the sealed value does not open")]
    Unopenable,
}

/// Seals and opens secrets.
pub struct Sealer {
    keys: Arc<dyn LinkKeys>,
}

fn cipher(link_key: &[u8]) -> Aes256Gcm {
    // A key of its own, derived, so sealing and link signing never share one.
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(link_key).unwrap_or_else(|_| unreachable!());
    mac.update(b"labelport-seal-v1");
    let key = mac.finalize().into_bytes();
    Aes256Gcm::new(&key)
}

impl Sealer {
    /// Seals with keys from `keys`.
    pub fn new(keys: Arc<dyn LinkKeys>) -> Self {
        Sealer { keys }
    }

    /// Seals `secret` for `project`: `v1.` and base64url of nonce and ciphertext.
    pub async fn seal(&self, secret: &str, project: &str) -> Result<String, SealError> {
        let keys = self.keys.keys(false).await.map_err(SealError::Keys)?;
        let nonce: [u8; 12] = rand::random();
        let sealed = cipher(&keys.current)
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: project.as_bytes(),
                },
            )
            .map_err(|_| SealError::Unopenable)?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        Ok(format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        ))
    }

    /// Opens what [`Sealer::seal`] sealed for `project`.
    pub async fn open(&self, sealed: &str, project: &str) -> Result<String, SealError> {
        let bytes = sealed
            .strip_prefix(PREFIX)
            .and_then(|b| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(b)
                    .ok()
            })
            .filter(|b| b.len() > 12)
            .ok_or(SealError::Unopenable)?;
        let (nonce, ciphertext) = bytes.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| SealError::Unopenable)?;
        for fresh in [false, true] {
            let keys = self.keys.keys(fresh).await.map_err(SealError::Keys)?;
            for key in std::iter::once(&keys.current).chain(&keys.previous) {
                let opened = cipher(key).decrypt(
                    &Nonce::from(nonce),
                    Payload {
                        msg: ciphertext,
                        aad: project.as_bytes(),
                    },
                );
                if let Ok(plain) = opened {
                    return String::from_utf8(plain).map_err(|_| SealError::Unopenable);
                }
            }
        }
        Err(SealError::Unopenable)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::ports::{FixedLinkKeys, LinkKeySet};

    fn sealer(current: &[u8], previous: &[&[u8]]) -> Sealer {
        Sealer::new(Arc::new(FixedLinkKeys(LinkKeySet {
            current: current.to_vec(),
            previous: previous.iter().map(|k| k.to_vec()).collect(),
        })))
    }

    #[tokio::test]
    async fn a_sealed_secret_opens_for_its_project_only_and_survives_a_rotation() {
        let old = b"the first key, thirty-two bytes.";
        let sealed = sealer(old, &[]).seal("whsec_abc", "demo").await.unwrap();
        assert!(sealed.starts_with("v1."));
        assert!(!sealed.contains("whsec_abc"));
        assert_eq!(
            sealer(old, &[]).open(&sealed, "demo").await.unwrap(),
            "whsec_abc"
        );
        assert!(sealer(old, &[]).open(&sealed, "other").await.is_err());
        let rotated = sealer(b"the second key, also 32 bytes..", &[old]);
        assert_eq!(rotated.open(&sealed, "demo").await.unwrap(), "whsec_abc");
        let retired = sealer(b"the third key, also 32 bytes....", &[b"x".as_slice()]);
        assert!(retired.open(&sealed, "demo").await.is_err());
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(sealer(old, &[])
            .open(std::str::from_utf8(&tampered).unwrap(), "demo")
            .await
            .is_err());
    }
}
