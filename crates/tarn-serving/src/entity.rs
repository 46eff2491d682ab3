//! A served entity while it is deployed: its model's environment, its
//! worker processes (none while scaled to zero), the bound on requests in
//! flight, and its counters. Its build log and worker logs are files under
//! `<serving dir>/<endpoint>/<entity>/`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use tarn_compute::env::Environments;
use tarn_core::secret_ref::{SecretRef, SecretSource};
use tokio::sync::Semaphore;

use crate::config::ServedEntity;
use crate::error::{Result, ServingError};
use crate::model::{ModelFiles, ModelSource};
use crate::worker::{Ask, Launch, ModelWorker, Reply, log_tail};

/// A served entity's deployment state, as `state.deployment` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntityState {
    Creating,
    Ready,
    Failed(String),
    /// Its config was replaced before it finished deploying.
    Aborted,
}

impl EntityState {
    pub fn deployment(&self) -> &'static str {
        match self {
            Self::Creating => "DEPLOYMENT_CREATING",
            Self::Ready => "DEPLOYMENT_READY",
            Self::Failed(_) => "DEPLOYMENT_FAILED",
            Self::Aborted => "DEPLOYMENT_ABORTED",
        }
    }
}

/// What every entity of a tarn needs to deploy.
pub struct EntityContext {
    pub dir: PathBuf,
    pub script: PathBuf,
    pub models: Arc<dyn ModelSource>,
    /// Resolves `{{secrets/…}}` in `environment_vars`, as the entity's creator.
    pub secrets: Arc<dyn SecretSource>,
    pub envs: Environments,
    pub cores: usize,
    pub load_timeout: Duration,
    pub request_timeout: Duration,
}

/// Counters for `metrics`.
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub errors_4xx: AtomicU64,
    pub errors_5xx: AtomicU64,
    pub latency_us: AtomicU64,
    pub cold_starts: AtomicU64,
    pub last_cold_start_ms: AtomicU64,
}

pub struct LiveEntity {
    pub spec: ServedEntity,
    pub stats: Stats,
    dir: PathBuf,
    model: ModelFiles,
    python: PathBuf,
    ctx: Arc<EntityContext>,
    workers: RwLock<Vec<Arc<ModelWorker>>>,
    starting: tokio::sync::Mutex<()>,
    in_flight: Semaphore,
    last_used_ms: AtomicI64,
    started: AtomicUsize,
}

/// Where an entity's files are.
pub fn entity_dir(root: &Path, endpoint: &str, entity: &str) -> PathBuf {
    root.join(endpoint).join(entity)
}

/// A build log that the deployment appends to as it goes.
struct BuildLog(Mutex<Option<std::fs::File>>);

impl BuildLog {
    fn create(path: &Path) -> Self {
        let file = path
            .parent()
            .map(std::fs::create_dir_all)
            .and_then(|r| r.ok())
            .and_then(|()| std::fs::File::create(path).ok());
        Self(Mutex::new(file))
    }

    fn line(&self, text: &str) {
        if let Ok(mut guard) = self.0.lock()
            && let Some(file) = guard.as_mut()
        {
            let _ = writeln!(file, "{text}");
        }
    }
}

fn now_ms() -> i64 {
    tarn_core::time::now_ms()
}

impl LiveEntity {
    /// Builds the model's environment, starts the entity's workers and has
    /// each answer a first request; the error is the deployment message.
    pub async fn deploy(
        spec: ServedEntity,
        endpoint: &str,
        ctx: Arc<EntityContext>,
    ) -> std::result::Result<Arc<Self>, String> {
        let dir = entity_dir(&ctx.dir, endpoint, &spec.name);
        let log = Arc::new(BuildLog::create(&dir.join("build.log")));
        log.line(&format!("Deploying model '{}' version {}", spec.entity_name, spec.entity_version));
        let (model, env) = {
            let (ctx, spec, log) = (ctx.clone(), spec.clone(), log.clone());
            tokio::task::spawn_blocking(move || -> std::result::Result<_, String> {
                let model = ctx.models.files(&spec.entity_name, &spec.entity_version).map_err(|e| e.to_string())?;
                log.line(&format!("Model files: {}", model.dir.display()));
                log.line(&format!("Requirements: {}", model.requirements.join(", ")));
                let reqs: Vec<&str> = model.requirements.iter().map(String::as_str).collect();
                let progress = |line: &str| log.line(line);
                let env =
                    ctx.envs.ensure(&reqs, &progress).map_err(|e| format!("building the model's environment: {e}"))?;
                Ok((model, env))
            })
            .await
            .map_err(|e| format!("the build task failed: {e}"))?
        }
        .inspect_err(|e| log.line(&format!("FAILED: {e}")))?;
        let entity = Arc::new(Self {
            in_flight: Semaphore::new(spec.workload_size.concurrency()),
            spec,
            stats: Stats::default(),
            dir,
            model,
            python: env.python(),
            ctx,
            workers: RwLock::new(Vec::new()),
            starting: tokio::sync::Mutex::new(()),
            last_used_ms: AtomicI64::new(now_ms()),
            started: AtomicUsize::new(0),
        });
        log.line(&format!("Starting {} model worker(s)", entity.processes()));
        let began = Instant::now();
        entity.start_workers().await.inspect_err(|e| log.line(&format!("FAILED: {e}")))?;
        log.line(&format!("Ready: the model answered in {} ms", began.elapsed().as_millis()));
        Ok(entity)
    }

    fn processes(&self) -> usize {
        self.spec.workload_size.processes(self.ctx.cores)
    }

    /// Starts the workers, each proven by a first request (the model's
    /// serving input example, or a ping when it logged none).
    async fn start_workers(&self) -> std::result::Result<(), String> {
        let mut started = Vec::new();
        let launches = (0..self.processes()).map(|_| self.start_worker());
        for worker in futures_util::future::join_all(launches).await {
            started.push(Arc::new(worker?));
        }
        if let Ok(mut workers) = self.workers.write() {
            *workers = started;
        }
        Ok(())
    }

    async fn start_worker(&self) -> std::result::Result<ModelWorker, String> {
        let n = self.started.fetch_add(1, Ordering::Relaxed);
        let log_file = self.dir.join(format!("worker-{n}.log"));
        let environment_vars = self.environment_vars().await?;
        let worker = ModelWorker::spawn(Launch {
            python: &self.python,
            script: &self.ctx.script,
            model_dir: &self.model.dir,
            environment_vars: &environment_vars,
            log_file: log_file.clone(),
            load_timeout: self.ctx.load_timeout,
        })
        .await?;
        let deadline = SystemTime::now() + self.ctx.load_timeout;
        let (ask, body) = match &self.model.example {
            Some(example) => (Ask::Invoke, example.as_slice()),
            None => (Ask::Ping, &b""[..]),
        };
        match worker.call(ask, "application/json", body, deadline).await {
            Some(reply) if reply.status < 500 => Ok(worker),
            Some(reply) => Err(format!(
                "the model failed its first request ({}): {}",
                reply.status,
                String::from_utf8_lossy(&reply.body)
            )),
            None => Err(format!("the model worker exited on its first request{}", log_tail(&log_file))),
        }
    }

    /// The worker's environment variables, secret references resolved with
    /// the creator's permissions (read at each start, so a rotated secret
    /// reaches the next worker).
    async fn environment_vars(&self) -> std::result::Result<BTreeMap<String, String>, String> {
        let mut vars = BTreeMap::new();
        for (name, value) in &self.spec.environment_vars {
            let value = match SecretRef::parse(value) {
                None => value.clone(),
                Some(reference) => {
                    let reference = reference.map_err(|e| format!("environment_vars.{name}: {e}"))?;
                    self.ctx
                        .secrets
                        .secret(&self.spec.creator, &reference)
                        .await
                        .map_err(|e| format!("environment_vars.{name}: {e}"))?
                }
            };
            vars.insert(name.clone(), value);
        }
        Ok(vars)
    }

    /// A live worker, starting them first when the entity is scaled to zero
    /// (one cold start however many requests wait for it).
    async fn worker(&self) -> Result<Arc<ModelWorker>> {
        if let Some(worker) = self.pick() {
            return Ok(worker);
        }
        let _starting = self.starting.lock().await;
        if let Some(worker) = self.pick() {
            return Ok(worker);
        }
        let began = Instant::now();
        self.start_workers().await.map_err(|e| {
            ServingError::Unavailable(format!("Served entity '{}' could not start: {e}", self.spec.name))
        })?;
        self.stats.cold_starts.fetch_add(1, Ordering::Relaxed);
        self.stats.last_cold_start_ms.store(began.elapsed().as_millis() as u64, Ordering::Relaxed);
        tracing::info!(entity = %self.spec.name, ms = began.elapsed().as_millis() as u64, "served entity started from zero");
        self.pick()
            .ok_or_else(|| ServingError::Unavailable(format!("Served entity '{}' has no worker", self.spec.name)))
    }

    /// The live worker with the fewest requests in flight, the first of
    /// equals: a lone client's requests stay on one worker, whose model is
    /// warm in the CPU's caches (alternating between workers measured about
    /// 0.4 ms slower per request on a 5 ms forest), and concurrent ones
    /// spread. Dead workers are dropped.
    fn pick(&self) -> Option<Arc<ModelWorker>> {
        let workers = self.workers.read().ok()?;
        let alive: Vec<&Arc<ModelWorker>> = workers.iter().filter(|w| w.is_alive()).collect();
        if alive.len() < workers.len() {
            drop(workers);
            if let Ok(mut workers) = self.workers.write() {
                workers.retain(|w| w.is_alive());
            }
            return self.pick();
        }
        alive.into_iter().min_by_key(|w| w.in_flight()).cloned()
    }

    /// One request through a worker, bounded by the request timeout
    /// (answered 504 past it, as MLflow's scoring server does).
    pub async fn invoke(&self, content_type: &str, body: &Bytes) -> Result<Reply> {
        let began = Instant::now();
        self.last_used_ms.store(now_ms(), Ordering::Relaxed);
        let deadline = SystemTime::now() + self.ctx.request_timeout;
        let timeout = self.ctx.request_timeout;
        let answer = tokio::time::timeout(timeout, async {
            let _permit = self.in_flight.acquire().await.map_err(|_| unavailable(&self.spec.name))?;
            let worker = self.worker().await?;
            match worker.call(Ask::Invoke, content_type, body, deadline).await {
                Some(reply) => Ok(reply),
                None => Err(ServingError::Unavailable(format!(
                    "The model worker of served entity '{}' exited; the next request starts another",
                    self.spec.name
                ))),
            }
        })
        .await
        .unwrap_or_else(|_| {
            Ok(Reply {
                status: 504,
                mimetype: "application/json".into(),
                body: Bytes::from_static(b"Request processing time exceeded limit"),
            })
        });
        self.last_used_ms.store(now_ms(), Ordering::Relaxed);
        self.count(answer.as_ref().map_or(503, |r| r.status), began.elapsed());
        answer
    }

    fn count(&self, status: u16, took: Duration) {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        self.stats.latency_us.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        match status {
            400..=499 => self.stats.errors_4xx.fetch_add(1, Ordering::Relaxed),
            500.. => self.stats.errors_5xx.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
    }

    /// Stops the workers of an entity that scales to zero once it has been
    /// idle for `idle` with nothing in flight; true if it stopped them.
    pub fn scale_to_zero_if_idle(&self, idle: Duration) -> bool {
        let quiet = now_ms() - self.last_used_ms.load(Ordering::Relaxed) >= idle.as_millis() as i64;
        let nothing_in_flight = self.in_flight.available_permits() == self.spec.workload_size.concurrency();
        if !self.spec.scale_to_zero || !quiet || !nothing_in_flight {
            return false;
        }
        let Ok(mut workers) = self.workers.write() else { return false };
        if workers.is_empty() {
            return false;
        }
        workers.clear();
        tracing::info!(entity = %self.spec.name, "served entity scaled to zero");
        true
    }

    /// Worker processes running now.
    pub fn running(&self) -> usize {
        self.workers.read().map(|w| w.len()).unwrap_or(0)
    }

    /// Whether concurrent requests share one `predict`.
    pub fn batching(&self) -> bool {
        self.workers.read().ok().and_then(|w| w.first().map(|w| w.batching)).unwrap_or(false)
    }

    pub fn model(&self) -> &ModelFiles {
        &self.model
    }
}

fn unavailable(name: &str) -> ServingError {
    ServingError::Unavailable(format!("Served entity '{name}' is stopping"))
}
