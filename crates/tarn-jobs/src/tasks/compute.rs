//! Clusters for tasks: an existing cluster started if it is terminated, and
//! job clusters created for a run (tagged with it) and terminated after.

use std::time::Duration;

use serde_json::{Map, Value, json};
use tarn_compute::cluster::{ClusterState, NewCluster, TerminationReason};
use tarn_compute::managed::failure_message;

use super::Engines;

/// Tags that mark a job cluster with its run.
pub const RUN_TAG: &str = "tarn_job_run_id";
pub const KEY_TAG: &str = "tarn_job_cluster_key";

impl Engines {
    /// Waits until the cluster's engine answers, starting it if it is
    /// terminated (as a job starts its `existing_cluster_id`).
    pub async fn ensure_running(&self, cluster_id: &str, user: &str) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + self.cluster_start_timeout;
        let mut asked = false;
        loop {
            let cluster = self.clusters.get(cluster_id).map_err(|e| e.to_string())?;
            match cluster.state {
                ClusterState::Running if matches!(self.clusters.engine_port(cluster_id), Ok(Some(_))) => return Ok(()),
                ClusterState::Terminated if !asked => {
                    self.clusters.start(cluster_id, user).map_err(|e| e.to_string())?;
                    asked = true;
                }
                ClusterState::Terminated | ClusterState::Error | ClusterState::Unknown => {
                    let why = failure_message(&cluster).unwrap_or_else(|| "it was stopped".into());
                    return Err(format!("Cluster {cluster_id} did not start: {why}"));
                }
                _ => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "Cluster {cluster_id} did not start within {}s",
                    self.cluster_start_timeout.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Creates a cluster for a run from `new_cluster` settings (tagged with
    /// the run); `ensure_running` waits for it.
    pub fn create_job_cluster(&self, spec: &Value, run_id: i64, key: &str, user: &str) -> Result<String, String> {
        let mut attributes: Map<String, Value> = spec.as_object().cloned().unwrap_or_default();
        attributes.insert("cluster_name".into(), json!(format!("job-{run_id}-{key}")));
        let mut tags = attributes.get("custom_tags").and_then(Value::as_object).cloned().unwrap_or_default();
        tags.insert(RUN_TAG.into(), json!(run_id.to_string()));
        tags.insert(KEY_TAG.into(), json!(key));
        attributes.insert("custom_tags".into(), Value::Object(tags));
        NewCluster::from_attributes(attributes)
            .and_then(|cluster| self.clusters.create(cluster, user))
            .map_err(|e| format!("The job cluster '{key}' could not be created: {e}"))
    }

    /// Terminates a job cluster once its run (or task) is done.
    pub fn stop_job_cluster(&self, cluster_id: &str, run_id: i64) {
        if let Err(e) = self.clusters.terminate(cluster_id, TerminationReason::job_finished(run_id)) {
            tracing::debug!(cluster_id, error = %e, "terminating a job cluster");
        }
    }
}
