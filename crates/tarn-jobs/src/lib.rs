//! Jobs: job definitions checked as Databricks checks them (the task DAG
//! from `depends_on`, `run_if`, task types, compute, dynamic value
//! references) and kept in `tarn-store`; runs driven task by task on
//! `tarn-compute` contexts and the warehouse, with retries, timeouts,
//! task values, cancels and repairs; schedules and file-arrival
//! [`triggers`]; run notifications ([`notify`]).
//!
//! A job's settings are read once into the typed [`settings`], which `spec`
//! checks and runs are driven by. Run and task-run states move only by
//! events through `runs::state::next`, the one transition function, and are
//! written only by `Runs::apply`, a fenced write (`UPDATE ... WHERE
//! life_cycle_state = <the state read>`): a refused or stale transition is
//! logged and counted, never applied. The driver reaches compute through the
//! [`TaskRunner`] trait; [`Engines`] is the real runner, and
//! `tests/driving.rs` drives runs with a fake one. A `pipeline_task`
//! reaches declarative pipelines through [`PipelineUpdates`], likewise
//! plugged in (`Runs::with_pipelines`).
//!
//! Requests come typed (`JobSettings`, `JobUpdate`, `RunNow`, `Submit`)
//! and runs are answered as records (`RunRecord`, `TaskRunRecord`,
//! `OutputRecord`), destinations as `Destination`s: the Jobs API's JSON is
//! not built here (a webhook's envelope and the `state` object a run's
//! document stores aside). `tarn-api` serves them as the Jobs API 2.1 and
//! 2.2, and its run view is the [`RenderRun`] a `Notifier` posts to
//! generic webhooks.

mod error;
pub mod git;
mod jobs;
pub mod notify;
mod references;
pub mod runs;
pub mod schedule;
pub mod settings;
mod spec;
pub mod tasks;
pub mod triggers;

pub use error::{JobsError, Result};
pub use git::{GitRevision, GitSource, GitSources};
pub use jobs::{JobList, JobUpdate, Jobs};
pub use notify::{
    Destination, DestinationConfig, Destinations, Notice, Notifier, RenderRun, Secret, SmtpConfig, WebhookKind,
};
pub use runs::{OutputRecord, RepairRequest, RunNow, RunOrTask, RunRecord, Runs, RunsConfig, Submit, TaskRunRecord};
pub use settings::JobSettings;
pub use spec::{validate, validate_with};
pub use tarn_store::{JobRow, RunFilter};
pub use tasks::{Engines, PipelineUpdates, SourceAccess, SqlObjects, TaskRunner, UpdateEnd, UpdateRequest};
