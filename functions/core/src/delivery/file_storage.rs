//! FILE_STORAGE: the export stays in the platform bucket; the customer downloads it
//! through the API's signed link from the status.

use super::{
    only_fields, Announced, Announcement, Backends, DeliveryError, DeliveryMethod, Notice,
    Requested,
};
use crate::error::RequestError;
use async_trait::async_trait;
use serde_json::{json, Map, Value};

/// Download through the API.
pub struct FileStorage;

#[async_trait]
impl DeliveryMethod for FileStorage {
    fn name(&self) -> &'static str {
        "FILE_STORAGE"
    }

    fn summary(&self) -> &'static str {
        "download through the API's signed link (the default)"
    }

    fn fields(&self) -> Value {
        json!({ "properties": {} })
    }

    fn accept(
        &self,
        params: &Map<String, Value>,
        _requested: &Requested<'_>,
    ) -> Result<Map<String, Value>, RequestError> {
        only_fields(self, params)?;
        Ok(Map::new())
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
