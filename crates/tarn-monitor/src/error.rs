//! Errors of the monitoring domain; `tarn-api` maps each kind to the
//! Databricks error codes once.

use tarn_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// `INVALID_PARAMETER_VALUE`, 400.
    #[error("{0}")]
    InvalidParameter(String),
    /// `RESOURCE_DOES_NOT_EXIST`, 404.
    #[error("{0}")]
    NotFound(String),
    /// `RESOURCE_ALREADY_EXISTS`, 409.
    #[error("{0}")]
    AlreadyExists(String),
    /// `INVALID_STATE`, 400: e.g. cancelling a refresh that has ended.
    #[error("{0}")]
    InvalidState(String),
    /// `NOT_IMPLEMENTED`, 501.
    #[error("{0}")]
    NotImplemented(String),
    /// A refresh that could not read or write a table.
    #[error("{0}")]
    Refresh(String),
    /// The report could not read the output tables a refresh wrote.
    #[error("{0}")]
    Report(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type Result<T> = std::result::Result<T, MonitorError>;

pub(crate) fn invalid(message: impl Into<String>) -> MonitorError {
    MonitorError::InvalidParameter(message.into())
}
