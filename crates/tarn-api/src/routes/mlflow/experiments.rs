//! `experiments/*`.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tarn_mlflow::ExperimentRow;

use super::guard;
use super::{KeyValue, de_i64, key_values, page_json, pairs, required, route};
use crate::body::{JsonBody, QueryPairs};
use crate::error::ApiResult;
use crate::paging::Paged;
use crate::{AppState, Caller};
use tarn_store::User;

pub fn router() -> Router<AppState> {
    [
        ("experiments/create", post(create)),
        ("experiments/get", get(get_experiment)),
        ("experiments/get-by-name", get(get_by_name)),
        ("experiments/search", post(search).get(search_get)),
        ("experiments/update", post(update)),
        ("experiments/delete", post(delete)),
        ("experiments/restore", post(restore)),
        ("experiments/set-experiment-tag", post(set_tag)),
        ("experiments/delete-experiment-tag", post(delete_tag)),
    ]
    .into_iter()
    .fold(Router::new(), |router, (path, handler)| route(router, path, handler))
}

pub(crate) fn experiment_json(e: &ExperimentRow) -> Value {
    let mut out = json!({
        "experiment_id": e.experiment_id.to_string(),
        "name": e.name,
        "artifact_location": e.artifact_location,
        "lifecycle_stage": e.lifecycle_stage,
        "last_update_time": e.last_update_time,
        "creation_time": e.creation_time,
    });
    if !e.tags.is_empty() {
        out["tags"] = key_values(&e.tags);
    }
    out
}

#[derive(Debug, Default, Deserialize)]
struct Body {
    name: Option<String>,
    artifact_location: Option<String>,
    #[serde(default)]
    tags: Vec<KeyValue>,
    experiment_id: Option<String>,
    new_name: Option<String>,
    key: Option<String>,
    value: Option<String>,
    #[serde(default, deserialize_with = "de_i64")]
    max_results: Option<i64>,
    page_token: Option<String>,
    filter: Option<String>,
    #[serde(default)]
    order_by: Vec<String>,
    view_type: Option<String>,
}

async fn create(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(b): JsonBody<Body>,
) -> ApiResult<Json<Value>> {
    let name = required(b.name.as_deref(), "name")?;
    let id = s.tracking.create_experiment(name, &user.user_name, b.artifact_location.as_deref(), &pairs(&b.tags))?;
    Ok(Json(json!({"experiment_id": id})))
}

async fn get_experiment(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    let id = required(q.get("experiment_id"), "experiment_id")?;
    guard::experiment(&s, &user, id, "CAN_READ")?;
    Ok(Json(json!({"experiment": experiment_json(&s.tracking.experiment(id)?)})))
}

async fn get_by_name(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    let name = required(q.get("experiment_name"), "experiment_name")?;
    let experiment = s.tracking.experiment_by_name(name)?;
    guard::experiment(&s, &user, &experiment.experiment_id.to_string(), "CAN_READ")?;
    Ok(Json(json!({"experiment": experiment_json(&experiment)})))
}

fn search_page(s: &AppState, user: &User, b: &Body) -> ApiResult<Paged<Value>> {
    let page = s.tracking.search_experiments(
        &|e| guard::reads_experiment(s, user, e),
        b.view_type.as_deref(),
        b.filter.as_deref(),
        &b.order_by,
        b.max_results,
        b.page_token.as_deref(),
    )?;
    Ok(page_json("experiments", page.items.iter().map(experiment_json).collect(), page.next_page_token))
}

async fn search(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(b): JsonBody<Body>,
) -> ApiResult<Paged<Value>> {
    search_page(&s, &user, &b)
}

async fn search_get(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    q: QueryPairs,
) -> ApiResult<Paged<Value>> {
    let b = Body {
        max_results: q.get("max_results").and_then(|v| v.parse().ok()),
        page_token: q.get("page_token").map(str::to_string),
        filter: q.get("filter").map(str::to_string),
        order_by: q.all("order_by").map(str::to_string).collect(),
        view_type: q.get("view_type").map(str::to_string),
        ..Body::default()
    };
    search_page(&s, &user, &b)
}

async fn update(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(b): JsonBody<Body>,
) -> ApiResult<Json<Value>> {
    let id = required(b.experiment_id.as_deref(), "experiment_id")?;
    guard::experiment(&s, &user, id, "CAN_MANAGE")?;
    s.tracking.rename_experiment(id, required(b.new_name.as_deref(), "new_name")?)?;
    Ok(Json(json!({})))
}

async fn delete(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(b): JsonBody<Body>,
) -> ApiResult<Json<Value>> {
    let id = required(b.experiment_id.as_deref(), "experiment_id")?;
    guard::experiment(&s, &user, id, "CAN_MANAGE")?;
    s.tracking.delete_experiment(id)?;
    Ok(Json(json!({})))
}

async fn restore(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(b): JsonBody<Body>,
) -> ApiResult<Json<Value>> {
    let id = required(b.experiment_id.as_deref(), "experiment_id")?;
    guard::experiment(&s, &user, id, "CAN_MANAGE")?;
    s.tracking.restore_experiment(id)?;
    Ok(Json(json!({})))
}

async fn set_tag(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(b): JsonBody<Body>,
) -> ApiResult<Json<Value>> {
    let id = required(b.experiment_id.as_deref(), "experiment_id")?;
    guard::experiment(&s, &user, id, "CAN_EDIT")?;
    let key = required(b.key.as_deref(), "key")?;
    s.tracking.set_experiment_tag(id, key, b.value.as_deref().unwrap_or(""))?;
    Ok(Json(json!({})))
}

async fn delete_tag(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(b): JsonBody<Body>,
) -> ApiResult<Json<Value>> {
    let id = required(b.experiment_id.as_deref(), "experiment_id")?;
    guard::experiment(&s, &user, id, "CAN_EDIT")?;
    s.tracking.delete_experiment_tag(id, required(b.key.as_deref(), "key")?)?;
    Ok(Json(json!({})))
}
