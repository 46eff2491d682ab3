//! Declarative pipelines (Lakeflow / Delta Live Tables and Spark's
//! declarative pipelines): pipeline settings, updates and their states, the
//! dataflow graph from Python and SQL definitions, flows run incrementally
//! with expectations, and the event log.
//!
//! An update runs on the pipeline's own cluster (a managed cluster tagged
//! with the pipeline): Python definitions are analyzed in a worker there
//! (`python/tarn/pipeline.py`, which `import dlt` reaches), SQL ones here;
//! [`plan`] orders the flows; each flow's query runs on the engine and tarn
//! writes its rows with delta-rs, checking expectations on the way.
//!
//! Spark Declarative Pipelines' clients (`python -m pyspark.pipelines.cli`)
//! define graphs through tarn's Spark Connect gateway; [`Graphs`] keeps
//! them and runs each as an update of the project's pipeline.

mod dataflow;
pub mod error;
pub mod event_table;
pub mod events;
pub mod flows;
pub mod graph;
mod pipelines;
pub mod plan;
pub mod settings;
mod sources;
pub mod sql;
pub mod table_dir;
pub mod updates;

pub use dataflow::Graphs;
pub use error::{PipelinesError, Result};
pub use pipelines::{PipelineView, Pipelines, PipelinesConfig};
pub use settings::PipelineSettings;
pub use updates::StartUpdate;
