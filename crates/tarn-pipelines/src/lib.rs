//! Declarative pipelines (Lakeflow / Delta Live Tables and Spark's
//! declarative pipelines): pipeline settings, updates and their states, the
//! dataflow graph from Python and SQL definitions, flows run incrementally
//! with expectations, and the event log.

pub mod graph;
pub mod sql;
