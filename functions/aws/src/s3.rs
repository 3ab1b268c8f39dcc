//! The S3 store and presigner: one bucket, through the AWS SDK.

use async_trait::async_trait;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use labelport_core::ports::{
    BoxError, Condition, Object, ObjectInfo, ObjectStore, Presigner, StoreError, Upload,
};
use std::time::Duration;
use tokio::io::AsyncRead;

/// One S3 bucket as an [`ObjectStore`] and a [`Presigner`].
#[derive(Clone)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
    kms_key_id: Option<String>,
}

impl S3Store {
    /// Uses `bucket` through `client`.
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        S3Store {
            client,
            bucket: bucket.into(),
            kms_key_id: None,
        }
    }

    /// Encrypts what it writes with this KMS key (SSE-KMS), as a customer's bucket may
    /// require.
    pub fn with_kms_key(mut self, kms_key_id: Option<String>) -> Self {
        self.kms_key_id = kms_key_id;
        self
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }
}

fn backend<E>(operation: &'static str, key: &str, err: SdkError<E>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = err.code().map(str::to_owned);
    let status = err.raw_response().map(|r| r.status().as_u16());
    match (code.as_deref(), status) {
        (Some("NoSuchKey" | "NotFound"), _) | (_, Some(404)) => {
            StoreError::NotFound(key.to_owned())
        }
        (Some("PreconditionFailed" | "ConditionalRequestConflict"), _) | (_, Some(412)) => {
            StoreError::PreconditionFailed(key.to_owned())
        }
        _ => StoreError::Backend {
            operation,
            key: key.to_owned(),
            source: aws_sdk_s3::error::DisplayErrorContext(err)
                .to_string()
                .into(),
        },
    }
}

/// A listed object as the port describes it (S3 may list one without a key).
fn object_info(object: &aws_sdk_s3::types::Object) -> Option<ObjectInfo> {
    Some(ObjectInfo {
        key: object.key()?.to_owned(),
        size: object.size().unwrap_or(0).max(0) as u64,
    })
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn get(&self, key: &str) -> Result<Object, StoreError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| backend("get", key, e))?;
        let etag = out.e_tag().unwrap_or_default().to_owned();
        let metadata = out
            .metadata()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k.to_lowercase(), v))
            .collect();
        let body = out.body.collect().await.map_err(|e| StoreError::Backend {
            operation: "get",
            key: key.to_owned(),
            source: Box::new(e),
        })?;
        Ok(Object {
            body: body.into_bytes(),
            etag,
            metadata,
        })
    }

    async fn put(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
        condition: Condition,
    ) -> Result<String, StoreError> {
        let mut put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body));
        if let Some(key_id) = &self.kms_key_id {
            put = put
                .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::AwsKms)
                .ssekms_key_id(key_id);
        }
        put = match condition {
            Condition::None => put,
            Condition::IfAbsent => put.if_none_match("*"),
            Condition::IfMatch(etag) => put.if_match(etag),
        };
        let out = put.send().await.map_err(|e| backend("put", key, e))?;
        Ok(out.e_tag().unwrap_or_default().to_owned())
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        // S3 answers 204 for a key that is not there.
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| backend("delete", key, e))?;
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        let mut found = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| backend("list", prefix, e))?;
            found.extend(page.contents().iter().filter_map(object_info));
        }
        found.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(found)
    }

    async fn list_page(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        max: usize,
    ) -> Result<Vec<ObjectInfo>, StoreError> {
        let mut list = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .max_keys(i32::try_from(max.min(1000)).unwrap_or(1000));
        if let Some(after) = start_after {
            list = list.start_after(after);
        }
        let page = list.send().await.map_err(|e| backend("list", prefix, e))?;
        Ok(page.contents().iter().filter_map(object_info).collect())
    }

    async fn open(&self, key: &str) -> Result<Box<dyn AsyncRead + Send + Unpin>, StoreError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| backend("get", key, e))?;
        Ok(Box::new(out.body.into_async_read()))
    }

    async fn create_upload(
        &self,
        key: &str,
        content_type: &str,
    ) -> Result<Box<dyn Upload>, StoreError> {
        let mut create = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type);
        if let Some(key_id) = &self.kms_key_id {
            create = create
                .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::AwsKms)
                .ssekms_key_id(key_id);
        }
        let out = create
            .send()
            .await
            .map_err(|e| backend("create upload", key, e))?;
        let upload_id = out.upload_id().unwrap_or_default().to_owned();
        Ok(Box::new(S3Upload {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            upload_id,
            parts: Vec::new(),
        }))
    }
}

struct S3Upload {
    client: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    upload_id: String,
    parts: Vec<CompletedPart>,
}

#[async_trait]
impl Upload for S3Upload {
    async fn put_part(&mut self, part: Bytes) -> Result<(), StoreError> {
        let number = self.parts.len() as i32 + 1;
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .part_number(number)
            .body(ByteStream::from(part))
            .send()
            .await
            .map_err(|e| backend("upload part", &self.key, e))?;
        self.parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag().map(str::to_owned))
                .build(),
        );
        Ok(())
    }

    async fn complete(self: Box<Self>) -> Result<(), StoreError> {
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(self.parts.clone()))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| backend("complete upload", &self.key, e))?;
        Ok(())
    }

    async fn abort(self: Box<Self>) -> Result<(), StoreError> {
        self.client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .send()
            .await
            .map_err(|e| backend("abort upload", &self.key, e))?;
        Ok(())
    }
}

#[async_trait]
impl Presigner for S3Store {
    async fn download_url(
        &self,
        key: &str,
        filename: &str,
        expires_in: Duration,
    ) -> Result<String, BoxError> {
        let config = PresigningConfig::expires_in(expires_in)?;
        let disposition = labelport_core::ports::attachment(filename);
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .response_content_disposition(disposition)
            .presigned(config)
            .await?;
        Ok(request.uri().to_owned())
    }
}

/// AWS answers the emulator does not give: a 403 for a missing key when the role lacks
/// `s3:ListBucket`, server errors, and the conditional-write conflict code. Mocked with
/// aws-smithy-mocks at the HTTP layer, so the SDK's own error parsing runs.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use aws_sdk_s3::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;

    fn s3_error(status: u16, code: &str) -> HttpResponse {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{code}</Message><RequestId>r</RequestId></Error>"
        );
        HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::from(body))
    }

    async fn get_error(status: u16, code: &'static str) -> StoreError {
        let rule = mock!(Client::get_object).then_http_response(move || s3_error(status, code));
        let client = mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&rule]);
        S3Store::new(client, "b")
            .get("jobs/x.json")
            .await
            .unwrap_err()
    }

    #[tokio::test]
    async fn missing_keys_are_not_found_and_access_denied_is_not() {
        assert!(
            matches!(get_error(404, "NoSuchKey").await, StoreError::NotFound(k) if k == "jobs/x.json")
        );
        // Without s3:ListBucket, S3 answers 403 for a missing key; that must stay an error,
        // not become "no such export" (template.yaml grants ListBucket to the API for this).
        let denied = get_error(403, "AccessDenied").await;
        assert!(
            matches!(
                denied,
                StoreError::Backend {
                    operation: "get",
                    ..
                }
            ),
            "{denied:?}"
        );
        assert!(
            labelport_core::error::chain(&denied).contains("AccessDenied"),
            "{denied:?}"
        );
    }

    #[tokio::test]
    async fn server_errors_keep_their_code_for_the_job_record() {
        let err = get_error(500, "InternalError").await;
        assert!(matches!(err, StoreError::Backend { .. }), "{err:?}");
        assert!(
            labelport_core::error::chain(&err).contains("InternalError"),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn conditional_write_conflicts_are_precondition_failures() {
        for (status, code) in [
            (412, "PreconditionFailed"),
            (409, "ConditionalRequestConflict"),
        ] {
            let rule = mock!(Client::put_object).then_http_response(move || s3_error(status, code));
            let client = mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&rule]);
            let err = S3Store::new(client, "b")
                .put(
                    "jobs/x.json",
                    Bytes::from_static(b"{}"),
                    "application/json",
                    Condition::IfMatch("\"e\"".into()),
                )
                .await
                .unwrap_err();
            assert!(
                matches!(err, StoreError::PreconditionFailed(_)),
                "{status}: {err:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_failed_part_is_a_storage_error_naming_the_operation() {
        let create = mock!(Client::create_multipart_upload).then_output(|| {
            aws_sdk_s3::operation::create_multipart_upload::CreateMultipartUploadOutput::builder()
                .upload_id("u1")
                .build()
        });
        let part = mock!(Client::upload_part).then_http_response(|| s3_error(503, "SlowDown"));
        let client = mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&create, &part]);
        let mut upload = S3Store::new(client, "b")
            .create_upload("exports/p/x.csv", "text/csv")
            .await
            .unwrap();
        let err = upload
            .put_part(Bytes::from_static(b"data"))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Backend {
                    operation: "upload part",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            labelport_core::error::chain(&err).contains("SlowDown"),
            "{err:?}"
        );
    }
}
