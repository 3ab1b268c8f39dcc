//! Customers' buckets (EXTERNAL_OBJECT_STORAGE): an S3 client per target, with the
//! customer's role assumed through STS (with their external id) when the request names
//! one, else the function's own role, which their bucket policy grants; in the bucket's
//! region when it is not the platform's, and SSE-KMS with their key when they give one.

use crate::S3Store;
use async_trait::async_trait;
use labelport_core::ports::{BoxError, BucketTarget, Buckets, ObjectStore};
use std::sync::Arc;

/// Opens customers' buckets from the function's AWS configuration.
pub struct CustomerBuckets {
    base: aws_config::SdkConfig,
}

impl CustomerBuckets {
    /// Buckets opened with `base`'s credentials, or roles assumed with them.
    pub fn new(base: aws_config::SdkConfig) -> Self {
        CustomerBuckets { base }
    }
}

#[async_trait]
impl Buckets for CustomerBuckets {
    async fn open(&self, target: &BucketTarget) -> Result<Arc<dyn ObjectStore>, BoxError> {
        let path_style = crate::config::optional("S3_FORCE_PATH_STYLE", "false") == "true";
        let mut config = aws_sdk_s3::config::Builder::from(&self.base).force_path_style(path_style);
        if let Some(region) = &target.region {
            config = config.region(aws_sdk_s3::config::Region::new(region.clone()));
        }
        if let Some(role) = &target.role_arn {
            // Temporary credentials for this role only, refreshed by the provider as they
            // expire during a long export, and narrowed by a session policy to writing
            // under the export's folder, whatever else the customer's role may do.
            let mut provider = aws_config::sts::AssumeRoleProvider::builder(role)
                .session_name("labelport-export")
                .policy(session_policy(target, role))
                .configure(&self.base);
            if let Some(external_id) = &target.external_id {
                provider = provider.external_id(external_id);
            }
            config = config.credentials_provider(provider.build().await);
        }
        let client = aws_sdk_s3::Client::from_conf(config.build());
        Ok(Arc::new(
            S3Store::new(client, &target.bucket).with_kms_key(target.kms_key_id.clone()),
        ))
    }
}

/// The session policy of an assumed customer role: objects under the target's folder may
/// be written and their uploads aborted, the access probe deleted, and KMS keys used
/// through S3; nothing else, in any bucket.
fn session_policy(target: &BucketTarget, role_arn: &str) -> String {
    // The role's partition (aws, aws-cn, aws-us-gov) is the bucket's.
    let partition = role_arn.split(':').nth(1).unwrap_or("aws");
    let folder = match target.path.trim_matches('/') {
        "" => format!("arn:{partition}:s3:::{}/", target.bucket),
        path => format!("arn:{partition}:s3:::{}/{path}/", target.bucket),
    };
    let mut statements = vec![
        serde_json::json!({
            "Sid": "WriteTheExport",
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
            "Resource": format!("{folder}*"),
        }),
        serde_json::json!({
            "Sid": "RemoveTheAccessProbe",
            "Effect": "Allow",
            "Action": "s3:DeleteObject",
            "Resource": format!("{folder}{}", labelport_core::delivery::ACCESS_PROBE),
        }),
    ];
    // With or without `kmsKeyId`: a bucket whose default encryption is SSE-KMS needs it
    // too. The customer's role decides which keys; this only keeps their use to S3.
    statements.push(serde_json::json!({
        "Sid": "EncryptThroughS3",
        "Effect": "Allow",
        "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
        "Resource": "*",
        "Condition": { "StringLike": { "kms:ViaService": "s3.*" } },
    }));
    serde_json::json!({ "Version": "2012-10-17", "Statement": statements }).to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn target(path: &str, kms: bool) -> BucketTarget {
        BucketTarget {
            bucket: "acme-ml".into(),
            path: path.into(),
            region: None,
            role_arn: Some("arn:aws:iam::210987654321:role/writer".into()),
            external_id: Some("labelport-0123".into()),
            kms_key_id: kms.then(|| "alias/exports".into()),
        }
    }

    #[test]
    fn an_assumed_role_may_write_only_under_the_exports_folder() {
        let policy: serde_json::Value = serde_json::from_str(&session_policy(
            &target("exports/2026", false),
            "arn:aws:iam::210987654321:role/writer",
        ))
        .unwrap();
        let statements = policy["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), 3, "{policy}");
        assert_eq!(
            statements[0]["Action"],
            serde_json::json!(["s3:PutObject", "s3:AbortMultipartUpload"])
        );
        assert_eq!(
            statements[0]["Resource"],
            "arn:aws:s3:::acme-ml/exports/2026/*"
        );
        assert_eq!(
            statements[1]["Resource"],
            "arn:aws:s3:::acme-ml/exports/2026/.labelport-access-check"
        );
        assert!(!policy.to_string().contains("s3:GetObject"));
        assert!(!policy.to_string().contains("s3:*"));

        let top = session_policy(&target("", true), "arn:aws-cn:iam::210987654321:role/w");
        let top: serde_json::Value = serde_json::from_str(&top).unwrap();
        assert_eq!(top["Statement"][0]["Resource"], "arn:aws-cn:s3:::acme-ml/*");
        assert_eq!(top["Statement"][2]["Action"][0], "kms:GenerateDataKey");
        // Session policies are at most 2,048 characters, packed.
        assert!(
            session_policy(&target(&"a/".repeat(250), true), "arn:aws:iam::1:role/w").len() < 2048
        );
    }
}
