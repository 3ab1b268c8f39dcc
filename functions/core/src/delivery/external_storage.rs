//! EXTERNAL_OBJECT_STORAGE: the export is written straight into the customer's bucket,
//! under their path (`exports/2026`; S3 has no folders to create). Only into a bucket
//! the project's settings list (`exports.destinations`, written by the platform), and
//! only as that destination says: by assuming the customer's role with the tenant's
//! external id, which the platform issues and a request never carries, or, without a
//! role, as the platform's functions, which the bucket's policy grants. Access is tried
//! when the export is asked for (a probe object written and deleted), so a wrong bucket
//! or a missing permission is a 400 at once, not a failed job an hour later. The
//! manifest is written last, next to the files: its arrival tells the customer's
//! automation the export is complete.

use super::{
    params, Announced, Announcement, Backends, DeliveryError, DeliveryMethod, Notice, Prepare,
    Requested,
};
use crate::error::RequestError;
use crate::ports::{BucketTarget, Condition, StoreError};
use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Delivery into the customer's own bucket.
pub struct ExternalStorage;

/// EXTERNAL_OBJECT_STORAGE's fields of `delivery`. `null` is the same as leaving a field
/// out; `bucket` is required, and `accept` says so in its own words.
// The longer descriptions are doc strings continued with `\`, not wrapped: the OpenAPI
// document shows each as one line, as it always has.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExternalStorageParams {
    /// A bucket the project's settings list as a destination.
    #[serde(default, deserialize_with = "params::string_or_null")]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = true, value_type = String, min_length = 3, max_length = 63, pattern = "^[a-z0-9][a-z0-9.-]*[a-z0-9]$")]
    pub bucket: Option<String>,
    #[doc = "The folder in it, created as needed (`exports/2026`); inside the destination's \
             path. Default: the destination's path."]
    #[serde(default, deserialize_with = "params::string_or_null")]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, max_length = 512, pattern = "^([A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*)?/?$")]
    pub path: Option<String>,
    /// The bucket's region (`eu-west-1`). Default: the platform's.
    #[serde(default, deserialize_with = "params::string_or_kept_null")]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, max_length = 32)]
    pub region: Option<Option<String>>,
    #[doc = "The customer's role to write with. Optional: the project's destination names \
             it, and a different one is refused. It is assumed with the tenant's external id \
             (`GET /v1/projects/{project}/delivery-identity`)."]
    #[serde(default, deserialize_with = "params::string_or_null")]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, pattern = "^arn:aws[a-z-]*:iam::[0-9]{12}:role/")]
    pub role_arn: Option<String>,
    /// An SSE-KMS key for the files (id, ARN or alias).
    #[serde(default, deserialize_with = "params::string_or_kept_null")]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, min_length = 1, max_length = 2048)]
    pub kms_key_id: Option<Option<String>>,
}

#[async_trait]
impl DeliveryMethod for ExternalStorage {
    type Params = ExternalStorageParams;

    /// The confused deputy: a request that could name the external id could have the
    /// platform assume another tenant's role.
    const REFUSED: &'static [(&'static str, &'static str)] = &[(
        "externalId",
        "is issued by the platform, never taken from a request: put the id GET /v1/projects/{project}/delivery-identity shows in your role's trust policy, and leave it out here",
    )];

    fn name(&self) -> &'static str {
        "EXTERNAL_OBJECT_STORAGE"
    }

    fn summary(&self) -> &'static str {
        "written into one of the project's customer buckets (`bucket`, `path`, `roleArn`, `kmsKeyId`, `region`), manifest last"
    }

    fn accept(
        &self,
        params: ExternalStorageParams,
        requested: &Requested<'_>,
    ) -> Result<ExternalStorageParams, RequestError> {
        let Some(bucket) = params.bucket.as_deref() else {
            return Err(RequestError::new("delivery.bucket", "is required"));
        };
        if let Some(why) = bucket_problem(bucket) {
            return Err(RequestError::new("delivery.bucket", why));
        }
        if requested.policy.own_buckets.iter().any(|b| b == bucket) {
            return Err(RequestError::new(
                "delivery.bucket",
                "is the platform's own bucket; name a bucket of yours",
            ));
        }
        let settings = &requested.project.exports;
        if !settings.destinations.iter().any(|d| d.bucket == bucket) {
            return Err(RequestError::new(
                "delivery.bucket",
                format!(
                    "`{bucket}` is not a destination of project {}: a project delivers only into the buckets its settings list (ask the platform to add yours)",
                    requested.project.id
                ),
            ));
        }
        let path = match params.path.as_deref() {
            Some(path) => path.trim_end_matches('/').to_owned(),
            // The destination's own folder, when there is one bucket entry to take it from.
            None => settings
                .destinations
                .iter()
                .find(|d| d.bucket == bucket)
                .map(|d| d.path.trim_matches('/').to_owned())
                .unwrap_or_default(),
        };
        if let Some(why) = path_problem(&path) {
            return Err(RequestError::new("delivery.path", why));
        }
        let Some(destination) = settings.destination(bucket, &path) else {
            let allowed: Vec<String> = settings
                .destinations
                .iter()
                .filter(|d| d.bucket == bucket)
                .map(|d| format!("`{}`", d.path))
                .collect();
            return Err(RequestError::new(
                "delivery.path",
                format!(
                    "`{path}` is outside the folders project {} may deliver to in {bucket}: {}",
                    requested.project.id,
                    allowed.join(", ")
                ),
            ));
        };
        if let Some(Some(region)) = &params.region {
            let ok = region.len() <= 32
                && region.split('-').count() >= 3
                && region
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !ok {
                return Err(RequestError::new(
                    "delivery.region",
                    "must be an AWS region such as eu-west-1",
                ));
            }
        }
        let role = match (params.role_arn.as_deref(), destination.role_arn.as_deref()) {
            (Some(asked), _) if !is_role_arn(asked) => {
                return Err(RequestError::new(
                    "delivery.roleArn",
                    "must be an IAM role ARN: arn:aws:iam::123456789012:role/name",
                ))
            }
            (Some(asked), Some(granted)) if asked != granted => {
                return Err(RequestError::new(
                    "delivery.roleArn",
                    format!("is not the role project {} delivers to {bucket} with", requested.project.id),
                ))
            }
            (Some(_), None) => {
                return Err(RequestError::new(
                    "delivery.roleArn",
                    format!("project {} delivers to {bucket} through the bucket's policy, without a role; leave roleArn out", requested.project.id),
                ))
            }
            (_, granted) => granted.map(str::to_owned),
        };
        if let Some(Some(key)) = &params.kms_key_id {
            let ok = !key.is_empty()
                && key.len() <= 2048
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b":/_-.".contains(&b));
            if !ok {
                return Err(RequestError::new(
                    "delivery.kmsKeyId",
                    "must be a KMS key id, key ARN, alias name or alias ARN",
                ));
            }
        }
        Ok(ExternalStorageParams {
            path: Some(path),
            role_arn: role,
            ..params
        })
    }

    async fn prepare(
        &self,
        mut params: Map<String, Value>,
        prepare: &Prepare<'_>,
    ) -> Result<Map<String, Value>, RequestError> {
        if params.contains_key("roleArn") {
            let external_id = prepare.external_id().await.map_err(|why| {
                RequestError::new("delivery.roleArn", format!("cannot be assumed: {why}"))
            })?;
            params.insert("externalId".into(), Value::from(external_id));
        }
        let Some((target, path)) = self.target(&params) else {
            return Ok(params);
        };
        let place = format!("s3://{}/{path}", target.bucket);
        let store = prepare.buckets.open(&target).await.map_err(|e| {
            RequestError::new(
                "delivery.roleArn",
                format!("{place} could not be opened: {}", reason(e.as_ref())),
            )
        })?;
        let probe = if path.is_empty() {
            super::ACCESS_PROBE.to_owned()
        } else {
            format!("{path}/{}", super::ACCESS_PROBE)
        };
        let written = store
            .put(
                &probe,
                Bytes::from_static(
                    b"labelport checks it may write here; this file can be deleted\n",
                ),
                "text/plain",
                Condition::None,
            )
            .await;
        if let Err(e) = written {
            let field = if target.role_arn.is_some() {
                "delivery.roleArn"
            } else {
                "delivery.bucket"
            };
            return Err(RequestError::new(
                field,
                format!("labelport may not write to {place}: {}", reason(&e)),
            ));
        }
        // The probe is only a check; a role without DeleteObject leaves it behind.
        let _ = store.delete(&probe).await;
        Ok(params)
    }

    fn target(&self, params: &Map<String, Value>) -> Option<(BucketTarget, String)> {
        let text = |name: &str| params.get(name).and_then(Value::as_str).map(str::to_owned);
        let path = text("path").unwrap_or_default();
        Some((
            BucketTarget {
                bucket: text("bucket")?,
                path: path.clone(),
                region: text("region"),
                role_arn: text("roleArn"),
                external_id: text("externalId"),
                kms_key_id: text("kmsKeyId"),
            },
            path,
        ))
    }

    async fn announce(
        &self,
        _notice: &Notice<'_>,
        _params: &Map<String, Value>,
        _backends: &Backends,
    ) -> Result<Announcement, DeliveryError> {
        // The files and the manifest in the customer's bucket are the delivery.
        Ok(Announced::Stored.into())
    }
}

/// A short reason from a storage error: its code when the chain carries a known one.
fn reason(e: &(dyn std::error::Error + 'static)) -> String {
    let text = crate::error::chain(e);
    for (code, said) in [
        ("NoSuchBucket", "the bucket does not exist"),
        (
            "AccessDenied",
            "access denied (check the role's or the bucket's policy)",
        ),
        ("AllAccessDisabled", "access to the bucket is disabled"),
        (
            "PermanentRedirect",
            "the bucket is in another region: give `region`",
        ),
        (
            "AuthorizationHeaderMalformed",
            "the bucket is in another region: give `region`",
        ),
        ("KMS", "the KMS key refused (check the key policy)"),
        (
            "AssumeRole",
            "the role could not be assumed (check its trust policy and the external id)",
        ),
    ] {
        if text.contains(code) {
            return said.to_owned();
        }
    }
    if let Some(StoreError::NotFound(_)) = e.downcast_ref::<StoreError>() {
        return "the bucket does not exist".into();
    }
    "the write was refused".into()
}

/// Why a name is not a valid S3 bucket name, if it is not.
fn bucket_problem(name: &str) -> Option<&'static str> {
    let bytes = name.as_bytes();
    if !(3..=63).contains(&bytes.len()) {
        return Some("must be 3 to 63 characters");
    }
    if !bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'.' || *b == b'-')
    {
        return Some("may hold only lower-case letters, digits, '.' and '-'");
    }
    let edge = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !edge(bytes[0]) || !edge(bytes[bytes.len() - 1]) {
        return Some("must begin and end with a letter or digit");
    }
    if name.contains("..") || name.contains(".-") || name.contains("-.") {
        return Some("is not a valid bucket name");
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return Some("must not be an IP address");
    }
    if name.starts_with("xn--") || name.ends_with("-s3alias") || name.ends_with("--ol-s3") {
        return Some("uses a prefix or suffix S3 reserves");
    }
    None
}

/// Why a path is not one the export may be written under, if it is not.
fn path_problem(path: &str) -> Option<String> {
    if path.is_empty() {
        return None;
    }
    if path.len() > 512 {
        return Some("must be at most 512 characters".into());
    }
    if path.starts_with('/') {
        return Some("must not start with '/': `exports/2026`, not `/exports/2026`".into());
    }
    for segment in path.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Some(format!("`{path}` has an empty, `.` or `..` folder"));
        }
        if let Some(c) = segment
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "!-_.*'()".contains(*c)))
        {
            return Some(format!(
                "may hold letters, digits, '/' and !-_.*'() only, not {c:?}"
            ));
        }
    }
    None
}

fn is_role_arn(arn: &str) -> bool {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("iam"), Some(""), Some(account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    matches!(partition, "aws" | "aws-cn" | "aws-us-gov")
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && resource.strip_prefix("role/").is_some_and(|name| {
            (1..=512).contains(&name.len())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+=,.@/-_".contains(&b))
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::delivery::{DeliveryPolicy, RegisteredMethod};
    use labelport_model::Destination;
    use serde_json::json;

    const ROLE: &str = "arn:aws:iam::123456789012:role/labelport-writer";

    fn check(params: Value) -> Result<Map<String, Value>, RequestError> {
        let mut project = labelport_generate::project(&labelport_generate::Config::new(
            "p1",
            labelport_model::Mode::Classification,
            1,
            1,
        ));
        project.exports.destinations = vec![
            Destination {
                bucket: "acme-ml".into(),
                path: "exports".into(),
                role_arn: Some(ROLE.into()),
            },
            Destination {
                bucket: "acme-drop".into(),
                path: String::new(),
                role_arn: None,
            },
        ];
        let policy = DeliveryPolicy {
            own_buckets: vec!["stack-platform-1".into()],
            ..DeliveryPolicy::default()
        };
        RegisteredMethod::accept(
            &ExternalStorage,
            params.as_object().unwrap(),
            &Requested {
                project: &project,
                requester: "m@x.io",
                policy: &policy,
            },
        )
    }

    #[test]
    fn bucket_path_role_and_key_are_checked_by_field() {
        for (params, field, why) in [
            (json!({}), "delivery.bucket", "is required"),
            (
                json!({"bucket": "My_Bucket"}),
                "delivery.bucket",
                "lower-case",
            ),
            (json!({"bucket": "ab"}), "delivery.bucket", "3 to 63"),
            (
                json!({"bucket": "192.168.1.1"}),
                "delivery.bucket",
                "IP address",
            ),
            (
                json!({"bucket": "stack-platform-1"}),
                "delivery.bucket",
                "platform's own",
            ),
            (
                json!({"bucket": "globex-ml"}),
                "delivery.bucket",
                "not a destination of project p1",
            ),
            (
                json!({"bucket": "acme-ml", "path": "/exports"}),
                "delivery.path",
                "must not start",
            ),
            (
                json!({"bucket": "acme-ml", "path": "exports/../secrets"}),
                "delivery.path",
                "`..`",
            ),
            (
                json!({"bucket": "acme-ml", "path": "exports/a b"}),
                "delivery.path",
                "not ' '",
            ),
            (
                json!({"bucket": "acme-ml", "path": "ingest"}),
                "delivery.path",
                "outside the folders",
            ),
            (
                json!({"bucket": "acme-ml", "path": "exportsx/2026"}),
                "delivery.path",
                "outside the folders",
            ),
            (
                json!({"bucket": "acme-ml", "roleArn": ROLE, "externalId": "theirs"}),
                "delivery.externalId",
                "issued by the platform",
            ),
            (
                json!({"bucket": "acme-ml", "roleArn": "arn:aws:iam::1234:role/x"}),
                "delivery.roleArn",
                "IAM role ARN",
            ),
            (
                json!({"bucket": "acme-ml", "roleArn": "arn:aws:iam::999999999999:role/other"}),
                "delivery.roleArn",
                "not the role",
            ),
            (
                json!({"bucket": "acme-drop", "roleArn": ROLE}),
                "delivery.roleArn",
                "without a role",
            ),
            (
                json!({"bucket": "acme-ml", "kmsKeyId": "key id"}),
                "delivery.kmsKeyId",
                "KMS key",
            ),
            (
                json!({"bucket": "acme-ml", "region": "Mars"}),
                "delivery.region",
                "AWS region",
            ),
            (
                json!({"bucket": "acme-ml", "acl": "public-read"}),
                "delivery.acl",
                "unknown field `acl`: EXTERNAL_OBJECT_STORAGE takes bucket, kmsKeyId, path, region, roleArn",
            ),
            (
                json!({"bucket": "acme-ml", "region": 5}),
                "delivery.region",
                "must be a string",
            ),
            (json!({"bucket": null}), "delivery.bucket", "is required"),
        ] {
            let e = check(params.clone()).unwrap_err();
            assert_eq!(e.field, field, "{params}");
            assert!(e.message.contains(why), "{params}: {}", e.message);
        }
        let ok = check(json!({
            "bucket": "acme-ml", "path": "exports/2026/", "roleArn": ROLE,
            "kmsKeyId": "alias/exports", "region": "eu-west-1"
        }))
        .unwrap();
        assert_eq!(ok["path"], "exports/2026", "a trailing slash is dropped");
        assert!(ok.get("externalId").is_none(), "prepare adds the tenant's");
        let defaulted = check(json!({"bucket": "acme-ml"})).unwrap();
        assert_eq!(
            (defaulted["path"].as_str(), defaulted["roleArn"].as_str()),
            (Some("exports"), Some(ROLE)),
            "the destination's folder and role"
        );
        let by_policy = check(json!({"bucket": "acme-drop", "path": "in"})).unwrap();
        assert!(by_policy.get("roleArn").is_none(), "{by_policy:?}");
        // `null` is leaving a field out; the job keeps a region or key given so.
        let nulls = check(json!({
            "bucket": "acme-drop", "path": null, "roleArn": null, "region": null, "kmsKeyId": null
        }))
        .unwrap();
        assert_eq!(
            Value::from(nulls),
            json!({"bucket": "acme-drop", "path": "", "region": null, "kmsKeyId": null})
        );
    }
}
