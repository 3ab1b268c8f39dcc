//! Local authentication: HS256 JWTs signed with a key kept in the data folder.
//! `labelport token --email E` prints one; `labelport serve` accepts them.

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use labelport_core::api::{AuthError, Authenticator};
use labelport_core::service::Caller;
use serde::{Deserialize, Serialize};
use std::path::Path;

const ISSUER: &str = "labelport-local";
const AUDIENCE: &str = "labelport";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    aud: String,
    sub: String,
    email: String,
    iat: i64,
    exp: i64,
}

/// Reads a 32-byte secret from `path`, writing a random one there on first use, readable
/// by its owner only (0600). A key that exists but cannot be read, or is too short, is
/// an error: silently making a new one would void every token and link made before.
pub fn load_or_create_key(path: &Path) -> std::io::Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(secret) if secret.len() >= 32 => Ok(secret),
        Ok(secret) => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "{} holds {} bytes, not a 32-byte key; remove it to make a new one (tokens and links made with the old key stop working)",
                path.display(),
                secret.len()
            ),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let secret: [u8; 32] = rand::random();
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(path)?;
            std::io::Write::write_all(&mut file, &secret)?;
            file.sync_all()?;
            Ok(secret.to_vec())
        }
        Err(e) => Err(std::io::Error::new(
            e.kind(),
            format!("reading the key {}: {e}", path.display()),
        )),
    }
}

/// Signs and verifies local tokens.
pub struct LocalJwt {
    secret: Vec<u8>,
}

impl LocalJwt {
    /// Loads the key at `path`, making a random one on first use.
    pub fn load_or_create(path: &Path) -> std::io::Result<Self> {
        Ok(LocalJwt {
            secret: load_or_create_key(path)?,
        })
    }

    /// A token for `email`, valid for `hours`.
    pub fn issue(&self, email: &str, hours: i64) -> Result<String, jsonwebtoken::errors::Error> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: email.into(),
            email: email.into(),
            iat: now,
            exp: now + hours * 3600,
        };
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&self.secret),
        )
    }
}

impl Authenticator for LocalJwt {
    fn authenticate(&self, request: &http::request::Parts) -> Result<Caller, AuthError> {
        let header = request
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                AuthError(
                    "an Authorization: Bearer token is required (labelport token --email ...)"
                        .into(),
                )
            })?;
        let token = header
            .strip_prefix("Bearer ")
            .ok_or_else(|| AuthError("the Authorization header must be `Bearer <token>`".into()))?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        let data = decode::<Claims>(token, &DecodingKey::from_secret(&self.secret), &validation)
            .map_err(|e| AuthError(format!("invalid token: {e}")))?;
        // Tokens are issued by whoever runs this instance, for addresses they chose.
        Ok(Caller::person(data.claims.email, true))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parts(auth: Option<&str>) -> http::request::Parts {
        let mut b = http::Request::builder();
        if let Some(a) = auth {
            b = b.header("authorization", a);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn issued_tokens_verify_and_forged_ones_do_not() {
        let dir = std::env::temp_dir().join(format!("labelport-jwt-{}", uuid::Uuid::new_v4()));
        let jwt = LocalJwt::load_or_create(&dir.join("key")).unwrap();
        let token = jwt.issue("manager@example.com", 1).unwrap();
        let caller = jwt
            .authenticate(&parts(Some(&format!("Bearer {token}"))))
            .unwrap();
        assert_eq!(caller.email, "manager@example.com");
        let other = LocalJwt {
            secret: vec![7; 32],
        };
        let forged = other.issue("manager@example.com", 1).unwrap();
        assert!(jwt
            .authenticate(&parts(Some(&format!("Bearer {forged}"))))
            .is_err());
        assert!(jwt.authenticate(&parts(None)).is_err());
        let expired = jwt.issue("manager@example.com", -1).unwrap();
        assert!(jwt
            .authenticate(&parts(Some(&format!("Bearer {expired}"))))
            .is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_new_key_is_private_and_a_bad_key_is_an_error_not_a_new_key() {
        let dir = std::env::temp_dir().join(format!("lp-key-{}", uuid::Uuid::new_v4()));
        let path = dir.join(".keys/jwt.key");
        let key = load_or_create_key(&path).unwrap();
        assert_eq!(key.len(), 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert_eq!(
            load_or_create_key(&path).unwrap(),
            key,
            "the same key next time"
        );
        std::fs::write(&path, b"short").unwrap();
        let e = load_or_create_key(&path).unwrap_err();
        assert!(e.to_string().contains("not a 32-byte key"), "{e}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"short",
            "the bad key is left as it is"
        );
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap(); // a key that cannot be read
        assert!(load_or_create_key(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
