//! Pipelines API 2.0 (`/api/2.0/pipelines`) as `databricks-sdk`'s
//! `w.pipelines` calls it: pipelines, updates, events and stop. The JSON
//! shapes are built here from tarn-pipelines' rows.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{Map, Value, json};
use tarn_core::ApiError;
use tarn_pipelines::{PipelineSettings, PipelineView, StartUpdate};
use tarn_store::{PipelineEventFilter, PipelineEventRow, UpdateRow};

use crate::body::{JsonBody, QueryPairs};
use crate::error::{ApiFailure, ApiResult};
use crate::paging::{Page, PageRule};
use crate::routes::permissions::{check_run_as, require, visible};
use crate::{AppState, Caller};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/2.0/pipelines", post(create).get(list))
        .route("/api/2.0/pipelines/{id}", get(get_pipeline).put(edit).delete(delete))
        .route("/api/2.0/pipelines/{id}/updates", post(start_update).get(list_updates))
        .route("/api/2.0/pipelines/{id}/updates/{update_id}", get(get_update))
        .route("/api/2.0/pipelines/{id}/events", get(events))
        .route("/api/2.0/pipelines/{id}/stop", post(stop))
}

/// `max_results` with a page token: pipelines, updates and events.
struct MaxResults;

impl PageRule for MaxResults {
    const SIZE: &'static str = "max_results";
    const MAX: usize = 100;
    fn refusal(raw: &str, parsed: Option<i64>) -> Option<String> {
        match parsed {
            None => Some(format!("max_results must be an integer, got {raw}")),
            Some(n) if n < 0 => Some(format!("max_results must not be negative, got {n}")),
            _ => None,
        }
    }
}

/// A page read one item past its size: that item only says another page
/// follows.
fn one_page(page: &Page<MaxResults>, key: &str, mut items: Vec<Value>) -> Value {
    let mut out = json!({});
    if items.len() > page.size {
        items.truncate(page.size);
        out["next_page_token"] = json!(tarn_core::page::encode(page.offset + page.size));
    }
    out[key] = json!(items);
    out
}

fn timestamp(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

fn update_state_info(u: &UpdateRow) -> Value {
    json!({"update_id": u.update_id, "state": u.state, "creation_time": timestamp(u.creation_time)})
}

fn pipeline_json(view: &PipelineView, full: bool) -> Value {
    let row = &view.row;
    let mut out = json!({
        "pipeline_id": row.pipeline_id,
        "name": row.name,
        "state": view.state,
        "health": view.health,
        "creator_user_name": row.creator_user_name,
        "run_as_user_name": view.run_as,
        "latest_updates": view.latest_updates.iter().map(update_state_info).collect::<Vec<_>>(),
    });
    if let Some(cluster_id) = &row.cluster_id {
        out["cluster_id"] = json!(cluster_id);
    }
    if full {
        out["spec"] = row.spec.clone();
        out["last_modified"] = json!(row.last_modified);
        if let Some(cause) = view.latest_updates.first().map(|u| u.cause.clone()) {
            out["cause"] = json!(cause);
        }
    }
    out
}

fn update_json(u: &UpdateRow) -> Value {
    let request = &u.request;
    let mut out = json!({
        "update_id": u.update_id,
        "pipeline_id": u.pipeline_id,
        "state": u.state,
        "cause": u.cause,
        "creation_time": u.creation_time,
        "full_refresh": request["full_refresh"],
        "validate_only": request["validate_only"],
    });
    for field in ["refresh_selection", "full_refresh_selection"] {
        if request[field].as_array().is_some_and(|a| !a.is_empty()) {
            out[field] = request[field].clone();
        }
    }
    if let Some(cluster_id) = &u.cluster_id {
        out["cluster_id"] = json!(cluster_id);
    }
    out
}

fn event_json(e: &PipelineEventRow) -> Value {
    let mut out = json!({
        "id": e.id,
        "sequence": {"control_plane_seq_no": e.seq},
        "origin": e.origin,
        "timestamp": timestamp(e.timestamp),
        "message": e.message,
        "level": e.level,
        "event_type": e.event_type,
        "maturity_level": "STABLE",
        "details": e.details,
    });
    if let Some(error) = &e.error {
        out["error"] = error.clone();
    }
    out
}

fn settings(body: Map<String, Value>) -> Result<PipelineSettings, ApiFailure> {
    Ok(PipelineSettings::parse(&Value::Object(body))?)
}

async fn create(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> ApiResult<Json<Value>> {
    let dry_run = body.get("dry_run").and_then(Value::as_bool).unwrap_or(false);
    let settings = settings(body)?;
    check_run_as(&s, &user, settings.run_as.as_deref())?;
    if dry_run {
        return Ok(Json(json!({"effective_settings": settings.raw})));
    }
    let id = s.pipelines.create(&user.user_name, settings)?;
    let view = s.pipelines.get(&id)?;
    Ok(Json(json!({"pipeline_id": id, "effective_settings": view.row.spec})))
}

async fn get_pipeline(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    require(&s, &user, "pipelines", &id, "CAN_VIEW")?;
    Ok(Json(pipeline_json(&s.pipelines.get(&id)?, true)))
}

async fn edit(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(mut body): JsonBody<Map<String, Value>>,
) -> ApiResult<Json<Value>> {
    require(&s, &user, "pipelines", &id, "CAN_MANAGE")?;
    body.remove("pipeline_id");
    body.remove("expected_last_modified");
    let settings = settings(body)?;
    check_run_as(&s, &user, settings.run_as.as_deref())?;
    s.pipelines.edit(&id, settings)?;
    Ok(Json(json!({})))
}

async fn delete(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(id): Path<String>,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    require(&s, &user, "pipelines", &id, "CAN_MANAGE")?;
    s.pipelines.delete(&id, q.flag_or("cascade", true)).await?;
    Ok(Json(json!({})))
}

/// Only the pipelines the caller holds a level on (filtered within the page).
async fn list(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    q: QueryPairs,
    page: Page<MaxResults>,
) -> ApiResult<Json<Value>> {
    let filter = q.get("filter").map(name_filter).transpose()?;
    let rows = s.pipelines.list(filter.as_deref(), page.offset, page.size + 1)?;
    let mut shown = Vec::new();
    for view in &rows {
        if visible(&s, &user, "pipelines", &view.row.pipeline_id)? {
            shown.push(pipeline_json(view, false));
        }
    }
    Ok(Json(one_page(&page, "statuses", shown)))
}

/// `name LIKE '%x%'` (the filter `list_pipelines` documents) as a LIKE pattern.
fn name_filter(filter: &str) -> Result<String, ApiFailure> {
    let pattern = filter
        .trim()
        .strip_prefix("name")
        .map(str::trim_start)
        .and_then(|r| r.strip_prefix("LIKE").or_else(|| r.strip_prefix("like")))
        .map(|r| r.trim().trim_matches('\''));
    pattern
        .map(str::to_string)
        .ok_or_else(|| ApiError::invalid_parameter(format!("Unsupported filter: {filter}; use name LIKE '...'")).into())
}

async fn start_update(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> ApiResult<Json<Value>> {
    let names = |field: &str| -> Vec<String> {
        body.get(field)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    };
    let flag = |field: &str| body.get(field).and_then(Value::as_bool).unwrap_or(false);
    let request = StartUpdate {
        cause: body.get("cause").and_then(Value::as_str).unwrap_or("API_CALL").to_string(),
        full_refresh: flag("full_refresh"),
        refresh_selection: names("refresh_selection"),
        full_refresh_selection: names("full_refresh_selection"),
        validate_only: flag("validate_only"),
    };
    require(&s, &user, "pipelines", &id, "CAN_RUN")?;
    let update_id = s.pipelines.start_update(&id, request)?;
    Ok(Json(json!({"update_id": update_id})))
}

async fn get_update(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path((id, update_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    require(&s, &user, "pipelines", &id, "CAN_VIEW")?;
    Ok(Json(json!({"update": update_json(&s.pipelines.get_update(&id, &update_id)?)})))
}

async fn list_updates(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(id): Path<String>,
    page: Page<MaxResults>,
) -> ApiResult<Json<Value>> {
    require(&s, &user, "pipelines", &id, "CAN_VIEW")?;
    let updates = s.pipelines.list_updates(&id, page.offset, page.size + 1)?;
    Ok(Json(one_page(&page, "updates", updates.iter().map(update_json).collect())))
}

async fn events(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(id): Path<String>,
    q: QueryPairs,
    page: Page<MaxResults>,
) -> ApiResult<Json<Value>> {
    let mut filter = event_filter(q.get("filter").unwrap_or(""))?;
    filter.ascending = q.get("order_by").is_some_and(|o| o.to_ascii_lowercase().contains("asc"));
    s.pipelines.row(&id)?;
    require(&s, &user, "pipelines", &id, "CAN_VIEW")?;
    let rows = s.store.list_pipeline_events(&id, &filter, page.offset, page.size + 1)?;
    Ok(Json(one_page(&page, "events", rows.iter().map(event_json).collect())))
}

/// The events filter: `level='INFO'`, `level in ('ERROR','WARN')`,
/// `event_type='flow_progress'`, `update_id='...'`, `timestamp > '...'`,
/// joined by AND.
fn event_filter(text: &str) -> Result<PipelineEventFilter, ApiFailure> {
    let mut filter = PipelineEventFilter::default();
    for part in text.split(" AND ").flat_map(|p| p.split(" and ")).map(str::trim).filter(|p| !p.is_empty()) {
        let refuse =
            || -> ApiFailure { ApiError::invalid_parameter(format!("Unsupported events filter: {part}")).into() };
        let (field, values) = clause(part).ok_or_else(refuse)?;
        match field.as_str() {
            "level" => filter.levels.extend(values),
            "event_type" => filter.event_types.extend(values),
            "update_id" | "origin.update_id" => filter.update_id = values.into_iter().next(),
            "timestamp" => {
                let text = values.first().ok_or_else(refuse)?;
                let at = chrono::DateTime::parse_from_rfc3339(text).map_err(|_| refuse())?;
                filter.after = Some(at.timestamp_millis());
            }
            _ => return Err(refuse()),
        }
    }
    Ok(filter)
}

/// `field = 'v'`, `field > 'v'` or `field in ('a', 'b')`: the field in
/// lower case and the quoted values.
fn clause(part: &str) -> Option<(String, Vec<String>)> {
    let lower = part.to_ascii_lowercase();
    let (field, rest) = match lower.find(" in ") {
        Some(at) if !lower[..at].contains(['=', '>']) => (&part[..at], &part[at + 4..]),
        _ => {
            let at = part.find(['=', '>'])?;
            (&part[..at], &part[at + 1..])
        }
    };
    let rest = rest.trim().trim_start_matches('(').trim_end_matches(')');
    let values = rest.split(',').map(|v| v.trim().trim_matches('\'').to_string()).collect();
    Some((field.trim().to_ascii_lowercase(), values))
}

async fn stop(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    require(&s, &user, "pipelines", &id, "CAN_RUN")?;
    s.pipelines.stop(&id)?;
    Ok(Json(json!({})))
}
