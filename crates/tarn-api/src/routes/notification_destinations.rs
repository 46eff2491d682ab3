//! Notification destinations (`/api/2.0/notification-destinations`), thin
//! over `tarn_jobs::Destinations`.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tarn_core::ApiError;

use crate::body::JsonBody;
use crate::error::ApiResult;
use crate::{AppState, Caller};

const BASE: &str = "/api/2.0/notification-destinations";

pub fn router() -> Router<AppState> {
    Router::new()
        .route(BASE, get(list).post(create))
        .route(&format!("{BASE}/{{id}}"), get(get_one).patch(update).delete(delete))
}

#[derive(Debug, Deserialize)]
struct Body {
    display_name: Option<String>,
    config: Option<Value>,
}

async fn create(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(b): JsonBody<Body>,
) -> ApiResult<Json<Value>> {
    let config = b.config.ok_or_else(|| ApiError::invalid_parameter("Missing required field: config"))?;
    Ok(Json(s.destinations.create(&user.user_name, b.display_name.as_deref().unwrap_or_default(), config)?))
}

async fn get_one(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(s.destinations.get(&id)?))
}

async fn list(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    Ok(Json(json!({"results": s.destinations.list()?})))
}

async fn update(
    State(s): State<AppState>,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<Body>,
) -> ApiResult<Json<Value>> {
    Ok(Json(s.destinations.update(&id, b.display_name.as_deref(), b.config)?))
}

async fn delete(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    s.destinations.delete(&id)?;
    Ok(Json(json!({})))
}
