//! Errors of the tracking domain; `tarn-api` maps each kind to MLflow's
//! error codes once.

use tarn_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum MlflowError {
    /// `RESOURCE_DOES_NOT_EXIST`, 404.
    #[error("{0}")]
    NotFound(String),
    /// `RESOURCE_ALREADY_EXISTS`, 409.
    #[error("{0}")]
    AlreadyExists(String),
    /// `INVALID_PARAMETER_VALUE`, 400.
    #[error("{0}")]
    InvalidParameter(String),
    /// `NOT_IMPLEMENTED`, 501: MLflow has it, tarn does not yet.
    #[error("{0} is not implemented by tarn")]
    NotImplemented(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("artifact store: {0}")]
    Io(String),
}

pub type Result<T> = std::result::Result<T, MlflowError>;
