//! `dbt_task`: the project directory (a workspace folder, or a folder of
//! the run's `git_source` checkout) copied to a scratch directory of the
//! attempt, a `profiles.yml` generated there when the task names a
//! warehouse (`profile.rs`), and each command run in order with the dbt of
//! the task's environment (`driver.py`, in the task's execution context, so
//! the environment's dependencies and the run principal's short-lived
//! token are the context's), stopping at the first that fails. dbt's
//! output is the task's logs; its artifacts (`target/*.json`,
//! `logs/dbt.log`) are kept as a `.tar.gz` in DBFS, named by the task's
//! `dbt_output.artifacts_link`. The scratch directory goes with the attempt.

mod profile;
pub mod spec;

use std::path::{Component, Path, PathBuf};

use serde_json::{Value, json};
use tarn_compute::context::Language;
use tarn_files::{Format, ObjectType};

pub use profile::{Endpoint, ProfileSpec, profiles_yml, project_profile};
pub use spec::{DbtSpec, ProjectSource};

use super::context::TaskContext;
use super::{Attempt, Engines, Outcome};

const DRIVER: &str = include_str!("driver.py");

/// What dbt tasks need of the wiring.
#[derive(Debug, Clone)]
pub struct DbtConfig {
    /// Where dbt reaches tarn's warehouse.
    pub endpoint: Endpoint,
    /// Attempts' scratch directories go under it.
    pub scratch: PathBuf,
}

/// An attempt's scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %self.0.display(), error = %e, "could not remove a dbt task's scratch directory");
        }
    }
}

/// Where an attempt's artifacts are kept.
pub fn artifacts_path(task_run_id: i64) -> String {
    format!("dbfs:/tarn/jobs/dbt/{task_run_id}/artifacts.tar.gz")
}

pub(super) async fn run(engines: &Engines, attempt: &Attempt, raw: &Value) -> Outcome {
    let spec = match DbtSpec::parse(raw, attempt.git.is_some()) {
        Ok(spec) => spec,
        Err(e) => return Outcome::failed(e),
    };
    let Some(config) = &engines.dbt else { return Outcome::failed("dbt tasks are not available in this tarn") };
    let warehouse = engines.statements.warehouse().id().to_string();
    if let Some(id) = spec.warehouse_id.as_deref().filter(|id| *id != warehouse) {
        return Outcome::failed(format!("SQL warehouse {id} does not exist"));
    }
    let scratch = Scratch(config.scratch.join(attempt.task_run_id.to_string()));
    let task = match prepare(engines, attempt, &spec, config, &scratch.0) {
        Ok(task) => task,
        Err(e) => return Outcome::failed(e),
    };
    let archive = scratch.0.join("artifacts.tar.gz");
    let code = format!(
        "{DRIVER}\n_tarn_dbt_main(json.loads({}))\n",
        Value::String(task.to_string()) // a JSON string is a Python string literal
    );
    let mut context = match TaskContext::open(engines, attempt, None).await {
        Ok(c) => c,
        Err(e) => return Outcome::failed(e),
    };
    let result = context.run_last(Language::Python, code, Some("<dbt_task>".into())).await;
    let mut outcome = result.into_outcome(context.cluster_id());
    drop(context);
    if let Some(link) = keep_artifacts(engines, attempt.task_run_id, &archive) {
        outcome.output.insert("dbt_output".into(), json!({"artifacts_link": link, "artifacts_headers": {}}));
    }
    outcome
}

/// The project copied into `scratch` and the profiles directory made: the
/// settings `driver.py` runs with.
fn prepare(
    engines: &Engines,
    attempt: &Attempt,
    spec: &DbtSpec,
    config: &DbtConfig,
    scratch: &Path,
) -> Result<Value, String> {
    let _ = std::fs::remove_dir_all(scratch);
    let project = scratch.join("project");
    let given = spec.project_directory.as_deref().unwrap_or_default();
    match spec.source {
        ProjectSource::Workspace => copy_workspace(engines, &attempt.user, given, &project)?,
        ProjectSource::Git => {
            let checkout = match &attempt.git {
                Some(Ok(checkout)) => checkout,
                Some(Err(e)) => return Err(format!("The job's git_source could not be checked out: {e}")),
                None => return Err("The task's source is GIT, but the job has no git_source".into()),
            };
            let dir =
                if given.trim_matches('/').is_empty() { checkout.dir.clone() } else { checkout.resolve(given)? };
            copy_dir(&dir, &project)
                .map_err(|e| format!("Copying the dbt project {given} from the git source: {e}"))?;
        }
    }
    let dbt_project = std::fs::read_to_string(project.join("dbt_project.yml"))
        .map_err(|_| format!("The dbt project directory '{given}' has no dbt_project.yml"))?;
    let profiles_dir = match (&spec.warehouse_id, &spec.profiles_directory) {
        (Some(warehouse_id), _) => {
            let dir = scratch.join("profiles");
            let profile = project_profile(&dbt_project);
            let text = profiles_yml(&ProfileSpec {
                profile: &profile,
                endpoint: &config.endpoint,
                warehouse_id,
                catalog: spec.catalog.as_deref(),
                schema: spec.schema.as_deref(),
            });
            std::fs::create_dir_all(&dir)
                .and_then(|()| std::fs::write(dir.join("profiles.yml"), text))
                .map_err(|e| format!("Writing the dbt profile: {e}"))?;
            dir
        }
        (None, Some(dir)) => project.join(relative(dir)?),
        (None, None) => project.clone(),
    };
    Ok(json!({
        "commands": spec.commands,
        "project_dir": project,
        "profiles_dir": profiles_dir,
        "host": config.endpoint.host,
        "tls_ca_file": config.endpoint.tls_ca_file,
        "hint": hint(spec, config),
        "archive": scratch.join("artifacts.tar.gz"),
    }))
}

/// What a failed command's error adds when the profile cannot work.
fn hint(spec: &DbtSpec, config: &DbtConfig) -> Option<&'static str> {
    let plain = spec.warehouse_id.is_some() && config.endpoint.tls_ca_file.is_none();
    plain.then_some(
        "tarn serves plain HTTP and dbt's connector speaks only HTTPS: \
         commands that reach the warehouse need `tarn serve --tls`",
    )
}

/// A path inside the project: relative, with no `..`.
fn relative(dir: &str) -> Result<PathBuf, String> {
    let path = Path::new(dir);
    if path.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir)) {
        return Ok(path.to_path_buf());
    }
    Err(format!("dbt_task.profiles_directory '{dir}' must be a path inside the project directory"))
}

/// Copies a workspace folder's files (notebooks are not part of a dbt
/// project) if the run's principal may read it.
fn copy_workspace(engines: &Engines, user: &str, dir: &str, dest: &Path) -> Result<(), String> {
    engines.may_read(user, dir)?;
    let workspace = engines.files.workspace();
    let base = workspace.canonical(dir).map_err(|e| format!("{dir}: {e}"))?;
    let info = workspace.get_status(&base).map_err(|e| format!("The dbt project directory {dir}: {e}"))?;
    if !info.object_type.is_container() {
        return Err(format!("The dbt project directory {dir} is not a directory"));
    }
    let mut folders = vec![base.clone()];
    while let Some(folder) = folders.pop() {
        let children = workspace.list(&folder, None).map_err(|e| format!("{folder}: {e}"))?;
        for child in children {
            let rel = child.path.strip_prefix(&base).unwrap_or(&child.path).trim_start_matches('/');
            let target = dest.join(rel);
            match child.object_type {
                ObjectType::Directory | ObjectType::Repo => {
                    std::fs::create_dir_all(&target).map_err(|e| format!("{}: {e}", target.display()))?;
                    folders.push(child.path);
                }
                ObjectType::File => {
                    let content =
                        workspace.export(&child.path, Format::Raw).map_err(|e| format!("{}: {e}", child.path))?;
                    if let Some(parent) = target.parent() {
                        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
                    }
                    std::fs::write(&target, content.content).map_err(|e| format!("{}: {e}", target.display()))?;
                }
                ObjectType::Notebook => {}
            }
        }
    }
    std::fs::create_dir_all(dest).map_err(|e| format!("{}: {e}", dest.display()))
}

/// Copies a checkout's folder, its `.git` left out.
fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == ".git" {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_dir(&entry.path(), &to.join(&name))?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), to.join(&name))?;
        }
    }
    Ok(())
}

/// Keeps the attempt's artifacts in DBFS; their path, if there were any.
fn keep_artifacts(engines: &Engines, task_run_id: i64, archive: &Path) -> Option<String> {
    let data = std::fs::read(archive).ok()?;
    let path = artifacts_path(task_run_id);
    match engines.files.dbfs().put(&path, &data, true) {
        Ok(()) => Some(path),
        Err(e) => {
            tracing::warn!(task_run_id, error = %e, "could not keep a dbt task's artifacts");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profiles_directory_stays_inside_the_project() {
        assert_eq!(relative("profiles").unwrap(), PathBuf::from("profiles"));
        assert_eq!(relative("./conf/dbt").unwrap(), PathBuf::from("./conf/dbt"));
        assert!(relative("../elsewhere").is_err());
        assert!(relative("/etc").is_err());
    }

    #[test]
    fn a_checkout_folder_is_copied_without_its_git_directory() {
        let root = std::env::temp_dir().join(format!("tarn-dbt-copy-{}", std::process::id()));
        let from = root.join("from");
        std::fs::create_dir_all(from.join(".git")).unwrap();
        std::fs::create_dir_all(from.join("models")).unwrap();
        std::fs::write(from.join(".git").join("HEAD"), "x").unwrap();
        std::fs::write(from.join("models").join("a.sql"), "select 1").unwrap();
        copy_dir(&from, &root.join("to")).unwrap();
        assert_eq!(std::fs::read_to_string(root.join("to/models/a.sql")).unwrap(), "select 1");
        assert!(!root.join("to/.git").exists());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
