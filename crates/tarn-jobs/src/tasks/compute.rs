//! Clusters for tasks: an existing cluster started if it is terminated, and
//! job clusters created for a run (as `runs::compute` read them, tagged
//! with the run) and terminated after.

use std::time::Duration;

use tarn_compute::cluster::{ClusterState, NewCluster, TerminationReason};
use tarn_compute::managed::failure_message;

use super::Engines;

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

    /// Creates a job cluster `key` of a run; `ensure_running` waits for it.
    pub fn create_job_cluster(&self, cluster: NewCluster, key: &str, user: &str) -> Result<String, String> {
        self.clusters.create(cluster, user).map_err(|e| format!("The job cluster '{key}' could not be created: {e}"))
    }

    /// Terminates a job cluster once its run (or task) is done.
    pub fn stop_job_cluster(&self, cluster_id: &str, run_id: i64) {
        if let Err(e) = self.clusters.terminate(cluster_id, TerminationReason::job_finished(run_id)) {
            tracing::debug!(cluster_id, error = %e, "terminating a job cluster");
        }
    }
}
