//! The user's operations on clusters: create, start, restart, resize, edit,
//! terminate and permanent delete.

use std::time::Duration;

use serde_json::{Value, json};
use tarn_core::id;
use tarn_core::time::now_ms;
use tarn_store::ClusterRow;
use tokio::task::JoinHandle;

use super::{ClusterManager, Live, event};
use crate::ComputeError;
use crate::cluster::{ClusterSize, ClusterSpec, ClusterState, NewCluster, TerminationReason, Transition};
use crate::engine::EngineHandle;

impl ClusterManager {
    /// Records a new PENDING cluster and starts bringing its engine up; its
    /// libraries are installed once it runs.
    pub fn create(&self, cluster: NewCluster, creator: &str) -> Result<String, ComputeError> {
        self.runtime_requirements(&cluster.spec.spark_version)?;
        self.backend_of(&cluster.spec)?;
        let libraries: Vec<(String, Value)> = cluster.libraries.iter().map(|l| (l.key(), l.to_json())).collect();
        let cluster_id = id::cluster_id();
        self.inner.store.add_cluster_libraries(&cluster_id, &libraries)?;
        let spec = Value::Object(cluster.spec.to_attributes());
        let mut row = ClusterRow::new(&cluster_id, spec, ClusterState::Pending.as_str(), creator, now_ms());
        row.state_message = "Starting the cluster".into();
        let mut live = self.live();
        self.inner.store.save_cluster(&row, &[event(&cluster_id, "CREATING", json!({"user": creator}))])?;
        self.spawn_launch(&mut live, &cluster_id, None);
        Ok(cluster_id)
    }

    /// Starts a TERMINATED cluster; any other state is INVALID_STATE.
    pub fn start(&self, cluster_id: &str, user: &str) -> Result<(), ComputeError> {
        let mut live = self.live();
        self.apply(cluster_id, Transition::Start, |row| {
            row.state_message = "Starting the cluster".into();
            row.termination_reason = None;
            row.terminated_time = None;
            vec![event(cluster_id, "STARTING", json!({"user": user}))]
        })?;
        self.spawn_launch(&mut live, cluster_id, None);
        Ok(())
    }

    /// The port of the cluster's engine once it runs: a TERMINATED cluster
    /// is started, one starting is waited for (up to `timeout`); one that
    /// ends TERMINATED or ERROR instead is NOT_STARTED with its reason.
    pub async fn running_engine(&self, cluster_id: &str, user: &str, timeout: Duration) -> Result<u16, ComputeError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut asked = false;
        loop {
            let cluster = self.get(cluster_id)?;
            match cluster.state {
                ClusterState::Terminated if !asked => {
                    match self.start(cluster_id, user) {
                        // Someone else started it in between.
                        Ok(()) | Err(ComputeError::InvalidState { .. }) => {}
                        Err(e) => return Err(e),
                    }
                    asked = true;
                }
                ClusterState::Terminated | ClusterState::Error | ClusterState::Unknown => {
                    let why = crate::managed::failure_message(&cluster).unwrap_or_else(|| "it was stopped".into());
                    return Err(ComputeError::NotStarted(format!("{} did not start: {why}", cluster.row.cluster_id)));
                }
                ClusterState::Running => {
                    if let Some(port) = self.engine_port(cluster_id)? {
                        return Ok(port);
                    }
                }
                _ => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ComputeError::NotStarted(format!(
                    "{cluster_id} did not start within {}s",
                    timeout.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Replaces a RUNNING cluster's engine with a fresh one.
    pub fn restart(&self, cluster_id: &str, user: &str) -> Result<(), ComputeError> {
        let mut live = self.live();
        self.apply(cluster_id, Transition::Restart, |row| {
            row.state_message = "Restarting the engine".into();
            row.last_restarted_time = Some(now_ms());
            vec![event(cluster_id, "RESTARTING", json!({"user": user}))]
        })?;
        let previous = take_engine(&mut live, cluster_id);
        self.spawn_launch(&mut live, cluster_id, previous);
        Ok(())
    }

    /// Changes the size of a RUNNING cluster. The local engine's parallelism
    /// is fixed at start, so the engine is restarted with the new size.
    pub fn resize(&self, cluster_id: &str, size: ClusterSize, user: &str) -> Result<(), ComputeError> {
        let mut live = self.live();
        let current = ClusterSpec::from_stored(&self.load(cluster_id)?.spec)?;
        let resized = current.resized(size)?;
        self.apply(cluster_id, Transition::Resize, |row| {
            row.state_message = format!("Resizing to {} workers", resized.target_workers());
            row.spec = Value::Object(resized.to_attributes());
            let details = json!({
                "current_num_workers": current.workers(),
                "target_num_workers": resized.workers(),
                "cause": "USER_REQUEST",
                "user": user,
            });
            vec![event(cluster_id, "RESIZING", details)]
        })?;
        let previous = take_engine(&mut live, cluster_id);
        self.spawn_launch(&mut live, cluster_id, previous);
        Ok(())
    }

    /// Replaces the spec of a RUNNING or TERMINATED cluster; a running one
    /// restarts to take it.
    pub fn edit(&self, cluster_id: &str, spec: ClusterSpec, user: &str) -> Result<(), ComputeError> {
        self.runtime_requirements(&spec.spark_version)?;
        self.backend_of(&spec)?;
        let mut live = self.live();
        let row = self.apply(cluster_id, Transition::Edit, |row| {
            let previous = std::mem::replace(&mut row.spec, Value::Object(spec.to_attributes()));
            let details = json!({"previous_attributes": previous, "attributes": row.spec, "user": user});
            let mut events = vec![event(cluster_id, "EDITED", details)];
            if row.state == ClusterState::Restarting.as_str() {
                row.state_message = "Restarting to apply the new configuration".into();
                row.last_restarted_time = Some(now_ms());
                events.push(event(cluster_id, "RESTARTING", json!({"user": user})));
            }
            events
        })?;
        if row.state == ClusterState::Restarting.as_str() {
            let previous = take_engine(&mut live, cluster_id);
            self.spawn_launch(&mut live, cluster_id, previous);
        }
        Ok(())
    }

    /// Terminates a cluster (the API's `delete`). A cluster already
    /// terminated or terminating is left as it is.
    pub fn terminate(&self, cluster_id: &str, reason: TerminationReason) -> Result<(), ComputeError> {
        self.begin_termination(cluster_id, reason).map(drop)
    }

    /// Terminates the cluster if needed, waits for its engine to stop, then
    /// removes it and its events for good.
    pub async fn permanent_delete(&self, cluster_id: &str, user: &str) -> Result<(), ComputeError> {
        if let Some(stopping) = self.begin_termination(cluster_id, TerminationReason::user_request(user))? {
            let _ = stopping.await;
        }
        let _live = self.live();
        if !self.inner.store.delete_cluster(cluster_id)? {
            return Err(ComputeError::ClusterNotFound(cluster_id.to_string()));
        }
        self.forget_env(cluster_id);
        Ok(())
    }

    /// Writes TERMINATING, then stops the engine in a task that writes
    /// TERMINATED when it is gone. `None` when there was nothing to stop.
    pub(super) fn begin_termination(
        &self,
        cluster_id: &str,
        reason: TerminationReason,
    ) -> Result<Option<JoinHandle<()>>, ComputeError> {
        let mut live = self.live();
        let state = ClusterState::parse(&self.load(cluster_id)?.state);
        if matches!(state, ClusterState::Terminated | ClusterState::Terminating) {
            return Ok(None);
        }
        self.apply(cluster_id, Transition::Terminate, |row| {
            row.state_message = "Terminating the engine".into();
            row.termination_reason = Some(reason.to_json());
            vec![event(cluster_id, "TERMINATING", json!({"reason": reason.to_json()}))]
        })?;
        let taken = live.remove(cluster_id);
        let this = self.clone();
        let cluster_id = cluster_id.to_string();
        Ok(Some(tokio::spawn(async move {
            match taken {
                Some(Live::Launching { task, .. }) => task.abort(),
                Some(Live::Running { engine, .. }) => engine.stop().await,
                None => {}
            }
            this.revoke_engine_token(&cluster_id);
            let _live = this.live();
            let stopped = this.apply(&cluster_id, Transition::Stopped, |row| {
                mark_terminated(row, "");
                vec![]
            });
            if let Err(e) = stopped {
                tracing::warn!(cluster_id, error = %e, "recording the end of a termination");
            }
        })))
    }
}

/// Clears what belonged to the engine once it is gone.
pub(super) fn mark_terminated(row: &mut ClusterRow, message: &str) {
    row.state_message = message.to_string();
    row.terminated_time = Some(now_ms());
    row.engine_url = None;
    row.engine_pid = None;
    row.engine_start_ticks = None;
}

fn take_engine(live: &mut std::collections::HashMap<String, Live>, cluster_id: &str) -> Option<EngineHandle> {
    match live.remove(cluster_id) {
        Some(Live::Running { engine, .. }) => Some(engine),
        Some(Live::Launching { task, .. }) => {
            task.abort();
            None
        }
        None => None,
    }
}
