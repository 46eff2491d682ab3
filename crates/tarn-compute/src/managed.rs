//! Clusters tarn runs for services of its own: the SQL warehouse's engine and
//! the serverless pool's. Each is found by a custom tag, created and started
//! on demand, and otherwise an ordinary cluster: the manager supervises,
//! auto-stops and reconciles it, and it is RUNNING only once its engine
//! answered. [`ClusterManager::list`] leaves them out.

use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

use crate::cluster::{ClusterSpec, ClusterState, NewCluster, TerminationReason};
use crate::{Cluster, ClusterManager, ComputeError};

/// What defines one managed cluster.
#[derive(Debug, Clone)]
pub struct ManagedSpec {
    pub name: String,
    pub tag: &'static str,
    pub tag_value: String,
    pub auto_stop_mins: i64,
    /// How long [`ManagedCluster::engine`] waits for the engine to come up.
    pub start_timeout: Duration,
}

/// A running engine of a managed cluster.
#[derive(Debug, Clone)]
pub struct ManagedEngine {
    pub cluster_id: String,
    pub port: u16,
}

pub struct ManagedCluster {
    spec: ManagedSpec,
    clusters: ClusterManager,
    /// Held while deciding whether to create or start the cluster, so two
    /// callers arriving together start one engine.
    starting: Mutex<()>,
}

impl ManagedCluster {
    pub fn new(clusters: ClusterManager, spec: ManagedSpec) -> Self {
        Self { spec, clusters, starting: Mutex::new(()) }
    }

    pub fn spec(&self) -> &ManagedSpec {
        &self.spec
    }

    pub fn cluster(&self) -> Result<Option<Cluster>, ComputeError> {
        self.clusters.managed(self.spec.tag, &self.spec.tag_value)
    }

    /// Starts the engine unless it is starting or running already.
    pub fn start(&self, user: &str) -> Result<(), ComputeError> {
        let _starting = self.starting.lock().unwrap_or_else(|p| p.into_inner());
        match self.cluster()? {
            None => {
                self.clusters.create(self.cluster_spec(), user)?;
            }
            Some(c) if c.state == ClusterState::Terminated => self.clusters.start(&c.row.cluster_id, user)?,
            Some(c) if c.state == ClusterState::Terminating => {
                return Err(ComputeError::NotStarted(format!(
                    "{} is stopping; start it once stopped.",
                    self.spec.name
                )));
            }
            Some(_) => {}
        }
        Ok(())
    }

    /// Stops the engine; work still running on it fails.
    pub fn stop(&self, user: &str) -> Result<(), ComputeError> {
        if let Some(c) = self.cluster()?
            && !matches!(c.state, ClusterState::Terminated | ClusterState::Terminating)
        {
            self.clusters.terminate(&c.row.cluster_id, TerminationReason::user_request(user))?;
        }
        Ok(())
    }

    /// The running engine, started on demand: waits while it starts, and
    /// for one stopping to finish before starting it again.
    pub async fn engine(&self, user: &str) -> Result<ManagedEngine, ComputeError> {
        let cluster = match self.cluster()? {
            Some(cluster) => cluster,
            None => {
                self.start(user)?;
                let created = self.cluster()?;
                created.ok_or_else(|| ComputeError::NotStarted(format!("{} was not created", self.spec.name)))?
            }
        };
        let cluster_id = cluster.row.cluster_id;
        match self.clusters.running_engine(&cluster_id, user, self.spec.start_timeout).await {
            Ok(port) => Ok(ManagedEngine { cluster_id, port }),
            // Named as its users know it, not by its cluster id.
            Err(ComputeError::NotStarted(why)) => {
                Err(ComputeError::NotStarted(why.replacen(&cluster_id, &self.spec.name, 1)))
            }
            Err(e) => Err(e),
        }
    }

    /// Counts as use for the auto-stop.
    pub fn record_activity(&self, engine: &ManagedEngine) {
        self.clusters.record_activity(&engine.cluster_id);
    }

    fn cluster_spec(&self) -> NewCluster {
        let mut spec = ClusterSpec::new(crate::runtime::DEFAULT_KEY);
        spec.cluster_name = Some(self.spec.name.clone());
        spec.num_workers = Some(0);
        spec.autotermination_minutes = Some(self.spec.auto_stop_mins);
        spec.custom_tags = Some([(self.spec.tag.to_string(), self.spec.tag_value.clone())].into());
        NewCluster { spec, libraries: Vec::new() }
    }
}

/// The engine's own words when it stopped without being asked to.
pub fn failure_message(cluster: &Cluster) -> Option<String> {
    let reason = cluster.row.termination_reason.as_ref()?;
    if reason.get("type").and_then(Value::as_str) == Some("SUCCESS") {
        return None;
    }
    let code = reason.get("code").and_then(Value::as_str).unwrap_or("UNKNOWN");
    let message = reason.pointer("/parameters/databricks_error_message").and_then(Value::as_str).unwrap_or_default();
    Some(format!("{code}: {message}"))
}
