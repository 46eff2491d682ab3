//! The cluster manager: the only writer of cluster state.
//!
//! Every transition happens under one lock that also guards the table of
//! live engines, and is written to the store (with its event) before the
//! engine process it implies is started or stopped. Engines are started and
//! stopped by spawned tasks, so API calls return at once and clients poll,
//! as they do against Databricks.

mod libraries;
mod lifecycle;
mod logs;
mod supervise;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};
use tarn_core::time::now_ms;
use tarn_store::{ClusterRow, EventRow, Store};
use tokio::task::AbortHandle;

use crate::ComputeError;
use crate::backend::Backend;
use crate::cluster::{ClusterSpec, ClusterState, Transition, next_state};
use crate::engine::EngineHandle;
use crate::env::Environments;
use crate::events::{self, EventPage, EventsRequest};
use crate::libraries::LibraryFiles;
use crate::node_types::{Host, find_node_type};

#[derive(Debug, Clone)]
pub struct ComputeConfig {
    /// `$TARN_HOME`: engine logs go to `logs/clusters/<id>/`.
    pub home: PathBuf,
    /// The length of one `autotermination_minutes` minute. Only tests shorten it.
    pub minute: Duration,
    pub engine_start_timeout: Duration,
    pub host: Host,
    /// Where engines reach tarn's API (the catalog), e.g. `http://127.0.0.1:8080`.
    pub api_url: String,
    /// The port of tarn's Spark Connect gateway.
    pub gateway_port: u16,
    /// What runtimes hold on this host.
    pub runtime: crate::runtime::RuntimeOptions,
    /// The backend of clusters whose `tarn_backend` tag names none.
    pub default_backend: crate::backend::Backend,
    /// Where `spark` clusters' servers come from and run.
    pub spark: crate::spark::SparkConfig,
    /// Kubernetes for `sail-cluster` clusters' workers; none: this host.
    pub sail_kubernetes: Option<crate::backend::SailKubernetes>,
    /// What engines need to reach an object-store root (the `AWS_*`
    /// pairs); empty when data lives under `$TARN_HOME`.
    pub storage_env: StorageEnv,
}

/// Variables with credentials in them: `Debug` names the keys only.
#[derive(Clone, Default)]
pub struct StorageEnv(pub Vec<(String, String)>);

impl std::fmt::Debug for StorageEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter().map(|(key, _)| key)).finish()
    }
}

/// The catalogs engines mount; implemented over the catalog by the wiring.
pub trait CatalogDirectory: Send + Sync {
    fn catalog_names(&self) -> Vec<String>;
}

/// A cluster as the API shows it: the stored row, its parsed spec and what
/// the local backend gives it on this host.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub row: ClusterRow,
    pub spec: ClusterSpec,
    pub state: ClusterState,
    pub parallelism: u32,
    pub cores: u32,
    pub memory_mb: u64,
    /// The node types the cluster runs on: the spec's, or the host default.
    pub node_type_id: String,
    pub driver_node_type_id: String,
    /// Where Spark Connect clients reach the cluster, while it runs.
    pub connect_url: Option<String>,
}

/// Which clusters to list and in what order.
#[derive(Debug, Clone, Default)]
pub struct ClusterFilter {
    pub states: Vec<ClusterState>,
    pub pinned: Option<bool>,
    /// Cluster sources asked for (`API`, `UI`, `JOB`, ...); every cluster
    /// tarn lists is an `API` one.
    pub sources: Vec<String>,
    pub by_name: bool,
    pub descending: bool,
}

/// What tarn holds for a cluster whose engine is coming up or running.
enum Live {
    Launching { epoch: u64, task: AbortHandle },
    Running { epoch: u64, engine: EngineHandle },
}

impl Live {
    fn epoch(&self) -> u64 {
        match self {
            Live::Launching { epoch, .. } | Live::Running { epoch, .. } => *epoch,
        }
    }
}

#[derive(Clone)]
pub struct ClusterManager {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<Store>,
    envs: Environments,
    config: ComputeConfig,
    launcher: PathBuf,
    catalogs: Arc<dyn CatalogDirectory>,
    live: Mutex<HashMap<String, Live>>,
    epoch: AtomicU64,
    library_files: Arc<dyn LibraryFiles>,
    cluster_envs: Mutex<HashMap<String, libraries::ClusterEnv>>,
    install_turn: tokio::sync::Mutex<()>,
}

pub(crate) fn event(cluster_id: &str, kind: &str, details: Value) -> EventRow {
    EventRow { cluster_id: cluster_id.to_string(), timestamp: now_ms(), kind: kind.to_string(), details }
}

impl ClusterManager {
    /// Writes the engine launcher under `$TARN_HOME/runtime`. Call
    /// [`ClusterManager::reconcile`] before serving.
    pub fn new(
        store: Arc<Store>,
        envs: Environments,
        config: ComputeConfig,
        catalogs: Arc<dyn CatalogDirectory>,
        library_files: Arc<dyn LibraryFiles>,
    ) -> Result<Self, ComputeError> {
        let runtime = config.home.join("runtime");
        std::fs::create_dir_all(&runtime)
            .map_err(|e| ComputeError::Engine(format!("creating {}: {e}", runtime.display())))?;
        let launcher = runtime.join("engine.py");
        std::fs::write(&launcher, crate::engine::LAUNCHER)
            .map_err(|e| ComputeError::Engine(format!("writing {}: {e}", launcher.display())))?;
        let inner = Inner {
            store,
            envs,
            config,
            launcher,
            catalogs,
            live: Mutex::new(HashMap::new()),
            epoch: AtomicU64::new(0),
            library_files,
            cluster_envs: Mutex::new(HashMap::new()),
            install_turn: tokio::sync::Mutex::new(()),
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    pub fn host(&self) -> Host {
        self.inner.config.host
    }

    pub fn environments(&self) -> &Environments {
        &self.inner.envs
    }

    fn live(&self) -> MutexGuard<'_, HashMap<String, Live>> {
        // The map stays consistent across a panic: entries are whole values.
        self.inner.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn next_epoch(&self) -> u64 {
        self.inner.epoch.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn load(&self, cluster_id: &str) -> Result<ClusterRow, ComputeError> {
        self.inner.store.get_cluster(cluster_id)?.ok_or_else(|| ComputeError::ClusterNotFound(cluster_id.to_string()))
    }

    /// Applies `transition` to the stored row, lets `update` fill in the
    /// rest and name the events, and writes it all in one transaction. The
    /// caller holds the live-table lock.
    fn apply(
        &self,
        cluster_id: &str,
        transition: Transition,
        update: impl FnOnce(&mut ClusterRow) -> Vec<EventRow>,
    ) -> Result<ClusterRow, ComputeError> {
        let mut row = self.load(cluster_id)?;
        let from = ClusterState::parse(&row.state);
        let to = next_state(from, transition).ok_or_else(|| ComputeError::InvalidState {
            cluster_id: cluster_id.to_string(),
            state: row.state.clone(),
        })?;
        row.state = to.as_str().to_string();
        let events = update(&mut row);
        self.inner.store.save_cluster(&row, &events)?;
        Ok(row)
    }

    fn describe(&self, row: ClusterRow) -> Result<Cluster, ComputeError> {
        let spec = ClusterSpec::from_stored(&row.spec)?;
        let host = self.inner.config.host;
        let driver = find_node_type(host, spec.driver_node_type_id());
        let worker = find_node_type(host, spec.node_type_id());
        let workers = u32::try_from(spec.workers()).unwrap_or(0);
        let cores = driver.num_cores.saturating_add(worker.num_cores.saturating_mul(workers));
        let memory_mb = driver.memory_mb.saturating_add(worker.memory_mb.saturating_mul(u64::from(workers)));
        let connect_url = row.engine_url.as_ref().map(|_| self.connect_url(&row.cluster_id));
        Ok(Cluster {
            connect_url,
            state: ClusterState::parse(&row.state),
            parallelism: spec.parallelism(host),
            row,
            spec,
            cores,
            memory_mb,
            node_type_id: worker.node_type_id,
            driver_node_type_id: driver.node_type_id,
        })
    }

    pub fn get(&self, cluster_id: &str) -> Result<Cluster, ComputeError> {
        self.describe(self.load(cluster_id)?)
    }

    /// The users' clusters matching `filter`, in its order. Clusters tarn
    /// runs for its own services ([`ClusterRow::is_managed`]) are not
    /// listed, as on Databricks.
    pub fn list(&self, filter: &ClusterFilter) -> Result<Vec<Cluster>, ComputeError> {
        if !filter.sources.is_empty() && !filter.sources.iter().any(|s| s == "API") {
            return Ok(Vec::new());
        }
        let rows = self.inner.store.list_clusters()?.into_iter().filter(|row| !row.is_managed());
        let mut clusters: Vec<Cluster> = rows.map(|row| self.describe(row)).collect::<Result<_, _>>()?;
        clusters.retain(|c| {
            (filter.states.is_empty() || filter.states.contains(&c.state))
                && filter.pinned.is_none_or(|p| p == c.row.pinned)
        });
        if filter.by_name {
            clusters.sort_by(|a, b| a.spec.name().cmp(b.spec.name()));
        }
        if filter.descending {
            clusters.reverse();
        }
        Ok(clusters)
    }

    /// The managed cluster whose custom tag `tag` is `value`.
    pub(crate) fn managed(&self, tag: &str, value: &str) -> Result<Option<Cluster>, ComputeError> {
        for row in self.inner.store.list_clusters()?.into_iter().filter(ClusterRow::is_managed) {
            let cluster = self.describe(row)?;
            if cluster.spec.tag(tag) == Some(value) {
                return Ok(Some(cluster));
            }
        }
        Ok(None)
    }

    /// A page of the cluster's events.
    pub fn events(&self, request: &EventsRequest) -> Result<EventPage, ComputeError> {
        let (filter, offset, limit) = request.resolve()?;
        self.load(&request.cluster_id)?;
        let all = self.inner.store.list_cluster_events(&request.cluster_id, &filter)?;
        Ok(events::page(all, offset, limit))
    }

    /// The port of the cluster's engine when it is RUNNING.
    pub fn engine_port(&self, cluster_id: &str) -> Result<Option<u16>, ComputeError> {
        Ok(self.running_engine_of(cluster_id)?.map(|(port, _)| port))
    }

    /// The backend the cluster runs on.
    pub fn backend(&self, cluster_id: &str) -> Result<Backend, ComputeError> {
        self.backend_of(&self.get(cluster_id)?.spec)
    }

    /// The backend `spec` runs on here (its tag, else the server's default).
    fn backend_of(&self, spec: &ClusterSpec) -> Result<Backend, ComputeError> {
        Backend::of(spec, self.inner.config.default_backend)
    }

    /// The port and backend of the cluster's engine, while it runs.
    pub fn running_engine_of(&self, cluster_id: &str) -> Result<Option<(u16, Backend)>, ComputeError> {
        if let Some(Live::Running { engine, .. }) = self.live().get(cluster_id) {
            return Ok(Some((engine.port, engine.backend)));
        }
        self.load(cluster_id).map(|_| None)
    }

    /// Counts as use for autotermination: a command, a run, a Spark call.
    pub fn record_activity(&self, cluster_id: &str) {
        let _live = self.live();
        self.amend(cluster_id, "recording cluster activity", |row| row.last_activity_time = Some(now_ms()));
    }

    /// Changes a field that is not a transition (no event); a failure is
    /// logged as `what`. The caller holds the live-table lock.
    fn amend(&self, cluster_id: &str, what: &str, change: impl FnOnce(&mut ClusterRow)) {
        let Ok(mut row) = self.load(cluster_id) else { return };
        change(&mut row);
        if let Err(e) = self.inner.store.save_cluster(&row, &[]) {
            tracing::warn!(cluster_id, error = %e, "{what}");
        }
    }

    /// How clients reach this cluster through the gateway (add `;token=`).
    pub fn connect_url(&self, cluster_id: &str) -> String {
        format!("sc://localhost:{}/;x-databricks-cluster-id={cluster_id}", self.inner.config.gateway_port)
    }

    pub fn set_pinned(&self, cluster_id: &str, pinned: bool, user: &str) -> Result<(), ComputeError> {
        let _live = self.live();
        let mut row = self.load(cluster_id)?;
        row.pinned = pinned;
        let kind = if pinned { "PINNED" } else { "UNPINNED" };
        self.inner.store.save_cluster(&row, &[event(cluster_id, kind, json!({"user": user}))])?;
        Ok(())
    }
}
