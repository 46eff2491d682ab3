//! Notification destinations (`/api/2.0/notification-destinations`), thin
//! over `tarn_jobs::Destinations`, and their view: a webhook's URL and
//! credentials never leave tarn, reads say which are set.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tarn_core::ApiError;
use tarn_jobs::{Destination, DestinationConfig, Secret, WebhookKind};

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

/// A destination as the API shows it, secrets left out.
fn shown(d: &Destination) -> Value {
    let set = |secret: &Option<Secret>| secret.as_ref().is_some_and(Secret::is_set);
    let mut config = Map::new();
    match &d.config {
        DestinationConfig::Webhook { kind: WebhookKind::Generic, url, username, password } => {
            let shown = json!({"url_set": set(url), "username_set": set(username), "password_set": set(password)});
            config.insert(WebhookKind::Generic.config_key().into(), shown);
        }
        DestinationConfig::Webhook { kind, url, .. } => {
            config.insert(kind.config_key().into(), json!({"url_set": set(url)}));
        }
        DestinationConfig::Email { addresses } => {
            config.insert("email".into(), json!({"addresses": addresses}));
        }
    }
    json!({"id": d.id, "display_name": d.display_name, "destination_type": d.destination_type(), "config": config})
}

/// A destination as `list` shows it.
fn listed(d: &Destination) -> Value {
    json!({"id": d.id, "display_name": d.display_name, "destination_type": d.destination_type()})
}

async fn create(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(b): JsonBody<Body>,
) -> ApiResult<Json<Value>> {
    let config = b.config.ok_or_else(|| ApiError::invalid_parameter("Missing required field: config"))?;
    let created = s.destinations.create(&user.user_name, b.display_name.as_deref().unwrap_or_default(), config)?;
    Ok(Json(shown(&created)))
}

async fn get_one(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(shown(&s.destinations.get(&id)?)))
}

async fn list(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    let results: Vec<Value> = s.destinations.list()?.iter().map(listed).collect();
    Ok(Json(json!({"results": results})))
}

async fn update(
    State(s): State<AppState>,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<Body>,
) -> ApiResult<Json<Value>> {
    Ok(Json(shown(&s.destinations.update(&id, b.display_name.as_deref(), b.config)?)))
}

async fn delete(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    s.destinations.delete(&id)?;
    Ok(Json(json!({})))
}
