//! Model Serving (`/api/2.0/serving-endpoints`, and the invocations at
//! `/serving-endpoints/{name}/invocations`) as `databricks-sdk`'s
//! `w.serving_endpoints` and `mlflow.deployments`' Databricks client call
//! it. The JSON shapes are built here from tarn-serving's views.

use std::sync::atomic::Ordering;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Extension, Json, Router};
use serde_json::{Map, Value, json};
use tarn_core::ApiError;
use tarn_serving::{EndpointView, EntityState, NewEndpoint};

use crate::body::JsonBody;
use crate::error::{ApiFailure, ApiResult};
use crate::routes::permissions::{require, visible};
use crate::{AppState, Caller};
use tarn_store::User;

/// Databricks' limit on a request to an endpoint.
const MAX_REQUEST_BYTES: usize = 16 << 20;

pub fn router() -> Router<AppState> {
    let base = "/api/2.0/serving-endpoints";
    Router::new()
        .route(base, post(create).get(list))
        // mlflow.deployments' client joins an empty route onto the base.
        .route(&format!("{base}/"), post(create).get(list))
        .route(&format!("{base}/{{name}}"), get(get_endpoint).delete(delete))
        .route(&format!("{base}/{{name}}/config"), put(update_config))
        .route(&format!("{base}/{{name}}/ai-gateway"), put(put_ai_gateway))
        .route(&format!("{base}/{{name}}/tags"), axum::routing::patch(patch_tags))
        .route(&format!("{base}/{{name}}/rate-limits"), put(rate_limits))
        .route(&format!("{base}/{{name}}/served-models/{{served}}/build-logs"), get(build_logs))
        .route(&format!("{base}/{{name}}/served-models/{{served}}/logs"), get(logs))
        .route(&format!("{base}/{{name}}/metrics"), get(metrics))
        .route(&format!("{base}/{{name}}/openapi"), get(openapi))
        .route("/serving-endpoints/{name}/invocations", post(invoke))
        .route("/serving-endpoints/{name}/served-models/{served}/invocations", post(invoke_served))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
}

fn state_json(state: Option<&EntityState>, failure: Option<&str>) -> Value {
    let state = state.cloned().unwrap_or(match failure {
        Some(message) => EntityState::Failed(message.to_string()),
        None => EntityState::Creating,
    });
    let message = match &state {
        EntityState::Creating => "Served entity creation is in progress.".to_string(),
        EntityState::Ready => String::new(),
        EntityState::Failed(message) => message.clone(),
        EntityState::Aborted => "Served entity creation was aborted by a newer config update.".to_string(),
    };
    json!({"deployment": state.deployment(), "deployment_state_message": message})
}

/// A stored config with each served entity's live state.
fn config_json(
    config: &Value,
    states: &std::collections::HashMap<String, EntityState>,
    failure: Option<&str>,
) -> Value {
    let mut out = config.clone();
    for list in ["served_entities", "served_models"] {
        if let Some(entities) = out.get_mut(list).and_then(Value::as_array_mut) {
            for entity in entities {
                let name = entity["name"].as_str().unwrap_or_default().to_string();
                entity["state"] = state_json(states.get(&name), failure);
            }
        }
    }
    out
}

fn endpoint_state(view: &EndpointView) -> Value {
    json!({
        "ready": if view.ready { "READY" } else { "NOT_READY" },
        "config_update": view.row.config_update,
    })
}

/// What a get and a list item both show: who and when, the state, the tags.
fn identity_json(view: &EndpointView) -> Value {
    let row = &view.row;
    json!({
        "name": row.name,
        "id": row.id,
        "creator": row.creator,
        "creation_timestamp": row.creation_timestamp,
        "last_updated_timestamp": row.last_updated_timestamp,
        "state": endpoint_state(view),
        "tags": row.tags,
    })
}

fn detailed_json(view: &EndpointView) -> Value {
    let row = &view.row;
    let failure = (row.config_update == tarn_serving::endpoints::UPDATE_FAILED)
        .then_some(row.update_message.as_deref())
        .flatten();
    let mut out = identity_json(view);
    out["permission_level"] = json!("CAN_MANAGE");
    out["route_optimized"] = json!(row.settings["route_optimized"].as_bool().unwrap_or(false));
    if let Some(config) = &row.config {
        out["config"] = config_json(config, &view.config_states, None);
    }
    if let Some(pending) = &row.pending_config {
        out["pending_config"] = config_json(pending, &view.pending_states, failure);
    }
    for field in ["description", "ai_gateway", "email_notifications", "budget_policy_id"] {
        if let Some(value) = row.settings.get(field).filter(|v| !v.is_null()) {
            out[field] = value.clone();
        }
    }
    out
}

fn list_item_json(view: &EndpointView) -> Value {
    let row = &view.row;
    let entities: Vec<Value> = row
        .config
        .as_ref()
        .and_then(|c| c["served_entities"].as_array())
        .map(|entities| {
            entities
                .iter()
                .map(|e| json!({"name": e["name"], "entity_name": e["entity_name"], "entity_version": e["entity_version"]}))
                .collect()
        })
        .unwrap_or_default();
    let mut out = identity_json(view);
    if row.config.is_some() {
        out["config"] = json!({"served_entities": entities});
    }
    if let Some(description) = row.settings.get("description").filter(|v| !v.is_null()) {
        out["description"] = description.clone();
    }
    out
}

/// The fields besides `name`, `config` and `tags` a create keeps.
const SETTINGS: &[&str] = &["description", "ai_gateway", "route_optimized", "email_notifications", "budget_policy_id"];

async fn create(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> ApiResult<Json<Value>> {
    let name = super::required(body.get("name").and_then(Value::as_str), "name")?.to_string();
    let config = body.get("config").filter(|c| !c.is_null()).cloned();
    let config = config.ok_or_else(|| ApiFailure(ApiError::invalid_parameter("Missing required field: config")))?;
    if body.get("rate_limits").and_then(Value::as_array).is_some_and(|r| !r.is_empty()) {
        return Err(tarn_serving::ServingError::NotImplemented(
            "Endpoint rate limits are not implemented by tarn yet".into(),
        )
        .into());
    }
    if let Some(gateway) = body.get("ai_gateway").filter(|g| !g.is_null()) {
        tarn_serving::check_ai_gateway(gateway)?;
    }
    let settings: Map<String, Value> =
        SETTINGS.iter().filter_map(|f| body.get(*f).map(|v| (f.to_string(), v.clone()))).collect();
    let tags = tags_of(body.get("tags"))?;
    let new = NewEndpoint { name, config, settings: Value::Object(settings), tags: json!(tags) };
    let view = s.serving.create(&user.user_name, new).await?;
    Ok(Json(detailed_json(&view)))
}

/// Only the endpoints the caller holds a level on.
async fn list(State(s): State<AppState>, Extension(Caller(user)): Extension<Caller>) -> ApiResult<Json<Value>> {
    let mut endpoints = Vec::new();
    for endpoint in s.serving.list()? {
        if visible(&s, &user, "serving-endpoints", &endpoint.row.name)? {
            endpoints.push(list_item_json(&endpoint));
        }
    }
    Ok(Json(json!({"endpoints": endpoints})))
}

async fn get_endpoint(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    require(&s, &user, "serving-endpoints", &name, "CAN_VIEW")?;
    Ok(Json(detailed_json(&s.serving.get(&name)?)))
}

async fn delete(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    require(&s, &user, "serving-endpoints", &name, "CAN_MANAGE")?;
    s.serving.delete(&name).await?;
    Ok(Json(json!({})))
}

async fn update_config(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    require(&s, &user, "serving-endpoints", &name, "CAN_MANAGE")?;
    let view = s.serving.update_config(&name, &user.user_name, &body).await?;
    Ok(Json(detailed_json(&view)))
}

const AI_GATEWAY_FIELDS: &[&str] =
    &["inference_table_config", "rate_limits", "usage_tracking_config", "guardrails", "fallback_config"];

async fn put_ai_gateway(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    require(&s, &user, "serving-endpoints", &name, "CAN_MANAGE")?;
    tarn_serving::check_ai_gateway(&body)?;
    let gateway: Map<String, Value> =
        AI_GATEWAY_FIELDS.iter().filter_map(|f| body.get(*f).map(|v| (f.to_string(), v.clone()))).collect();
    let gateway = Value::Object(gateway);
    s.serving.put_ai_gateway(&name, gateway.clone()).await?;
    Ok(Json(gateway))
}

/// `[{key, value}]` as sent, checked.
fn tags_of(value: Option<&Value>) -> Result<Vec<Value>, ApiFailure> {
    let Some(tags) = value.filter(|v| !v.is_null()) else { return Ok(Vec::new()) };
    let tags = tags.as_array().ok_or_else(|| ApiFailure(ApiError::invalid_parameter("tags must be a list")))?;
    tags.iter()
        .map(|t| {
            let key = super::required(t.get("key").and_then(Value::as_str), "tags.key")?;
            let mut tag = json!({"key": key});
            if let Some(value) = t.get("value").and_then(Value::as_str) {
                tag["value"] = json!(value);
            }
            Ok(tag)
        })
        .collect()
}

async fn patch_tags(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    require(&s, &user, "serving-endpoints", &name, "CAN_MANAGE")?;
    let add = tags_of(body.get("add_tags"))?;
    let delete: Vec<String> = body["delete_tags"]
        .as_array()
        .map(|keys| keys.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    let row = s
        .serving
        .modify(&name, move |row| {
            let mut tags: Vec<Value> = row.tags.as_array().cloned().unwrap_or_default();
            tags.retain(|t| {
                let key = t["key"].as_str().unwrap_or_default();
                !delete.iter().any(|d| d == key) && !add.iter().any(|a| a["key"].as_str() == Some(key))
            });
            tags.extend(add);
            row.tags = json!(tags);
            Ok(())
        })
        .await?;
    Ok(Json(json!({"tags": row.tags})))
}

async fn rate_limits() -> ApiFailure {
    ApiFailure(ApiError::not_implemented("Endpoint rate limits are not implemented by tarn yet"))
}

async fn build_logs(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path((name, served)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    require(&s, &user, "serving-endpoints", &name, "CAN_VIEW")?;
    Ok(Json(json!({"logs": s.serving.log(&name, &served, true)?})))
}

async fn logs(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path((name, served)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    require(&s, &user, "serving-endpoints", &name, "CAN_VIEW")?;
    Ok(Json(json!({"logs": s.serving.log(&name, &served, false)?})))
}

/// A metric family: its name, its type and how to read it from an entity's counters.
type Family = (&'static str, &'static str, fn(&tarn_serving::entity::Stats) -> f64);

/// Counters per served entity in Prometheus' text format.
async fn metrics(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    require(&s, &user, "serving-endpoints", &name, "CAN_VIEW")?;
    let entities = s.serving.live_entities(&name)?;
    let families: [Family; 6] = [
        ("request_count_total", "counter", |st| st.requests.load(Ordering::Relaxed) as f64),
        ("request_4xx_count_total", "counter", |st| st.errors_4xx.load(Ordering::Relaxed) as f64),
        ("request_5xx_count_total", "counter", |st| st.errors_5xx.load(Ordering::Relaxed) as f64),
        ("request_latency_ms_sum", "counter", |st| st.latency_us.load(Ordering::Relaxed) as f64 / 1000.0),
        ("cold_start_count_total", "counter", |st| st.cold_starts.load(Ordering::Relaxed) as f64),
        ("last_cold_start_duration_ms", "gauge", |st| st.last_cold_start_ms.load(Ordering::Relaxed) as f64),
    ];
    let mut text = String::new();
    for (family, kind, value) in families {
        text.push_str(&format!("# TYPE {family} {kind}\n"));
        for entity in &entities {
            text.push_str(&format!(
                "{family}{{served_entity_name=\"{}\"}} {}\n",
                entity.spec.name,
                value(&entity.stats)
            ));
        }
    }
    text.push_str("# TYPE inference_records_dropped_total counter\n");
    text.push_str(&format!("inference_records_dropped_total {}\n", s.serving.inference_dropped(&name)));
    text.push_str("# TYPE running_workers gauge\n");
    for entity in &entities {
        text.push_str(&format!(
            "running_workers{{served_entity_name=\"{}\"}} {}\n",
            entity.spec.name,
            entity.running()
        ));
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

/// An OpenAPI 3.1 document of the endpoint's invocation paths, with each
/// served entity's input example where its model logged one.
async fn openapi(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    require(&s, &user, "serving-endpoints", &name, "CAN_VIEW")?;
    let entities = s.serving.live_entities(&name)?;
    let request = |example: Option<Value>| {
        let mut body = json!({"content": {"application/json": {"schema": {"type": "object", "properties": {
            "dataframe_split": {"type": "object"},
            "dataframe_records": {"type": "array"},
            "instances": {"type": "array"},
            "inputs": {},
            "params": {"type": "object"},
        }}}}});
        if let Some(example) = example {
            body["content"]["application/json"]["example"] = example;
        }
        json!({"post": {"requestBody": body, "responses": {"200": {"description": "Predictions",
            "content": {"application/json": {"schema": {"type": "object", "properties": {"predictions": {}}}}}}}}})
    };
    let mut paths = Map::new();
    for entity in &entities {
        let example = entity.model().example.as_ref().and_then(|e| serde_json::from_slice(e).ok());
        paths.insert(format!("/served-models/{}/invocations", entity.spec.name), request(example));
    }
    paths.insert("/invocations".into(), request(None));
    Ok(Json(json!({
        "openapi": "3.1.0",
        "info": {"title": name, "version": "1"},
        "servers": [{"url": format!("/serving-endpoints/{name}")}],
        "paths": paths,
    })))
}

async fn invoke(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    answer(&s, &name, None, &user, &headers, body).await
}

async fn invoke_served(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path((name, served)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    answer(&s, &name, Some(&served), &user, &headers, body).await
}

/// A request answered by a served entity: its reply as the scoring server
/// gave it, with the entity named in `served-model-name`.
async fn answer(
    s: &AppState,
    name: &str,
    served: Option<&str>,
    requester: &User,
    headers: &HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    require(s, requester, "serving-endpoints", name, "CAN_QUERY")?;
    let requester = requester.user_name.as_str();
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/json");
    let request = tarn_serving::Invocation { served, content_type, body, requester };
    let (entity, reply) = s.serving.invoke(name, request).await?;
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = Response::new(Body::from(reply.body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Ok(value) = reply.mimetype.parse() {
        headers.insert(header::CONTENT_TYPE, value);
    }
    if let Ok(value) = entity.parse() {
        headers.insert("served-model-name", value);
    }
    Ok(response)
}
