//! `tarn pipelines`: declarative pipelines through the Pipelines API of the
//! workspace `tarn_assist::Workspace` finds. `start` follows the update
//! live, a line per flow (its state, output rows and expectation counts,
//! read from the update's `flow_progress` events) updating as it changes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::Subcommand;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use tarn_assist::Client;

use crate::jobs_cli::{client, pretty, runtime};

const POLL: Duration = Duration::from_millis(300);
const FINAL_STATES: [&str; 3] = ["COMPLETED", "FAILED", "CANCELED"];

#[derive(Subcommand)]
pub enum PipelinesAction {
    /// Create a pipeline from its settings: a JSON file, or --json (JSON text or @file).
    Create {
        file: Option<PathBuf>,
        #[arg(long, conflicts_with = "file")]
        json: Option<String>,
    },
    /// Start an update and follow its flows to its end (exits non-zero unless it completes).
    Start {
        pipeline_id: String,
        /// Rewrite every table and forget what its flows read.
        #[arg(long)]
        full_refresh: bool,
        /// Run only these datasets' flows (comma-separated).
        #[arg(long, value_delimiter = ',')]
        refresh: Vec<String>,
        /// Fully refresh only these tables (comma-separated).
        #[arg(long, value_delimiter = ',', conflicts_with = "full_refresh")]
        full_refresh_selection: Vec<String>,
        /// Print the update id and return at once.
        #[arg(long)]
        no_wait: bool,
    },
    /// The pipeline: its settings, state and latest updates.
    Get { pipeline_id: String },
    /// The event log, most recent last.
    Events {
        pipeline_id: String,
        /// Only this update's events.
        #[arg(long)]
        update_id: Option<String>,
    },
    /// Stop the active update.
    Stop { pipeline_id: String },
}

pub fn pipelines(home: &std::path::Path, action: PipelinesAction) -> Result<(), String> {
    let client = client(home)?;
    runtime()?.block_on(async move {
        let api = |e: tarn_assist::ClientError| e.to_string();
        match action {
            PipelinesAction::Create { file, json } => {
                let settings = settings(file, json)?;
                pretty(&client.post("/api/2.0/pipelines", &settings).await.map_err(api)?)
            }
            PipelinesAction::Start { pipeline_id, full_refresh, refresh, full_refresh_selection, no_wait } => {
                let body = json!({
                    "full_refresh": full_refresh,
                    "refresh_selection": refresh,
                    "full_refresh_selection": full_refresh_selection,
                });
                let path = format!("/api/2.0/pipelines/{pipeline_id}/updates");
                let started = client.post(&path, &body).await.map_err(api)?;
                let update_id =
                    started.get("update_id").and_then(Value::as_str).ok_or("start answered no update_id")?;
                println!("update {update_id} of pipeline {pipeline_id}");
                if no_wait {
                    return Ok(());
                }
                follow(&client, &pipeline_id, update_id).await
            }
            PipelinesAction::Get { pipeline_id } => {
                pretty(&client.get(&format!("/api/2.0/pipelines/{pipeline_id}"), &[]).await.map_err(api)?)
            }
            PipelinesAction::Events { pipeline_id, update_id } => {
                for event in events(&client, &pipeline_id, update_id.as_deref()).await? {
                    println!("{}", event_line(&event));
                }
                Ok(())
            }
            PipelinesAction::Stop { pipeline_id } => {
                client.post(&format!("/api/2.0/pipelines/{pipeline_id}/stop"), &json!({})).await.map_err(api)?;
                println!("stopping the update of pipeline {pipeline_id}");
                Ok(())
            }
        }
    })
}

/// The settings JSON from a file, `--json @file` or `--json '{...}'`.
fn settings(file: Option<PathBuf>, json: Option<String>) -> Result<Value, String> {
    let (text, source) = match (file, json) {
        (Some(path), _) => (read(&path)?, path.display().to_string()),
        (None, Some(arg)) => match arg.strip_prefix('@') {
            Some(path) => (read(path.as_ref())?, path.to_string()),
            None => (arg, "--json".to_string()),
        },
        (None, None) => return Err("give the pipeline's settings as a file or with --json".into()),
    };
    let settings: Value = serde_json::from_str(&text).map_err(|e| format!("{source}: {e}"))?;
    if !settings.is_object() {
        return Err(format!("{source}: the settings must be a JSON object"));
    }
    Ok(settings)
}

fn read(path: &std::path::Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))
}

/// Every event of the pipeline (or of one update), oldest first.
async fn events(client: &Client, pipeline_id: &str, update_id: Option<&str>) -> Result<Vec<Value>, String> {
    let path = format!("/api/2.0/pipelines/{pipeline_id}/events");
    let filter = update_id.map(|u| format!("update_id='{u}'"));
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut query = vec![("order_by", "timestamp asc"), ("max_results", "100")];
        query.extend(filter.as_deref().map(|f| ("filter", f)));
        query.extend(token.as_deref().map(|t| ("page_token", t)));
        let page = client.get(&path, &query).await.map_err(|e| e.to_string())?;
        out.extend(page.get("events").and_then(Value::as_array).into_iter().flatten().cloned());
        match page.get("next_page_token").and_then(Value::as_str) {
            Some(next) => token = Some(next.to_string()),
            None => return Ok(out),
        }
    }
}

/// `timestamp level event_type message`.
fn event_line(event: &Value) -> String {
    let text = |field: &str| event.get(field).and_then(Value::as_str).unwrap_or("");
    format!("{} {:<5} {:<16} {}", text("timestamp"), text("level"), text("event_type"), text("message"))
}

/// Each flow's line from an update's events, oldest first: the flows in
/// the order they first appear, each as its latest `flow_progress` says.
fn flow_lines(events: &[Value]) -> Vec<(String, String)> {
    let mut order: Vec<String> = Vec::new();
    let mut lines: HashMap<String, String> = HashMap::new();
    for event in events.iter().filter(|e| e.get("event_type").and_then(Value::as_str) == Some("flow_progress")) {
        let Some(flow) = event.pointer("/origin/flow_name").and_then(Value::as_str) else { continue };
        let Some(progress) = event.pointer("/details/flow_progress") else { continue };
        if !lines.contains_key(flow) {
            order.push(flow.to_string());
        }
        let error = event.pointer("/error/exceptions/0/message").and_then(Value::as_str);
        lines.insert(flow.to_string(), progress_line(progress, error));
    }
    order.into_iter().filter_map(|flow| lines.remove(&flow).map(|line| (flow, line))).collect()
}

/// `COMPLETED, 4 rows, 2 dropped; valid_id 5 passed 1 failed`.
fn progress_line(progress: &Value, error: Option<&str>) -> String {
    let mut line = progress.get("status").and_then(Value::as_str).unwrap_or("?").to_string();
    if let Some(rows) = progress.pointer("/metrics/num_output_rows").and_then(Value::as_i64) {
        line.push_str(&format!(", {rows} rows"));
    }
    let quality = progress.get("data_quality");
    if let Some(dropped) = quality.and_then(|q| q.get("dropped_records")).and_then(Value::as_i64).filter(|d| *d > 0) {
        line.push_str(&format!(", {dropped} dropped"));
    }
    let expectations = quality.and_then(|q| q.get("expectations")).and_then(Value::as_array);
    for e in expectations.into_iter().flatten() {
        let name = e.get("name").and_then(Value::as_str).unwrap_or("?");
        let count = |f: &str| e.get(f).and_then(Value::as_i64).unwrap_or(0);
        line.push_str(&format!("; {name} {} passed {} failed", count("passed_records"), count("failed_records")));
    }
    if let Some(error) = error {
        line.push_str(&format!(": {error}"));
    }
    line
}

/// Follows the update to its end: a spinner per flow on a terminal, a line
/// per change otherwise; fails unless the update completed.
pub(crate) async fn follow(client: &Client, pipeline_id: &str, update_id: &str) -> Result<(), String> {
    let multi = MultiProgress::new();
    let style = ProgressStyle::with_template("{spinner} {prefix:<32} {msg}").map_err(|e| e.to_string())?;
    let mut bars: HashMap<String, ProgressBar> = HashMap::new();
    let mut shown: HashMap<String, String> = HashMap::new();
    let update_path = format!("/api/2.0/pipelines/{pipeline_id}/updates/{update_id}");
    loop {
        // The state first: events read after a final state are all there are.
        let update = client.get(&update_path, &[]).await.map_err(|e| e.to_string())?;
        let state = update.pointer("/update/state").and_then(Value::as_str).unwrap_or("?").to_string();
        let events = events(client, pipeline_id, Some(update_id)).await?;
        let update_line = ("[update]".to_string(), state.clone());
        // Flows before the update's own line, so a final state comes last.
        for (key, line) in flow_lines(&events).into_iter().chain(std::iter::once(update_line)) {
            if shown.get(&key) == Some(&line) {
                continue;
            }
            let bar = bars.entry(key.clone()).or_insert_with(|| {
                let bar = multi.add(ProgressBar::new_spinner().with_style(style.clone()).with_prefix(key.clone()));
                bar.enable_steady_tick(Duration::from_millis(120));
                bar
            });
            if multi.is_hidden() {
                println!("{key}: {line}");
            }
            bar.set_message(line.clone());
            shown.insert(key, line);
        }
        if FINAL_STATES.contains(&state.as_str()) {
            bars.values().for_each(ProgressBar::finish);
            let errors = events.iter().filter(|e| e.get("level").and_then(Value::as_str) == Some("ERROR"));
            for error in errors.filter(|e| e.pointer("/origin/flow_name").is_none()) {
                println!("error: {}", error.get("message").and_then(Value::as_str).unwrap_or(""));
            }
            println!("update {update_id}: {state}");
            return match state.as_str() {
                "COMPLETED" => Ok(()),
                _ => Err(format!("update {update_id} ended {state}")),
            };
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flows_show_their_latest_progress_in_first_seen_order() {
        let event = |flow: &str, progress: Value| json!({"event_type": "flow_progress", "origin": {"flow_name": flow}, "details": {"flow_progress": progress}});
        let mut failed = event("gold", json!({"status": "FAILED"}));
        failed["error"] = json!({"exceptions": [{"message": "boom"}]});
        let events = vec![
            event("silver", json!({"status": "QUEUED"})),
            event("gold", json!({"status": "QUEUED"})),
            json!({"event_type": "update_progress", "details": {"update_progress": {"state": "RUNNING"}}}),
            event(
                "silver",
                json!({"status": "COMPLETED", "metrics": {"num_output_rows": 4},
                "data_quality": {"dropped_records": 2, "expectations": [
                    {"name": "valid_id", "dataset": "silver", "passed_records": 5, "failed_records": 1}]}}),
            ),
            failed,
        ];
        assert_eq!(
            flow_lines(&events),
            vec![
                ("silver".to_string(), "COMPLETED, 4 rows, 2 dropped; valid_id 5 passed 1 failed".to_string()),
                ("gold".to_string(), "FAILED: boom".to_string()),
            ]
        );
    }
}
