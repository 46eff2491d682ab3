//! `sql_task` with a `file`: the file's statements run in order on the
//! warehouse. The task's `parameters` are bound as named parameters where a
//! statement has `:name` markers, and replace `{{name}}` in its text (as in
//! Databricks SQL queries), which also works in commands the engine will
//! not take parameters for (INSERT, CREATE).

use std::time::Duration;

use serde_json::Value;
use tarn_sql::statements::SqlParameter;
use tarn_sql::statements::{OnWaitTimeout, StatementRequest, StatementState};

use super::{Attempt, Engines, Outcome};

pub(super) async fn run(engines: &Engines, attempt: &Attempt, spec: &Value) -> Outcome {
    let Some(path) = spec.pointer("/file/path").and_then(Value::as_str) else {
        return Outcome::failed("tarn runs sql_task with a file; queries, alerts and dashboards are not supported");
    };
    if spec.pointer("/file/source").and_then(Value::as_str) == Some("GIT") {
        return Outcome::failed("SQL files from a Git source are not run by tarn; use a workspace path");
    }
    let text = match super::python::read(engines, path) {
        Ok(t) => t,
        Err(e) => return Outcome::failed(e),
    };
    let warehouse_id = spec.get("warehouse_id").and_then(Value::as_str).unwrap_or_default().to_string();
    let parameters: Vec<SqlParameter> = spec
        .get("parameters")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(name, v)| SqlParameter {
                    name: name.clone(),
                    value: Some(v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())),
                    type_text: None,
                })
                .collect()
        })
        .unwrap_or_default();
    let text = parameters
        .iter()
        .fold(text, |text, p| text.replace(&format!("{{{{{}}}}}", p.name), p.value.as_deref().unwrap_or_default()));
    let statements = tarn_sqltext::split_statements(&text);
    for (i, statement) in statements.iter().enumerate() {
        let used: Vec<SqlParameter> =
            parameters.iter().filter(|p| statement.contains(&format!(":{}", p.name))).cloned().collect();
        let request = StatementRequest {
            statement: statement.to_string(),
            warehouse_id: warehouse_id.clone(),
            catalog: None,
            schema: None,
            parameters: used,
            row_limit: Some(1000),
            byte_limit: None,
            wait_timeout: Duration::from_secs(50),
            on_wait_timeout: OnWaitTimeout::Continue,
            user: attempt.user.clone(),
        };
        if let Err(e) = finish(engines, request).await {
            let mut outcome = Outcome::failed(format!("Statement {} of {path} failed: {e}", i + 1));
            outcome.logs = format!("{i} of {} statements ran\n", statements.len());
            outcome.cluster_id = warehouse_cluster(engines);
            return outcome;
        }
    }
    let mut outcome = Outcome::succeeded(format!("{} statements ran\n", statements.len()));
    outcome.cluster_id = warehouse_cluster(engines);
    outcome
}

/// The cluster the warehouse's engine runs as, whose cores the task's
/// usage counts (`billing_origin_product` SQL).
fn warehouse_cluster(engines: &Engines) -> Option<String> {
    let warehouse = engines.statements.warehouse();
    warehouse.status(warehouse.id()).ok()?.cluster_id
}

async fn finish(engines: &Engines, request: StatementRequest) -> Result<(), String> {
    let mut snapshot = engines.statements.execute(request).await.map_err(|e| e.to_string())?;
    loop {
        match snapshot.state {
            StatementState::Succeeded => return Ok(()),
            StatementState::Failed => return Err(snapshot.error.map(|e| e.message).unwrap_or_default()),
            StatementState::Canceled => return Err("the statement was cancelled".into()),
            StatementState::Pending | StatementState::Running => {}
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        snapshot = engines.statements.get(&snapshot.id).map_err(|e| e.to_string())?;
    }
}
