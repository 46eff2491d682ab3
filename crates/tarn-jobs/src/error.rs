//! Errors of the jobs domain; `tarn-api` maps each kind to the Databricks
//! error codes once.

use tarn_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    /// `INVALID_PARAMETER_VALUE`, 400.
    #[error("{0}")]
    InvalidParameter(String),
    /// `INVALID_PARAMETER_VALUE`, 400, as Databricks answers an unknown job or run id.
    #[error("{0}")]
    NotFound(String),
    /// `NOT_IMPLEMENTED`, 501.
    #[error("{0}")]
    NotImplemented(String),
    /// `INVALID_STATE`: a run's transition was refused (it moved on first).
    #[error("The run's state changed: {0}")]
    Refused(#[from] crate::runs::state::Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type Result<T> = std::result::Result<T, JobsError>;

pub(crate) fn invalid(message: impl Into<String>) -> JobsError {
    JobsError::InvalidParameter(message.into())
}
