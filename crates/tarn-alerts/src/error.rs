//! Errors of Databricks SQL's queries and alerts; `tarn-api` maps each kind
//! to the Databricks error codes once.

use tarn_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// `INVALID_PARAMETER_VALUE`, 400.
    #[error("{0}")]
    InvalidParameter(String),
    /// `RESOURCE_DOES_NOT_EXIST`, 404.
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type Result<T> = std::result::Result<T, AlertError>;

pub(crate) fn invalid(message: impl Into<String>) -> AlertError {
    AlertError::InvalidParameter(message.into())
}
