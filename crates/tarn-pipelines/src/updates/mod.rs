//! Updates: started (one at a time per pipeline), stopped, listed, and
//! moved through their states only by [`Pipelines::apply`], a write fenced
//! on the state read.

mod driver;
pub mod state;

use serde_json::{Value, json};
use tarn_core::time::now_ms;
use tarn_store::UpdateRow;
use tokio::sync::watch;

use crate::error::{PipelinesError, Result};
use crate::graph::Definitions;
use crate::pipelines::Pipelines;
use crate::settings::PipelineSettings;
use state::{Event, FINAL_STATES, UpdateState};

/// What `start_update` asks for.
#[derive(Debug, Clone, Default)]
pub struct StartUpdate {
    pub cause: String,
    pub full_refresh: bool,
    pub refresh_selection: Vec<String>,
    pub full_refresh_selection: Vec<String>,
    pub validate_only: bool,
}

/// A graph an update runs as given, not read from the pipeline's libraries
/// (an SDP client defined it), on the cluster `cluster_id` whose engine
/// listens on `port` rather than on the pipeline's own cluster.
#[derive(Debug, Clone)]
pub(crate) struct GivenGraph {
    pub definitions: Definitions,
    pub cluster_id: String,
    pub port: u16,
}

impl StartUpdate {
    fn to_json(&self) -> Value {
        json!({
            "cause": self.cause,
            "full_refresh": self.full_refresh,
            "refresh_selection": self.refresh_selection,
            "full_refresh_selection": self.full_refresh_selection,
            "validate_only": self.validate_only,
        })
    }

    pub(crate) fn from_json(v: &Value) -> Self {
        let names = |field: &str| -> Vec<String> {
            v[field].as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect()
        };
        Self {
            cause: v["cause"].as_str().unwrap_or("API_CALL").to_string(),
            full_refresh: v["full_refresh"].as_bool().unwrap_or(false),
            refresh_selection: names("refresh_selection"),
            full_refresh_selection: names("full_refresh_selection"),
            validate_only: v["validate_only"].as_bool().unwrap_or(false),
        }
    }
}

impl Pipelines {
    /// The update being driven, if any.
    pub fn active_update(&self, pipeline_id: &str) -> Result<Option<UpdateRow>> {
        let latest = self.store().list_pipeline_updates(pipeline_id, 0, 1)?;
        Ok(latest.into_iter().find(|u| !FINAL_STATES.contains(&u.state.as_str())))
    }

    /// Starts an update, which runs as the pipeline's `run_as` principal
    /// or its owner (with that principal's grants), whoever asks.
    pub fn start_update(&self, pipeline_id: &str, request: StartUpdate) -> Result<String> {
        let user = self.run_as(&self.row(pipeline_id)?);
        self.start(pipeline_id, &user, request, None)
    }

    /// Starts an update that runs `graph` instead of the pipeline's libraries.
    pub(crate) fn start_given(
        &self,
        pipeline_id: &str,
        user: &str,
        request: StartUpdate,
        graph: GivenGraph,
    ) -> Result<String> {
        self.start(pipeline_id, user, request, Some(graph))
    }

    fn start(&self, pipeline_id: &str, user: &str, request: StartUpdate, given: Option<GivenGraph>) -> Result<String> {
        let pipeline = self.row(pipeline_id)?;
        if request.full_refresh && !request.full_refresh_selection.is_empty() {
            return Err(PipelinesError::InvalidParameter(
                "full_refresh and full_refresh_selection cannot both be given".into(),
            ));
        }
        // A job task waits for its update to end, which a continuous one never does.
        let continuous = PipelineSettings::parse(&pipeline.spec).is_ok_and(|s| s.continuous);
        if request.cause == "JOB_TASK" && continuous {
            return Err(PipelinesError::InvalidParameter(format!(
                "Pipeline {pipeline_id} is continuous; a job's pipeline task can only run triggered pipelines"
            )));
        }
        if let Some(active) = self.active_update(pipeline_id)? {
            return Err(PipelinesError::Conflict(format!(
                "An active update {} already exists for pipeline {pipeline_id}.",
                active.update_id
            )));
        }
        let row = UpdateRow {
            update_id: uuid::Uuid::new_v4().to_string(),
            pipeline_id: pipeline_id.to_string(),
            seq: 0,
            state: UpdateState::Queued.as_str().into(),
            cause: request.cause.clone(),
            request: request.to_json(),
            cluster_id: None,
            creation_time: now_ms(),
            end_time: None,
            message: None,
        };
        self.store().insert_pipeline_update(&row)?;
        let (stop, stopped) = watch::channel(false);
        self.active().insert(row.update_id.clone(), stop);
        let pipelines = self.clone();
        let update_id = row.update_id.clone();
        let user = user.to_string();
        let driven = update_id.clone();
        tokio::spawn(async move {
            driver::drive(pipelines.clone(), pipeline, row, user, stopped, given).await;
            pipelines.active().remove(&driven);
        });
        Ok(update_id)
    }

    fn active(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, watch::Sender<bool>>> {
        self.inner.active.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get_update(&self, pipeline_id: &str, update_id: &str) -> Result<UpdateRow> {
        self.row(pipeline_id)?;
        self.store()
            .get_pipeline_update(update_id)?
            .filter(|u| u.pipeline_id == pipeline_id)
            .ok_or_else(|| PipelinesError::NotFound(format!("The specified update {update_id} was not found.")))
    }

    pub fn list_updates(&self, pipeline_id: &str, offset: usize, limit: usize) -> Result<Vec<UpdateRow>> {
        self.row(pipeline_id)?;
        Ok(self.store().list_pipeline_updates(pipeline_id, offset, limit)?)
    }

    /// Asks the active update to stop; the driver ends it as CANCELED.
    pub fn stop(&self, pipeline_id: &str) -> Result<()> {
        self.row(pipeline_id)?;
        let Some(mut update) = self.active_update(pipeline_id)? else { return Ok(()) };
        match self.apply(&mut update, Event::StopRequested) {
            Ok(()) | Err(PipelinesError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
        if let Some(stop) = self.active().get(&update.update_id) {
            let _ = stop.send(true);
        }
        Ok(())
    }

    /// Waits until the update reaches a final state.
    pub async fn wait_update(&self, update_id: &str) {
        loop {
            match self.store().get_pipeline_update(update_id) {
                Ok(Some(u)) if !FINAL_STATES.contains(&u.state.as_str()) => {}
                _ => return,
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Moves `update` by `event`, fenced on the state it holds; a refused
    /// or stale move writes nothing and is a `Conflict`, `update` then
    /// re-read (a `stop` may have moved it), so a retry starts from what
    /// is stored.
    pub(crate) fn apply(&self, update: &mut UpdateRow, event: Event) -> Result<()> {
        let from = UpdateState::parse(&update.state).unwrap_or(UpdateState::Failed);
        let to = match state::next(from, event) {
            Ok(to) => to,
            Err(refusal) => {
                if let Some(current) = self.store().get_pipeline_update(&update.update_id)? {
                    *update = current;
                }
                return Err(PipelinesError::Conflict(refusal.to_string()));
            }
        };
        let mut next = update.clone();
        next.state = to.as_str().into();
        if to.is_final() {
            next.end_time = Some(now_ms());
        }
        if !self.store().transition_pipeline_update(&next, from.as_str())? {
            tracing::warn!(
                update_id = update.update_id,
                from = from.as_str(),
                ?event,
                "a stale update transition was refused"
            );
            let current = self.store().get_pipeline_update(&update.update_id)?;
            if let Some(current) = current {
                *update = current;
            }
            return Err(PipelinesError::Conflict(format!("update {} moved on meanwhile", update.update_id)));
        }
        *update = next;
        Ok(())
    }

    /// Ends updates a previous process left in flight: nothing drives them.
    pub fn recover(&self) -> Result<usize> {
        let mut ended = 0;
        for mut update in self.store().unfinished_pipeline_updates(&FINAL_STATES)? {
            update.message = Some("tarn stopped while the update ran".into());
            if self.apply(&mut update, Event::Failed).is_ok() {
                ended += 1;
            }
        }
        Ok(ended)
    }
}
