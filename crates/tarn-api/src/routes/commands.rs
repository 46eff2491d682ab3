//! Command Execution API 1.2: execution contexts (`/api/1.2/contexts/*`) and
//! their commands (`/api/1.2/commands/*`), camelCase as the SDK sends them.
//! A context created without `clusterId` runs on serverless compute.

use std::time::Duration;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tarn_compute::ComputeError;
use tarn_compute::context::{CommandSnapshot, Compute, Language};

use super::required;
use crate::body::{JsonBody, QueryPairs};
use crate::error::ApiResult;
use crate::routes::permissions::require;
use crate::{AppState, Caller};

/// How long `commands/cancel` waits for the command to stop before answering.
const CANCEL_WAIT: Duration = Duration::from_millis(1500);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/1.2/contexts/create", post(create_context))
        .route("/api/1.2/contexts/status", get(context_status))
        .route("/api/1.2/contexts/destroy", post(destroy_context))
        .route("/api/1.2/commands/execute", post(execute))
        .route("/api/1.2/commands/status", get(command_status))
        .route("/api/1.2/commands/cancel", post(cancel))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    cluster_id: Option<String>,
    context_id: Option<String>,
    command_id: Option<String>,
    language: Option<String>,
    command: Option<String>,
}

/// `python` and `sql` run; `scala` and `r` are Databricks languages tarn
/// has no worker for.
pub(crate) fn parse_language(language: &str) -> Result<Language, ComputeError> {
    match language.to_ascii_lowercase().as_str() {
        "python" => Ok(Language::Python),
        "sql" => Ok(Language::Sql),
        "scala" | "r" => Err(ComputeError::NotImplemented(format!(
            "Language {language} is not implemented in tarn; execution contexts run python and sql"
        ))),
        other => Err(ComputeError::InvalidRequest(format!("Unknown language: {other}"))),
    }
}

fn cluster(id: Option<&str>) -> Option<&str> {
    id.filter(|c| !c.is_empty())
}

async fn create_context(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(body): JsonBody<Body>,
) -> ApiResult<Json<Value>> {
    let language = parse_language(body.language.as_deref().unwrap_or("python"))?;
    let compute = match cluster(body.cluster_id.as_deref()) {
        Some(id) => {
            require(&s, &user, "clusters", id, "CAN_ATTACH_TO")?;
            Compute::Cluster(id.to_string())
        }
        None => Compute::Serverless,
    };
    let id = s.contexts.create(compute, language, &user.user_name).await?;
    Ok(Json(json!({"id": id})))
}

async fn context_status(State(s): State<AppState>, query: QueryPairs) -> ApiResult<Json<Value>> {
    let id = required(query.get("contextId"), "contextId")?;
    let status = s.contexts.status(cluster(query.get("clusterId")), id)?;
    Ok(Json(json!({"id": status.id, "status": status.status.as_str()})))
}

async fn destroy_context(State(s): State<AppState>, JsonBody(body): JsonBody<Body>) -> ApiResult<Json<Value>> {
    let id = required(body.context_id.as_deref(), "contextId")?;
    s.contexts.destroy(cluster(body.cluster_id.as_deref()), id)?;
    Ok(Json(json!({})))
}

async fn execute(State(s): State<AppState>, JsonBody(body): JsonBody<Body>) -> ApiResult<Json<Value>> {
    let id = required(body.context_id.as_deref(), "contextId")?;
    let command = body.command.ok_or_else(|| ComputeError::InvalidRequest("Missing required field: command".into()))?;
    let language = body.language.as_deref().map(parse_language).transpose()?;
    let command_id = s.contexts.execute(cluster(body.cluster_id.as_deref()), id, language, command)?;
    Ok(Json(json!({"id": command_id})))
}

pub(crate) fn command_json(snapshot: &CommandSnapshot) -> Value {
    let mut out = json!({"id": snapshot.id, "status": snapshot.status.as_str()});
    if let Some(results) = &snapshot.results {
        out["results"] = results.clone();
    }
    out
}

async fn command_status(State(s): State<AppState>, query: QueryPairs) -> ApiResult<Json<Value>> {
    let context_id = required(query.get("contextId"), "contextId")?;
    let command_id = required(query.get("commandId"), "commandId")?;
    let snapshot = s.contexts.command_status(cluster(query.get("clusterId")), context_id, command_id)?;
    Ok(Json(command_json(&snapshot)))
}

async fn cancel(State(s): State<AppState>, JsonBody(body): JsonBody<Body>) -> ApiResult<Json<Value>> {
    let context_id = required(body.context_id.as_deref(), "contextId")?;
    let command_id = required(body.command_id.as_deref(), "commandId")?;
    s.contexts.cancel(cluster(body.cluster_id.as_deref()), context_id, command_id, CANCEL_WAIT).await?;
    Ok(Json(json!({})))
}
