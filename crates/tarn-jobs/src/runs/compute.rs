//! Where a task attempt runs: its existing cluster, the run's job cluster
//! (created once per run, when a task first needs it, and terminated when
//! the run ends), a cluster of its own, or serverless compute. A job
//! cluster's `new_cluster` settings are read here into tarn-compute's
//! `NewCluster`, named and tagged for the run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};
use tarn_compute::cluster::NewCluster;
use tarn_store::JobRunRow;
use tokio::sync::OnceCell;

use super::Runs;
use crate::settings::{JobSettings, TaskSettings};
use crate::tasks::TaskCompute;

/// Tags that mark a job cluster with its run.
const RUN_TAG: &str = "tarn_job_run_id";
const KEY_TAG: &str = "tarn_job_cluster_key";

/// The cluster `new_cluster` settings make for job cluster `key` of run
/// `run_id`: named `job-<run>-<key>`, tagged with both.
fn job_cluster(spec: &Value, run_id: i64, key: &str) -> std::result::Result<NewCluster, String> {
    let mut attributes: Map<String, Value> = spec.as_object().cloned().unwrap_or_default();
    attributes.insert("cluster_name".into(), json!(format!("job-{run_id}-{key}")));
    let mut tags = attributes.get("custom_tags").and_then(Value::as_object).cloned().unwrap_or_default();
    tags.insert(RUN_TAG.into(), json!(run_id.to_string()));
    tags.insert(KEY_TAG.into(), json!(key));
    attributes.insert("custom_tags".into(), Value::Object(tags));
    NewCluster::from_attributes(attributes).map_err(|e| format!("The job cluster '{key}' could not be created: {e}"))
}

/// Creates job cluster `key` of `run` and waits until it runs.
async fn start_job_cluster(
    runs: &Runs,
    run: &JobRunRow,
    spec: &Value,
    key: &str,
    clusters: &JobClusters,
) -> std::result::Result<String, String> {
    let runner = runs.runner();
    let cluster = job_cluster(spec, run.run_id, key)?;
    let cluster_id = runner.create_job_cluster(cluster, run.run_id, key, super::run_as(run))?;
    clusters.record(&cluster_id);
    runner.ensure_running(&cluster_id, super::run_as(run)).await.map(|()| cluster_id)
}

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

    async fn shared(
        &self,
        runs: &Runs,
        run: &JobRunRow,
        settings: &JobSettings,
        key: &str,
    ) -> std::result::Result<String, String> {
        let cell = self.cells.lock().unwrap_or_else(|p| p.into_inner()).entry(key.to_string()).or_default().clone();
        let spec = settings.job_cluster(key).and_then(|c| c.new_cluster.as_ref()).unwrap_or(&Value::Null);
        cell.get_or_init(|| start_job_cluster(runs, run, spec, key, self)).await.clone()
    }
}

/// What a task's compute is looked up in.
pub(super) struct Place<'a> {
    pub runs: &'a Runs,
    pub run: &'a JobRunRow,
    pub settings: &'a JobSettings,
    pub clusters: &'a JobClusters,
}

/// Where task `task` runs, its cluster started.
pub(super) async fn compute(place: Place<'_>, task: &TaskSettings) -> std::result::Result<TaskCompute, String> {
    let Place { runs, run, settings, clusters } = place;
    let key = task.task_key.as_str();
    if task.raw.get("sql_task").is_some() {
        return Ok(TaskCompute::Serverless);
    }
    if let Some(id) = &task.existing_cluster_id {
        return Ok(TaskCompute::Cluster(id.clone()));
    }
    if let Some(cluster_key) = &task.job_cluster_key {
        return clusters.shared(runs, run, settings, cluster_key).await.map(TaskCompute::Cluster);
    }
    if let Some(spec) = &task.new_cluster {
        return start_job_cluster(runs, run, spec, key, clusters).await.map(TaskCompute::Cluster);
    }
    Ok(TaskCompute::Serverless)
}
