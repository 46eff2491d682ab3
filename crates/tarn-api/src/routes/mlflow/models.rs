//! `logged-models/*` (MLflow 3) and a run's `log-inputs` and `outputs`.

use axum::extract::{Path, State};
use axum::routing::{delete, patch, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tarn_mlflow::{LoggedModelRow, ModelMetric, ModelSearch, NewModel, RunIo};

use super::guard;
use super::{KeyValue, de_i64, key_values, metric_value, page_json, pairs, required, route};
use crate::body::{JsonBody, QueryPairs};
use crate::error::ApiResult;
use crate::paging::Paged;
use crate::{AppState, Caller};

pub fn router() -> Router<AppState> {
    [
        ("logged-models", post(create)),
        ("logged-models/search", post(search)),
        ("logged-models/{model_id}", axum::routing::get(get_model).patch(finalize).delete(delete_model)),
        ("logged-models/{model_id}/tags", patch(set_tags)),
        ("logged-models/{model_id}/tags/{tag_key}", delete(delete_tag)),
        ("logged-models/{model_id}/params", post(log_params)),
        ("logged-models/{model_id}/artifacts/directories", axum::routing::get(list_artifacts)),
        ("runs/log-inputs", post(log_inputs)),
        ("runs/outputs", post(log_outputs)),
    ]
    .into_iter()
    .fold(Router::new(), |router, (path, handler)| route(router, path, handler))
}

fn model_metric_json(m: &ModelMetric, model_id: &str) -> Value {
    let mut out = json!({
        "key": m.metric.key,
        "value": metric_value(m.metric.value, m.metric.is_nan),
        "timestamp": m.metric.timestamp,
        "step": m.metric.step,
        "model_id": model_id,
    });
    for (field, value) in
        [("run_id", &m.run_uuid), ("dataset_name", &m.dataset_name), ("dataset_digest", &m.dataset_digest)]
    {
        if let Some(v) = value {
            out[field] = json!(v);
        }
    }
    out
}

pub(crate) fn model_json(m: &LoggedModelRow) -> Value {
    let mut info = json!({
        "model_id": m.model_id,
        "experiment_id": m.experiment_id.to_string(),
        "name": m.name,
        "artifact_uri": m.artifact_location,
        "creation_timestamp_ms": m.creation_time,
        "last_updated_timestamp_ms": m.last_updated_time,
        "status": m.status,
        "tags": key_values(&m.tags),
    });
    for (field, value) in
        [("status_message", &m.status_message), ("model_type", &m.model_type), ("source_run_id", &m.source_run_id)]
    {
        if let Some(v) = value {
            info[field] = json!(v);
        }
    }
    let metrics: Vec<Value> = m.metrics.iter().map(|x| model_metric_json(x, &m.model_id)).collect();
    json!({"info": info, "data": {"params": key_values(&m.params), "metrics": metrics}})
}

#[derive(Debug, Default, Deserialize)]
struct OrderBy {
    field_name: String,
    ascending: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
struct Body {
    experiment_id: Option<String>,
    name: Option<String>,
    model_type: Option<String>,
    source_run_id: Option<String>,
    #[serde(default)]
    params: Vec<KeyValue>,
    #[serde(default)]
    tags: Vec<KeyValue>,
    status: Option<String>,
    #[serde(default)]
    experiment_ids: Vec<String>,
    filter: Option<String>,
    #[serde(default)]
    order_by: Vec<OrderBy>,
    #[serde(default, deserialize_with = "de_i64")]
    max_results: Option<i64>,
    page_token: Option<String>,
    run_id: Option<String>,
    #[serde(default)]
    datasets: Vec<Value>,
    #[serde(default)]
    models: Vec<Value>,
}

async fn create(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(b): JsonBody<Body>,
) -> ApiResult<Json<Value>> {
    guard::experiment(&s, &user, required(b.experiment_id.as_deref(), "experiment_id")?, "CAN_EDIT")?;
    let new = NewModel {
        experiment_id: required(b.experiment_id.as_deref(), "experiment_id")?.to_string(),
        name: b.name,
        model_type: b.model_type,
        source_run_id: b.source_run_id.filter(|r| !r.is_empty()),
        params: pairs(&b.params),
        tags: pairs(&b.tags),
    };
    Ok(Json(json!({"model": model_json(&s.tracking.create_logged_model(new)?)})))
}

async fn get_model(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(id): Path<String>,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    guard::logged_model(&s, &user, &id, "CAN_READ")?;
    let allow_deleted = q.flag_or("allow_deleted", false);
    Ok(Json(json!({"model": model_json(&s.tracking.logged_model(&id, allow_deleted)?)})))
}

async fn finalize(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<Body>,
) -> ApiResult<Json<Value>> {
    guard::logged_model(&s, &user, &id, "CAN_EDIT")?;
    let status = required(b.status.as_deref(), "status")?;
    Ok(Json(json!({"model": model_json(&s.tracking.finalize_logged_model(&id, status)?)})))
}

async fn delete_model(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    guard::logged_model(&s, &user, &id, "CAN_EDIT")?;
    s.tracking.delete_logged_model(&id)?;
    Ok(Json(json!({})))
}

async fn set_tags(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<Body>,
) -> ApiResult<Json<Value>> {
    guard::logged_model(&s, &user, &id, "CAN_EDIT")?;
    s.tracking.set_logged_model_tags(&id, &pairs(&b.tags))?;
    Ok(Json(json!({})))
}

async fn delete_tag(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path((id, key)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    guard::logged_model(&s, &user, &id, "CAN_EDIT")?;
    s.tracking.delete_logged_model_tag(&id, &key)?;
    Ok(Json(json!({})))
}

async fn log_params(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<Body>,
) -> ApiResult<Json<Value>> {
    guard::logged_model(&s, &user, &id, "CAN_EDIT")?;
    s.tracking.log_logged_model_params(&id, &pairs(&b.params))?;
    Ok(Json(json!({})))
}

async fn search(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(b): JsonBody<Body>,
) -> ApiResult<Paged<Value>> {
    for experiment in &b.experiment_ids {
        guard::experiment(&s, &user, experiment, "CAN_READ")?;
    }
    let search = ModelSearch {
        experiment_ids: b.experiment_ids,
        filter: b.filter,
        order_by: b.order_by.into_iter().map(|o| (o.field_name, o.ascending.unwrap_or(true))).collect(),
        max_results: b.max_results,
        page_token: b.page_token,
    };
    let page = s.tracking.search_logged_models(&search)?;
    Ok(page_json("models", page.items.iter().map(model_json).collect(), page.next_page_token))
}

async fn log_inputs(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(b): JsonBody<Body>,
) -> ApiResult<Json<Value>> {
    guard::run(&s, &user, required(b.run_id.as_deref(), "run_id")?, "CAN_EDIT")?;
    let run = required(b.run_id.as_deref(), "run_id")?;
    s.tracking.log_run_io(run, RunIo::Dataset, &b.datasets)?;
    s.tracking.log_run_io(run, RunIo::ModelInput, &b.models)?;
    Ok(Json(json!({})))
}

async fn log_outputs(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(b): JsonBody<Body>,
) -> ApiResult<Json<Value>> {
    guard::run(&s, &user, required(b.run_id.as_deref(), "run_id")?, "CAN_EDIT")?;
    let run = required(b.run_id.as_deref(), "run_id")?;
    s.tracking.log_run_io(run, RunIo::ModelOutput, &b.models)?;
    Ok(Json(json!({})))
}

/// A logged model's artifacts under `artifact_directory_path`.
async fn list_artifacts(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(id): Path<String>,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    guard::logged_model(&s, &user, &id, "CAN_READ")?;
    let model = s.tracking.logged_model(&id, false)?;
    let files = s.artifacts.list_root(&model.artifact_location, q.get("artifact_directory_path"))?;
    Ok(Json(json!({"root_uri": model.artifact_location, "files": super::artifacts::files_json(&files)})))
}
