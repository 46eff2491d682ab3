//! A bundle's configuration: `databricks.yml` and its includes, variables,
//! targets and their modes, presets, resolved for one target into a
//! [`Bundle`] the deployer can carry out without reading YAML again.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde_json::Value;

mod interpolate;
mod load;
mod merge;
mod mode;
mod normalize;
mod output;
mod paths;
mod resources;
mod sync;
mod targets;
mod variables;
mod yaml;

pub use load::{find_root, load};
pub use paths::is_notebook_source;

/// What `tarn bundle <verb>` passes on: `-t/--target` and `--var name=value`
/// (`BUNDLE_VAR_<name>` environment variables are read by [`load`] itself).
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub target: Option<String>,
    pub vars: Vec<(String, String)>,
}

/// Where a value came from: the file (relative to the bundle root), line
/// and column (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// A problem found in a bundle, named by its location and the key path
/// (`resources.jobs.etl.tasks[0].notebook_task.notebook_path`).
#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub severity: Severity,
    pub summary: String,
    pub location: Option<Location>,
    pub path: String,
}

/// `mode:` of a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Development,
    Production,
}

/// The deploying principal, as `/api/2.0/preview/scim/v2/Me` names it.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user_name: String,
    /// The name before the `@`, normalized as Databricks does, for the
    /// `[dev <short name>] ` prefix and the `dev` tag.
    pub short_name: String,
}

/// Ids of existing objects by name, for variables with a `lookup:`
/// (`cluster`, `warehouse`, `job`, `pipeline`, `cluster_policy`,
/// `instance_pool`, `service_principal`, `metastore`, `alert`, `query`,
/// `dashboard`). The deployer answers it from the workspace.
pub trait Lookup {
    fn resolve(&self, kind: &str, name: &str) -> Result<String, String>;
}

/// One resource of the bundle: its API settings (variables interpolated,
/// presets and mode applied, local paths turned into workspace paths;
/// `${resources.<type>.<key>.<field>}` references left for the deployer)
/// and where it was declared. Its `permissions` are Permissions API ACL
/// items (`permission_level` and one principal), the top-level ones
/// already appended; `grants` stay as written; jobs and pipelines carry
/// the bundle's `run_as` unless they set their own.
#[derive(Debug, Clone)]
pub struct Resource {
    pub value: Value,
    pub location: Location,
}

/// An artifact to build and upload (`artifacts:`), e.g. a Python wheel.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub kind: String,
    /// Directory the build runs in (absolute).
    pub path: PathBuf,
    /// The build command; `uv build --wheel` for a `whl` without one.
    pub build: Option<String>,
    /// Globs (relative to the bundle root) of the files the build leaves.
    pub files: Vec<String>,
}

/// A bundle resolved for one target.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The directory holding `databricks.yml` (absolute).
    pub root: PathBuf,
    pub name: String,
    pub target: String,
    pub mode: Option<Mode>,
    /// `workspace.root_path` resolved (`/Workspace/Users/<u>/.bundle/<name>/<target>`).
    pub root_path: String,
    pub file_path: String,
    pub artifact_path: String,
    pub state_path: String,
    /// Resource type (`jobs`, `pipelines`, ...) to key to resource.
    pub resources: BTreeMap<String, BTreeMap<String, Resource>>,
    /// Top-level `permissions:` (each entry as the Permissions API's ACL item).
    pub permissions: Vec<Value>,
    /// `run_as:` (`user_name` or `service_principal_name`).
    pub run_as: Option<Value>,
    pub artifacts: BTreeMap<String, Artifact>,
    /// Local files to upload (relative to `root`), after `sync` include/exclude and `.gitignore`.
    pub sync_files: Vec<PathBuf>,
    /// The whole resolved configuration, as `metadata.json` and `validate --output json` carry it.
    pub config: Value,
    /// Warnings found while loading (errors stop loading).
    pub warnings: Vec<Diagnostic>,
    /// Whether deploys take the workspace lock: off in development mode
    /// unless `bundle.deployment.lock.enabled: true`, on otherwise.
    pub lock_enabled: bool,
}

/// Printed as the databricks CLI prints its diagnostics.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "Error",
            Severity::Warning => "Warning",
        };
        write!(f, "{level}: {}", self.summary)?;
        if !self.path.is_empty() {
            write!(f, "\n  at {}", self.path)?;
        }
        // Line 0 marks a value from outside the files (`--var`, the environment).
        if let Some(loc) = self.location.as_ref().filter(|l| l.line > 0) {
            write!(f, "\n  in {}:{}:{}", loc.file.display(), loc.line, loc.column)?;
        }
        Ok(())
    }
}

impl Diagnostic {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}
