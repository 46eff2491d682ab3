//! MLflow tracking: experiments, runs and what they log, logged models,
//! the model registry, the search grammar, and the artifact store behind
//! `mlflow-artifacts:/` URIs (with multipart uploads).
//!
//! `tarn-api` serves it under `/api/2.0/mlflow/*` and
//! `/api/2.0/mlflow-artifacts/*` and owns the JSON shapes; rows live in
//! `tarn-store`; artifact paths go through `tarn-files`' confinement and
//! staged writes. Rules follow the MLflow tracking server's: the default
//! experiment `0`, write-once params, the latest metric per key by step
//! then timestamp then value, soft deletion through `lifecycle_stage`, and
//! MLflow's limits on keys and values.

mod artifacts;
mod error;
pub mod filter;
mod history;
mod logged_models;
mod multipart;
mod names;
mod registry;
mod tracking;
mod validate;

pub use artifacts::{Access, ArtifactFile, Artifacts, files_error};
pub use error::{MlflowError, Result};
pub use logged_models::{ModelSearch, NewModel, RunIo};
pub use multipart::{PartWriter, Uploads};
pub use registry::NewVersion;
pub use tarn_store::mlflow::{
    ExperimentRow, LoggedModelRow, MetricRow, ModelMetric, ModelVersionRow, RegisteredModelRow, RunData, RunRow,
};
pub use tracking::{Page, RUN_NAME_TAG, RunSearch, Tracking, ViewType};
