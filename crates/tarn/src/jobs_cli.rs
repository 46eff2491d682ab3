//! `tarn jobs` and `tarn runs`: jobs and their runs through the Jobs API
//! of the workspace `tarn_assist::Workspace` finds (this tarn, or any
//! Databricks workspace). `run-now` and `runs watch` show the run's tasks
//! live, a line per task updating as its state changes.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use clap::Subcommand;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use tarn_assist::{Client, Workspace};

const POLL: Duration = Duration::from_millis(300);

#[derive(Subcommand)]
pub enum JobsAction {
    /// Create a job from a JSON file of its settings (as `databricks jobs create --json @file`).
    Create {
        #[arg(long)]
        json: std::path::PathBuf,
    },
    /// Start a run and follow it to its end (exits non-zero unless it succeeds).
    RunNow {
        job_id: i64,
        /// A job parameter, NAME=VALUE (repeatable).
        #[arg(long = "param", value_parser = parse_param)]
        params: Vec<(String, String)>,
        /// Print the run id and return at once.
        #[arg(long)]
        no_wait: bool,
    },
    List,
    Get {
        job_id: i64,
    },
}

#[derive(Subcommand)]
pub enum RunsAction {
    Get {
        run_id: i64,
    },
    /// Follow a run to its end, its tasks shown live.
    Watch {
        run_id: i64,
    },
    Cancel {
        run_id: i64,
    },
    /// What a run's task runs printed, their errors and notebook results.
    Logs {
        run_id: i64,
    },
}

pub(crate) fn parse_param(text: &str) -> Result<(String, String), String> {
    let (name, value) = text.split_once('=').ok_or_else(|| format!("expected NAME=VALUE, got '{text}'"))?;
    Ok((name.to_string(), value.to_string()))
}

pub(crate) fn client(home: &Path) -> Result<Client, String> {
    Client::new(Workspace::discover(home).map_err(|e| e.to_string())?).map_err(|e| e.to_string())
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())
}

pub(crate) fn pretty(value: &Value) -> Result<(), String> {
    println!("{}", serde_json::to_string_pretty(value).map_err(|e| e.to_string())?);
    Ok(())
}

pub fn jobs(home: &Path, action: JobsAction) -> Result<(), String> {
    let client = client(home)?;
    runtime()?.block_on(async move {
        let api = |e: tarn_assist::ClientError| e.to_string();
        match action {
            JobsAction::Create { json } => {
                let text = std::fs::read_to_string(&json).map_err(|e| format!("reading {}: {e}", json.display()))?;
                let settings: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", json.display()))?;
                pretty(&client.post("/api/2.2/jobs/create", &settings).await.map_err(api)?)
            }
            JobsAction::RunNow { job_id, params, no_wait } => {
                let parameters: serde_json::Map<String, Value> =
                    params.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
                let body = json!({"job_id": job_id, "job_parameters": parameters});
                let started = client.post("/api/2.2/jobs/run-now", &body).await.map_err(api)?;
                let run_id = started.get("run_id").and_then(Value::as_i64).ok_or("run-now answered no run_id")?;
                println!("run {run_id} of job {job_id}");
                if no_wait {
                    return Ok(());
                }
                watch(&client, run_id).await
            }
            JobsAction::List => pretty(&client.get("/api/2.2/jobs/list", &[("limit", "100")]).await.map_err(api)?),
            JobsAction::Get { job_id } => {
                pretty(&client.get("/api/2.2/jobs/get", &[("job_id", &job_id.to_string())]).await.map_err(api)?)
            }
        }
    })
}

pub fn runs(home: &Path, action: RunsAction) -> Result<(), String> {
    let client = client(home)?;
    runtime()?.block_on(async move {
        let api = |e: tarn_assist::ClientError| e.to_string();
        match action {
            RunsAction::Get { run_id } => pretty(&get_run(&client, run_id).await?),
            RunsAction::Watch { run_id } => watch(&client, run_id).await,
            RunsAction::Cancel { run_id } => {
                client.post("/api/2.2/jobs/runs/cancel", &json!({"run_id": run_id})).await.map_err(api)?;
                println!("cancelling run {run_id}");
                Ok(())
            }
            RunsAction::Logs { run_id } => logs(&client, run_id).await,
        }
    })
}

async fn get_run(client: &Client, run_id: i64) -> Result<Value, String> {
    client.get("/api/2.2/jobs/runs/get", &[("run_id", &run_id.to_string())]).await.map_err(|e| e.to_string())
}

fn state_of(v: &Value) -> String {
    let life = v.pointer("/state/life_cycle_state").and_then(Value::as_str).unwrap_or("?");
    match v.pointer("/state/result_state").and_then(Value::as_str) {
        Some(result) => format!("{life} {result}"),
        None => life.to_string(),
    }
}

fn is_final(run: &Value) -> bool {
    matches!(
        run.pointer("/state/life_cycle_state").and_then(Value::as_str),
        Some("TERMINATED" | "SKIPPED" | "INTERNAL_ERROR")
    )
}

/// Follows the run until it ends: a spinner per task on a terminal, a line
/// per change otherwise; fails unless the run succeeded.
pub(crate) async fn watch(client: &Client, run_id: i64) -> Result<(), String> {
    let multi = MultiProgress::new();
    let style = ProgressStyle::with_template("{spinner} {prefix:<24} {msg}").map_err(|e| e.to_string())?;
    let mut bars: HashMap<String, ProgressBar> = HashMap::new();
    let mut shown: HashMap<String, String> = HashMap::new();
    loop {
        let run = get_run(client, run_id).await?;
        for task in run.get("tasks").and_then(Value::as_array).into_iter().flatten() {
            let key = task.get("task_key").and_then(Value::as_str).unwrap_or("?").to_string();
            let attempt = task.get("attempt_number").and_then(Value::as_i64).unwrap_or(0);
            let line = match attempt {
                0 => state_of(task),
                n => format!("{} (attempt {})", state_of(task), n + 1),
            };
            let bar = bars.entry(key.clone()).or_insert_with(|| {
                let bar = multi.add(ProgressBar::new_spinner().with_style(style.clone()).with_prefix(key.clone()));
                bar.enable_steady_tick(Duration::from_millis(120));
                bar
            });
            if shown.get(&key) != Some(&line) {
                if multi.is_hidden() {
                    println!("{key}: {line}");
                }
                bar.set_message(line.clone());
                shown.insert(key, line);
            }
        }
        if is_final(&run) {
            bars.values().for_each(ProgressBar::finish);
            let result = run.pointer("/state/result_state").and_then(Value::as_str).unwrap_or("");
            let message = run.pointer("/state/state_message").and_then(Value::as_str).unwrap_or("");
            println!("run {run_id}: {} {message}", state_of(&run));
            return match result {
                "SUCCESS" | "SUCCESS_WITH_FAILURES" => Ok(()),
                _ => Err(format!("run {run_id} ended {}", state_of(&run))),
            };
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Each task run's output (or the one task run named).
async fn logs(client: &Client, run_id: i64) -> Result<(), String> {
    let run = get_run(client, run_id).await?;
    let tasks: Vec<Value> = match run.get("tasks").and_then(Value::as_array) {
        Some(tasks) => tasks.clone(),
        None => vec![run],
    };
    for task in tasks {
        let key = task.get("task_key").and_then(Value::as_str).unwrap_or("?");
        let Some(id) = task.get("run_id").and_then(Value::as_i64) else { continue };
        let attempt = task.get("attempt_number").and_then(Value::as_i64).unwrap_or(0);
        println!("== {key} (run {id}, attempt {}): {}", attempt + 1, state_of(&task));
        let output = client
            .get("/api/2.2/jobs/runs/get-output", &[("run_id", &id.to_string())])
            .await
            .map_err(|e| e.to_string())?;
        for (field, label) in [("logs", ""), ("error", "error: "), ("error_trace", "")] {
            if let Some(text) = output.get(field).and_then(Value::as_str).filter(|t| !t.is_empty()) {
                println!("{label}{}", text.trim_end());
            }
        }
        if let Some(result) = output.pointer("/notebook_output/result").and_then(Value::as_str) {
            println!("notebook result: {result}");
        }
    }
    Ok(())
}
