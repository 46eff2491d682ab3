//! Python workers kept warm: a worker spends seconds importing PySpark and
//! pandas, so the pool starts them ahead and a new context takes one that is
//! ready, then the pool starts its replacement.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tarn_core::time::now_ms;

use super::worker::{DBUTILS, KERNEL, Worker};
use crate::ComputeError;
use crate::env::{BASE_RUNTIME, Environments};

#[derive(Clone)]
pub struct WorkerPool {
    inner: Arc<Inner>,
}

struct Inner {
    envs: Environments,
    kernel: PathBuf,
    log_dir: PathBuf,
    /// How many ready workers to keep.
    target: usize,
    idle: Mutex<Vec<Worker>>,
    starting: AtomicUsize,
    spawned: AtomicU64,
}

impl WorkerPool {
    /// Writes the worker's files under `runtime_dir`; logs go to `log_dir`.
    pub fn new(
        envs: Environments,
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
        let kernel = write("kernel.py", KERNEL)?;
        let inner = Inner {
            envs,
            kernel,
            log_dir,
            target,
            idle: Mutex::new(Vec::new()),
            starting: AtomicUsize::new(0),
            spawned: AtomicU64::new(0),
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Worker>> {
        self.inner.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A ready worker: a warm one if there is one, else a new one.
    pub async fn take(&self) -> Result<Worker, ComputeError> {
        let warm = {
            let mut idle = self.idle();
            idle.retain_mut(Worker::is_alive);
            idle.pop()
        };
        self.refill();
        match warm {
            Some(worker) => Ok(worker),
            None => self.spawn().await,
        }
    }

    /// Starts workers in the background until `target` are ready or starting.
    pub fn refill(&self) {
        loop {
            let have = self.idle().len() + self.inner.starting.load(Ordering::SeqCst);
            if have >= self.inner.target {
                return;
            }
            self.inner.starting.fetch_add(1, Ordering::SeqCst);
            let pool = self.clone();
            tokio::spawn(async move {
                let result = pool.spawn().await;
                pool.inner.starting.fetch_sub(1, Ordering::SeqCst);
                match result {
                    Ok(worker) => pool.idle().push(worker),
                    Err(e) => tracing::warn!(error = %e, "warming a Python worker"),
                }
            });
        }
    }

    /// A worker in the base runtime plus `dependencies` (a job task's
    /// environment): its cached environment is built the first time, and
    /// the worker is started cold.
    pub async fn take_with(&self, dependencies: &[String]) -> Result<Worker, ComputeError> {
        if dependencies.is_empty() {
            return self.take().await;
        }
        let mut requirements: Vec<String> = BASE_RUNTIME.iter().map(|r| r.to_string()).collect();
        requirements.extend(dependencies.iter().cloned());
        self.spawn_in(requirements).await
    }

    async fn spawn(&self) -> Result<Worker, ComputeError> {
        self.spawn_in(BASE_RUNTIME.iter().map(|r| r.to_string()).collect()).await
    }

    async fn spawn_in(&self, requirements: Vec<String>) -> Result<Worker, ComputeError> {
        let envs = self.inner.envs.clone();
        let env = tokio::task::spawn_blocking(move || {
            let requirements: Vec<&str> = requirements.iter().map(String::as_str).collect();
            envs.ensure(&requirements, &|step: &str| tracing::info!("environment: {step}"))
        })
        .await
        .map_err(|e| ComputeError::Environment(e.to_string()))?
        .map_err(|e| ComputeError::Environment(e.to_string()))?;
        let n = self.inner.spawned.fetch_add(1, Ordering::Relaxed);
        let log = self.inner.log_dir.join(format!("worker-{}-{n}.log", now_ms()));
        Worker::spawn(&env.python(), &self.inner.kernel, log).await
    }

    /// Stops the warm workers (they end when their stdin closes).
    pub fn drain(&self) {
        self.idle().clear();
    }
}
