//! The local SQL warehouse: one per workspace, its id decided once and kept.
//!
//! Its compute is a cluster tagged with the warehouse id (as Databricks tags
//! a warehouse's clusters with `SqlEndpointId`), so the cluster manager
//! starts, watches, auto-stops and reconciles it like any other; the clusters
//! API leaves it out of its lists. The warehouse's state is the cluster's,
//! renamed: RUNNING only once the engine answered.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tarn_compute::cluster::{ClusterState, TerminationReason, WAREHOUSE_TAG};
use tarn_compute::{Cluster, ClusterFilter, ClusterManager, node_types};
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
    clusters: ClusterManager,
    start_timeout: Duration,
    /// Held while deciding whether to create or start the cluster, so two
    /// statements arriving together start one engine.
    starting: Mutex<()>,
}

/// The engine a statement runs on.
#[derive(Debug, Clone)]
pub struct WarehouseEngine {
    pub cluster_id: String,
    pub port: u16,
}

impl Warehouse {
    /// `start_timeout`: how long a statement waits for the engine to come up.
    pub fn open(store: &Store, clusters: ClusterManager, start_timeout: Duration) -> Result<Self> {
        let id = store.setting_or_init(SETTING, || tarn_core::id::random_hex(8))?;
        Ok(Self { inner: Arc::new(Inner { id, clusters, start_timeout, starting: Mutex::new(()) }) })
    }

    pub fn id(&self) -> &str {
        &self.inner.id
    }

    fn check_id(&self, id: &str) -> Result<()> {
        if id == self.inner.id { Ok(()) } else { Err(SqlError::WarehouseNotFound(id.to_string())) }
    }

    fn cluster(&self) -> Result<Option<Cluster>> {
        let all = self.inner.clusters.list(&ClusterFilter::default())?;
        Ok(all.into_iter().find(|c| c.spec.warehouse_id() == Some(self.inner.id.as_str())))
    }

    pub fn status(&self, id: &str) -> Result<WarehouseStatus> {
        self.check_id(id)?;
        let cluster = self.cluster()?;
        let state = cluster.as_ref().map_or(WarehouseState::Stopped, |c| WarehouseState::of(c.state));
        let failure = cluster.as_ref().filter(|_| state == WarehouseState::Stopped).and_then(failure_message);
        Ok(WarehouseStatus {
            id: self.inner.id.clone(),
            name: WAREHOUSE_NAME.to_string(),
            state,
            auto_stop_mins: cluster.as_ref().map_or(AUTO_STOP_MINS, |c| c.spec.autotermination_minutes),
            creator: cluster.as_ref().map(|c| c.row.creator.clone()),
            failure,
            cluster_id: cluster.map(|c| c.row.cluster_id),
        })
    }

    /// Starts the engine unless it is starting or running already.
    pub fn start(&self, id: &str, user: &str) -> Result<()> {
        self.check_id(id)?;
        let _starting = self.inner.starting.lock().unwrap_or_else(|p| p.into_inner());
        match self.cluster()? {
            None => {
                self.inner.clusters.create(self.cluster_spec(), user)?;
            }
            Some(c) if c.state == ClusterState::Terminated => self.inner.clusters.start(&c.row.cluster_id, user)?,
            Some(c) if c.state == ClusterState::Terminating => {
                return Err(SqlError::InvalidState(format!("SQL warehouse {id} is stopping; start it once stopped.")));
            }
            Some(_) => {}
        }
        Ok(())
    }

    /// Stops the engine; statements still running on it fail.
    pub fn stop(&self, id: &str, user: &str) -> Result<()> {
        self.check_id(id)?;
        if let Some(c) = self.cluster()?
            && !matches!(c.state, ClusterState::Terminated | ClusterState::Terminating)
        {
            self.inner.clusters.terminate(&c.row.cluster_id, TerminationReason::user_request(user))?;
        }
        Ok(())
    }

    /// The running engine, started on demand: waits while it starts, and
    /// for one stopping to finish before starting it again.
    pub async fn engine(&self, id: &str, user: &str) -> Result<WarehouseEngine> {
        self.check_id(id)?;
        let deadline = tokio::time::Instant::now() + self.inner.start_timeout;
        let mut asked = false;
        loop {
            let cluster = self.cluster()?;
            match cluster.as_ref().map(|c| c.state) {
                None | Some(ClusterState::Terminated) if !asked => {
                    self.start(id, user)?;
                    asked = true;
                }
                Some(ClusterState::Terminated | ClusterState::Error | ClusterState::Unknown) => {
                    let why = cluster.as_ref().and_then(failure_message).unwrap_or_else(|| "it was stopped".into());
                    return Err(SqlError::InvalidState(format!("SQL warehouse {id} did not start: {why}")));
                }
                Some(ClusterState::Running) => {
                    if let Some(c) = cluster
                        && let Some(port) = self.inner.clusters.engine_port(&c.row.cluster_id)?
                    {
                        return Ok(WarehouseEngine { cluster_id: c.row.cluster_id, port });
                    }
                }
                _ => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(SqlError::InvalidState(format!(
                    "SQL warehouse {id} did not start within {}s",
                    self.inner.start_timeout.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Counts as use for the auto-stop.
    pub fn record_activity(&self, engine: &WarehouseEngine) {
        self.inner.clusters.record_activity(&engine.cluster_id);
    }

    fn cluster_spec(&self) -> serde_json::Map<String, Value> {
        let version = node_types::spark_versions().into_iter().next().map(|(key, _)| key).unwrap_or_default();
        let spec = json!({
            "cluster_name": WAREHOUSE_NAME,
            "spark_version": version,
            "num_workers": 0,
            "autotermination_minutes": AUTO_STOP_MINS,
            "custom_tags": {WAREHOUSE_TAG: self.inner.id},
        });
        spec.as_object().cloned().unwrap_or_default()
    }
}

/// The engine's own words when it stopped without being asked to.
fn failure_message(cluster: &Cluster) -> Option<String> {
    let reason = cluster.row.termination_reason.as_ref()?;
    if reason.get("type").and_then(Value::as_str) == Some("SUCCESS") {
        return None;
    }
    let code = reason.get("code").and_then(Value::as_str).unwrap_or("UNKNOWN");
    let message = reason.pointer("/parameters/databricks_error_message").and_then(Value::as_str).unwrap_or_default();
    Some(format!("{code}: {message}"))
}
