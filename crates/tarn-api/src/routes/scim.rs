//! The caller's identity (`/api/2.0/preview/scim/v2/Me`).

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::json;

use crate::{AppState, Caller};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/2.0/preview/scim/v2/Me", get(me))
}

async fn me(State(state): State<AppState>, Extension(Caller(user)): Extension<Caller>) -> impl IntoResponse {
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": user.id.to_string(),
        "userName": user.user_name,
        "displayName": user.display_name,
        "active": true,
        "emails": [{"value": user.user_name, "type": "work", "primary": true}],
        "groups": [{"display": "admins", "type": "direct", "value": "admins"}],
    });
    ([("X-Databricks-Org-Id", state.workspace_id.clone())], Json(body))
}
