//! What the schedulers lease holder runs, started when a serve takes the
//! lease (at once, or as a standby when the holder stops): engines left by
//! an earlier holder reconciled, pipeline updates and monitor refreshes in
//! flight ended, job runs resumed, triggers and schedulers started.

use std::sync::Arc;

use tarn_compute::ClusterManager;
use tarn_files::Files;

use crate::lease::SchedulerLease;

/// Where this serve answers, for replicas that forward to it: its API URL
/// and gateway address (an unspecified bind address is named by the host).
pub(crate) fn advertised(api: std::net::SocketAddr, gateway: std::net::SocketAddr) -> String {
    let named = |addr: std::net::SocketAddr| match addr.ip().is_unspecified() {
        true => format!("{}:{}", tarn_compute::process::host_name(), addr.port()),
        false => addr.to_string(),
    };
    serde_json::json!({"api": format!("http://{}", named(api)), "gateway": named(gateway)}).to_string()
}

/// What the schedulers lease holder runs, started when this serve takes
/// the lease (at once, or as a standby when the holder stops).
#[derive(Clone)]
pub(crate) struct Leader {
    pub home: std::path::PathBuf,
    pub clusters: ClusterManager,
    pub system: tarn_lake::SystemTables,
    pub alerts: tarn_alerts::Alerts,
    pub pipelines: tarn_pipelines::Pipelines,
    pub runs: tarn_jobs::Runs,
    pub files: Files,
    pub serving: tarn_serving::Endpoints,
    pub monitors: tarn_monitor::Monitors,
    pub lease: Arc<SchedulerLease>,
    pub holder: Arc<crate::replica::Holder>,
    pub stop: Arc<tokio::sync::watch::Sender<bool>>,
    pub tasks: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Leader {
    /// Ends what earlier engines and pipeline updates left, resumes job
    /// runs, and starts the schedulers; every run transition from here is
    /// fenced with `epoch`.
    pub async fn lead(&self, epoch: i64) -> Result<(), String> {
        self.runs.fence_with(crate::lease::NAME, epoch);
        let renewal = self.lease.spawn_renewal(self.stop.clone());
        self.clusters.reconcile().await.map_err(|e| e.to_string())?;
        let mut tasks = vec![renewal, self.clusters.spawn_idle_reaper()];
        if let Err(e) = self.system.refresh().await {
            tracing::warn!(error = %e, "writing the system tables");
        }
        tasks.push(self.alerts.spawn_scheduler());
        let ended = self.pipelines.recover().map_err(|e| e.to_string())?;
        if ended > 0 {
            tracing::warn!(ended, "pipeline updates left in flight by an earlier tarn ended as FAILED");
        }
        tarn_jobs::git::remove_stale_checkouts(&self.home);
        let resumed = self.runs.recover().map_err(|e| e.to_string())?;
        if resumed > 0 {
            tracing::warn!(resumed, "job runs left in flight by an earlier tarn are resumed");
        }
        tasks.push(tarn_jobs::triggers::spawn(self.runs.clone(), self.files.clone()));
        self.serving.start().await.map_err(|e| e.to_string())?;
        let unfinished = self.monitors.recover().map_err(|e| e.to_string())?;
        if unfinished > 0 {
            tracing::warn!(unfinished, "monitor refreshes left running by an earlier tarn ended as FAILED");
        }
        tasks.push(self.monitors.spawn_scheduler());
        self.tasks.lock().unwrap_or_else(|p| p.into_inner()).extend(tasks);
        self.holder.lead();
        Ok(())
    }

    pub fn stop_tasks(&self) {
        for task in self.tasks.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
            task.abort();
        }
    }
}
