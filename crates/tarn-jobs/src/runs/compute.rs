//! Where a task attempt runs: its existing cluster, the run's job cluster
//! (created once per run, when a task first needs it, and terminated when
//! the run ends), a cluster of its own, or serverless compute.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tarn_store::JobRunRow;
use tokio::sync::OnceCell;

use super::Runs;
use crate::tasks::TaskCompute;

/// A job cluster's id once it runs, or why it did not start.
type ClusterCell = Arc<OnceCell<std::result::Result<String, String>>>;

/// The run's job clusters, created when a task first needs one.
#[derive(Default)]
pub(super) struct JobClusters {
    cells: Mutex<HashMap<String, ClusterCell>>,
    created: Mutex<Vec<String>>,
}

impl JobClusters {
    pub fn created(&self) -> Vec<String> {
        self.created.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn record(&self, cluster_id: &str) {
        self.created.lock().unwrap_or_else(|p| p.into_inner()).push(cluster_id.to_string());
    }

    async fn shared(&self, runs: &Runs, run: &JobRunRow, key: &str) -> std::result::Result<String, String> {
        let cell = self.cells.lock().unwrap_or_else(|p| p.into_inner()).entry(key.to_string()).or_default().clone();
        let spec = run
            .doc
            .pointer("/settings/job_clusters")
            .and_then(Value::as_array)
            .and_then(|cs| cs.iter().find(|c| c.get("job_cluster_key").and_then(Value::as_str) == Some(key)))
            .and_then(|c| c.get("new_cluster"))
            .cloned()
            .unwrap_or(Value::Null);
        let init = async {
            let runner = runs.runner();
            let cluster_id = runner.create_job_cluster(&spec, run.run_id, key, &run.creator_user_name)?;
            self.record(&cluster_id);
            runner.ensure_running(&cluster_id, &run.creator_user_name).await.map(|()| cluster_id)
        };
        cell.get_or_init(|| init).await.clone()
    }
}

/// Where task `key` of `run` runs, its cluster started.
pub(super) async fn compute(
    runs: &Runs,
    run: &JobRunRow,
    key: &str,
    clusters: &JobClusters,
    task: &Value,
) -> std::result::Result<TaskCompute, String> {
    if task.get("sql_task").is_some() {
        return Ok(TaskCompute::Serverless);
    }
    if let Some(id) = task.get("existing_cluster_id").and_then(Value::as_str) {
        return Ok(TaskCompute::Cluster(id.to_string()));
    }
    if let Some(cluster_key) = task.get("job_cluster_key").and_then(Value::as_str) {
        return clusters.shared(runs, run, cluster_key).await.map(TaskCompute::Cluster);
    }
    if let Some(spec) = task.get("new_cluster") {
        let runner = runs.runner();
        let id = runner.create_job_cluster(spec, run.run_id, key, &run.creator_user_name)?;
        clusters.record(&id);
        runner.ensure_running(&id, &run.creator_user_name).await?;
        return Ok(TaskCompute::Cluster(id));
    }
    Ok(TaskCompute::Serverless)
}
