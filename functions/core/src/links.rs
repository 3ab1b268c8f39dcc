//! Signed download links: every link that leaves the system (the e-mail, the webhook,
//! the status) is `{api}/v1/exports/{id}/download?exp=..&sig=..` (and `&file=NAME` for a
//! file other than the first). The link itself is the permission, so a mail client or a
//! script follows it with no bearer token; the API checks the signature, then redirects
//! to a presigned URL made at that moment.
//!
//! The signature is HMAC-SHA256 over the export id, the file name and the expiry, with
//! the current key of a key set. Links are checked against the current key and the ones
//! before it, so rotating the key does not break the links already sent.

use crate::ports::{BoxError, LinkKeys};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::Arc;
use std::time::Duration;

/// Why a link was refused.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The signature does not match: the link was altered, cut short, or made with a key
    /// retired since.
    #[error("the link's signature does not match")]
    Invalid,
    /// The signature matches but the link's time is up.
    #[error("the link expired at {0}")]
    Expired(DateTime<Utc>),
    /// The keys could not be read.
    #[error("reading the link keys")]
    Keys(#[source] BoxError),
}

/// The parts of a signed link's query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkQuery<'a> {
    /// The file (`None`: the export's first file).
    pub file: Option<&'a str>,
    /// Seconds since the epoch at which the link stops working.
    pub exp: &'a str,
    /// The signature, base64url without padding.
    pub sig: &'a str,
}

/// Makes and checks signed links.
pub struct LinkSigner {
    keys: Arc<dyn LinkKeys>,
    api_url: String,
    ttl: Duration,
}

impl LinkSigner {
    /// Links to the API at `api_url`, valid for `ttl`, signed with `keys`.
    pub fn new(keys: Arc<dyn LinkKeys>, api_url: impl Into<String>, ttl: Duration) -> Self {
        LinkSigner {
            keys,
            api_url: api_url.into().trim_end_matches('/').to_owned(),
            ttl,
        }
    }

    /// The key set links are signed with (also the root of the secret sealer's key).
    pub fn keys(&self) -> Arc<dyn LinkKeys> {
        self.keys.clone()
    }

    /// How long a link lives.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A link that downloads `file` of export `id` (its first file when `None`) until
    /// `ttl` after `now`.
    pub async fn download_link(
        &self,
        id: &str,
        file: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<String, LinkError> {
        let keys = self.keys.keys(false).await.map_err(LinkError::Keys)?;
        let ttl = chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::days(7));
        let exp = (now + ttl).timestamp();
        let sig = signature(&keys.current, id, file, exp);
        let mut link = format!(
            "{}/v1/exports/{id}/download?exp={exp}&sig={sig}",
            self.api_url
        );
        if let Some(file) = file {
            link.push_str("&file=");
            link.push_str(&percent_encode(file));
        }
        Ok(link)
    }

    /// Checks a link's query for export `id` as of `now`. A signature that matches no key
    /// is checked once more against freshly read keys, so a key rotated moments ago is
    /// known before its links are refused.
    pub async fn verify(
        &self,
        id: &str,
        query: &LinkQuery<'_>,
        now: DateTime<Utc>,
    ) -> Result<(), LinkError> {
        let exp: i64 = query.exp.parse().map_err(|_| LinkError::Invalid)?;
        let given = base64_url_decode(query.sig).ok_or(LinkError::Invalid)?;
        let mut matched = false;
        for fresh in [false, true] {
            let keys = self.keys.keys(fresh).await.map_err(LinkError::Keys)?;
            matched = std::iter::once(&keys.current)
                .chain(&keys.previous)
                .any(|key| mac(key, id, query.file, exp).verify_slice(&given).is_ok());
            if matched {
                break;
            }
        }
        if !matched {
            return Err(LinkError::Invalid);
        }
        let expires = DateTime::from_timestamp(exp, 0).ok_or(LinkError::Invalid)?;
        if now > expires {
            return Err(LinkError::Expired(expires));
        }
        Ok(())
    }
}

fn mac(key: &[u8], id: &str, file: Option<&str>, exp: i64) -> Hmac<Sha256> {
    // HMAC takes keys of any length: this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    // Versioned and separated, so no two (id, file, exp) give the same message.
    mac.update(b"labelport-link-v1\n");
    mac.update(id.as_bytes());
    mac.update(b"\n");
    mac.update(file.unwrap_or("").as_bytes());
    mac.update(b"\n");
    mac.update(exp.to_string().as_bytes());
    mac
}

fn signature(key: &[u8], id: &str, file: Option<&str>, exp: i64) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(mac(key, id, file, exp).finalize().into_bytes())
}

fn base64_url_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()
}

/// Percent-encodes a file name for a query string (names are `[A-Za-z0-9._-]`, but a
/// link must stay a link whatever a future name holds).
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::ports::LinkKeySet;
    use std::sync::Mutex;

    /// Keys that can be rotated, as Secrets Manager's AWSCURRENT / AWSPREVIOUS are.
    struct Rotating(Mutex<LinkKeySet>);

    #[async_trait::async_trait]
    impl LinkKeys for Rotating {
        async fn keys(&self, _fresh: bool) -> Result<LinkKeySet, BoxError> {
            Ok(self.0.lock().unwrap().clone())
        }
    }

    impl Rotating {
        fn rotate(&self, new: &[u8]) {
            let mut keys = self.0.lock().unwrap();
            let old = std::mem::replace(&mut keys.current, new.to_vec());
            keys.previous = vec![old];
        }
    }

    const ID: &str = "0192f0c5-3b7a-7cc3-9a2e-1f2d3c4b5a69";

    fn signer() -> (Arc<Rotating>, LinkSigner) {
        let keys = Arc::new(Rotating(Mutex::new(LinkKeySet {
            current: b"first key, 32 bytes or more, ok".to_vec(),
            previous: vec![],
        })));
        let signer = LinkSigner::new(
            keys.clone(),
            "https://api.example.com/",
            Duration::from_secs(7 * 86400),
        );
        (keys, signer)
    }

    fn query(link: &str) -> (String, Option<String>, String, String) {
        let (path, query) = link.split_once('?').unwrap();
        let mut file = None;
        let (mut exp, mut sig) = (String::new(), String::new());
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap();
            match k {
                "file" => file = Some(v.to_owned()),
                "exp" => exp = v.to_owned(),
                "sig" => sig = v.to_owned(),
                other => panic!("unexpected {other}"),
            }
        }
        (path.to_owned(), file, exp, sig)
    }

    #[tokio::test]
    async fn a_link_verifies_until_it_expires_and_not_after() {
        let (_, signer) = signer();
        let now = Utc::now();
        let link = signer.download_link(ID, None, now).await.unwrap();
        let (path, file, exp, sig) = query(&link);
        assert_eq!(
            path,
            format!("https://api.example.com/v1/exports/{ID}/download")
        );
        assert_eq!(file, None);
        let q = LinkQuery {
            file: None,
            exp: &exp,
            sig: &sig,
        };
        signer.verify(ID, &q, now).await.unwrap();
        signer
            .verify(
                ID,
                &q,
                now + chrono::Duration::days(7) - chrono::Duration::seconds(1),
            )
            .await
            .unwrap();
        let late = now + chrono::Duration::days(7) + chrono::Duration::seconds(1);
        assert!(matches!(
            signer.verify(ID, &q, late).await,
            Err(LinkError::Expired(_))
        ));
    }

    #[tokio::test]
    async fn any_change_to_a_link_breaks_its_signature() {
        let (_, signer) = signer();
        let now = Utc::now();
        let link = signer
            .download_link(ID, Some("errors.ndjson"), now)
            .await
            .unwrap();
        let (_, file, exp, sig) = query(&link);
        assert_eq!(file.as_deref(), Some("errors.ndjson"));
        let later = (exp.parse::<i64>().unwrap() + 86400).to_string();
        let other_id = "0192f0c5-3b7a-7cc3-9a2e-1f2d3c4b5a70";
        let mut flipped = sig.clone().into_bytes();
        flipped[3] = if flipped[3] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        for (id, file, exp, sig) in [
            (other_id, Some("errors.ndjson"), exp.as_str(), sig.as_str()),
            (ID, None, exp.as_str(), sig.as_str()),
            (ID, Some("other.csv"), exp.as_str(), sig.as_str()),
            (ID, Some("errors.ndjson"), later.as_str(), sig.as_str()),
            (ID, Some("errors.ndjson"), exp.as_str(), flipped.as_str()),
            (
                ID,
                Some("errors.ndjson"),
                exp.as_str(),
                &sig[..sig.len() - 2],
            ),
            (ID, Some("errors.ndjson"), "soon", sig.as_str()),
        ] {
            let q = LinkQuery { file, exp, sig };
            assert!(
                matches!(signer.verify(id, &q, now).await, Err(LinkError::Invalid)),
                "{id} {q:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_rotated_key_keeps_the_links_already_sent_and_the_next_rotation_retires_them() {
        let (keys, signer) = signer();
        let now = Utc::now();
        let before = signer.download_link(ID, None, now).await.unwrap();
        let (_, _, exp, sig) = query(&before);
        let q = LinkQuery {
            file: None,
            exp: &exp,
            sig: &sig,
        };
        keys.rotate(b"second key, also 32 bytes long..");
        signer.verify(ID, &q, now).await.unwrap();
        let after = signer.download_link(ID, None, now).await.unwrap();
        assert_ne!(before, after, "new links use the new key");
        keys.rotate(b"third key, also 32 bytes long...");
        assert!(matches!(
            signer.verify(ID, &q, now).await,
            Err(LinkError::Invalid)
        ));
    }

    #[test]
    fn file_names_are_encoded_for_a_query() {
        assert_eq!(percent_encode("a b&c=d.csv"), "a%20b%26c%3Dd.csv");
        assert_eq!(percent_encode("demo-csv-1.csv.gz"), "demo-csv-1.csv.gz");
    }
}
