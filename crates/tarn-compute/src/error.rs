//! Errors of the compute domain; `tarn-api` maps each kind to the wire once.

use tarn_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ComputeError {
    #[error("Cluster {0} does not exist")]
    ClusterNotFound(String),
    #[error("Cluster {cluster_id} is in unexpected state {state}.")]
    InvalidState { cluster_id: String, state: String },
    #[error("{0}")]
    InvalidSpec(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("python environment: {0}")]
    Environment(String),
    #[error("engine: {0}")]
    Engine(String),
    #[error("Context {0} does not exist")]
    ContextNotFound(String),
    #[error("Command {0} does not exist")]
    CommandNotFound(String),
    /// The context's worker stopped, or its cluster did.
    #[error("{0}")]
    ContextFailed(String),
    #[error("{0}")]
    NotImplemented(String),
    #[error("{0}")]
    InvalidRequest(String),
    /// A managed cluster (warehouse, serverless) could not be started.
    #[error("{0}")]
    NotStarted(String),
}
