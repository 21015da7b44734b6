//! Reading a request: its body within the limit, JSON and query strings, and the ids in its path.

use axum::body::{Body, Bytes};
use config::limits::REQUEST_BODY_BYTES_MAX;
use ledger::TaskId;

use crate::api::ApiError;

/// Reads the body up to the limit; a larger one is refused whole with 413.
pub(crate) async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, REQUEST_BODY_BYTES_MAX)
        .await
        .map_err(|_| ApiError::TooLarge(format!("the request body exceeds {REQUEST_BODY_BYTES_MAX} bytes")))
}

pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::Invalid { code: "invalid_json", message: e.to_string() })
}

/// The query of a read that takes nothing but its consistency (`crate::read_path`).
#[derive(Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ConsistencyQuery {
    #[schemars(schema_with = "crate::api::schema::optional_consistency")]
    pub consistency: Option<String>,
}

pub(crate) fn parse_task_id(text: &str) -> Result<TaskId, ApiError> {
    text.parse::<u64>()
        .ok()
        .filter(|id| *id > 0)
        .map(TaskId)
        .ok_or_else(|| ApiError::Invalid { code: "invalid_task_id", message: format!("{text:?} is not a task id") })
}

pub(crate) fn parse_query<T: serde::de::DeserializeOwned + Default>(raw: Option<String>) -> Result<T, ApiError> {
    match raw {
        None => Ok(T::default()),
        Some(raw) => serde_urlencoded::from_str(&raw)
            .map_err(|e| ApiError::Invalid { code: "invalid_query", message: e.to_string() }),
    }
}
