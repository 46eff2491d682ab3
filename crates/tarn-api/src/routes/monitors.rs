//! Quality monitors (`/api/2.1/unity-catalog/tables/{table}/monitor`) as
//! `databricks-sdk`'s `w.quality_monitors` calls them. The monitor's JSON
//! is the `MonitorInfo` tarn-monitor keeps; refreshes are shaped here.
//! `…/monitor/report` answers the drift report, an HTML page tarn-monitor
//! draws (tarn's own route; Databricks shows a dashboard instead).
//!
//! As on Databricks, a monitor and its refreshes are read with SELECT on
//! the monitored table, and made, changed, refreshed or dropped by the
//! table's owner or a holder of MANAGE on it.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::HeaderValue;
use axum::http::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use tarn_catalog::{Action, Kind};
use tarn_store::RefreshRow;

use crate::body::JsonBody;
use crate::error::{ApiFailure, ApiResult};
use crate::routes::unity_catalog::principal;
use crate::{AppState, Caller};

const BASE: &str = "/api/2.1/unity-catalog/tables/{table}/monitor";

pub fn router() -> Router<AppState> {
    Router::new()
        .route(BASE, post(create).get(get_monitor).put(update).delete(delete))
        .route(&format!("{BASE}/refreshes"), post(run_refresh).get(list_refreshes))
        .route(&format!("{BASE}/refreshes/{{id}}"), get(get_refresh))
        .route(&format!("{BASE}/refreshes/{{id}}/cancel"), post(cancel_refresh))
        .route(&format!("{BASE}/report"), get(report))
}

/// The page has no script and loads nothing: the policy says so to the
/// browser, so a value that slipped past escaping could not run either.
const REPORT_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

async fn report(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(table): Path<String>,
) -> ApiResult<Response> {
    authorize(&s, &user, &table, Action::Select)?;
    let html = s.monitors.report_html(&table).await?;
    let headers = [
        (CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
        (CONTENT_SECURITY_POLICY, HeaderValue::from_static(REPORT_POLICY)),
        (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
    ];
    Ok((headers, html).into_response())
}

fn refresh_json(r: &RefreshRow) -> Value {
    let mut out = json!({
        "refresh_id": r.refresh_id,
        "state": r.state,
        "start_time_ms": r.start_time_ms,
        "trigger": r.trigger,
    });
    if let Some(end) = r.end_time_ms {
        out["end_time_ms"] = json!(end);
    }
    if let Some(message) = &r.message {
        out["message"] = json!(message);
    }
    out
}

async fn create(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(table): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    authorize(&s, &user, &table, Action::Manage)?;
    Ok(Json(s.monitors.create(&table, &body).await?))
}

async fn get_monitor(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(table): Path<String>,
) -> ApiResult<Json<Value>> {
    authorize(&s, &user, &table, Action::Select)?;
    Ok(Json(s.monitors.get(&table)?))
}

async fn update(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(table): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    authorize(&s, &user, &table, Action::Manage)?;
    Ok(Json(s.monitors.update(&table, &body).await?))
}

async fn delete(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(table): Path<String>,
) -> ApiResult<Json<Value>> {
    authorize(&s, &user, &table, Action::Manage)?;
    s.monitors.delete(&table)?;
    Ok(Json(json!({})))
}

async fn run_refresh(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(table): Path<String>,
) -> ApiResult<Json<Value>> {
    authorize(&s, &user, &table, Action::Manage)?;
    Ok(Json(refresh_json(&s.monitors.run_refresh(&table, "MANUAL")?)))
}

async fn list_refreshes(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(table): Path<String>,
) -> ApiResult<Json<Value>> {
    authorize(&s, &user, &table, Action::Select)?;
    let refreshes: Vec<Value> = s.monitors.refreshes(&table)?.iter().map(refresh_json).collect();
    Ok(Json(json!({"refreshes": refreshes})))
}

fn refresh_id(id: &str) -> Result<i64, crate::error::ApiFailure> {
    id.parse().map_err(|_| {
        crate::error::ApiFailure(tarn_core::ApiError::invalid_parameter(format!(
            "refresh_id must be an integer, got {id}"
        )))
    })
}

async fn get_refresh(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path((table, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    authorize(&s, &user, &table, Action::Select)?;
    Ok(Json(refresh_json(&s.monitors.refresh(&table, refresh_id(&id)?)?)))
}

async fn cancel_refresh(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path((table, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    authorize(&s, &user, &table, Action::Manage)?;
    s.monitors.cancel_refresh(&table, refresh_id(&id)?)?;
    Ok(Json(json!({})))
}

/// Refuses unless the caller may `action` on the monitored table.
pub(crate) fn authorize(s: &AppState, user: &tarn_store::User, table: &str, action: Action) -> Result<(), ApiFailure> {
    Ok(s.catalog.authorize(&principal(s, user)?, Kind::Table, table, action)?)
}
