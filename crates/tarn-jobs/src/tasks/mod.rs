//! Task runners: one task attempt's work on real compute. Notebooks,
//! Python files and wheels run in an execution context (a Python worker with `spark`,
//! `dbutils` and `mlflow` wired to tarn, as in a notebook), SQL files on the
//! warehouse, dbt projects with the dbt of the task's environment. The attempt's future owns its context: dropping it (a
//! timeout, a cancel) kills the worker.

mod compute;
mod context;
pub mod dbt;
mod notebook;
pub mod pipeline;
mod python;
mod sql;
mod wheel;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde_json::{Map, Value};
use tarn_compute::ClusterManager;
use tarn_compute::cluster::NewCluster;
use tarn_compute::context::Contexts;
use tarn_files::Files;
use tarn_sql::Statements;

pub use context::ContextPool;
pub use pipeline::{PipelineUpdates, UpdateEnd, UpdateRequest};
pub use sql::SqlObjects;

/// Where a task attempt runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskCompute {
    Cluster(String),
    Serverless,
}

/// One attempt of a task, its references already resolved.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub task_run_id: i64,
    pub task: Value,
    pub compute: TaskCompute,
    /// Notebook widgets: the job's parameters and the task's own.
    pub widgets: Map<String, Value>,
    /// Task values of the tasks before it, by task key.
    pub upstream_values: Map<String, Value>,
    /// Python packages beyond the base runtime: the task's environment's
    /// dependencies and its PyPI libraries.
    pub dependencies: Vec<String>,
    pub user: String,
    /// The run's checkout of its job's `git_source` (`crate::git`).
    pub git: Option<crate::git::GitCheckout>,
    /// Records the worker running the attempt on its task run, for a tarn
    /// that takes the run over.
    pub notes: WorkerNotes,
}

/// Where an attempt records the worker that runs it (`{"host", "pid",
/// "ticks", "reply_file"}`, `reply_file` only while its last command
/// runs): what `TaskRunner::take_over` reads.
#[derive(Clone)]
pub struct WorkerNotes(std::sync::Arc<dyn Fn(&Value) + Send + Sync>);

impl WorkerNotes {
    pub fn new(note: impl Fn(&Value) + Send + Sync + 'static) -> Self {
        Self(std::sync::Arc::new(note))
    }

    pub fn record(&self, worker: &Value) {
        (self.0)(worker);
    }
}

impl Default for WorkerNotes {
    fn default() -> Self {
        Self::new(|_| {})
    }
}

impl std::fmt::Debug for WorkerNotes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WorkerNotes")
    }
}

/// How an attempt's work ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    Success,
    Failed { error: String, trace: Option<String> },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub ending: Ending,
    /// `dbutils.notebook.exit`'s value.
    pub notebook_result: Option<String>,
    /// What the task printed.
    pub logs: String,
    /// Task values it set.
    pub values: Map<String, Value>,
    /// The cluster it ran on, for its usage record.
    pub cluster_id: Option<String>,
    /// More fields of the task's output (`dbt_output`).
    pub output: Map<String, Value>,
}

impl Outcome {
    pub fn failed(error: impl Into<String>) -> Self {
        Self {
            ending: Ending::Failed { error: error.into(), trace: None },
            notebook_result: None,
            logs: String::new(),
            values: Map::new(),
            cluster_id: None,
            output: Map::new(),
        }
    }

    fn succeeded(logs: String) -> Self {
        Self {
            ending: Ending::Success,
            notebook_result: None,
            logs,
            values: Map::new(),
            cluster_id: None,
            output: Map::new(),
        }
    }
}

/// A boxed future that can cross threads, for [`TaskRunner`]'s methods.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a run's driver asks of compute: run an attempt's work, and the job
/// clusters and existing clusters it runs on. [`Engines`] is the real one;
/// the driver's Rust tests run a fake one, so driving needs no Python or Sail.
pub trait TaskRunner: Send + Sync + 'static {
    /// Runs one attempt to its end. Dropping the future stops the work.
    fn run(&self, attempt: Attempt) -> BoxFuture<'_, Outcome>;
    /// Waits until the cluster can run work, starting it if it is terminated.
    fn ensure_running<'a>(&'a self, cluster_id: &'a str, user: &'a str) -> BoxFuture<'a, Result<(), String>>;
    /// Creates job cluster `key` of run `run_id` (its spec named and
    /// tagged for the run).
    fn create_job_cluster(&self, cluster: NewCluster, run_id: i64, key: &str, user: &str) -> Result<String, String>;
    /// Terminates a job cluster once its run is done.
    fn stop_job_cluster(&self, cluster_id: &str, run_id: i64);
    /// The cluster's cores, for an attempt's usage record; `None` if it is gone.
    fn cluster_cores(&self, cluster_id: &str) -> Option<u32>;
    /// The outcome of an attempt an earlier tarn left running, from the
    /// `worker` it recorded (see [`Attempt::notes`]). Dropping the future
    /// stops that worker.
    fn take_over<'a>(&'a self, worker: &'a Value) -> BoxFuture<'a, Outcome> {
        let _ = worker;
        Box::pin(async { Outcome::failed("tarn stopped while this attempt was running; it cannot be taken over") })
    }
}

/// The compute and files task runners use. Cheap to clone.
#[derive(Clone)]
pub struct Engines {
    pub contexts: Contexts,
    pub clusters: ClusterManager,
    pub files: Files,
    pub statements: Statements,
    /// How long a task waits for its cluster to start.
    pub cluster_start_timeout: Duration,
    /// Wheels from volumes and the workspace, copied to be installed.
    pub library_files: std::sync::Arc<dyn tarn_compute::libraries::LibraryFiles>,
    /// Task contexts kept warm between tasks.
    pub pool: ContextPool,
    /// Saved queries and alerts, for `sql_task.query` and `sql_task.alert`.
    pub sql_objects: Option<std::sync::Arc<dyn SqlObjects>>,
    /// Resolves `{{secrets/…}}` in parameters, as the run's user.
    pub secrets: Option<std::sync::Arc<dyn tarn_core::secret_ref::SecretSource>>,
    /// Whether the run's principal may read the notebook or file a task runs.
    pub sources: Option<std::sync::Arc<dyn SourceAccess>>,
    /// Where `dbt_task`s reach the warehouse; without it they fail.
    pub dbt: Option<dbt::DbtConfig>,
    /// Where workers write a task's last result (`$TARN_HOME/runtime/replies`),
    /// on storage every replica reads.
    pub replies: std::path::PathBuf,
}

/// Whether a principal may read a notebook or file a task runs (workspace
/// permissions, a volume's grants): the wiring's answer, as tarn-jobs knows
/// neither.
pub trait SourceAccess: Send + Sync {
    fn check(&self, user: &str, path: &str) -> Result<(), String>;
}

impl Engines {
    /// Refuses a source the run's principal may not read.
    pub(crate) fn may_read(&self, user: &str, path: &str) -> Result<(), String> {
        self.sources.as_deref().map_or(Ok(()), |sources| sources.check(user, path))
    }
}

impl TaskRunner for Engines {
    fn run(&self, attempt: Attempt) -> BoxFuture<'_, Outcome> {
        Box::pin(self.run_attempt(attempt))
    }

    fn ensure_running<'a>(&'a self, cluster_id: &'a str, user: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(Engines::ensure_running(self, cluster_id, user))
    }

    fn create_job_cluster(&self, cluster: NewCluster, _: i64, key: &str, user: &str) -> Result<String, String> {
        Engines::create_job_cluster(self, cluster, key, user)
    }

    fn stop_job_cluster(&self, cluster_id: &str, run_id: i64) {
        Engines::stop_job_cluster(self, cluster_id, run_id);
    }

    fn cluster_cores(&self, cluster_id: &str) -> Option<u32> {
        self.clusters.get(cluster_id).ok().map(|c| c.cores)
    }

    fn take_over<'a>(&'a self, worker: &'a Value) -> BoxFuture<'a, Outcome> {
        Box::pin(context::take_over(worker))
    }
}

impl Engines {
    /// Runs one attempt to its end.
    async fn run_attempt(&self, attempt: Attempt) -> Outcome {
        let task = &attempt.task;
        if let Some(spec) = task.get("notebook_task") {
            return notebook::run(self, &attempt, spec).await;
        }
        if let Some(spec) = task.get("spark_python_task") {
            return python::run(self, &attempt, spec).await;
        }
        if let Some(spec) = task.get("sql_task") {
            return sql::run(self, &attempt, spec).await;
        }
        if let Some(spec) = task.get("python_wheel_task") {
            return wheel::run(self, &attempt, spec).await;
        }
        if let Some(spec) = task.get("dbt_task") {
            return dbt::run(self, &attempt, spec).await;
        }
        Outcome::failed("tarn cannot run this task type yet")
    }
}
