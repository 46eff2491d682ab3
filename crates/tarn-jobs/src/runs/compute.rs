//! Where a task attempt runs: its existing cluster, the run's job cluster
//! (created once per run, when a task first needs it, and terminated when
//! the run ends), a cluster of its own, or serverless compute.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tarn_store::JobRunRow;
use tokio::sync::OnceCell;

use super::Runs;
use crate::settings::{JobSettings, TaskSettings};
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

    async fn shared(
        &self,
        runs: &Runs,
        run: &JobRunRow,
        settings: &JobSettings,
        key: &str,
    ) -> std::result::Result<String, String> {
        let cell = self.cells.lock().unwrap_or_else(|p| p.into_inner()).entry(key.to_string()).or_default().clone();
        let spec = settings.job_cluster(key).and_then(|c| c.new_cluster.clone()).unwrap_or(Value::Null);
        let init = async {
            let runner = runs.runner();
            let cluster_id = runner.create_job_cluster(&spec, run.run_id, key, &run.creator_user_name)?;
            self.record(&cluster_id);
            runner.ensure_running(&cluster_id, &run.creator_user_name).await.map(|()| cluster_id)
        };
        cell.get_or_init(|| init).await.clone()
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
        let runner = runs.runner();
        let id = runner.create_job_cluster(spec, run.run_id, key, &run.creator_user_name)?;
        clusters.record(&id);
        runner.ensure_running(&id, &run.creator_user_name).await?;
        return Ok(TaskCompute::Cluster(id));
    }
    Ok(TaskCompute::Serverless)
}
