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
            // expire during a long export.
            let mut provider = aws_config::sts::AssumeRoleProvider::builder(role)
                .session_name("labelport-export")
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
