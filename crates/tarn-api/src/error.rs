//! The one place domain errors become wire errors.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tarn_catalog::CatalogError;
use tarn_compute::ComputeError;
use tarn_core::{ApiError, ErrorCode};
use tarn_files::{FilesError, Limit};
use tarn_sql::SqlError;
use tarn_store::{AuthError, StoreError};

/// An error leaving a handler.
#[derive(Debug)]
pub struct ApiFailure(pub ApiError);

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        let (status, code, message, reason) = self.for_client();
        let mut body = json!({"error_code": code.as_str(), "message": message});
        if let Some(reason) = reason {
            body["details"] = json!([{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "filesystem.databricks.com",
            }]);
        }
        (status, Json(body)).into_response()
    }
}

impl ApiFailure {
    /// The status, code, message and reason a client is shown: an internal
    /// error's text (paths, SQL, an engine's words) stays in the log and the
    /// client gets the error id to quote.
    pub(crate) fn for_client(self) -> (StatusCode, ErrorCode, String, Option<&'static str>) {
        let ApiError { code, mut message, reason } = self.0;
        let status = StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if code == ErrorCode::InternalError {
            let error_id = uuid::Uuid::new_v4();
            tracing::error!(%error_id, code = code.as_str(), "{message}");
            message = internal_message(&error_id.to_string());
        } else if status.is_server_error() {
            tracing::error!(code = code.as_str(), "{message}");
        }
        (status, code, message, reason)
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

impl From<tarn_identity::IdentityError> for ApiFailure {
    fn from(e: tarn_identity::IdentityError) -> Self {
        use tarn_identity::IdentityError;
        let code = match &e {
            IdentityError::NotFound(_) => ErrorCode::ResourceDoesNotExist,
            IdentityError::AlreadyExists(_) => ErrorCode::ResourceAlreadyExists,
            IdentityError::InvalidParameter(_) | IdentityError::InvalidFilter(_) => ErrorCode::InvalidParameterValue,
            IdentityError::PermissionDenied(_) => ErrorCode::PermissionDenied,
            IdentityError::LimitExceeded(_) => ErrorCode::ResourceLimitExceeded,
            IdentityError::NotImplemented(_) => ErrorCode::NotImplemented,
            IdentityError::BackendUnavailable(_) => ErrorCode::InvalidState,
            IdentityError::Store(_) | IdentityError::Internal(_) => ErrorCode::InternalError,
        };
        Self(ApiError::new(code, e.to_string()))
    }
}

impl From<tarn_repos::RepoError> for ApiFailure {
    fn from(e: tarn_repos::RepoError) -> Self {
        use tarn_repos::RepoError;
        if let RepoError::Files(inner) = e {
            return files_failure(Surface::Workspace, inner);
        }
        let code = match &e {
            RepoError::InvalidParameter(_) => ErrorCode::InvalidParameterValue,
            RepoError::NotFound(_) => ErrorCode::ResourceDoesNotExist,
            RepoError::AlreadyExists(_) => ErrorCode::ResourceAlreadyExists,
            RepoError::Files(_) | RepoError::Store(_) | RepoError::Internal(_) => ErrorCode::InternalError,
        };
        Self(ApiError::new(code, e.to_string()))
    }
}

impl From<ComputeError> for ApiFailure {
    fn from(e: ComputeError) -> Self {
        let code = match &e {
            // Databricks answers an unknown cluster id with 400
            // INVALID_PARAMETER_VALUE "Cluster X does not exist"; the SDK maps
            // that to ResourceDoesNotExist on clusters/get.
            ComputeError::ClusterNotFound(_) | ComputeError::InvalidSpec(_) | ComputeError::InvalidRequest(_) => {
                ErrorCode::InvalidParameterValue
            }
            ComputeError::InvalidState { .. } | ComputeError::NotStarted(_) | ComputeError::ContextFailed(_) => {
                ErrorCode::InvalidState
            }
            ComputeError::ContextNotFound(_) | ComputeError::CommandNotFound(_) => ErrorCode::ResourceDoesNotExist,
            ComputeError::NotImplemented(_) => ErrorCode::NotImplemented,
            ComputeError::Store(_) | ComputeError::Environment(_) | ComputeError::Engine(_) => ErrorCode::InternalError,
        };
        Self(ApiError::new(code, e.to_string()))
    }
}

impl From<tarn_pipelines::PipelinesError> for ApiFailure {
    fn from(e: tarn_pipelines::PipelinesError) -> Self {
        use tarn_pipelines::PipelinesError;
        let code = match &e {
            PipelinesError::InvalidParameter(_) => ErrorCode::InvalidParameterValue,
            PipelinesError::NotFound(_) => ErrorCode::ResourceDoesNotExist,
            PipelinesError::Conflict(_) => ErrorCode::ResourceConflict,
            PipelinesError::NotImplemented(_) => ErrorCode::NotImplemented,
            PipelinesError::Store(_) => ErrorCode::InternalError,
        };
        Self(ApiError::new(code, e.to_string()))
    }
}

impl From<tarn_serving::ServingError> for ApiFailure {
    fn from(e: tarn_serving::ServingError) -> Self {
        use tarn_serving::ServingError;
        let code = match &e {
            ServingError::InvalidParameter(_) => ErrorCode::InvalidParameterValue,
            ServingError::NotFound(_) => ErrorCode::ResourceDoesNotExist,
            ServingError::AlreadyExists(_) => ErrorCode::ResourceAlreadyExists,
            ServingError::Conflict(_) => ErrorCode::ResourceConflict,
            ServingError::Unavailable(_) => ErrorCode::TemporarilyUnavailable,
            ServingError::NotImplemented(_) => ErrorCode::NotImplemented,
            ServingError::Store(_) => ErrorCode::InternalError,
        };
        Self(ApiError::new(code, e.to_string()))
    }
}

impl From<tarn_monitor::MonitorError> for ApiFailure {
    fn from(e: tarn_monitor::MonitorError) -> Self {
        use tarn_monitor::MonitorError;
        let code = match &e {
            MonitorError::InvalidParameter(_) => ErrorCode::InvalidParameterValue,
            MonitorError::NotFound(_) => ErrorCode::ResourceDoesNotExist,
            MonitorError::AlreadyExists(_) => ErrorCode::ResourceAlreadyExists,
            MonitorError::InvalidState(_) => ErrorCode::InvalidState,
            MonitorError::NotImplemented(_) => ErrorCode::NotImplemented,
            MonitorError::Refresh(_) | MonitorError::Report(_) | MonitorError::Store(_) => ErrorCode::InternalError,
        };
        Self(ApiError::new(code, e.to_string()))
    }
}

impl From<tarn_alerts::AlertError> for ApiFailure {
    fn from(e: tarn_alerts::AlertError) -> Self {
        use tarn_alerts::AlertError;
        let code = match &e {
            AlertError::InvalidParameter(_) => ErrorCode::InvalidParameterValue,
            AlertError::NotFound(_) => ErrorCode::ResourceDoesNotExist,
            AlertError::Store(_) => ErrorCode::InternalError,
        };
        Self(ApiError::new(code, e.to_string()))
    }
}

impl From<tarn_jobs::JobsError> for ApiFailure {
    fn from(e: tarn_jobs::JobsError) -> Self {
        use tarn_jobs::JobsError;
        let code = match &e {
            // Databricks answers an unknown job id with 400 as it does an
            // unknown cluster; the SDK maps that to ResourceDoesNotExist.
            JobsError::InvalidParameter(_) | JobsError::NotFound(_) => ErrorCode::InvalidParameterValue,
            JobsError::NotImplemented(_) => ErrorCode::NotImplemented,
            JobsError::Refused(_) => ErrorCode::InvalidState,
            JobsError::Store(_) => ErrorCode::InternalError,
        };
        Self(ApiError::new(code, e.to_string()))
    }
}

impl From<tarn_mlflow::MlflowError> for ApiFailure {
    fn from(e: tarn_mlflow::MlflowError) -> Self {
        use tarn_mlflow::MlflowError;
        let code = match &e {
            MlflowError::NotFound(_) => ErrorCode::ResourceDoesNotExist,
            MlflowError::AlreadyExists(_) => ErrorCode::ResourceAlreadyExists,
            MlflowError::InvalidParameter(_) => ErrorCode::InvalidParameterValue,
            MlflowError::NotImplemented(_) => ErrorCode::NotImplemented,
            MlflowError::Store(_) | MlflowError::Io(_) => ErrorCode::InternalError,
        };
        Self(ApiError::new(code, e.to_string()))
    }
}

impl From<SqlError> for ApiFailure {
    fn from(e: SqlError) -> Self {
        let code = match &e {
            SqlError::InvalidParameter(_) => ErrorCode::InvalidParameterValue,
            SqlError::WarehouseNotFound(_) | SqlError::StatementNotFound(_) | SqlError::SessionNotFound(_) => {
                ErrorCode::ResourceDoesNotExist
            }
            SqlError::InvalidState(_) => ErrorCode::InvalidState,
            SqlError::NotImplemented(_) => ErrorCode::NotImplemented,
            SqlError::Compute(_) | SqlError::Store(_) => ErrorCode::InternalError,
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
            CatalogError::PermissionDenied(_) => ErrorCode::PermissionDenied,
            // Sail reads 409 on a commit as "another writer won this version".
            CatalogError::CommitConflict { .. } => ErrorCode::Aborted,
            CatalogError::Store(_) | CatalogError::Io { .. } => ErrorCode::InternalError,
        };
        Self(ApiError::new(code, e.to_string()))
    }
}

/// A refused bearer token: 401 with the store's reason; a store failure as any other.
impl From<AuthError> for ApiFailure {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Invalid | AuthError::Expired | AuthError::Inactive => {
                Self(ApiError::unauthenticated(e.to_string()))
            }
            AuthError::Store(e) => e.into(),
        }
    }
}

/// Which API a files error leaves through: they name the same failures
/// differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Surface {
    /// `/api/2.0/fs`: NOT_FOUND and ALREADY_EXISTS, and a type mismatch
    /// (reading a directory, listing a file) is a 404 as well.
    Files,
    /// `/api/2.0/dbfs`: RESOURCE_* codes; a non-empty directory is IO_ERROR.
    Dbfs,
    /// `/api/2.0/workspace`: RESOURCE_* codes and DIRECTORY_NOT_EMPTY.
    Workspace,
}

pub(crate) fn files_failure(surface: Surface, e: FilesError) -> ApiFailure {
    use ErrorCode as C;
    use FilesError as F;
    let e = match e {
        F::Catalog(inner) => return inner.into(),
        other => other,
    };
    let code = match (&e, surface) {
        (F::InvalidPath { .. } | F::InvalidArgument(_), _) => C::InvalidParameterValue,
        (F::Escapes { .. }, _) => C::PermissionDenied,
        (F::NotFound { .. } | F::VolumeNotFound { .. } | F::ParentNotFound { .. }, Surface::Files) => C::NotFound,
        (F::IsADirectory { .. } | F::NotADirectory { .. }, Surface::Files) => C::NotFound,
        (F::NotFound { .. } | F::VolumeNotFound { .. } | F::ParentNotFound { .. } | F::UnknownHandle(_), _) => {
            C::ResourceDoesNotExist
        }
        (F::IsADirectory { .. } | F::NotADirectory { .. }, _) => C::InvalidParameterValue,
        (F::AlreadyExists { .. }, Surface::Files) => C::AlreadyExists,
        (F::AlreadyExists { .. }, _) => C::ResourceAlreadyExists,
        (F::DirectoryNotEmpty { .. }, Surface::Files) => {
            // The Databricks CLI checks this reason before it recurses.
            let error = ApiError::invalid_parameter(e.to_string());
            return ApiFailure(error.with_reason("FILES_API_DIRECTORY_IS_NOT_EMPTY"));
        }
        (F::DirectoryNotEmpty { .. }, Surface::Dbfs) => C::IoError,
        (F::DirectoryNotEmpty { .. }, Surface::Workspace) => C::DirectoryNotEmpty,
        (F::TooLarge { limit: Limit::Block, .. }, _) => C::MaxBlockSizeExceeded,
        (F::TooLarge { limit: Limit::Read, .. }, _) => C::MaxReadSizeExceeded,
        (F::TooLarge { limit: Limit::Import, .. }, _) => C::MaxNotebookSizeExceeded,
        (F::TooManyStreams(_), _) => C::InvalidState,
        (F::Unsupported(_), _) => C::NotImplemented,
        (F::Catalog(_) | F::Store(_) | F::Io { .. } | F::Storage { .. }, _) => C::InternalError,
    };
    ApiFailure(ApiError::new(code, e.to_string()))
}

/// What a client is told of an internal error: only the id it is logged under.
fn internal_message(error_id: &str) -> String {
    format!("Internal error (error id: {error_id})")
}

/// A handler that panicked answers INTERNAL_ERROR; the panic is logged with
/// the answer's error id.
pub(crate) fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let what = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("a panic without a message");
    ApiFailure(ApiError::internal(format!("handler panicked: {what}"))).into_response()
}

pub type ApiResult<T> = Result<T, ApiFailure>;

#[cfg(test)]
mod tests {
    use super::*;

    async fn answer(failure: ApiFailure) -> (u16, serde_json::Value) {
        let response = failure.into_response();
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap_or_default();
        (status, serde_json::from_slice(&bytes).unwrap_or_default())
    }

    #[tokio::test]
    async fn internal_errors_send_an_id_not_their_text() {
        let (status, body) = answer(ApiError::internal("disk I/O error at /secret/metadata.db").into()).await;
        assert_eq!((status, body["error_code"].as_str()), (500, Some("INTERNAL_ERROR")));
        let message = body["message"].as_str().unwrap_or_default();
        let id = message.strip_prefix("Internal error (error id: ").and_then(|m| m.strip_suffix(')'));
        assert!(id.is_some_and(|id| uuid::Uuid::parse_str(id).is_ok()), "{message}");
        let (_, again) = answer(ApiError::internal("disk I/O error at /secret/metadata.db").into()).await;
        assert_ne!(again["message"], body["message"], "each failure has its own id");
        // Other errors, 501 included, keep their words.
        let (status, body) = answer(ApiError::not_implemented("use clusters/edit").into()).await;
        assert_eq!((status, body["message"].as_str()), (501, Some("use clusters/edit")));
        let (status, body) = answer(ApiError::invalid_parameter("bad").into()).await;
        assert_eq!((status, body["message"].as_str()), (400, Some("bad")));
    }
}
