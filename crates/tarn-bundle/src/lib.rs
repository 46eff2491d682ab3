//! Declarative Automation Bundles (`databricks.yml`) as `tarn bundle` reads
//! and deploys them: `config` loads a bundle for one target into a
//! [`Bundle`] (every value resolved, each with the file, line and key it
//! came from); `deploy` carries a `Bundle` to a workspace over its REST API,
//! the way the databricks CLI's direct engine does (files, lock, state
//! files, resources created or updated in place), and runs and destroys it.

pub mod config;
pub mod deploy;

pub use config::{Bundle, Diagnostic, Location, Resource};
