//! What identity operations refuse, typed; `tarn-api` maps each to the wire.

use tarn_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    InvalidParameter(String),
    /// A list filter that does not parse.
    #[error("Invalid filter: {0}")]
    InvalidFilter(String),
    #[error("{0}")]
    PermissionDenied(String),
    /// A limit such as a scope's 1000 secrets.
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    NotImplemented(String),
    /// A scope's backend (a Vault server) that could not be read.
    #[error("{0}")]
    BackendUnavailable(String),
    /// Not the caller's doing (a value that does not open); logged, not shown.
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type Result<T> = std::result::Result<T, IdentityError>;
