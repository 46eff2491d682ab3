//! The event log of a pipeline: what each update did, as Databricks writes
//! it (`create_update`, `update_progress`, `flow_definition`,
//! `flow_progress`, errors), kept in the store for the events API.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use tarn_core::time::now_ms;
use tarn_store::{PipelineEventRow, Store};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
    Metrics,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
            Level::Metrics => "METRICS",
        }
    }
}

/// What a flow reports when it ends or moves.
#[derive(Debug, Clone, Default)]
pub struct FlowReport {
    pub status: &'static str,
    pub metrics: Option<Value>,
    pub data_quality: Option<Value>,
    /// How the flow ran: `INCREMENTAL`, `COMPLETE_RECOMPUTE`, `NO_NEW_DATA`.
    pub mode: Option<&'static str>,
}

/// Events of one update. Cheap to clone.
#[derive(Clone)]
pub struct UpdateLog {
    store: Arc<Store>,
    pipeline_id: String,
    pipeline_name: String,
    update_id: String,
}

impl UpdateLog {
    pub fn new(store: Arc<Store>, pipeline_id: &str, pipeline_name: &str, update_id: &str) -> Self {
        Self {
            store,
            pipeline_id: pipeline_id.into(),
            pipeline_name: pipeline_name.into(),
            update_id: update_id.into(),
        }
    }

    fn record(&self, level: Level, event_type: &str, message: String, origin: Map<String, Value>, details: Value) {
        self.write(level, event_type, message, origin, details, None);
    }

    fn write(
        &self,
        level: Level,
        event_type: &str,
        message: String,
        extra: Map<String, Value>,
        details: Value,
        error: Option<Value>,
    ) {
        let mut origin = Map::new();
        origin.insert("pipeline_id".into(), json!(self.pipeline_id));
        origin.insert("pipeline_name".into(), json!(self.pipeline_name));
        origin.insert("update_id".into(), json!(self.update_id));
        origin.extend(extra);
        let row = PipelineEventRow {
            seq: 0,
            id: uuid::Uuid::new_v4().to_string(),
            pipeline_id: self.pipeline_id.clone(),
            update_id: Some(self.update_id.clone()),
            timestamp: now_ms(),
            level: level.as_str().into(),
            event_type: event_type.into(),
            message,
            origin: Value::Object(origin),
            details,
            error,
        };
        if let Err(e) = self.store.insert_pipeline_event(&row) {
            tracing::warn!(pipeline_id = self.pipeline_id, error = %e, "recording a pipeline event");
        }
    }

    pub fn create_update(&self, cause: &str, full_refresh: bool) {
        let message = format!("Update {} started by {cause}.", short(&self.update_id));
        let details = json!({"create_update": {"cause": cause, "full_refresh": full_refresh}});
        self.record(Level::Info, "create_update", message, Map::new(), details);
    }

    pub fn update_progress(&self, state: &str) {
        let message = format!("Update {} is {state}.", short(&self.update_id));
        let details = json!({"update_progress": {"state": state}});
        self.record(Level::Info, "update_progress", message, Map::new(), details);
    }

    pub fn cluster(&self, cluster_id: &str) {
        let mut origin = Map::new();
        origin.insert("cluster_id".into(), json!(cluster_id));
        let message = format!("Update {} runs on cluster {cluster_id}.", short(&self.update_id));
        let details = json!({"cluster_resources": {"cluster_id": cluster_id}});
        self.record(Level::Info, "cluster_resources", message, origin, details);
    }

    pub fn flow_definition(&self, flow: &str, dataset: &str, inputs: &[String], kind: &str) {
        let inputs: Vec<Value> = inputs.iter().map(|i| json!({"name": i})).collect();
        let details = json!({"flow_definition": {
            "output_dataset": dataset,
            "input_datasets": inputs,
            "flow_type": kind,
        }});
        let message = format!("Flow '{flow}' is defined as writing to '{dataset}'.");
        self.record(Level::Info, "flow_definition", message, flow_origin(flow, dataset), details);
    }

    pub fn flow_progress(&self, flow: &str, dataset: &str, report: &FlowReport) {
        let mut progress = Map::new();
        progress.insert("status".into(), json!(report.status));
        if let Some(metrics) = &report.metrics {
            progress.insert("metrics".into(), metrics.clone());
        }
        if let Some(quality) = &report.data_quality {
            progress.insert("data_quality".into(), quality.clone());
        }
        if let Some(mode) = report.mode {
            progress.insert("mode".into(), json!(mode));
        }
        let level = if report.status == "FAILED" { Level::Error } else { Level::Info };
        let message = format!("Flow '{flow}' is {}.", report.status);
        let details = json!({"flow_progress": progress});
        self.record(level, "flow_progress", message, flow_origin(flow, dataset), details);
    }

    /// An ERROR event: why a flow or the update failed.
    pub fn error(&self, flow: Option<(&str, &str)>, message: &str, class: &str, fatal: bool) {
        let origin = flow.map(|(f, d)| flow_origin(f, d)).unwrap_or_default();
        let error = json!({"fatal": fatal, "exceptions": [{"class_name": class, "message": message}]});
        let event_type = if flow.is_some() { "flow_progress" } else { "update_progress" };
        let details = match flow {
            Some(_) => json!({"flow_progress": {"status": "FAILED"}}),
            None => json!({"update_progress": {"state": "FAILED"}}),
        };
        self.write(Level::Error, event_type, message.to_string(), origin, details, Some(error));
    }

    pub fn warn(&self, flow: Option<(&str, &str)>, event_type: &str, message: String, details: Value) {
        let origin = flow.map(|(f, d)| flow_origin(f, d)).unwrap_or_default();
        self.record(Level::Warn, event_type, message, origin, details);
    }
}

fn flow_origin(flow: &str, dataset: &str) -> Map<String, Value> {
    let mut origin = Map::new();
    origin.insert("flow_name".into(), json!(flow));
    origin.insert("dataset_name".into(), json!(dataset));
    origin
}

fn short(id: &str) -> &str {
    id.get(..6).unwrap_or(id)
}
