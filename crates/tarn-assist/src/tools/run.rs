//! `execute_code`: code, a local file or a notebook run cell by cell in an
//! execution context on a cluster or on serverless compute; optionally saved
//! to the workspace as a notebook with its outputs.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use tarn_files::{Cell, Language};

use crate::{Client, ClientError};

/// How deep `%run` may nest.
const MAX_RUN_DEPTH: usize = 8;

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ExecuteCodeArgs {
    /// The code to run (or give `file_path`).
    #[serde(default)]
    pub code: Option<String>,
    /// A local file to run: a `.py`/`.sql` file, a Databricks source notebook
    /// or an `.ipynb`, cell by cell.
    #[serde(default)]
    pub file_path: Option<String>,
    /// `python` (default) or `sql`; a file's own language wins.
    #[serde(default)]
    pub language: Option<String>,
    /// `cluster`, `serverless`, or `auto` (default): a running cluster, else serverless.
    #[serde(default)]
    pub compute_type: Option<String>,
    /// The cluster to run on (compute_type `cluster`, or `auto` to prefer it).
    #[serde(default)]
    pub cluster_id: Option<String>,
    /// A context from an earlier call: its variables and temp views are kept.
    #[serde(default)]
    pub context_id: Option<String>,
    /// Save the run to the workspace as a notebook at this path, code and outputs together.
    #[serde(default)]
    pub workspace_path: Option<String>,
    /// The title of the saved notebook.
    #[serde(default)]
    pub run_name: Option<String>,
    /// Destroy the context once the code ran (its state is then gone).
    #[serde(default)]
    pub destroy_context_on_completion: bool,
}

/// One cell to run, or a markdown cell kept for the saved notebook.
#[derive(Debug, Clone)]
struct Step {
    language: Option<&'static str>,
    source: String,
}

fn language_name(language: Language) -> Option<&'static str> {
    match language {
        Language::Python => Some("python"),
        Language::Sql => Some("sql"),
        Language::Scala | Language::R => None,
    }
}

pub async fn execute_code(client: &Client, args: ExecuteCodeArgs) -> Result<Value, ClientError> {
    let steps = steps(client, &args).await?;
    let (cluster_id, compute_type) = compute(client, &args).await?;
    let (context_id, created) = match &args.context_id {
        Some(id) if !id.is_empty() => (id.clone(), false),
        _ => (create_context(client, cluster_id.as_deref()).await?, true),
    };
    let mut cells = Vec::new();
    let mut success = true;
    for step in &steps {
        let Some(language) = step.language else {
            cells.push(json!({"language": "markdown", "source": step.source}));
            continue;
        };
        let result = run_command(client, cluster_id.as_deref(), &context_id, language, &step.source).await?;
        let failed = result.get("error").is_some();
        cells.push(json!({"language": language, "source": step.source, "result": result}));
        if failed {
            success = false;
            break;
        }
    }
    let destroyed = args.destroy_context_on_completion;
    if destroyed {
        client.post("/api/1.2/contexts/destroy", &json!({"clusterId": cluster_id, "contextId": context_id})).await?;
    }
    let output = cells.iter().rev().find_map(|c| c.get("result")).cloned().unwrap_or(Value::Null);
    let mut answer = json!({
        "success": success,
        "output": output,
        "cells": cells,
        "context_id": if destroyed { Value::Null } else { json!(context_id) },
        "context_created": created,
        "cluster_id": cluster_id,
        "compute_type": compute_type,
    });
    if let Some(path) = args.workspace_path.as_deref().filter(|p| !p.is_empty()) {
        let name = args.run_name.clone().unwrap_or_else(|| "execute_code".to_string());
        save_notebook(client, path, &name, &answer).await?;
        answer["workspace_path"] = json!(path);
    }
    Ok(answer)
}

/// The cells to run: the file's (with `%run` inlined) or the code as one cell.
async fn steps(client: &Client, args: &ExecuteCodeArgs) -> Result<Vec<Step>, ClientError> {
    let default = match args.language.as_deref().unwrap_or("python").to_ascii_lowercase().as_str() {
        "python" => Language::Python,
        "sql" => Language::Sql,
        other => return Err(ClientError::Invalid(format!("Unknown language {other}; use python or sql"))),
    };
    let (language, cells) = match (&args.code, &args.file_path) {
        (Some(code), None) => (default, vec![Cell { magic: None, source: code.clone() }]),
        (None, Some(path)) => {
            let content = std::fs::read(path).map_err(|e| ClientError::Invalid(format!("reading {path}: {e}")))?;
            tarn_files::file_cells(path, content).map_err(|e| ClientError::Invalid(e.to_string()))?
        }
        _ => return Err(ClientError::Invalid("execute_code takes one of code and file_path".into())),
    };
    let mut steps = Vec::new();
    expand(client, language, cells, 0, &mut steps).await?;
    Ok(steps)
}

/// Turns cells into steps: magics pick the language, `%md` is kept as text,
/// `%run <notebook>` brings in that workspace notebook's cells.
async fn expand(
    client: &Client,
    language: Language,
    cells: Vec<Cell>,
    depth: usize,
    steps: &mut Vec<Step>,
) -> Result<(), ClientError> {
    for cell in cells {
        let step_language = match cell.magic.as_deref() {
            None => language_name(language),
            Some("python") => Some("python"),
            Some("sql") => Some("sql"),
            Some("md") => None,
            Some("run") => {
                let (language, cells) = workspace_notebook(client, cell.source.trim(), depth).await?;
                Box::pin(expand(client, language, cells, depth + 1, steps)).await?;
                continue;
            }
            Some(other) => {
                return Err(ClientError::Invalid(format!("%{other} cells are not supported; use python or sql")));
            }
        };
        if cell.magic.is_none() && step_language.is_none() {
            return Err(ClientError::Invalid(format!("{} notebooks cannot run here", language.name())));
        }
        steps.push(Step { language: step_language, source: cell.source });
    }
    Ok(())
}

async fn workspace_notebook(client: &Client, path: &str, depth: usize) -> Result<(Language, Vec<Cell>), ClientError> {
    if depth >= MAX_RUN_DEPTH {
        return Err(ClientError::Invalid(format!("%run nests deeper than {MAX_RUN_DEPTH} notebooks at {path}")));
    }
    let path = path.trim_matches('"');
    let exported = client.get("/api/2.0/workspace/export", &[("path", path), ("format", "SOURCE")]).await?;
    let content = exported.get("content").and_then(Value::as_str).unwrap_or_default();
    let bytes = base64_decode(content).ok_or_else(|| ClientError::Invalid(format!("{path}: unreadable export")))?;
    let extension = match exported.get("file_type").and_then(Value::as_str) {
        Some(ext) => ext.to_string(),
        None => "py".to_string(),
    };
    tarn_files::file_cells(&format!("{path}.{extension}"), bytes).map_err(|e| ClientError::Invalid(e.to_string()))
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// Where to run: (cluster id or none for serverless, the compute type used).
async fn compute(client: &Client, args: &ExecuteCodeArgs) -> Result<(Option<String>, &'static str), ClientError> {
    let named = args.cluster_id.clone().filter(|c| !c.is_empty());
    match args.compute_type.as_deref().unwrap_or("auto") {
        "serverless" => Ok((None, "serverless")),
        "cluster" => match named {
            Some(id) => Ok((Some(id), "cluster")),
            None => running_cluster(client).await?.map(|id| (Some(id), "cluster")).ok_or_else(|| {
                ClientError::Invalid("compute_type cluster: no cluster_id and no running cluster".into())
            }),
        },
        "auto" => match named {
            Some(id) => Ok((Some(id), "cluster")),
            None => Ok(match running_cluster(client).await? {
                Some(id) => (Some(id), "cluster"),
                None => (None, "serverless"),
            }),
        },
        other => Err(ClientError::Invalid(format!("Unknown compute_type {other}; use cluster, serverless or auto"))),
    }
}

async fn running_cluster(client: &Client) -> Result<Option<String>, ClientError> {
    let listed = super::list_compute(client, super::ListComputeArgs { resource: None, auto_select: true }).await?;
    Ok(listed.pointer("/suggestions/0/cluster_id").and_then(Value::as_str).map(str::to_string))
}

async fn create_context(client: &Client, cluster_id: Option<&str>) -> Result<String, ClientError> {
    let created =
        client.post("/api/1.2/contexts/create", &json!({"clusterId": cluster_id, "language": "python"})).await?;
    created
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| ClientError::Transport("contexts/create answered no id".into()))
}

/// Runs one command and waits for it, polling quickly at first.
async fn run_command(
    client: &Client,
    cluster_id: Option<&str>,
    context_id: &str,
    language: &str,
    code: &str,
) -> Result<Value, ClientError> {
    let body = json!({"clusterId": cluster_id, "contextId": context_id, "language": language, "command": code});
    let command = client.post("/api/1.2/commands/execute", &body).await?;
    let command_id = command.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
    let mut query = vec![("contextId", context_id), ("commandId", command_id.as_str())];
    if let Some(cluster) = cluster_id {
        query.push(("clusterId", cluster));
    }
    let mut pause = Duration::from_millis(5);
    loop {
        let status = client.get("/api/1.2/commands/status", &query).await?;
        match status.get("status").and_then(Value::as_str) {
            Some("Finished" | "Error" | "Cancelled") => return Ok(simplify(&status)),
            _ => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(250));
            }
        }
    }
}

/// A command's results in the shape an assistant reads best.
fn simplify(status: &Value) -> Value {
    let results = status.get("results").cloned().unwrap_or(Value::Null);
    let get = |k: &str| results.get(k).cloned().unwrap_or(Value::Null);
    match results.get("resultType").and_then(Value::as_str) {
        Some("error") => json!({"status": status.get("status"), "error": get("summary"), "traceback": get("cause")}),
        Some("table") => {
            let columns: Vec<Value> = results
                .get("schema")
                .and_then(Value::as_array)
                .map(|s| s.iter().map(|c| c.get("name").cloned().unwrap_or(Value::Null)).collect())
                .unwrap_or_default();
            json!({"status": status.get("status"), "columns": columns, "rows": get("data"), "truncated": get("truncated")})
        }
        _ => json!({"status": status.get("status"), "text": get("data")}),
    }
}

/// Saves the run as a SOURCE notebook: a title cell, then each cell followed
/// by its output as markdown, so code and outputs are read together.
async fn save_notebook(client: &Client, path: &str, run_name: &str, answer: &Value) -> Result<(), ClientError> {
    let mut parts = vec![format!(
        "# MAGIC %md\n# MAGIC # {run_name}\n# MAGIC compute: {} {}",
        answer["compute_type"].as_str().unwrap_or(""),
        answer["cluster_id"].as_str().unwrap_or("")
    )];
    for cell in answer["cells"].as_array().into_iter().flatten() {
        let source = cell["source"].as_str().unwrap_or_default();
        match cell["language"].as_str() {
            Some("python") => parts.push(source.to_string()),
            Some("sql") => parts.push(magic("%sql", source)),
            _ => parts.push(magic("%md", source)),
        }
        if let Some(result) = cell.get("result") {
            let shown = serde_json::to_string_pretty(result).unwrap_or_default();
            parts.push(magic("%md", &format!("Output:\n```\n{shown}\n```")));
        }
    }
    let source = format!("# Databricks notebook source\n{}\n", parts.join("\n\n# COMMAND ----------\n\n"));
    let body = json!({
        "path": path,
        "format": "SOURCE",
        "language": "PYTHON",
        "overwrite": true,
        "content": base64_encode(source.as_bytes()),
    });
    let parent = path.rsplit_once('/').map_or("/", |(p, _)| if p.is_empty() { "/" } else { p });
    client.post("/api/2.0/workspace/mkdirs", &json!({"path": parent})).await?;
    client.post("/api/2.0/workspace/import", &body).await.map(|_| ())
}

fn magic(name: &str, source: &str) -> String {
    std::iter::once(format!("# MAGIC {name}"))
        .chain(source.lines().map(|l| format!("# MAGIC {l}")))
        .collect::<Vec<_>>()
        .join("\n")
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
