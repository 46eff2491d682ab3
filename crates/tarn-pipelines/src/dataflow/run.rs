//! `StartRun`: a graph runs as an update of a tarn pipeline, so it has the
//! same phases, flows, checkpoints and event log as a `dlt` pipeline's, and
//! shows in `w.pipelines`. The pipeline is the SDP project's: one per
//! `storage` (the spec's checkpoint root, which is what identifies a
//! project across runs; SDP sends no name), created on its first run in
//! the graph's catalog and schema. The update runs on the cluster the
//! client's session is on; its events are read back from the event log and
//! sent to the client as lines until the update ends.

use std::time::Duration;

use serde_json::{Value, json};
use spark_connect_proto::pipeline_command::StartRun;
use tarn_gateway::{GraphCaller, GraphFailure, RunEvent};
use tarn_store::{PipelineEventFilter, PipelineEventRow};
use tokio::sync::mpsc;

use super::Graph;
use super::reads;
use crate::error::PipelinesError;
use crate::pipelines::Pipelines;
use crate::settings::PipelineSettings;
use crate::updates::state::{FINAL_STATES, UpdateState};
use crate::updates::{GivenGraph, StartUpdate};

/// How often the event log is read while the update runs.
const POLL: Duration = Duration::from_millis(200);
const PAGE: usize = 200;
/// Polls for an ended update's last event before following stops (2 s).
const END_EVENT_POLLS: u32 = 10;

pub(super) fn start(
    pipelines: &Pipelines,
    caller: &GraphCaller,
    graph: Graph,
    request: StartRun,
) -> Result<mpsc::Receiver<RunEvent>, GraphFailure> {
    let storage = request.storage.filter(|s| !s.trim().is_empty());
    let storage = storage.ok_or_else(|| GraphFailure::invalid("StartRun needs the pipeline spec's storage"))?;
    let pipeline_id = project_pipeline(pipelines, caller, &graph, &storage)?;
    let definitions = reads::resolve(graph.definitions, &graph.catalog, &graph.schema);
    let update = StartUpdate {
        cause: "API_CALL".into(),
        full_refresh: request.full_refresh_all.unwrap_or(false),
        refresh_selection: request.refresh_selection,
        full_refresh_selection: request.full_refresh_selection,
        validate_only: request.dry.unwrap_or(false),
    };
    let given = GivenGraph { definitions, cluster_id: caller.cluster_id.clone(), port: caller.port };
    let update_id = pipelines.start_given(&pipeline_id, &caller.user, update, given).map_err(failure)?;
    let (events, received) = mpsc::channel(64);
    tokio::spawn(follow(pipelines.clone(), pipeline_id, update_id, events));
    Ok(received)
}

/// The project's pipeline: the one named after `storage`, made to match the
/// graph's namespace and configuration, or a new one.
fn project_pipeline(
    pipelines: &Pipelines,
    caller: &GraphCaller,
    graph: &Graph,
    storage: &str,
) -> Result<String, GraphFailure> {
    let spec = json!({
        "name": storage,
        "storage": storage,
        "catalog": graph.catalog,
        "schema": graph.schema,
        "configuration": graph.conf,
        "libraries": [],
    });
    let settings = PipelineSettings::parse(&spec).map_err(failure)?;
    match pipelines.store().pipeline_named(storage).map_err(|e| failure(e.into()))? {
        Some(row) if row.spec.get("storage").and_then(Value::as_str) == Some(storage) => {
            let same = ["catalog", "schema", "configuration"].iter().all(|k| row.spec.get(*k) == spec.get(*k));
            if !same {
                pipelines.edit(&row.pipeline_id, settings).map_err(failure)?;
            }
            Ok(row.pipeline_id)
        }
        Some(row) => Err(GraphFailure::invalid(format!(
            "Pipeline {} is named '{storage}' but does not keep its state there; rename it or choose another storage",
            row.pipeline_id
        ))),
        None => pipelines.create(&caller.user, settings).map_err(failure),
    }
}

fn failure(e: PipelinesError) -> GraphFailure {
    match e {
        PipelinesError::NotImplemented(m) => GraphFailure::not_implemented(m),
        PipelinesError::Conflict(m) => GraphFailure::failed(m),
        PipelinesError::InvalidParameter(m) | PipelinesError::NotFound(m) => GraphFailure::invalid(m),
        PipelinesError::Store(e) => GraphFailure::failed(e.to_string()),
    }
}

/// Sends the update's events as they are logged, then its failure if it
/// failed. A client that goes away stops the update.
async fn follow(pipelines: Pipelines, pipeline_id: String, update_id: String, events: mpsc::Sender<RunEvent>) {
    let filter = PipelineEventFilter { update_id: Some(update_id.clone()), ascending: true, ..Default::default() };
    let mut sent = 0;
    // The final state is written just before its event is logged: once the
    // update has ended, wait (a little) for that event too.
    let (mut saw_end, mut grace) = (false, END_EVENT_POLLS);
    loop {
        // Read the state first: events logged before the end are all read below.
        let ended = pipelines.get_update(&pipeline_id, &update_id).map(|u| FINAL_STATES.contains(&u.state.as_str()));
        let page = pipelines.store().list_pipeline_events(&pipeline_id, &filter, sent, PAGE).unwrap_or_default();
        sent += page.len();
        for row in &page {
            saw_end |= ends_the_update(row);
            let Some(text) = line(row) else { continue };
            if events.send(RunEvent::Message { timestamp_ms: row.timestamp, text }).await.is_err() {
                let _ = pipelines.stop(&pipeline_id);
                return;
            }
        }
        if page.len() == PAGE {
            continue;
        }
        match ended {
            Ok(true) if !saw_end && grace > 0 => {
                grace -= 1;
                tokio::time::sleep(POLL).await;
            }
            Ok(true) | Err(_) => break,
            Ok(false) if events.is_closed() => {
                let _ = pipelines.stop(&pipeline_id);
                return;
            }
            Ok(false) => tokio::time::sleep(POLL).await,
        }
    }
    let update = pipelines.get_update(&pipeline_id, &update_id);
    let failed = match update.as_ref().map(|u| UpdateState::parse(&u.state)) {
        Ok(Some(UpdateState::Completed)) => None,
        Ok(Some(UpdateState::Canceled)) => Some("The run was canceled".to_string()),
        Ok(_) => Some(update.ok().and_then(|u| u.message).unwrap_or_else(|| "The run failed".into())),
        Err(e) => Some(e.to_string()),
    };
    if let Some(message) = failed {
        let _ = events.send(RunEvent::Failed(GraphFailure::failed(message))).await;
    }
}

/// Whether `row` is the event of the update reaching a final state.
fn ends_the_update(row: &PipelineEventRow) -> bool {
    let state = row.details.pointer("/update_progress/state").and_then(Value::as_str);
    row.event_type == "update_progress" && state.is_some_and(|s| FINAL_STATES.contains(&s))
}

/// An event as a line of the run's output; `None` for events that say
/// nothing to an SDP user.
fn line(row: &PipelineEventRow) -> Option<String> {
    let flow = row.origin.get("flow_name").and_then(Value::as_str).unwrap_or_default();
    let error = || {
        let exceptions = row.error.as_ref()?.get("exceptions")?.as_array()?;
        exceptions.first()?.get("message")?.as_str().map(str::to_string)
    };
    match row.event_type.as_str() {
        "update_progress" if row.level == "ERROR" => {
            Some(format!("Run failed: {}", error().unwrap_or(row.message.clone())))
        }
        "update_progress" => {
            let state = row.details.pointer("/update_progress/state").and_then(Value::as_str)?;
            Some(format!("Run is {state}."))
        }
        "flow_definition" => {
            let details = row.details.get("flow_definition")?;
            let output = details.get("output_dataset").and_then(Value::as_str).unwrap_or_default();
            let inputs: Vec<&str> = details
                .get("input_datasets")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|i| i.get("name").and_then(Value::as_str))
                .collect();
            let reads = if inputs.is_empty() { String::new() } else { format!(", reading {}", inputs.join(", ")) };
            Some(format!("Flow '{flow}' writes to '{output}'{reads}."))
        }
        "flow_progress" if row.level == "ERROR" => {
            Some(format!("Flow '{flow}' has FAILED: {}", error().unwrap_or(row.message.clone())))
        }
        "flow_progress" => {
            let progress = row.details.get("flow_progress")?;
            let status = progress.get("status").and_then(Value::as_str)?;
            Some(match status {
                "COMPLETED" => {
                    let rows = progress.pointer("/metrics/num_output_rows").and_then(Value::as_u64);
                    let mode = progress.get("mode").and_then(Value::as_str);
                    match (mode, rows) {
                        (Some("NO_NEW_DATA"), _) => format!("Flow '{flow}' has COMPLETED (no new data)."),
                        (_, Some(n)) => format!("Flow '{flow}' has COMPLETED ({n} rows written)."),
                        _ => format!("Flow '{flow}' has COMPLETED."),
                    }
                }
                status => format!("Flow '{flow}' is {status}."),
            })
        }
        "create_update" | "cluster_resources" => None,
        _ => Some(row.message.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event_type: &str, level: &str, details: Value, error: Option<Value>) -> PipelineEventRow {
        PipelineEventRow {
            seq: 0,
            id: "e".into(),
            pipeline_id: "p".into(),
            update_id: Some("u".into()),
            timestamp: 0,
            level: level.into(),
            event_type: event_type.into(),
            message: "raw".into(),
            origin: json!({"flow_name": "silver"}),
            details,
            error,
        }
    }

    #[test]
    fn events_read_as_run_lines() {
        let state = event("update_progress", "INFO", json!({"update_progress": {"state": "RUNNING"}}), None);
        assert_eq!(line(&state).as_deref(), Some("Run is RUNNING."));
        let done =
            json!({"flow_progress": {"status": "COMPLETED", "metrics": {"num_output_rows": 3}, "mode": "INCREMENTAL"}});
        assert_eq!(
            line(&event("flow_progress", "INFO", done, None)).as_deref(),
            Some("Flow 'silver' has COMPLETED (3 rows written).")
        );
        let idle = json!({"flow_progress": {"status": "COMPLETED", "mode": "NO_NEW_DATA"}});
        assert_eq!(
            line(&event("flow_progress", "INFO", idle, None)).as_deref(),
            Some("Flow 'silver' has COMPLETED (no new data).")
        );
        let error = json!({"exceptions": [{"class_name": "FlowFailed", "message": "boom"}]});
        let failed = event("flow_progress", "ERROR", json!({"flow_progress": {"status": "FAILED"}}), Some(error));
        assert_eq!(line(&failed).as_deref(), Some("Flow 'silver' has FAILED: boom"));
        let defined = json!({"flow_definition": {"output_dataset": "main.s.silver", "input_datasets": [{"name": "main.s.bronze"}]}});
        assert_eq!(
            line(&event("flow_definition", "INFO", defined, None)).as_deref(),
            Some("Flow 'silver' writes to 'main.s.silver', reading main.s.bronze.")
        );
        assert_eq!(line(&event("create_update", "INFO", json!({}), None)), None);
    }
}
