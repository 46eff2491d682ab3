//! A cluster's Python environment: its runtime's, with its libraries
//! installed over it in an overlay (cached by runtime and library set, so
//! clusters with the same libraries share one). Libraries install after the
//! cluster is RUNNING, one installer step each, so one that fails is FAILED
//! with the installer's message and the others are unaffected; contexts
//! created afterwards run in the new environment, contexts that exist keep
//! theirs until they are recreated (a restart of the cluster recreates them).

use std::collections::HashMap;

use serde_json::Value;

use super::{ClusterManager, Live};
use crate::ComputeError;
use crate::cluster::ClusterSpec;
use crate::env::{Overlay, PythonEnv};
use crate::libraries::{ClusterLibrary, Library, LibraryState, LibraryStatus};
use crate::runtime::Runtime;

/// What a running (or starting) cluster's Python runs in.
#[derive(Debug, Clone)]
pub(super) struct ClusterEnv {
    /// The launch this belongs to: a later launch replaces it.
    epoch: u64,
    runtime: PythonEnv,
    /// The runtime plus the libraries installed so far.
    current: PythonEnv,
    states: HashMap<String, LibraryState>,
}

/// The cluster's libraries as installer steps: `keys[i]` is `steps[i]`'s
/// library; `states` starts each PENDING, or FAILED when it has no step.
struct Plan {
    keys: Vec<String>,
    steps: Vec<Vec<String>>,
    states: HashMap<String, LibraryState>,
}

fn at_least_one(libraries: &[Library]) -> Result<(), ComputeError> {
    if libraries.is_empty() {
        return Err(ComputeError::InvalidRequest("libraries must name at least one library".into()));
    }
    Ok(())
}

impl ClusterManager {
    /// The requirements of the runtime `spark_version` names.
    pub fn runtime_requirements(&self, spark_version: &str) -> Result<Vec<String>, ComputeError> {
        let runtime = Runtime::resolve(spark_version).map_err(|e| ComputeError::InvalidSpec(e.to_string()))?;
        Ok(runtime.requirements(self.inner.config.runtime))
    }

    fn envs(&self) -> std::sync::MutexGuard<'_, HashMap<String, ClusterEnv>> {
        self.inner.cluster_envs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The environment a new context on the cluster runs in.
    pub fn python_env(&self, cluster_id: &str) -> Result<PythonEnv, ComputeError> {
        match self.envs().get(cluster_id) {
            Some(env) => Ok(env.current.clone()),
            None => Err(ComputeError::InvalidState {
                cluster_id: cluster_id.to_string(),
                state: self.load(cluster_id)?.state,
            }),
        }
    }

    /// Adds libraries to the cluster: installed now if it is running, else
    /// when it starts. Files are checked (and copied) before anything is kept.
    pub fn install_libraries(&self, cluster_id: &str, libraries: &[Library]) -> Result<(), ComputeError> {
        self.load(cluster_id)?;
        at_least_one(libraries)?;
        for library in libraries {
            if let Library::Whl(path) | Library::Requirements(path) = library {
                self.inner.library_files.local_copy(path).map_err(ComputeError::InvalidRequest)?;
            }
        }
        let rows: Vec<(String, Value)> = libraries.iter().map(|l| (l.key(), l.to_json())).collect();
        self.inner.store.add_cluster_libraries(cluster_id, &rows)?;
        if self.is_running(cluster_id) {
            self.spawn_library_install(cluster_id);
        }
        Ok(())
    }

    /// Marks libraries to be removed at the cluster's next start.
    pub fn uninstall_libraries(&self, cluster_id: &str, libraries: &[Library]) -> Result<(), ComputeError> {
        self.load(cluster_id)?;
        at_least_one(libraries)?;
        let keys: Vec<String> = libraries.iter().map(Library::key).collect();
        self.inner.store.mark_cluster_libraries_uninstalled(cluster_id, &keys)?;
        Ok(())
    }

    /// Each of the cluster's libraries with its status.
    pub fn library_statuses(&self, cluster_id: &str) -> Result<Vec<ClusterLibrary>, ComputeError> {
        self.load(cluster_id)?;
        let rows = self.inner.store.cluster_libraries(cluster_id)?;
        let running = self.is_running(cluster_id);
        let envs = self.envs();
        let states = envs.get(cluster_id).filter(|_| running).map(|e| &e.states);
        Ok(rows
            .into_iter()
            .map(|row| {
                let state = if row.uninstall_pending {
                    LibraryState::new(LibraryStatus::UninstallOnRestart)
                } else {
                    let known = states.and_then(|s| s.get(&row.key)).cloned();
                    known.unwrap_or_else(|| LibraryState::new(LibraryStatus::Pending))
                };
                ClusterLibrary { library: row.library, state }
            })
            .collect())
    }

    /// Clusters that have libraries (for `all-cluster-statuses`).
    pub fn clusters_with_libraries(&self) -> Result<Vec<String>, ComputeError> {
        Ok(self.inner.store.clusters_with_libraries()?)
    }

    fn is_running(&self, cluster_id: &str) -> bool {
        matches!(self.live().get(cluster_id), Some(Live::Running { .. }))
    }

    /// At launch, on the blocking pool: the runtime's environment (built if
    /// missing, `progress` told each step), libraries marked for uninstall
    /// dropped, and the environment the engine runs in: the overlay of the
    /// cluster's libraries if it is already built, else the runtime's.
    pub(super) fn prepare_env(
        &self,
        cluster_id: &str,
        epoch: u64,
        spec: &ClusterSpec,
        progress: &dyn crate::env::Progress,
    ) -> Result<PythonEnv, ComputeError> {
        let requirements = self.runtime_requirements(&spec.spark_version)?;
        let requirements: Vec<&str> = requirements.iter().map(String::as_str).collect();
        let runtime =
            self.inner.envs.ensure(&requirements, progress).map_err(|e| ComputeError::Environment(e.to_string()))?;
        self.inner.store.drop_uninstalled_libraries(cluster_id)?;
        let Plan { keys, steps, mut states } = self.library_steps(cluster_id)?;
        let mut current = runtime.clone();
        if let Some(overlay) = self.inner.envs.built_overlay(&runtime, &steps) {
            record_outcomes(&overlay, &keys, &mut states);
            current = overlay.env;
        }
        let env = ClusterEnv { epoch, runtime, current: current.clone(), states };
        self.envs().insert(cluster_id.to_string(), env);
        Ok(current)
    }

    /// The installer step of each library that has one, by key, and the
    /// FAILED state of each that cannot be installed.
    fn library_steps(&self, cluster_id: &str) -> Result<Plan, ComputeError> {
        let (mut keys, mut steps, mut states) = (Vec::new(), Vec::new(), HashMap::new());
        for row in self.inner.store.cluster_libraries(cluster_id)? {
            let step = Library::parse(&row.library).and_then(|l| l.step(self.inner.library_files.as_ref()));
            match step {
                Ok(step) => {
                    states.insert(row.key.clone(), LibraryState::new(LibraryStatus::Pending));
                    keys.push(row.key);
                    steps.push(step);
                }
                Err(why) => {
                    states.insert(row.key, LibraryState::failed(why));
                }
            }
        }
        Ok(Plan { keys, steps, states })
    }

    /// Installs the running cluster's libraries in the background.
    pub(super) fn spawn_library_install(&self, cluster_id: &str) {
        let this = self.clone();
        let id = cluster_id.to_string();
        tokio::spawn(async move {
            // One install at a time: installers compete for the same cache and cores.
            let _turn = this.inner.install_turn.lock().await;
            if let Err(e) = this.install_now(&id).await {
                tracing::warn!(cluster_id = id, error = %e, "installing cluster libraries");
            }
        });
    }

    async fn install_now(&self, cluster_id: &str) -> Result<(), ComputeError> {
        let Some(ClusterEnv { epoch, runtime, .. }) = self.envs().get(cluster_id).cloned() else {
            return Ok(());
        };
        let this = self.clone();
        let id = cluster_id.to_string();
        let Plan { keys, steps, mut states } = tokio::task::spawn_blocking(move || this.library_steps(&id))
            .await
            .map_err(|e| ComputeError::Environment(e.to_string()))??;
        if steps.is_empty() && states.is_empty() {
            return Ok(());
        }
        for key in &keys {
            states.insert(key.clone(), LibraryState::new(LibraryStatus::Installing));
        }
        self.update_env(cluster_id, epoch, |env| env.states.clone_from(&states));
        let envs = self.inner.envs.clone();
        let base = runtime.clone();
        let log_id = cluster_id.to_string();
        let built = tokio::task::spawn_blocking(move || {
            envs.ensure_overlay(&base, &steps, &|line: &str| tracing::debug!(cluster_id = log_id, "libraries: {line}"))
        })
        .await
        .map_err(|e| ComputeError::Environment(e.to_string()))?;
        match built {
            Ok(overlay) => {
                record_outcomes(&overlay, &keys, &mut states);
                self.update_env(cluster_id, epoch, |env| {
                    env.states = states;
                    env.current = overlay.env;
                });
            }
            Err(e) => {
                for key in &keys {
                    states.insert(key.clone(), LibraryState::failed(e.to_string()));
                }
                self.update_env(cluster_id, epoch, |env| env.states = states);
            }
        }
        Ok(())
    }

    /// Drops what tarn knew of a deleted cluster's environment.
    pub(super) fn forget_env(&self, cluster_id: &str) {
        self.envs().remove(cluster_id);
    }

    /// Changes the cluster's environment record if it is still that launch's.
    fn update_env(&self, cluster_id: &str, epoch: u64, change: impl FnOnce(&mut ClusterEnv)) {
        if let Some(env) = self.envs().get_mut(cluster_id).filter(|e| e.epoch == epoch) {
            change(env);
        }
    }
}

/// INSTALLED or FAILED (with the installer's message) for each step's library.
fn record_outcomes(overlay: &Overlay, keys: &[String], states: &mut HashMap<String, LibraryState>) {
    for (key, outcome) in keys.iter().zip(&overlay.outcomes) {
        let state = match &outcome.error {
            None => LibraryState::new(LibraryStatus::Installed),
            Some(error) => LibraryState::failed(error.clone()),
        };
        states.insert(key.clone(), state);
    }
}
