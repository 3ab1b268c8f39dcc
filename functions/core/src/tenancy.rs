//! Tenants: the customers one deployment serves. A project names its tenant in its
//! settings (`exports.tenant`, written by the platform); each tenant has an external id
//! for the roles its customers create in their accounts. The id is derived, never taken
//! from a request: a keyed hash of the tenant under a key only the deployment holds, so
//! it is stable, differs per tenant, and cannot be guessed from the tenant's name. That
//! is what keeps one customer from having the platform assume another's role (the
//! confused deputy).

use crate::ports::{BoxError, LinkKeys};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::Arc;

/// Issues tenants' external ids.
pub struct ExternalIds {
    keys: Arc<dyn LinkKeys>,
}

impl ExternalIds {
    /// Ids keyed by the current key of `keys`. The key must never rotate: a new key gives
    /// every tenant a new id, and every customer's trust policy stops matching.
    pub fn new(keys: Arc<dyn LinkKeys>) -> Self {
        ExternalIds { keys }
    }

    /// The external id of `tenant`: `labelport-` and 32 hex digits.
    pub async fn of(&self, tenant: &str) -> Result<String, BoxError> {
        let keys = self.keys.keys(false).await?;
        Ok(external_id(&keys.current, tenant))
    }
}

fn external_id(key: &[u8], tenant: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(b"labelport-external-id-v1\n");
    mac.update(tenant.as_bytes());
    let digest = mac.finalize().into_bytes();
    format!("labelport-{}", hex::encode(&digest[..16]))
}

#[cfg(test)]
mod tests {
    use super::external_id;

    #[test]
    fn ids_are_stable_per_tenant_and_differ_between_tenants_and_keys() {
        let acme = external_id(b"key-1", "acme");
        assert_eq!(acme, external_id(b"key-1", "acme"));
        assert_ne!(acme, external_id(b"key-1", "globex"));
        assert_ne!(acme, external_id(b"key-2", "acme"));
        assert!(acme.starts_with("labelport-") && acme.len() == 42, "{acme}");
        // IAM's rule for an external id: 2 to 1224 of these characters.
        assert!(acme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@:/-_".contains(&b)));
    }
}
