//! Errors of the pipelines domain; `tarn-api` maps each kind to the
//! Databricks error codes once.

use tarn_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum PipelinesError {
    /// `INVALID_PARAMETER_VALUE`, 400.
    #[error("{0}")]
    InvalidParameter(String),
    /// `RESOURCE_DOES_NOT_EXIST`, 404.
    #[error("{0}")]
    NotFound(String),
    /// `RESOURCE_CONFLICT`, 409: an update is already active.
    #[error("{0}")]
    Conflict(String),
    /// `NOT_IMPLEMENTED`, 501.
    #[error("{0}")]
    NotImplemented(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type Result<T> = std::result::Result<T, PipelinesError>;

pub(crate) fn invalid(message: impl Into<String>) -> PipelinesError {
    PipelinesError::InvalidParameter(message.into())
}
