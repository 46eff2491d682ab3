//! What can go wrong with warehouses and statements, before a statement runs.
//! A statement that runs and fails is not an error here: it ends FAILED with
//! a [`crate::statements::StatementError`].

use tarn_compute::ComputeError;
use tarn_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    #[error("{0}")]
    InvalidParameter(String),
    #[error("SQL warehouse {0} does not exist.")]
    WarehouseNotFound(String),
    #[error("Statement {0} does not exist or has expired.")]
    StatementNotFound(String),
    #[error("Session {0} does not exist or was closed.")]
    SessionNotFound(String),
    #[error("{0}")]
    InvalidState(String),
    #[error("{0}")]
    NotImplemented(String),
    #[error(transparent)]
    Compute(#[from] ComputeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type Result<T> = std::result::Result<T, SqlError>;
