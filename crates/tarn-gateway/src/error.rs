//! What goes wrong at the Spark Connect edge. Each variant is one thing a
//! client can be told; [`crate::status`] is the one place that says which
//! gRPC status it is sent as.

use tarn_compute::ComputeError;
use tarn_store::{AuthError, StoreError};

use crate::passes::SqlFailure;
use crate::sdp::GraphFailure;

/// A call tarn made to the cluster's engine (for a pass, a session's
/// defaults, or its own SQL) that failed. Displays as the bare message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineCallError {
    /// No connection to the engine could be made.
    #[error("{0}")]
    Unreachable(String),
    /// The engine answered with an error: its message.
    #[error("{0}")]
    Refused(String),
}

impl EngineCallError {
    /// The engine refused to create a table because it exists.
    pub fn already_exists(&self) -> bool {
        matches!(self, Self::Refused(m) if m.to_ascii_lowercase().contains("already exists"))
    }
}

/// Why the gateway answered a call itself instead of the engine.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// No token, or one that authenticates no one.
    #[error("send a tarn token: sc://localhost:PORT/;token=TOKEN;x-databricks-cluster-id=ID")]
    Unauthenticated,
    /// The token could not be checked.
    #[error("{0}")]
    TokenStore(StoreError),
    #[error("name the cluster with x-databricks-cluster-id in the connection string")]
    NoCluster,
    /// The caller lacks CAN_ATTACH_TO on the cluster.
    #[error("{0}")]
    PermissionDenied(String),
    #[error("cluster {cluster_id} is {state}, not RUNNING; start it first")]
    ClusterNotRunning { cluster_id: String, state: String },
    /// The named cluster could not be found.
    #[error("{0}")]
    UnknownCluster(ComputeError),
    #[error("reading the request: {0}")]
    ReadRequest(hyper::Error),
    /// tarn's session defaults could not be set on the engine.
    #[error("preparing the session on the engine: {0}")]
    Session(EngineCallError),
    #[error("bad request path")]
    BadPath,
    #[error("bad request headers")]
    BadHeaders,
    #[error("engine unreachable: {0}")]
    EngineUnreachable(hyper_util::client::legacy::Error),
    /// The rewritten plan does not fit a gRPC message.
    #[error("plan too large")]
    PlanTooLarge,
    /// A volume path that resolves to no volume (or escapes it).
    #[error("{0}")]
    Path(String),
    /// A statement tarn ran itself failed, as the Spark exception it is.
    #[error("{}", .0.message)]
    Statement(SqlFailure),
    /// The engine refused the `CREATE TABLE` a CTAS is split into.
    #[error("{0}")]
    Ctas(EngineCallError),
    /// The engine refused the `CREATE TABLE` a `saveAsTable` is split into.
    #[error("{0}")]
    SaveAsTable(EngineCallError),
    /// A declarative pipelines command (or the run it started) failed.
    #[error("{}", .0.message)]
    Pipeline(GraphFailure),
}

/// A refused token is the same answer whatever the reason, as the gateway
/// has always given it.
impl From<AuthError> for GatewayError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Invalid | AuthError::Expired | AuthError::Inactive => Self::Unauthenticated,
            AuthError::Store(e) => Self::TokenStore(e),
        }
    }
}
