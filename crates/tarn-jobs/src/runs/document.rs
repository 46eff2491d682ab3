//! A job run's stored document, typed for reading: what the run was
//! triggered with (settings, parameters, overrides, trigger) and its
//! repairs. Written by `Runs::trigger` and `repair`; the driver reads it
//! once when it loads a run.

use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RunDoc {
    pub run_name: String,
    pub job_parameters: Map<String, Value>,
    pub overriding_parameters: OverridingParameters,
    pub trigger: Option<String>,
    pub repair_count: i64,
    pub repairs: Vec<Repair>,
}

/// run-now's `notebook_params`, `python_params`, `pipeline_params` and
/// `dbt_commands`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct OverridingParameters {
    pub notebook_params: Option<Map<String, Value>>,
    pub python_params: Option<Value>,
    pub pipeline_params: Option<PipelineParams>,
    pub dbt_commands: Option<Value>,
}

/// `pipeline_params`: whether the run's pipeline tasks refresh fully.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct PipelineParams {
    pub full_refresh: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Repair {
    pub id: i64,
    pub rerun_tasks: Vec<String>,
}

impl RunDoc {
    /// The document as stored; parts that do not read as expected are
    /// left at their defaults (the document is tarn's own, written typed).
    pub fn read(doc: &Value) -> Self {
        RunDoc::deserialize(doc).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "a run's document did not read whole");
            RunDoc::default()
        })
    }
}
