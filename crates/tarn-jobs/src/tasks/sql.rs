//! `sql_task`s on the warehouse. With a `file`, the file's statements run
//! in order; with a `query`, a saved query runs; with an `alert`, the alert
//! is evaluated and its `subscriptions` told if it fires. Saved queries and
//! alerts belong to tarn-alerts, which `tarn serve` plugs in as
//! [`SqlObjects`]. The task's `parameters` are bound as named parameters where a
//! statement has `:name` markers, and replace `{{name}}` in its text (as in
//! Databricks SQL queries), which also works in commands the engine will
//! not take parameters for (INSERT, CREATE).

use std::time::Duration;

use serde_json::Value;
use tarn_sql::statements::SqlParameter;
use tarn_sql::statements::{OnWaitTimeout, StatementRequest};

use super::{Attempt, BoxFuture, Engines, Outcome};

/// What `sql_task.query` and `sql_task.alert` ask of Databricks SQL's
/// saved objects, which tarn-jobs does not know.
pub trait SqlObjects: Send + Sync + 'static {
    /// A saved query's text and warehouse.
    fn query(&self, query_id: &str) -> Result<(String, Option<String>), String>;
    /// Evaluates an alert, telling `subscriptions` if it fires; its new state.
    fn evaluate_alert<'a>(
        &'a self,
        alert_id: &'a str,
        subscriptions: &'a [Value],
        user: &'a str,
    ) -> BoxFuture<'a, Result<String, String>>;
}

pub(super) async fn run(engines: &Engines, attempt: &Attempt, spec: &Value) -> Outcome {
    if let Some(alert) = spec.get("alert") {
        return run_alert(engines, attempt, alert).await;
    }
    if let Some(query_id) = spec.pointer("/query/query_id").and_then(Value::as_str) {
        return run_query(engines, attempt, spec, query_id).await;
    }
    let Some(path) = spec.pointer("/file/path").and_then(Value::as_str) else {
        return Outcome::failed("sql_task needs one of file, query, alert");
    };
    if spec.pointer("/file/source").and_then(Value::as_str) == Some("GIT") {
        return Outcome::failed("SQL files from a Git source are not run by tarn; use a workspace path");
    }
    let text = match super::python::read(engines, &attempt.user, path) {
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
            session_id: None,
            user: attempt.user.clone(),
        };
        if let Err(e) = engines.statements.run_to_end(request).await {
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

fn sql_objects(engines: &Engines) -> Result<&dyn SqlObjects, String> {
    engines.sql_objects.as_deref().ok_or_else(|| "saved queries and alerts are not available here".to_string())
}

async fn run_alert(engines: &Engines, attempt: &Attempt, alert: &Value) -> Outcome {
    let objects = match sql_objects(engines) {
        Ok(o) => o,
        Err(e) => return Outcome::failed(e),
    };
    let alert_id = alert.get("alert_id").and_then(Value::as_str).unwrap_or_default();
    let paused = alert.get("pause_subscriptions").and_then(Value::as_bool).unwrap_or(false);
    let subscriptions = match paused {
        true => Vec::new(),
        false => alert.get("subscriptions").and_then(Value::as_array).cloned().unwrap_or_default(),
    };
    let mut outcome = match objects.evaluate_alert(alert_id, &subscriptions, &attempt.user).await {
        Ok(state) => Outcome::succeeded(format!("Alert {alert_id} evaluated: {state}\n")),
        Err(e) => Outcome::failed(format!("Alert {alert_id}: {e}")),
    };
    outcome.cluster_id = warehouse_cluster(engines);
    outcome
}

async fn run_query(engines: &Engines, attempt: &Attempt, spec: &Value, query_id: &str) -> Outcome {
    let (text, warehouse) = match sql_objects(engines).and_then(|o| o.query(query_id)) {
        Ok(found) => found,
        Err(e) => return Outcome::failed(e),
    };
    let warehouse_id = spec.get("warehouse_id").and_then(Value::as_str).map(str::to_string).or(warehouse);
    let request = StatementRequest {
        statement: text,
        warehouse_id: warehouse_id.unwrap_or_else(|| engines.statements.warehouse().id().to_string()),
        catalog: None,
        schema: None,
        parameters: Vec::new(),
        row_limit: Some(1000),
        byte_limit: None,
        wait_timeout: Duration::from_secs(50),
        on_wait_timeout: OnWaitTimeout::Continue,
        session_id: None,
        user: attempt.user.clone(),
    };
    let mut outcome = match engines.statements.run_to_end(request).await {
        Ok(result) => Outcome::succeeded(format!("Query {query_id} returned {} rows\n", result.total_rows)),
        Err(e) => Outcome::failed(format!("Query {query_id} failed: {e}")),
    };
    outcome.cluster_id = warehouse_cluster(engines);
    outcome
}
