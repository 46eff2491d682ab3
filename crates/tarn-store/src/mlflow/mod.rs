//! MLflow tracking rows: experiments, runs and what runs log. The tracking
//! rules (validation, which changes are allowed) are `tarn-mlflow`'s; this
//! module stores and queries.

mod batches;
mod experiments;
mod models;
mod registry;
mod runs;
mod search;

pub(crate) use batches::BatchQueue;
pub use experiments::ExperimentRow;
pub use models::{LoggedModelRow, ModelMetric};
pub use registry::{ModelVersionRow, RegisteredModelRow};
pub use runs::{LoggedBatch, MetricRow, RunData, RunRow};
pub use search::{Clause, Comparison, Entity, Lifecycle, OrderBy, RunQuery, SqlValue, attribute_column};
