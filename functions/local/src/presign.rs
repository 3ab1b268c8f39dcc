//! Local download URLs: `/local/files/{key}?expires=..&signature=..`, signed with
//! HMAC-SHA256 and served by `labelport serve`, so a download redirect works on a
//! laptop the way an S3 presigned URL does on AWS.

use async_trait::async_trait;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use labelport_core::ports::{BoxError, Presigner};
use serde::Deserialize;
use sha2::Sha256;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Signs and checks local download URLs.
pub struct LocalPresigner {
    base_url: String,
    secret: Vec<u8>,
    root: PathBuf,
}

impl LocalPresigner {
    /// URLs under `base_url`, for files under `root`.
    pub fn new(base_url: impl Into<String>, secret: Vec<u8>, root: impl Into<PathBuf>) -> Self {
        LocalPresigner {
            base_url: base_url.into(),
            secret,
            root: root.into(),
        }
    }

    fn signature(&self, key: &str, filename: &str, expires: i64) -> String {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.secret).unwrap_or_else(|_| unreachable!());
        mac.update(format!("{key}\n{filename}\n{expires}").as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    fn verify(&self, key: &str, filename: &str, expires: i64, signature: &str) -> bool {
        let Ok(given) = hex::decode(signature) else {
            return false;
        };
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.secret).unwrap_or_else(|_| unreachable!());
        mac.update(format!("{key}\n{filename}\n{expires}").as_bytes());
        expires >= chrono::Utc::now().timestamp() && mac.verify_slice(&given).is_ok()
    }
}

#[async_trait]
impl Presigner for LocalPresigner {
    async fn download_url(
        &self,
        key: &str,
        filename: &str,
        expires_in: Duration,
    ) -> Result<String, BoxError> {
        let expires = chrono::Utc::now().timestamp() + expires_in.as_secs() as i64;
        let signature = self.signature(key, filename, expires);
        Ok(format!(
            "{}/local/files/{key}?filename={filename}&expires={expires}&signature={signature}",
            self.base_url.trim_end_matches('/')
        ))
    }
}

/// The query of a local download URL.
#[derive(Deserialize)]
pub struct Signed {
    filename: String,
    expires: i64,
    signature: String,
}

/// Serves a signed local download, streaming the file.
pub async fn serve_file(
    State(presigner): State<Arc<LocalPresigner>>,
    Path(key): Path<String>,
    Query(signed): Query<Signed>,
) -> Response {
    if !presigner.verify(&key, &signed.filename, signed.expires, &signed.signature) {
        return (StatusCode::FORBIDDEN, "invalid or expired download link").into_response();
    }
    let store = crate::store::FsStore::new(&presigner.root);
    let Ok(path) = store.path(&key) else {
        return (StatusCode::BAD_REQUEST, "invalid key").into_response();
    };
    match tokio::fs::File::open(path).await {
        Ok(file) => {
            let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(file));
            let disposition = labelport_core::ports::attachment(&signed.filename);
            ([(header::CONTENT_DISPOSITION, disposition)], body).into_response()
        }
        Err(_) => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_bind_key_name_and_expiry() {
        let p = LocalPresigner::new("http://127.0.0.1:8080", vec![1; 32], "/tmp");
        let far = chrono::Utc::now().timestamp() + 60;
        let sig = p.signature("exports/a.csv", "a.csv", far);
        assert!(p.verify("exports/a.csv", "a.csv", far, &sig));
        assert!(!p.verify("exports/b.csv", "a.csv", far, &sig));
        assert!(!p.verify("exports/a.csv", "a.csv", far + 1, &sig));
        let past = chrono::Utc::now().timestamp() - 1;
        let old = p.signature("exports/a.csv", "a.csv", past);
        assert!(!p.verify("exports/a.csv", "a.csv", past, &old));
    }
}
