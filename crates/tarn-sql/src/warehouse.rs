//! The local SQL warehouse: one per workspace, its id decided once and kept.
//!
//! Its compute is a cluster tagged with the warehouse id (as Databricks tags
//! a warehouse's clusters with `SqlEndpointId`), so the cluster manager
//! starts, watches, auto-stops and reconciles it like any other; the clusters
//! API leaves it out of its lists. The warehouse's state is the cluster's,
//! renamed: RUNNING only once the engine answered.

use std::sync::Arc;
use std::time::Duration;

use tarn_compute::cluster::{ClusterState, WAREHOUSE_TAG};
use tarn_compute::managed::{ManagedCluster, ManagedEngine, ManagedSpec, failure_message};
use tarn_compute::{ClusterManager, ComputeError};
use tarn_store::Store;

use crate::error::{Result, SqlError};

pub const WAREHOUSE_NAME: &str = "Local SQL warehouse";
/// Minutes without statements before the engine stops (the cluster
/// autotermination floor).
pub const AUTO_STOP_MINS: i64 = 10;
const SETTING: &str = "sql_warehouse_id";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarehouseState {
    Starting,
    Running,
    Stopping,
    Stopped,
}

impl WarehouseState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "STARTING",
            Self::Running => "RUNNING",
            Self::Stopping => "STOPPING",
            Self::Stopped => "STOPPED",
        }
    }

    fn of(cluster: ClusterState) -> Self {
        match cluster {
            ClusterState::Pending | ClusterState::Restarting | ClusterState::Resizing => Self::Starting,
            ClusterState::Running => Self::Running,
            ClusterState::Terminating => Self::Stopping,
            ClusterState::Terminated | ClusterState::Error | ClusterState::Unknown => Self::Stopped,
        }
    }
}

/// The warehouse as its API shows it.
#[derive(Debug, Clone)]
pub struct WarehouseStatus {
    pub id: String,
    pub name: String,
    pub state: WarehouseState,
    pub auto_stop_mins: i64,
    pub creator: Option<String>,
    /// Why the engine stopped, when it was not asked to.
    pub failure: Option<String>,
    pub cluster_id: Option<String>,
}

/// The warehouse service. Cheap to clone.
#[derive(Clone)]
pub struct Warehouse {
    inner: Arc<Inner>,
}

struct Inner {
    id: String,
    compute: ManagedCluster,
    clusters: ClusterManager,
}

/// The engine a statement runs on.
pub type WarehouseEngine = ManagedEngine;

impl Warehouse {
    /// `start_timeout`: how long a statement waits for the engine to come up.
    pub fn open(store: &Store, clusters: ClusterManager, start_timeout: Duration) -> Result<Self> {
        let id = store.setting_or_init(SETTING, || tarn_core::id::random_hex(8))?;
        let spec = ManagedSpec {
            name: WAREHOUSE_NAME.to_string(),
            tag: WAREHOUSE_TAG,
            tag_value: id.clone(),
            auto_stop_mins: AUTO_STOP_MINS,
            start_timeout,
        };
        let compute = ManagedCluster::new(clusters.clone(), spec);
        Ok(Self { inner: Arc::new(Inner { id, compute, clusters }) })
    }

    pub fn id(&self) -> &str {
        &self.inner.id
    }

    fn check_id(&self, id: &str) -> Result<()> {
        if id == self.inner.id { Ok(()) } else { Err(SqlError::WarehouseNotFound(id.to_string())) }
    }

    pub fn status(&self, id: &str) -> Result<WarehouseStatus> {
        self.check_id(id)?;
        let cluster = self.inner.compute.cluster()?;
        let state = cluster.as_ref().map_or(WarehouseState::Stopped, |c| WarehouseState::of(c.state));
        let failure = cluster.as_ref().filter(|_| state == WarehouseState::Stopped).and_then(failure_message);
        Ok(WarehouseStatus {
            id: self.inner.id.clone(),
            name: WAREHOUSE_NAME.to_string(),
            state,
            auto_stop_mins: cluster.as_ref().map_or(AUTO_STOP_MINS, |c| c.spec.autotermination()),
            creator: cluster.as_ref().map(|c| c.row.creator.clone()),
            failure,
            cluster_id: cluster.map(|c| c.row.cluster_id),
        })
    }

    /// Starts the engine unless it is starting or running already.
    pub fn start(&self, id: &str, user: &str) -> Result<()> {
        self.check_id(id)?;
        self.inner.compute.start(user).map_err(not_started)
    }

    /// Stops the engine; statements still running on it fail.
    pub fn stop(&self, id: &str, user: &str) -> Result<()> {
        self.check_id(id)?;
        Ok(self.inner.compute.stop(user)?)
    }

    /// The running engine, started on demand.
    pub async fn engine(&self, id: &str, user: &str) -> Result<WarehouseEngine> {
        self.check_id(id)?;
        self.inner.compute.engine(user).await.map_err(not_started)
    }

    /// The engine of an all-purpose cluster a SQL session names instead of
    /// the warehouse (a cluster's Thrift `http_path`): started on demand
    /// and waited for as the warehouse's is.
    pub async fn cluster_engine(&self, cluster_id: &str, user: &str) -> Result<WarehouseEngine> {
        let timeout = self.inner.compute.spec().start_timeout;
        let port = self.inner.clusters.running_engine(cluster_id, user, timeout).await.map_err(not_started)?;
        Ok(WarehouseEngine { cluster_id: cluster_id.to_string(), port })
    }

    /// The backend of the workspace's cluster `cluster_id`.
    pub fn cluster_backend(&self, cluster_id: &str) -> Result<tarn_compute::backend::Backend> {
        self.inner.clusters.backend(cluster_id).map_err(SqlError::from)
    }

    /// Counts as use for the auto-stop.
    pub fn record_activity(&self, engine: &WarehouseEngine) {
        self.inner.compute.record_activity(engine);
    }
}

fn not_started(e: ComputeError) -> SqlError {
    match e {
        ComputeError::NotStarted(why) => SqlError::InvalidState(why),
        other => other.into(),
    }
}
