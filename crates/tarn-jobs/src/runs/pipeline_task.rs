//! A `pipeline_task` attempt: an update of its pipeline started (cause
//! JOB_TASK, refreshing as the task and run-now's `pipeline_params` say)
//! and awaited; the task ends as the update did. Dropping the attempt (a
//! cancel, a timeout) stops the update.

use super::task_run::{AttemptEnd, Start};
use crate::settings::PipelineTask;
use crate::tasks::{Outcome, PipelineUpdates, UpdateEnd, UpdateRequest};

/// Stops the update if the task awaiting it is dropped.
struct Awaited<'a> {
    updates: &'a dyn PipelineUpdates,
    pipeline_id: &'a str,
    update_id: &'a str,
    done: bool,
}

impl Drop for Awaited<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.updates.stop(self.pipeline_id, self.update_id);
        }
    }
}

/// The update the task asks for.
fn request(start: &Start, spec: &PipelineTask) -> UpdateRequest {
    let params = start.overriding.pipeline_params.as_ref();
    UpdateRequest {
        pipeline_id: spec.pipeline_id.clone().unwrap_or_default(),
        full_refresh: params.and_then(|p| p.full_refresh).unwrap_or(spec.full_refresh),
        refresh_selection: spec.refresh_selection.clone(),
        full_refresh_selection: spec.full_refresh_selection.clone(),
        user: super::run_as(&start.run).to_string(),
    }
}

pub(super) async fn run(start: &Start, spec: &PipelineTask) -> AttemptEnd {
    let Some(updates) = start.runs.pipelines() else {
        return AttemptEnd::Ran(Outcome::failed("This tarn runs no pipelines"));
    };
    let request = request(start, spec);
    let pipeline_id = request.pipeline_id.clone();
    let full_refresh = request.full_refresh;
    let update_id = match updates.start(request) {
        Ok(id) => id,
        Err(e) => return AttemptEnd::Ran(Outcome::failed(e)),
    };
    let mut awaited = Awaited { updates, pipeline_id: &pipeline_id, update_id: &update_id, done: false };
    let end = updates.wait(&pipeline_id, &update_id).await;
    awaited.done = true;
    drop(awaited);
    let logs = format!("Started update {update_id} of pipeline {pipeline_id} (full_refresh: {full_refresh})\n");
    AttemptEnd::Pipeline { update_id, end, logs }
}

/// How a task whose update ended as `end` is recorded: its result and message.
pub(super) fn ending(update_id: &str, end: &UpdateEnd) -> (super::ResultState, String) {
    use super::ResultState;
    match end {
        UpdateEnd::Completed => (ResultState::Success, String::new()),
        UpdateEnd::Failed(error) => (ResultState::Failed, error.clone()),
        UpdateEnd::Canceled => (ResultState::Canceled, format!("The pipeline update {update_id} was canceled")),
    }
}
