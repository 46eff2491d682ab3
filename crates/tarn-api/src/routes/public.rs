//! Routes that need no token: health, host metadata discovery, and the
//! databricks CLI's telemetry, which tarn accepts and discards.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/.well-known/databricks-config", get(databricks_config))
        .route("/telemetry-ext", post(telemetry))
}

/// The CLI posts usage logs after each command; tarn keeps none of them,
/// and says each was taken so the CLI does not retry.
async fn telemetry(body: Bytes) -> Json<Value> {
    let logs = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|b| b.get("protoLogs").and_then(Value::as_array).map(Vec::len))
        .unwrap_or(0);
    Json(json!({"errors": [], "numSuccess": 0, "numProtoSuccess": logs}))
}

/// Host metadata as `databricks-sdk` discovers it.
async fn databricks_config(State(state): State<AppState>, headers: HeaderMap) -> Json<Value> {
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    Json(json!({
        "oidc_endpoint": format!("http://{host}/oidc"),
        "workspace_id": state.workspace_id,
    }))
}
