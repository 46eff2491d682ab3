//! One module per API family, each with its `router()`.

pub mod alerts;
pub mod clusters;
pub mod commands;
pub mod dbfs;
pub mod files;
pub mod jobs;
pub mod legacy_groups;
pub mod libraries;
pub mod mlflow;
pub mod monitors;
pub mod notification_destinations;
pub(crate) mod permission_objects;
pub mod permissions;
pub mod pipelines;
pub mod public;
pub mod repos;
pub mod scim;
pub mod secrets;
pub mod serving;
pub mod sql;
pub mod sql_sessions;
pub mod thrift;
pub mod tokens;
pub mod unity_catalog;
pub mod workspace;

use axum::http::{Method, Uri};
use tarn_core::{ApiError, ErrorCode};

use crate::error::ApiFailure;

/// Unknown routes answer Databricks' JSON 404, never HTML.
pub async fn not_found(method: Method, uri: Uri) -> ApiFailure {
    let path = uri.path();
    let mut message = format!("No API found for '{method} {path}'");
    // The legacy databricks CLI calls Jobs 2.0 unless told otherwise.
    if path.starts_with("/api/2.0/jobs/") {
        message.push_str(
            ": tarn serves the Jobs API 2.1 and 2.2, not 2.0 (for the legacy databricks CLI, set \
             `jobs-api-version = 2.1` in ~/.databrickscfg or pass --version=2.1)",
        );
    }
    ApiFailure(ApiError::new(ErrorCode::EndpointNotFound, message))
}

/// A required string field of a request, or INVALID_PARAMETER_VALUE.
pub(crate) fn required<'a>(value: Option<&'a str>, field: &str) -> Result<&'a str, ApiFailure> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiFailure(ApiError::invalid_parameter(format!("Missing required field: {field}"))))
}
