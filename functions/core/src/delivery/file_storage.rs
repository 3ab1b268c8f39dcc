//! FILE_STORAGE: the export stays in the platform bucket; the customer downloads it
//! through the API's signed link from the status.

use super::{Announced, Announcement, Backends, DeliveryError, DeliveryMethod, Notice, Requested};
use crate::error::RequestError;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Download through the API.
pub struct FileStorage;

/// FILE_STORAGE takes no fields.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FileStorageParams {}

#[async_trait]
impl DeliveryMethod for FileStorage {
    type Params = FileStorageParams;

    fn name(&self) -> &'static str {
        "FILE_STORAGE"
    }

    fn summary(&self) -> &'static str {
        "download through the API's signed link (the default)"
    }

    fn accept(
        &self,
        params: FileStorageParams,
        _requested: &Requested<'_>,
    ) -> Result<FileStorageParams, RequestError> {
        Ok(params)
    }

    async fn announce(
        &self,
        _notice: &Notice<'_>,
        _params: &Map<String, Value>,
        _backends: &Backends,
    ) -> Result<Announcement, DeliveryError> {
        Ok(Announced::Nothing.into())
    }
}
