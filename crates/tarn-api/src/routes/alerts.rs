//! Databricks SQL's saved queries (`/api/2.0/sql/queries`), alerts
//! (`/api/2.0/sql/alerts`) and scheduled alerts (`/api/2.0/alerts`), thin
//! over `tarn_alerts::Alerts`. The v1 APIs wrap the object in `{query}` or
//! `{alert}` and take `update_mask` in the body; v2 takes the alert as the
//! body and `update_mask` in the query string.

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tarn_alerts::{Kind, Page};

use crate::body::JsonBody;
use crate::error::ApiResult;
use crate::{AppState, Caller};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/2.0/sql/queries", get(list_queries).post(create_query))
        .route("/api/2.0/sql/queries/{id}", get(get_query).patch(update_query).delete(delete_query))
        .route("/api/2.0/sql/alerts", get(list_alerts).post(create_alert))
        .route("/api/2.0/sql/alerts/{id}", get(get_alert).patch(update_alert).delete(delete_alert))
        .route("/api/2.0/alerts", get(list_v2).post(create_v2))
        .route("/api/2.0/alerts/{id}", get(get_v2).patch(update_v2).delete(delete_v2))
}

#[derive(Debug, Deserialize)]
struct Paging {
    page_size: Option<usize>,
    page_token: Option<String>,
}

#[derive(Debug, Deserialize)]
struct V2Params {
    update_mask: Option<String>,
    purge: Option<bool>,
}

/// The v1 envelope's object: `{"query": {...}}` or `{"alert": {...}}`.
fn wrapped<'a>(body: &'a Value, key: &str) -> &'a Value {
    body.get(key).unwrap_or(&Value::Null)
}

fn mask(body: &Value) -> String {
    body.get("update_mask").and_then(Value::as_str).unwrap_or_default().to_string()
}

fn page(p: Page, key: &str) -> Json<Value> {
    let mut out = json!({ key: p.objects });
    if let Some(token) = p.next_page_token {
        out["next_page_token"] = json!(token);
    }
    Json(out)
}

async fn create_query(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    Ok(Json(s.alerts.create(Kind::Query, wrapped(&body, "query"), &user.user_name)?))
}

async fn get_query(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(s.alerts.get(Kind::Query, &id)?))
}

async fn list_queries(State(s): State<AppState>, Query(p): Query<Paging>) -> ApiResult<Json<Value>> {
    Ok(page(s.alerts.list(Kind::Query, p.page_size, p.page_token.as_deref())?, "results"))
}

async fn update_query(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    Ok(Json(s.alerts.update(Kind::Query, &id, wrapped(&body, "query"), &mask(&body), &user.user_name)?))
}

async fn delete_query(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    s.alerts.delete(Kind::Query, &id, false)?;
    Ok(Json(json!({})))
}

async fn create_alert(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    Ok(Json(s.alerts.create(Kind::Alert, wrapped(&body, "alert"), &user.user_name)?))
}

async fn get_alert(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(s.alerts.get(Kind::Alert, &id)?))
}

async fn list_alerts(State(s): State<AppState>, Query(p): Query<Paging>) -> ApiResult<Json<Value>> {
    Ok(page(s.alerts.list(Kind::Alert, p.page_size, p.page_token.as_deref())?, "results"))
}

async fn update_alert(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    Ok(Json(s.alerts.update(Kind::Alert, &id, wrapped(&body, "alert"), &mask(&body), &user.user_name)?))
}

async fn delete_alert(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    s.alerts.delete(Kind::Alert, &id, false)?;
    Ok(Json(json!({})))
}

async fn create_v2(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    Ok(Json(s.alerts.create(Kind::AlertV2, &body, &user.user_name)?))
}

async fn get_v2(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(s.alerts.get(Kind::AlertV2, &id)?))
}

async fn list_v2(State(s): State<AppState>, Query(p): Query<Paging>) -> ApiResult<Json<Value>> {
    Ok(page(s.alerts.list(Kind::AlertV2, p.page_size, p.page_token.as_deref())?, "alerts"))
}

async fn update_v2(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(id): Path<String>,
    Query(params): Query<V2Params>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    let mask = params.update_mask.unwrap_or_default();
    Ok(Json(s.alerts.update(Kind::AlertV2, &id, &body, &mask, &user.user_name)?))
}

async fn delete_v2(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<V2Params>,
) -> ApiResult<Json<Value>> {
    s.alerts.delete(Kind::AlertV2, &id, params.purge.unwrap_or(false))?;
    Ok(Json(json!({})))
}
