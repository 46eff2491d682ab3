//! What a `pipeline_task` asks of declarative pipelines, which tarn-jobs
//! does not know: start an update, wait for its end, stop it. `tarn serve`
//! plugs in tarn-pipelines; the driver's Rust tests a fake.

use super::BoxFuture;

/// An update a pipeline task starts, as its settings (and run-now's
/// `pipeline_params`) ask for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateRequest {
    pub pipeline_id: String,
    pub full_refresh: bool,
    pub refresh_selection: Vec<String>,
    pub full_refresh_selection: Vec<String>,
    /// Who the run runs as.
    pub user: String,
}

/// How an update ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateEnd {
    Completed,
    /// FAILED, with the update's error.
    Failed(String),
    Canceled,
}

pub trait PipelineUpdates: Send + Sync + 'static {
    /// Starts an update caused by a job task; its id, or why it could not
    /// start (no such pipeline, an update already active) in words.
    fn start(&self, request: UpdateRequest) -> Result<String, String>;
    /// Waits until the update ends.
    fn wait<'a>(&'a self, pipeline_id: &'a str, update_id: &'a str) -> BoxFuture<'a, UpdateEnd>;
    /// Asks the update to stop if it is still active.
    fn stop(&self, pipeline_id: &str, update_id: &str);
}
