//! Jobs: job definitions checked as Databricks checks them (the task DAG
//! from `depends_on`, `run_if`, task types, compute, dynamic value
//! references) and kept in `tarn-store`; runs driven task by task on
//! `tarn-compute` contexts and the warehouse, with retries, timeouts,
//! task values, cancels and repairs, every transition durable.
//!
//! `tarn-api` serves them as the Jobs API 2.1 and 2.2.

mod error;
mod jobs;
pub mod notify;
mod references;
pub mod runs;
mod schedule;
pub mod settings;
mod spec;
pub mod tasks;
pub mod triggers;

pub use error::{JobsError, Result};
pub use jobs::{JobList, Jobs};
pub use notify::{Destinations, Notifier, SmtpConfig};
pub use runs::{RepairRequest, Runs, RunsConfig};
pub use spec::validate;
pub use tarn_store::{JobRow, RunFilter};
pub use tasks::{Engines, TaskRunner};
