//! The one place domain errors become wire errors.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tarn_catalog::CatalogError;
use tarn_compute::ComputeError;
use tarn_core::{ApiError, ErrorCode};
use tarn_store::StoreError;

/// An error leaving a handler.
#[derive(Debug)]
pub struct ApiFailure(pub ApiError);

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(code = self.0.code.as_str(), "{}", self.0.message);
        }
        let body = json!({"error_code": self.0.code.as_str(), "message": self.0.message});
        (status, Json(body)).into_response()
    }
}

impl From<ApiError> for ApiFailure {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl From<StoreError> for ApiFailure {
    fn from(e: StoreError) -> Self {
        Self(ApiError::internal(e.to_string()))
    }
}

impl From<ComputeError> for ApiFailure {
    fn from(e: ComputeError) -> Self {
        let code = match &e {
            // Databricks answers an unknown cluster id with 400
            // INVALID_PARAMETER_VALUE "Cluster X does not exist"; the SDK maps
            // that to ResourceDoesNotExist on clusters/get.
            ComputeError::ClusterNotFound(_) | ComputeError::InvalidSpec(_) => ErrorCode::InvalidParameterValue,
            ComputeError::InvalidState { .. } => ErrorCode::InvalidState,
            ComputeError::Store(_) | ComputeError::Environment(_) | ComputeError::Engine(_) => ErrorCode::InternalError,
        };
        Self(ApiError::new(code, e.to_string()))
    }
}

impl From<CatalogError> for ApiFailure {
    fn from(e: CatalogError) -> Self {
        let code = match &e {
            CatalogError::NotFound { .. } => ErrorCode::ResourceDoesNotExist,
            CatalogError::AlreadyExists { .. } => ErrorCode::ResourceAlreadyExists,
            CatalogError::NotEmpty { .. } => ErrorCode::InvalidState,
            CatalogError::InvalidArgument(_) => ErrorCode::InvalidParameterValue,
            // Sail reads 409 on a commit as "another writer won this version".
            CatalogError::CommitConflict { .. } => ErrorCode::Aborted,
            CatalogError::Store(_) | CatalogError::Io { .. } => ErrorCode::InternalError,
        };
        Self(ApiError::new(code, e.to_string()))
    }
}

pub(crate) fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiFailure(ApiError::internal("internal error; see the tarn log")).into_response()
}

pub type ApiResult<T> = Result<T, ApiFailure>;
