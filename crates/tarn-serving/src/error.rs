//! Errors of the serving domain; `tarn-api` maps each kind to the
//! Databricks error codes once.

use tarn_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ServingError {
    /// `INVALID_PARAMETER_VALUE`, 400.
    #[error("{0}")]
    InvalidParameter(String),
    /// `RESOURCE_DOES_NOT_EXIST`, 404.
    #[error("{0}")]
    NotFound(String),
    /// `RESOURCE_ALREADY_EXISTS`, 409.
    #[error("{0}")]
    AlreadyExists(String),
    /// `RESOURCE_CONFLICT`, 409: a config update is already in progress.
    #[error("{0}")]
    Conflict(String),
    /// `TEMPORARILY_UNAVAILABLE`, 503: no served entity can answer now.
    #[error("{0}")]
    Unavailable(String),
    /// `NOT_IMPLEMENTED`, 501.
    #[error("{0}")]
    NotImplemented(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type Result<T> = std::result::Result<T, ServingError>;

pub(crate) fn invalid(message: impl Into<String>) -> ServingError {
    ServingError::InvalidParameter(message.into())
}
