//! SQL sessions of the Statement Execution API (`/api/2.0/sql/sessions`):
//! a session keeps one engine session on the warehouse, so statements sent
//! with its `session_id` share `USE`, `SET` and temporary views.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tarn_sql::SessionSpec;

use super::permissions::require;
use super::required;
use crate::body::JsonBody;
use crate::error::ApiResult;
use crate::{AppState, Caller};

const SESSIONS: &str = "/api/2.0/sql/sessions";

pub fn router() -> Router<AppState> {
    Router::new()
        .route(SESSIONS, post(create_session))
        .route(&format!("{SESSIONS}/{{id}}"), get(get_session).delete(delete_session))
}

#[derive(Debug, Deserialize)]
struct CreateBody {
    warehouse_id: Option<String>,
    catalog: Option<String>,
    schema: Option<String>,
    #[serde(default)]
    session_confs: BTreeMap<String, String>,
}

async fn create_session(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(body): JsonBody<CreateBody>,
) -> ApiResult<Json<Value>> {
    let warehouse_id = required(body.warehouse_id.as_deref(), "warehouse_id")?.to_string();
    require(&s, &user, "warehouses", &warehouse_id, "CAN_USE")?;
    let session = s.statements.sessions().open(SessionSpec {
        warehouse_id,
        cluster_id: None,
        user: user.user_name.clone(),
        catalog: body.catalog.filter(|c| !c.is_empty()),
        schema: body.schema.filter(|c| !c.is_empty()),
        conf: body.session_confs,
    })?;
    Ok(Json(session_json(&session)))
}

fn session_json(session: &tarn_sql::Session) -> Value {
    let (catalog, schema) = session.namespace();
    json!({
        "session_id": session.id(),
        "warehouse_id": session.warehouse_id(),
        "catalog": catalog,
        "schema": schema,
    })
}

async fn get_session(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let session = s.statements.sessions().get(&id, &user.user_name)?;
    Ok(Json(session_json(&session)))
}

async fn delete_session(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    s.statements.sessions().close(&id, &user.user_name).await?;
    Ok(Json(json!({})))
}
