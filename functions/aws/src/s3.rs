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
}

impl S3Store {
    /// Uses `bucket` through `client`.
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        S3Store {
            client,
            bucket: bucket.into(),
        }
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
        put = match condition {
            Condition::None => put,
            Condition::IfAbsent => put.if_none_match("*"),
            Condition::IfMatch(etag) => put.if_match(etag),
        };
        let out = put.send().await.map_err(|e| backend("put", key, e))?;
        Ok(out.e_tag().unwrap_or_default().to_owned())
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
            for object in page.contents() {
                if let Some(key) = object.key() {
                    found.push(ObjectInfo {
                        key: key.to_owned(),
                        size: object.size().unwrap_or(0).max(0) as u64,
                    });
                }
            }
        }
        found.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(found)
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
        content_encoding: Option<&str>,
    ) -> Result<Box<dyn Upload>, StoreError> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .set_content_encoding(content_encoding.map(str::to_owned))
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
