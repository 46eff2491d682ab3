//! Jobs' pipeline tasks reach declarative pipelines here: tarn-jobs'
//! `PipelineUpdates` answered by tarn-pipelines (an update caused by
//! JOB_TASK, awaited, stopped), so neither crate knows the other.

use tarn_jobs::tasks::BoxFuture;
use tarn_jobs::{PipelineUpdates, UpdateEnd, UpdateRequest};
use tarn_pipelines::{Pipelines, StartUpdate};

pub struct JobUpdates(pub Pipelines);

impl PipelineUpdates for JobUpdates {
    fn start(&self, request: UpdateRequest) -> Result<String, String> {
        let start = StartUpdate {
            cause: "JOB_TASK".into(),
            full_refresh: request.full_refresh,
            refresh_selection: request.refresh_selection,
            full_refresh_selection: request.full_refresh_selection,
            validate_only: false,
        };
        self.0.start_update(&request.pipeline_id, start).map_err(|e| e.to_string())
    }

    fn wait<'a>(&'a self, pipeline_id: &'a str, update_id: &'a str) -> BoxFuture<'a, UpdateEnd> {
        Box::pin(async move {
            self.0.wait_update(update_id).await;
            match self.0.get_update(pipeline_id, update_id) {
                Ok(update) => match update.state.as_str() {
                    "COMPLETED" => UpdateEnd::Completed,
                    "CANCELED" => UpdateEnd::Canceled,
                    _ => UpdateEnd::Failed(
                        update.message.unwrap_or_else(|| format!("The pipeline update {update_id} failed")),
                    ),
                },
                Err(e) => UpdateEnd::Failed(format!("The pipeline update {update_id} could not be read: {e}")),
            }
        })
    }

    fn stop(&self, pipeline_id: &str, update_id: &str) {
        let ours = matches!(self.0.active_update(pipeline_id), Ok(Some(u)) if u.update_id == update_id);
        if ours && let Err(e) = self.0.stop(pipeline_id) {
            tracing::warn!(pipeline_id, update_id, error = %e, "stopping a job task's pipeline update");
        }
    }
}
