//! Jobs: job definitions checked as Databricks checks them (the task DAG
//! from `depends_on`, `run_if`, task types, compute, dynamic value
//! references) and kept in `tarn-store`.
//!
//! `tarn-api` serves them as the Jobs API 2.1 and 2.2. The run scheduler,
//! task runners, triggers and notifications come next.

mod error;
mod jobs;
mod references;
mod spec;

pub use error::{JobsError, Result};
pub use jobs::{JobList, Jobs};
pub use spec::validate;
pub use tarn_store::JobRow;
