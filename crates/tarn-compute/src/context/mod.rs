//! Execution contexts: a Python worker per context, bound to a cluster's
//! engine (or to the serverless cluster), running commands in order with
//! state kept between them.
//!
//! The worker reaches the engine through tarn's gateway, with a token issued
//! for the context and revoked with it, so what it runs gets the gateway's
//! rewrites and the catalog's checks like any other Spark Connect client.
//! Serverless contexts have a memory limit and are destroyed when idle; a
//! cluster's contexts are destroyed when the cluster stops.

mod command;
mod magic;
mod pool;
mod worker;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::json;
use tarn_core::secret_ref::{SecretRef, SecretSource};
use tarn_core::time::now_ms;
use tarn_store::Store;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

pub use command::{CommandSnapshot, CommandStatus, Language};
use command::{Commands, Interpreter, Job};
pub use pool::{RefillHold, WorkerPool};

use crate::cluster::SERVERLESS_TAG;
use crate::env::{Environments, PythonEnv};
use crate::libraries::LibraryFiles;
use crate::managed::{ManagedCluster, ManagedSpec};
use crate::{Cluster, ClusterManager, ComputeError};

pub const SERVERLESS_NAME: &str = "Serverless compute";
/// A job task's commands run until the task's own timeout stops them.
const UNLIMITED: Duration = Duration::from_secs(365 * 24 * 3600);
/// How often living serverless contexts count as activity on their engine.
const SERVERLESS_KEEPALIVE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct ContextConfig {
    /// `$TARN_HOME`: workers' files go to `runtime/`, their logs to `logs/workers/`.
    pub home: PathBuf,
    /// Where workers reach tarn's REST API (`dbutils.fs`, `mlflow`).
    pub api_url: String,
    /// Ready workers kept for new contexts.
    pub warm_workers: usize,
    /// How long a command may run before it is interrupted.
    pub command_timeout: Duration,
    /// Memory a serverless context's commands may take.
    pub serverless_memory_mb: u64,
    /// A serverless context unused this long is destroyed.
    pub serverless_idle: Duration,
    /// How long a serverless context waits for its engine to start.
    pub serverless_start_timeout: Duration,
    /// Characters of text output a command keeps.
    pub output_limit: usize,
    /// Rows of a table result.
    pub row_limit: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContextStatus {
    Running,
    Error,
}

impl ContextStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "Running",
            Self::Error => "Error",
        }
    }
}

/// A context as `contexts/status` shows it.
#[derive(Debug, Clone)]
pub struct ContextSnapshot {
    pub id: String,
    pub status: ContextStatus,
    /// The cluster the context's engine runs on (the serverless cluster for
    /// serverless contexts).
    pub cluster_id: String,
    pub serverless: bool,
    pub error: Option<String>,
    /// The context's Python worker process.
    pub pid: u32,
}

/// What a job task's context starts with.
#[derive(Debug, Clone, Default)]
pub struct TaskSetup {
    /// Packages beyond the base runtime (a cached environment per set).
    pub dependencies: Vec<String>,
    /// Fields for the worker's attach request.
    pub attach: serde_json::Map<String, serde_json::Value>,
}

/// Where a new context runs.
#[derive(Debug, Clone)]
pub enum Compute {
    Cluster(String),
    Serverless,
}

pub struct Context {
    id: String,
    cluster_id: String,
    serverless: bool,
    language: Language,
    jobs: mpsc::UnboundedSender<Job>,
    /// The worker's process; a restart (`%pip`, `restartPython`) replaces it.
    pid: std::sync::atomic::AtomicU32,
    cancel: Notify,
    /// Signalled whenever one of its commands ends.
    done: Notify,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    commands: Commands,
    last_used: Instant,
    failure: Option<String>,
}

impl Context {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn commands(&self) -> CommandsGuard<'_> {
        CommandsGuard(self.state())
    }

    fn touch(&self) {
        self.state().last_used = Instant::now();
    }

    fn fail(&self, why: String) {
        self.state().failure = Some(why);
    }

    /// Resolves once a cancel was asked for command `id` while it runs.
    async fn cancel_requested(&self, id: &str) {
        loop {
            self.cancel.notified().await;
            if self.commands().status(id) == Some(CommandStatus::Cancelling) {
                return;
            }
        }
    }
}

struct CommandsGuard<'a>(MutexGuard<'a, State>);

impl std::ops::Deref for CommandsGuard<'_> {
    type Target = Commands;
    fn deref(&self) -> &Commands {
        &self.0.commands
    }
}

impl std::ops::DerefMut for CommandsGuard<'_> {
    fn deref_mut(&mut self) -> &mut Commands {
        &mut self.0.commands
    }
}

/// The execution contexts service. Cheap to clone.
#[derive(Clone)]
pub struct Contexts {
    inner: Arc<Inner>,
}

struct Inner {
    clusters: ClusterManager,
    store: Arc<Store>,
    pool: WorkerPool,
    files: Arc<dyn LibraryFiles>,
    /// Resolves `{{secrets/…}}` in a cluster's `spark_env_vars` and `spark_conf`.
    secrets: Arc<dyn SecretSource>,
    serverless: ManagedCluster,
    config: ContextConfig,
    contexts: Mutex<HashMap<String, Arc<Context>>>,
    /// When the serverless engine was last kept alive for its contexts.
    serverless_kept: Mutex<Option<Instant>>,
}

/// What a cluster gives its contexts' workers at attach.
#[derive(Default)]
struct ClusterConf {
    env: BTreeMap<String, String>,
    spark_conf: BTreeMap<String, String>,
    /// Values resolved from secret references: the kernel redacts them.
    secret_values: Vec<String>,
}

fn token_comment(context_id: &str) -> String {
    format!("execution context {context_id}")
}

impl Contexts {
    pub fn new(
        clusters: ClusterManager,
        store: Arc<Store>,
        envs: Environments,
        files: Arc<dyn LibraryFiles>,
        secrets: Arc<dyn SecretSource>,
        config: ContextConfig,
    ) -> Result<Self, ComputeError> {
        let warm = clusters.runtime_requirements(crate::runtime::DEFAULT_KEY)?;
        let pool = WorkerPool::new(
            envs,
            warm,
            config.home.join("runtime"),
            config.home.join("logs").join("workers"),
            config.warm_workers,
        )?;
        let spec = ManagedSpec {
            name: SERVERLESS_NAME.to_string(),
            tag: SERVERLESS_TAG,
            tag_value: "default".to_string(),
            auto_stop_mins: 10,
            start_timeout: config.serverless_start_timeout,
        };
        let serverless = ManagedCluster::new(clusters.clone(), spec);
        let inner = Inner {
            clusters,
            store,
            pool,
            files,
            secrets,
            serverless,
            config,
            contexts: Mutex::new(HashMap::new()),
            serverless_kept: Mutex::new(None),
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// Starts the warm workers and the task that destroys idle serverless
    /// contexts and those whose cluster stopped.
    pub fn start_background(&self) -> tokio::task::JoinHandle<()> {
        self.inner.pool.refill();
        let contexts = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                contexts.reap();
            }
        })
    }

    fn contexts(&self) -> MutexGuard<'_, HashMap<String, Arc<Context>>> {
        self.inner.contexts.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn reap(&self) {
        let idle = self.inner.config.serverless_idle;
        let all: Vec<Arc<Context>> = self.contexts().values().cloned().collect();
        let mut serverless_alive = None;
        for context in all {
            let running = context.commands().any_active();
            let expired = context.serverless && !running && context.state().last_used.elapsed() >= idle;
            let cluster_gone = !self.engine_running(&context.cluster_id);
            if expired || cluster_gone {
                tracing::info!(context_id = context.id, expired, cluster_gone, "destroying an execution context");
                self.remove(&context.id);
            } else if context.serverless {
                serverless_alive = Some(context.cluster_id.clone());
            }
        }
        // The serverless engine stays up while its contexts live (they
        // expire on their own idle limit, not the engine's).
        if let Some(cluster_id) = serverless_alive {
            let mut last = self.inner.serverless_kept.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_none_or(|at| at.elapsed() >= SERVERLESS_KEEPALIVE) {
                self.inner.clusters.record_activity(&cluster_id);
                *last = Some(Instant::now());
            }
        }
    }

    fn engine_running(&self, cluster_id: &str) -> bool {
        matches!(self.inner.clusters.engine_port(cluster_id), Ok(Some(_)))
    }

    /// Holds off the warm pool's replacements until the hold is dropped
    /// (see [`WorkerPool::hold`]).
    pub fn hold_refill(&self) -> RefillHold {
        self.inner.pool.hold()
    }

    /// Creates a context with a warm worker attached to the compute's engine.
    pub async fn create(&self, compute: Compute, language: Language, user: &str) -> Result<String, ComputeError> {
        self.create_with(compute, language, user, TaskSetup::default()).await
    }

    /// `create`, set up for a job task: its environment's dependencies and
    /// more for the worker's attach (`widgets`, upstream `task_values`, `argv`).
    pub async fn create_with(
        &self,
        compute: Compute,
        language: Language,
        user: &str,
        task: TaskSetup,
    ) -> Result<String, ComputeError> {
        let (cluster_id, serverless, cluster_conf) = match compute {
            Compute::Cluster(id) => {
                let cluster = self.inner.clusters.get(&id)?;
                if !self.engine_running(&id) {
                    return Err(ComputeError::InvalidState {
                        cluster_id: id,
                        state: cluster.state.as_str().to_string(),
                    });
                }
                let conf = self.cluster_conf(&cluster).await?;
                (id, false, conf)
            }
            Compute::Serverless => (self.inner.serverless.engine(user).await?.cluster_id, true, ClusterConf::default()),
        };
        let base = self.inner.clusters.python_env(&cluster_id)?;
        let env = self.task_env(&base, &task.dependencies).await?;
        let mut worker = self.inner.pool.take(&env).await?;
        let id = context_id();
        let token = self.issue_token(&id, user)?;
        let config = &self.inner.config;
        let workdir = config.home.join("driver").join(&cluster_id);
        if let Err(e) = std::fs::create_dir_all(&workdir) {
            tracing::warn!(error = %e, "creating {}", workdir.display());
        }
        let mut request = json!({
            "op": "attach",
            "remote": format!("{};token={token}", self.inner.clusters.connect_url(&cluster_id)),
            "api_url": config.api_url,
            "token": token,
            "cluster_id": cluster_id,
            "workdir": workdir,
            "memory_mb": serverless.then_some(config.serverless_memory_mb),
            "output_limit": config.output_limit,
            "row_limit": config.row_limit,
            "env": cluster_conf.env,
            "spark_conf": cluster_conf.spark_conf,
            "secret_values": cluster_conf.secret_values,
        });
        if let Some(fields) = request.as_object_mut() {
            fields.extend(task.attach);
        }
        if let Err(why) = attach(&mut worker, &request).await {
            self.revoke_token(&id);
            return Err(ComputeError::Engine(format!("the Python worker could not attach: {why}")));
        }
        let (jobs, receiver) = mpsc::unbounded_channel();
        let context = Arc::new(Context {
            id: id.clone(),
            cluster_id,
            serverless,
            language,
            jobs,
            pid: worker.pid.into(),
            cancel: Notify::new(),
            done: Notify::new(),
            state: Mutex::new(State { commands: Commands::default(), last_used: Instant::now(), failure: None }),
        });
        self.inner.clusters.record_activity(&context.cluster_id);
        self.contexts().insert(id.clone(), context.clone());
        let interpreter = Interpreter {
            pool: self.inner.pool.clone(),
            files: self.inner.files.clone(),
            attach: request,
            base: env.clone(),
            steps: Vec::new(),
            env,
        };
        tokio::spawn(command::run(context, worker, receiver, self.inner.clusters.clone(), interpreter));
        Ok(id)
    }

    /// A job task's environment: the compute's, with the task's libraries
    /// installed over it; one that fails to install fails the task with the
    /// installer's message.
    async fn task_env(&self, base: &PythonEnv, dependencies: &[String]) -> Result<PythonEnv, ComputeError> {
        if dependencies.is_empty() {
            return Ok(base.clone());
        }
        let steps = dependencies.iter().map(|d| vec![d.clone()]).collect();
        let overlay = self.inner.pool.overlay(base, steps).await?;
        if let Some(failed) = overlay.failure() {
            return Err(ComputeError::Environment(format!(
                "installing {}: {}",
                failed.step.join(" "),
                failed.error.as_deref().unwrap_or_default()
            )));
        }
        Ok(overlay.env)
    }

    /// A cluster's `spark_env_vars` and `spark_conf` for its contexts, secret
    /// references resolved with the cluster creator's permissions.
    async fn cluster_conf(&self, cluster: &Cluster) -> Result<ClusterConf, ComputeError> {
        let mut conf = ClusterConf::default();
        let maps = [("spark_env_vars", &cluster.spec.spark_env_vars, &mut conf.env)];
        for (field, map, out) in
            maps.into_iter().chain([("spark_conf", &cluster.spec.spark_conf, &mut conf.spark_conf)])
        {
            for (name, value) in map.iter().flatten() {
                let value = match SecretRef::parse(value) {
                    None => value.clone(),
                    Some(reference) => {
                        let reference =
                            reference.map_err(|e| ComputeError::InvalidSpec(format!("{field}.{name}: {e}")))?;
                        let secret = self
                            .inner
                            .secrets
                            .secret(&cluster.row.creator, &reference)
                            .await
                            .map_err(|e| ComputeError::InvalidRequest(format!("{field}.{name}: {e}")))?;
                        conf.secret_values.push(secret.clone());
                        secret
                    }
                };
                out.insert(name.clone(), value);
            }
        }
        Ok(conf)
    }

    fn issue_token(&self, context_id: &str, user: &str) -> Result<String, ComputeError> {
        let store = &self.inner.store;
        let user = store.ensure_user(user, user, now_ms())?;
        Ok(store.create_engine_token(&user, &token_comment(context_id), now_ms())?.0)
    }

    fn revoke_token(&self, context_id: &str) {
        if let Err(e) = self.inner.store.revoke_engine_tokens(Some(&token_comment(context_id))) {
            tracing::warn!(context_id, error = %e, "revoking a context token");
        }
    }

    fn context(&self, id: &str) -> Result<Arc<Context>, ComputeError> {
        self.contexts().get(id).cloned().ok_or_else(|| ComputeError::ContextNotFound(id.to_string()))
    }

    /// The context, checked against the cluster id a caller named.
    fn lookup(&self, cluster_id: Option<&str>, id: &str) -> Result<Arc<Context>, ComputeError> {
        let context = self.context(id)?;
        match cluster_id {
            Some(c) if !c.is_empty() && !context.serverless && c != context.cluster_id => {
                Err(ComputeError::ContextNotFound(id.to_string()))
            }
            _ => Ok(context),
        }
    }

    /// Why the context cannot run commands: its worker stopped, or its engine.
    fn failure(&self, context: &Context) -> Option<String> {
        let failure = context.state().failure.clone();
        failure.or_else(|| {
            (!self.engine_running(&context.cluster_id))
                .then(|| format!("Cluster {} is not running", context.cluster_id))
        })
    }

    pub fn status(&self, cluster_id: Option<&str>, id: &str) -> Result<ContextSnapshot, ComputeError> {
        let context = self.lookup(cluster_id, id)?;
        let error = self.failure(&context);
        Ok(ContextSnapshot {
            id: context.id.clone(),
            status: if error.is_some() { ContextStatus::Error } else { ContextStatus::Running },
            cluster_id: context.cluster_id.clone(),
            serverless: context.serverless,
            error,
            pid: context.pid.load(std::sync::atomic::Ordering::SeqCst),
        })
    }

    /// Ends the context: its worker is killed (a running command with it) and
    /// its token revoked.
    pub fn destroy(&self, cluster_id: Option<&str>, id: &str) -> Result<(), ComputeError> {
        self.lookup(cluster_id, id)?;
        self.remove(id);
        Ok(())
    }

    fn remove(&self, id: &str) {
        if let Some(context) = self.contexts().remove(id) {
            crate::process::signal(context.pid.load(std::sync::atomic::Ordering::SeqCst), libc::SIGKILL);
            self.revoke_token(id);
        }
    }

    /// Queues a command; `language` defaults to the context's.
    pub fn execute(
        &self,
        cluster_id: Option<&str>,
        id: &str,
        language: Option<Language>,
        code: String,
    ) -> Result<String, ComputeError> {
        let context = self.lookup(cluster_id, id)?;
        if let Some(why) = self.failure(&context) {
            return Err(ComputeError::ContextFailed(format!("Context {id} cannot run commands: {why}")));
        }
        let command_id = uuid::Uuid::new_v4().simple().to_string();
        context.commands().add(&command_id);
        context.touch();
        let job = Job {
            id: command_id.clone(),
            language: language.unwrap_or(context.language),
            code,
            filename: None,
            request: None,
            timeout: self.inner.config.command_timeout,
            reply_file: None,
        };
        context.jobs.send(job).map_err(|_| ComputeError::ContextFailed(format!("Context {id} has stopped")))?;
        Ok(command_id)
    }

    /// Runs a command to its end (a job task's cell or file): no command
    /// timeout but the caller's, who drops the context to stop it. With a
    /// `reply_file`, the worker also writes its result there before it
    /// answers, so the result outlives this tarn (see tarn-jobs'
    /// `take_over`).
    pub async fn run(
        &self,
        id: &str,
        language: Language,
        code: String,
        filename: Option<String>,
        reply_file: Option<PathBuf>,
    ) -> Result<CommandSnapshot, ComputeError> {
        let job = Job { id: String::new(), language, code, filename, request: None, timeout: UNLIMITED, reply_file };
        self.run_job(id, job).await
    }

    /// Readies a context whose job task ended for the next task on the same
    /// compute (the worker's `reset`: fresh globals and Spark session, the
    /// new task's `attach` fields).
    pub async fn reset(
        &self,
        id: &str,
        attach: serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), ComputeError> {
        let mut request = attach;
        request.insert("op".into(), json!("reset"));
        let job = Job {
            id: String::new(),
            language: Language::Python,
            code: String::new(),
            filename: None,
            request: Some(serde_json::Value::Object(request)),
            timeout: UNLIMITED,
            reply_file: None,
        };
        let snapshot = self.run_job(id, job).await?;
        let results = snapshot.results.unwrap_or_default();
        match results.get("ok").and_then(serde_json::Value::as_bool) {
            Some(true) => Ok(()),
            _ => Err(ComputeError::ContextFailed(format!("Context {id} could not be reset: {results}"))),
        }
    }

    async fn run_job(&self, id: &str, mut job: Job) -> Result<CommandSnapshot, ComputeError> {
        let context = self.context(id)?;
        if let Some(why) = self.failure(&context) {
            return Err(ComputeError::ContextFailed(format!("Context {id} cannot run commands: {why}")));
        }
        let command_id = uuid::Uuid::new_v4().simple().to_string();
        context.commands().add(&command_id);
        context.touch();
        job.id = command_id.clone();
        context.jobs.send(job).map_err(|_| ComputeError::ContextFailed(format!("Context {id} has stopped")))?;
        loop {
            let notified = context.done.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let snapshot = context.commands().get(&command_id);
            match snapshot {
                Some(s) if s.status.is_done() => return Ok(s),
                Some(_) => {}
                None => return Err(ComputeError::CommandNotFound(command_id)),
            }
            notified.await;
        }
    }

    pub fn command_status(
        &self,
        cluster_id: Option<&str>,
        id: &str,
        command_id: &str,
    ) -> Result<CommandSnapshot, ComputeError> {
        let context = self.lookup(cluster_id, id)?;
        let snapshot = context.commands().get(command_id);
        snapshot.ok_or_else(|| ComputeError::CommandNotFound(command_id.to_string()))
    }

    /// Asks a command to stop and waits up to `wait` for it to; a queued
    /// command is cancelled at once, a running one interrupted.
    pub async fn cancel(
        &self,
        cluster_id: Option<&str>,
        id: &str,
        command_id: &str,
        wait: Duration,
    ) -> Result<CommandSnapshot, ComputeError> {
        let context = self.lookup(cluster_id, id)?;
        {
            let mut commands = context.commands();
            match commands.status(command_id) {
                None => return Err(ComputeError::CommandNotFound(command_id.to_string())),
                Some(CommandStatus::Queued) => {
                    let results = command::error_results("Command cancelled", "The command was cancelled by a user.");
                    commands.set(command_id, CommandStatus::Cancelled, Some(results));
                }
                Some(CommandStatus::Running) => commands.set(command_id, CommandStatus::Cancelling, None),
                Some(_) => {}
            }
        }
        context.cancel.notify_one();
        let deadline = Instant::now() + wait;
        loop {
            let snapshot = self.command_status(cluster_id, id, command_id)?;
            if snapshot.status.is_done() || Instant::now() >= deadline {
                return Ok(snapshot);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The contexts alive now, for listings and tools.
    pub fn list(&self) -> Vec<ContextSnapshot> {
        let ids: Vec<String> = self.contexts().keys().cloned().collect();
        ids.iter().filter_map(|id| self.status(None, id).ok()).collect()
    }

    /// Ends every context (tarn is stopping).
    pub fn shutdown(&self) {
        let ids: Vec<String> = self.contexts().keys().cloned().collect();
        for id in ids {
            self.remove(&id);
        }
        self.inner.pool.drain();
    }
}

/// Binds a worker to its context; the worker answers `{"ok": true}`.
async fn attach(worker: &mut worker::Worker, request: &serde_json::Value) -> Result<(), String> {
    let reply = worker.request(request).await.map_err(|exit| exit.0)?;
    if reply.get("ok").and_then(serde_json::Value::as_bool) == Some(true) {
        return Ok(());
    }
    Err(reply.get("error").and_then(serde_json::Value::as_str).unwrap_or("no answer").to_string())
}

/// Databricks context ids are large decimal numbers.
fn context_id() -> String {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let mut n = [0u8; 8];
    n.copy_from_slice(&bytes[..8]);
    (u64::from_le_bytes(n) >> 1).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn context_ids_are_positive_decimal_numbers() {
        let a = super::context_id();
        let b = super::context_id();
        assert_ne!(a, b);
        assert!(a.parse::<i64>().is_ok_and(|n| n >= 0), "{a}");
    }
}
