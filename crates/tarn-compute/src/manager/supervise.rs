//! Engines over time: bringing one up, noticing when one dies, terminating
//! idle clusters, stopping everything at shutdown and cleaning up after a
//! tarn that did not stop cleanly.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;
use tarn_core::time::now_ms;

use super::lifecycle::mark_terminated;
use super::{ClusterManager, Live, event};
use crate::ComputeError;
use crate::backend::Backend;
use crate::cluster::{ClusterSpec, ClusterState, TerminationReason, Transition};
use crate::engine::{self, EngineHandle, EngineSpec, Report};
use crate::process;
use crate::spark;

/// A PENDING cluster's message while its runtime's environment is built.
fn building_message(spark_version: &str, step: &str) -> String {
    format!(
        "Building the Python environment of runtime {spark_version} (its first use on this host; \
         `tarn env sync --runtime {spark_version}` builds it ahead): {step}"
    )
}

fn engine_token_comment(cluster_id: &str) -> String {
    format!("engine of cluster {cluster_id}")
}

impl ClusterManager {
    /// Starts a task that stops `previous` (if any) and brings up a new
    /// engine. The caller holds the live-table lock and has written the
    /// launching state.
    pub(super) fn spawn_launch(
        &self,
        live: &mut HashMap<String, Live>,
        cluster_id: &str,
        previous: Option<EngineHandle>,
    ) {
        let epoch = self.next_epoch();
        let this = self.clone();
        let id = cluster_id.to_string();
        let task = tokio::spawn(async move {
            if let Some(previous) = previous {
                previous.stop().await;
            }
            let outcome = this.launch(&id, epoch).await;
            this.finish_launch(&id, epoch, outcome).await;
        });
        live.insert(cluster_id.to_string(), Live::Launching { epoch, task: task.abort_handle() });
    }

    fn set_message(&self, cluster_id: &str, epoch: u64, message: &str) {
        let live = self.live();
        if live.get(cluster_id).is_none_or(|l| l.epoch() != epoch) {
            return;
        }
        self.amend(cluster_id, "recording cluster progress", |row| row.state_message = message.to_string());
    }

    async fn launch(&self, cluster_id: &str, epoch: u64) -> Result<EngineHandle, ComputeError> {
        let spec = ClusterSpec::from_stored(&self.load(cluster_id)?.spec)?;
        let backend = self.backend_of(&spec)?;
        let this = self.clone();
        let id = cluster_id.to_string();
        let launching = spec.clone();
        // Only a build reports steps, so the message says "building" only then.
        let env = tokio::task::spawn_blocking(move || {
            let version = launching.spark_version.clone();
            let progress = |step: &str| {
                tracing::info!(cluster_id = id, "environment: {step}");
                // The installer's headline lines, not one per package.
                if !step.starts_with(' ') && !step.is_empty() {
                    this.set_message(&id, epoch, &building_message(&version, step));
                }
            };
            let env = this.prepare_env(&id, epoch, &launching, &progress)?;
            // A routed cluster's server is someone else's: nothing to install.
            let spark_home = match backend {
                Backend::Spark if spark::endpoint(&launching)?.is_none() => Some(this.spark_home(&progress)?),
                Backend::Spark | Backend::Sail | Backend::SailCluster => None,
            };
            Ok::<_, ComputeError>((env, spark_home))
        })
        .await
        .map_err(|e| ComputeError::Environment(e.to_string()))?;
        let (env, spark_home) = env?;
        self.set_message(cluster_id, epoch, "Starting the Spark Connect engine");
        let config = &self.inner.config;
        let row = self.load(cluster_id)?;
        let token = self.issue_engine_token(cluster_id, &row)?;
        let engine_spec = EngineSpec {
            cluster_id: cluster_id.to_string(),
            backend,
            parallelism: spec.parallelism(config.host),
            python: env.python(),
            launcher: self.inner.launcher.clone(),
            log_file: config.home.join("logs").join("clusters").join(cluster_id).join("engine.log"),
            start_timeout: config.engine_start_timeout,
            env: self.engine_env(cluster_id, backend, &spec, spark_home.as_deref(), &token)?,
        };
        let engine = engine::launch(&engine_spec).await?;
        let (this, that) = (self.clone(), self.clone());
        let (id, same) = (cluster_id.to_string(), cluster_id.to_string());
        Ok(engine.supervise(
            move |what| this.engine_lost(&id, epoch, what),
            move |report| that.workers_changed(&same, epoch, report),
        ))
    }

    /// The launcher's environment: a Spark server's, a route's to one, or
    /// Sail's (its catalogs and where its workers run).
    fn engine_env(
        &self,
        cluster_id: &str,
        backend: Backend,
        spec: &ClusterSpec,
        spark_home: Option<&std::path::Path>,
        token: &str,
    ) -> Result<Vec<(String, String)>, ComputeError> {
        let config = &self.inner.config;
        let catalogs = self.inner.catalogs.catalog_names();
        let storage = config.storage_env.0.clone();
        Ok(match (spark_home, spark::endpoint(spec)?) {
            (Some(home), _) => [self.spark_env(cluster_id, spec, home, token, &catalogs)?, storage].concat(),
            (None, Some(endpoint)) => vec![("TARN_SPARK_CONNECT".into(), endpoint)],
            (None, None) => {
                let placement = backend.engine_env(cluster_id, spec, config.sail_kubernetes.as_ref());
                [engine::catalog_env(&config.api_url, token, &catalogs), placement, storage].concat()
            }
        })
    }

    /// The Spark distribution `spark` clusters start from: the operator's,
    /// or tarn's own, built on first use.
    fn spark_home(&self, progress: &dyn crate::env::Progress) -> Result<std::path::PathBuf, ComputeError> {
        if let Some(home) = &self.inner.config.spark.home {
            spark::check_home(home)?;
            return Ok(home.clone());
        }
        progress.step(&format!("the Spark distribution ({})", spark::DISTRIBUTION));
        let env = self
            .inner
            .envs
            .ensure(&[spark::DISTRIBUTION], progress)
            .map_err(|e| ComputeError::Environment(e.to_string()))?;
        spark::home_in_env(&env.dir)
    }

    /// The launcher's environment for a Spark Connect server: where Spark
    /// is, the master, and the properties file (written here, private).
    fn spark_env(
        &self,
        cluster_id: &str,
        spec: &ClusterSpec,
        home: &std::path::Path,
        token: &str,
        catalogs: &[String],
    ) -> Result<Vec<(String, String)>, ComputeError> {
        let config = &self.inner.config;
        let dir = config.home.join("spark").join(cluster_id);
        let access = spark::CatalogAccess { api_url: &config.api_url, token, catalogs };
        let props = spark::properties(spec, config.host, home, &dir, &access);
        let file = dir.join("spark.properties");
        spark::write_properties(&file, &props)?;
        let mut env = vec![
            ("SPARK_HOME".into(), home.display().to_string()),
            ("TARN_SPARK_MASTER".into(), spark::master(spec, &config.spark, config.host)),
            ("TARN_SPARK_PROPERTIES".into(), file.display().to_string()),
        ];
        if let Some(initial) = spark::watched_executors(&props) {
            env.push(("TARN_SPARK_WATCH_EXECUTORS".into(), initial.to_string()));
        }
        Ok(env)
    }

    /// A fresh token for the engine to call the catalog as the cluster's
    /// creator (a user's cluster runs with its owner's grants); tarn's own
    /// engines, shared by every principal, call it as the admin, and the
    /// gateway checks each session's grants. The previous engine's token
    /// (if any) is revoked.
    fn issue_engine_token(&self, cluster_id: &str, row: &tarn_store::ClusterRow) -> Result<String, ComputeError> {
        let store = &self.inner.store;
        let comment = engine_token_comment(cluster_id);
        store.revoke_engine_tokens(Some(&comment))?;
        let user = if row.is_managed() {
            store.ensure_admin(tarn_store::ADMIN_USER, "Admin", now_ms())?
        } else {
            store.ensure_user(&row.creator, &row.creator, now_ms())?
        };
        Ok(store.create_engine_token(&user, &comment, now_ms())?.0)
    }

    pub(super) fn revoke_engine_token(&self, cluster_id: &str) {
        if let Err(e) = self.inner.store.revoke_engine_tokens(Some(&engine_token_comment(cluster_id))) {
            tracing::warn!(cluster_id, error = %e, "revoking an engine token");
        }
    }

    async fn finish_launch(&self, cluster_id: &str, epoch: u64, outcome: Result<EngineHandle, ComputeError>) {
        let leftover = {
            let mut live = self.live();
            if live.get(cluster_id).is_none_or(|l| l.epoch() != epoch) {
                // Terminated (or replaced) while launching: the engine is not wanted.
                outcome.ok()
            } else {
                match outcome {
                    Ok(engine) => self.mark_running(&mut live, cluster_id, epoch, engine),
                    Err(e) => {
                        live.remove(cluster_id);
                        tracing::warn!(cluster_id, error = %e, "cluster failed to start");
                        self.record_lost(cluster_id, TerminationReason::startup_failure(e.to_string()));
                        None
                    }
                }
            }
        };
        if let Some(engine) = leftover {
            engine.stop().await;
        }
    }

    /// RUNNING is written only here, after the engine answered Spark Connect.
    /// Returns the engine when the cluster can no longer take it.
    fn mark_running(
        &self,
        live: &mut HashMap<String, Live>,
        cluster_id: &str,
        epoch: u64,
        engine: EngineHandle,
    ) -> Option<EngineHandle> {
        let now = now_ms();
        let written = self.apply(cluster_id, Transition::EngineReady, |row| {
            row.state_message = String::new();
            row.engine_url = Some(engine.url());
            row.engine_pid = Some(i64::from(engine.pid));
            row.engine_start_ticks = Some(engine.start_ticks);
            row.last_activity_time = Some(now);
            let workers = ClusterSpec::from_stored(&row.spec).map(|s| s.workers()).unwrap_or(0);
            vec![event(cluster_id, "RUNNING", json!({"current_num_workers": workers}))]
        });
        match written {
            Ok(_) => {
                tracing::info!(cluster_id, url = engine.url(), pid = engine.pid, "cluster running");
                live.insert(cluster_id.to_string(), Live::Running { epoch, engine });
                self.spawn_library_install(cluster_id);
                None
            }
            Err(e) => {
                tracing::warn!(cluster_id, error = %e, "engine ready for a cluster that moved on");
                live.remove(cluster_id);
                Some(engine)
            }
        }
    }

    /// Called from the supervisor when the engine's executors changed on
    /// their own (Spark's dynamic allocation): recorded as Databricks records
    /// autoscaling, `UPSIZE_COMPLETED` when workers came, `RESIZING` towards
    /// the smaller count when they went.
    fn workers_changed(&self, cluster_id: &str, epoch: u64, report: Report) {
        let live = self.live();
        if live.get(cluster_id).is_none_or(|l| l.epoch() != epoch) {
            return;
        }
        let kind = if report.workers > report.previous { "UPSIZE_COMPLETED" } else { "RESIZING" };
        let details = json!({
            "current_num_workers": report.workers,
            "target_num_workers": report.workers,
            "cause": "AUTOSCALE",
        });
        let written = self
            .load(cluster_id)
            .and_then(|row| Ok(self.inner.store.save_cluster(&row, &[event(cluster_id, kind, details)])?));
        if let Err(e) = written {
            tracing::warn!(cluster_id, error = %e, "recording an autoscaling event");
        }
        drop(live);
    }

    /// Called from the supervisor when an engine exits on its own.
    fn engine_lost(&self, cluster_id: &str, epoch: u64, what: String) {
        let mut live = self.live();
        if live.get(cluster_id).is_none_or(|l| l.epoch() != epoch) {
            return;
        }
        live.remove(cluster_id);
        tracing::warn!(cluster_id, "{what}");
        self.record_lost(cluster_id, TerminationReason::engine_lost(what));
    }

    /// Writes TERMINATED with `reason` and a TERMINATING event that carries
    /// it. The caller holds the live-table lock.
    fn record_lost(&self, cluster_id: &str, reason: TerminationReason) {
        let message = reason.parameters.first().map(|(_, m)| m.clone()).unwrap_or_default();
        let written = self.apply(cluster_id, Transition::EngineLost, |row| {
            let reason_json = reason.to_json();
            if row.termination_reason.is_none() {
                row.termination_reason = Some(reason_json.clone());
            }
            mark_terminated(row, &message);
            vec![event(cluster_id, "TERMINATING", json!({"reason": reason_json}))]
        });
        if let Err(e) = written {
            tracing::warn!(cluster_id, error = %e, "recording a lost engine");
        }
        self.revoke_engine_token(cluster_id);
    }

    /// After a start: clusters the store still shows alive belonged to an
    /// earlier tarn. Their engines are stopped (if that process still runs)
    /// and they become TERMINATED with the reason.
    pub async fn reconcile(&self) -> Result<(), ComputeError> {
        // No engine of an earlier tarn may keep calling the catalog.
        self.inner.store.revoke_engine_tokens(None)?;
        for row in self.inner.store.list_clusters()? {
            let state = ClusterState::parse(&row.state);
            if state == ClusterState::Terminated {
                continue;
            }
            let mut detail = format!("tarn restarted while the cluster was {}", row.state);
            if let (Some(pid), Some(ticks)) = (row.engine_pid, row.engine_start_ticks) {
                let pid = u32::try_from(pid).unwrap_or(0);
                if process::stop_stale(pid, ticks, Duration::from_secs(5)).await {
                    detail.push_str(&format!("; its engine process {pid} was stopped"));
                }
            }
            let _live = self.live();
            self.record_lost(&row.cluster_id, TerminationReason::tarn_stopped(detail));
        }
        Ok(())
    }

    /// Stops every engine, for a clean shutdown; each cluster becomes
    /// TERMINATED with the reason.
    pub async fn shutdown(&self) {
        let taken: Vec<(String, Live)> = self.live().drain().collect();
        let mut stops = Vec::new();
        for (cluster_id, live) in taken {
            match live {
                Live::Launching { task, .. } => task.abort(),
                Live::Running { engine, .. } => stops.push(engine.stop()),
            }
            let state = self.load(&cluster_id).map(|r| r.state).unwrap_or_default();
            let _live = self.live();
            self.record_lost(
                &cluster_id,
                TerminationReason::tarn_stopped(format!("tarn stopped while the cluster was {state}")),
            );
        }
        for stop in stops {
            stop.await;
        }
    }

    /// Terminates RUNNING clusters idle past their `autotermination_minutes`.
    /// Activity is the last start; commands and runs will touch it too.
    pub fn terminate_idle(&self) -> Result<(), ComputeError> {
        let minute_ms = i64::try_from(self.inner.config.minute.as_millis()).unwrap_or(i64::MAX);
        let now = now_ms();
        for row in self.inner.store.list_clusters()? {
            if ClusterState::parse(&row.state) != ClusterState::Running {
                continue;
            }
            let minutes = ClusterSpec::from_stored(&row.spec)?.autotermination();
            let idle_since = row.last_activity_time.unwrap_or(row.start_time);
            if minutes > 0 && now - idle_since >= minutes.saturating_mul(minute_ms) {
                tracing::info!(cluster_id = row.cluster_id, minutes, "terminating idle cluster");
                self.begin_termination(&row.cluster_id, TerminationReason::inactivity(minutes))?;
            }
        }
        Ok(())
    }

    /// Runs [`ClusterManager::terminate_idle`] for as long as tarn runs.
    pub fn spawn_idle_reaper(&self) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        let tick = (self.inner.config.minute / 4).clamp(Duration::from_millis(50), Duration::from_secs(15));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(tick).await;
                if let Err(e) = this.terminate_idle() {
                    tracing::warn!(error = %e, "checking idle clusters");
                }
            }
        })
    }
}
