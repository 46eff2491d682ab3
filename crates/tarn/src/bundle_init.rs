//! `tarn bundle init`: a starter bundle, a job whose notebook task reads a
//! variable, with a development target (the default) and a production one.

use std::path::PathBuf;

const DATABRICKS_YML: &str = r#"# A bundle made by `tarn bundle init`. Deploy it with `tarn bundle deploy`
# (add `-t prod` for production) and run its job with
# `tarn bundle run NAME_job`.
bundle:
  name: NAME

include:
  - resources/*.yml

variables:
  greeting:
    description: What the notebook says hello with.
    default: hello

targets:
  dev:
    # Resources get a "[dev <you>] " prefix and schedules are paused.
    mode: development
    default: true
  prod:
    mode: production
    workspace:
      root_path: /Workspace/Users/${workspace.current_user.userName}/.bundle/${bundle.name}/${bundle.target}
    permissions:
      - user_name: ${workspace.current_user.userName}
        level: CAN_MANAGE
    variables:
      greeting: good morning
"#;

const JOB_YML: &str = r#"resources:
  jobs:
    NAME_job:
      name: NAME_job
      tasks:
        - task_key: notebook
          notebook_task:
            notebook_path: ../src/notebook.py
            base_parameters:
              greeting: ${var.greeting}
"#;

const NOTEBOOK: &str = r#"# Databricks notebook source
dbutils.widgets.text("greeting", "hello")
greeting = dbutils.widgets.get("greeting")
print(f"{greeting} from NAME")

# COMMAND ----------

dbutils.notebook.exit(greeting)
"#;

const GITIGNORE: &str = ".databricks/\ndist/\n__pycache__/\n*.egg-info/\n.venv/\n";

/// A bundle name from a folder name: lowercase letters, digits and `_`.
fn bundle_name(text: &str) -> String {
    let name: String =
        text.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    if name.is_empty() { "my_project".to_string() } else { name }
}

pub fn init(dir: Option<PathBuf>, name: Option<String>) -> Result<(), String> {
    let (dir, name) = match (dir, name) {
        (Some(dir), Some(name)) => (dir, bundle_name(&name)),
        (Some(dir), None) => {
            let base = std::path::absolute(&dir).map_err(|e| e.to_string())?;
            let name = bundle_name(&base.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default());
            (dir, name)
        }
        (None, name) => {
            let name = bundle_name(name.as_deref().unwrap_or("my_project"));
            (PathBuf::from(&name), name)
        }
    };
    if dir.join("databricks.yml").exists() {
        return Err(format!("{} already holds a databricks.yml", dir.display()));
    }
    let files = [
        ("databricks.yml".to_string(), DATABRICKS_YML),
        (format!("resources/{name}.job.yml"), JOB_YML),
        ("src/notebook.py".to_string(), NOTEBOOK),
        (".gitignore".to_string(), GITIGNORE),
    ];
    for (rel, text) in files {
        let path = dir.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("creating {}: {e}", parent.display()))?;
        }
        std::fs::write(&path, text.replace("NAME", &name)).map_err(|e| format!("writing {}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    println!("Bundle {name} is in {}: `cd {}` and run `tarn bundle validate`", dir.display(), dir.display());
    Ok(())
}
