//! Routes that need no token: health and host metadata discovery.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/.well-known/databricks-config", get(databricks_config))
}

/// Host metadata as `databricks-sdk` discovers it.
async fn databricks_config(State(state): State<AppState>, headers: HeaderMap) -> Json<Value> {
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    Json(json!({
        "oidc_endpoint": format!("http://{host}/oidc"),
        "workspace_id": state.workspace_id,
    }))
}
