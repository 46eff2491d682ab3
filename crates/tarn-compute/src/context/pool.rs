//! Python workers kept warm: a worker spends seconds importing PySpark and
//! pandas, so the pool starts them ahead (in the default runtime's
//! environment) and a new context in that environment takes one that is
//! ready (or waits for the one on its way: it is ready sooner than one
//! started then), and the pool starts its replacement, unless someone holds
//! replacements off while their work starts. Contexts in other
//! environments (another runtime, cluster libraries, a task's or a
//! notebook's own) start a worker cold.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use tarn_core::time::now_ms;

use super::worker::{DBUTILS, DLT, KERNEL, PIPELINE, Worker};
use crate::ComputeError;
use crate::env::{Environments, Overlay, PythonEnv};

#[derive(Clone)]
pub struct WorkerPool {
    inner: Arc<Inner>,
}

struct Inner {
    envs: Environments,
    /// The requirements of the environment warm workers run in, and where it is.
    warm: Vec<String>,
    warm_dir: PathBuf,
    kernel: PathBuf,
    log_dir: PathBuf,
    /// How many ready workers to keep.
    target: usize,
    idle: Mutex<Vec<Worker>>,
    starting: AtomicUsize,
    /// Told when a worker the pool started is ready, or failed to start.
    ready: Notify,
    /// Holds on replacements ([`WorkerPool::hold`]) not yet released.
    holds: AtomicUsize,
    spawned: AtomicU64,
}

impl WorkerPool {
    /// Writes the worker's files under `runtime_dir`; logs go to `log_dir`.
    pub fn new(
        envs: Environments,
        warm: Vec<String>,
        runtime_dir: PathBuf,
        log_dir: PathBuf,
        target: usize,
    ) -> Result<Self, ComputeError> {
        let write = |name: &str, text: &str| {
            let path = runtime_dir.join(name);
            std::fs::write(&path, text)
                .map_err(|e| ComputeError::Engine(format!("writing {}: {e}", path.display())))
                .map(|()| path)
        };
        std::fs::create_dir_all(&runtime_dir)
            .map_err(|e| ComputeError::Engine(format!("creating {}: {e}", runtime_dir.display())))?;
        write("dbutils.py", DBUTILS)?;
        write("pipeline.py", PIPELINE)?;
        write("dlt.py", DLT)?;
        let kernel = write("kernel.py", KERNEL)?;
        let warm_dir = envs.location(&warm.iter().map(String::as_str).collect::<Vec<_>>());
        let inner = Inner {
            envs,
            warm,
            warm_dir,
            kernel,
            log_dir,
            target,
            idle: Mutex::new(Vec::new()),
            starting: AtomicUsize::new(0),
            ready: Notify::new(),
            holds: AtomicUsize::new(0),
            spawned: AtomicU64::new(0),
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Worker>> {
        self.inner.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A ready worker in `env`: a warm one if there is one, else the one on
    /// its way (sooner ready than one started now), else a new one.
    pub async fn take(&self, env: &PythonEnv) -> Result<Worker, ComputeError> {
        if env.dir != self.inner.warm_dir {
            return self.spawn_at(env).await;
        }
        loop {
            // Listening before looking: a worker ready in between still wakes us.
            let ready = self.inner.ready.notified();
            tokio::pin!(ready);
            ready.as_mut().enable();
            let warm = {
                let mut idle = self.idle();
                idle.retain_mut(Worker::is_alive);
                idle.pop()
            };
            if let Some(worker) = warm {
                self.refill();
                return Ok(worker);
            }
            if self.inner.starting.load(Ordering::SeqCst) == 0 {
                break;
            }
            ready.await;
        }
        self.refill();
        self.spawn_at(env).await
    }

    /// Keeps the pool from starting replacements until the hold is dropped:
    /// a worker importing its libraries takes CPU from work that has just
    /// begun (a pipeline update's first flow ran a fifth slower beside one).
    pub fn hold(&self) -> RefillHold {
        self.inner.holds.fetch_add(1, Ordering::SeqCst);
        RefillHold { pool: self.clone() }
    }

    /// Starts workers in the background until `target` are ready or
    /// starting, unless a hold is on.
    pub fn refill(&self) {
        if self.inner.holds.load(Ordering::SeqCst) > 0 {
            return;
        }
        loop {
            let have = self.idle().len() + self.inner.starting.load(Ordering::SeqCst);
            if have >= self.inner.target {
                return;
            }
            self.inner.starting.fetch_add(1, Ordering::SeqCst);
            let pool = self.clone();
            tokio::spawn(async move {
                let result = pool.spawn().await;
                match result {
                    Ok(worker) => pool.idle().push(worker),
                    Err(e) => tracing::warn!(error = %e, "warming a Python worker"),
                }
                pool.inner.starting.fetch_sub(1, Ordering::SeqCst);
                pool.inner.ready.notify_waiters();
            });
        }
    }

    /// `steps` installed over `base` (a cached overlay, built the first time).
    pub async fn overlay(&self, base: &PythonEnv, steps: Vec<Vec<String>>) -> Result<Overlay, ComputeError> {
        let envs = self.inner.envs.clone();
        let base = base.clone();
        tokio::task::spawn_blocking(move || {
            envs.ensure_overlay(&base, &steps, &|step: &str| tracing::info!("environment: {step}"))
        })
        .await
        .map_err(|e| ComputeError::Environment(e.to_string()))?
        .map_err(|e| ComputeError::Environment(e.to_string()))
    }

    /// A worker in the warm environment (built first if it is missing).
    async fn spawn(&self) -> Result<Worker, ComputeError> {
        let envs = self.inner.envs.clone();
        let requirements = self.inner.warm.clone();
        let env = tokio::task::spawn_blocking(move || {
            let requirements: Vec<&str> = requirements.iter().map(String::as_str).collect();
            envs.ensure(&requirements, &|step: &str| tracing::info!("environment: {step}"))
        })
        .await
        .map_err(|e| ComputeError::Environment(e.to_string()))?
        .map_err(|e| ComputeError::Environment(e.to_string()))?;
        self.spawn_at(&env).await
    }

    pub async fn spawn_at(&self, env: &PythonEnv) -> Result<Worker, ComputeError> {
        let n = self.inner.spawned.fetch_add(1, Ordering::Relaxed);
        let log = self.inner.log_dir.join(format!("worker-{}-{n}.log", now_ms()));
        Worker::spawn(&env.python(), &self.inner.kernel, log).await
    }

    /// Stops the warm workers (they end when their stdin closes).
    pub fn drain(&self) {
        self.idle().clear();
    }
}

/// See [`WorkerPool::hold`]; dropping the last one refills the pool.
pub struct RefillHold {
    pool: WorkerPool,
}

impl Drop for RefillHold {
    fn drop(&mut self) {
        let last = self.pool.inner.holds.fetch_sub(1, Ordering::SeqCst) == 1;
        if last && tokio::runtime::Handle::try_current().is_ok() {
            self.pool.refill();
        }
    }
}
