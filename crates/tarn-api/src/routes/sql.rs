//! SQL warehouses (`/api/2.0/sql/warehouses`) and the SQL Statement
//! Execution API (`/api/2.0/sql/statements`).

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tarn_core::ApiError;
use tarn_sql::result::{Chunk, ResultSet};
use tarn_sql::statements::{OnWaitTimeout, SqlParameter, StatementRequest, StatementSnapshot, parse_wait_timeout};
use tarn_sql::warehouse::{WarehouseState, WarehouseStatus};

use super::permissions::{require, visible};
use super::required;
use crate::body::JsonBody;
use crate::error::ApiResult;
use crate::{AppState, Caller};

const WAREHOUSES: &str = "/api/2.0/sql/warehouses";
const STATEMENTS: &str = "/api/2.0/sql/statements";

pub fn router() -> Router<AppState> {
    Router::new()
        .route(WAREHOUSES, get(list_warehouses).post(one_warehouse_only))
        .route(&format!("{WAREHOUSES}/{{id}}"), get(get_warehouse).delete(one_warehouse_only))
        .route(&format!("{WAREHOUSES}/{{id}}/start"), post(start_warehouse))
        .route(&format!("{WAREHOUSES}/{{id}}/stop"), post(stop_warehouse))
        .route(&format!("{WAREHOUSES}/{{id}}/edit"), post(one_warehouse_only))
        .route(STATEMENTS, post(execute_statement))
        .route(&format!("{STATEMENTS}/{{id}}"), get(get_statement).delete(close_statement))
        .route(&format!("{STATEMENTS}/{{id}}/cancel"), post(cancel_statement))
        .route(&format!("{STATEMENTS}/{{id}}/result/chunks/{{index}}"), get(get_chunk))
}

async fn one_warehouse_only() -> ApiResult<Json<Value>> {
    Err(ApiError::not_implemented(
        "tarn has one local SQL warehouse (listed by GET /api/2.0/sql/warehouses); creating, editing and deleting \
         warehouses is not implemented",
    )
    .into())
}

fn warehouse_json(w: &WarehouseStatus) -> Value {
    let running = w.state == WarehouseState::Running;
    let health = match &w.failure {
        Some(why) => json!({"status": "FAILED", "summary": why, "message": why}),
        None => json!({"status": "HEALTHY"}),
    };
    json!({
        "id": w.id,
        "name": w.name,
        "state": w.state.as_str(),
        "auto_stop_mins": w.auto_stop_mins,
        "creator_name": w.creator,
        "min_num_clusters": 1,
        "max_num_clusters": 1,
        "num_clusters": i32::from(running),
        "num_active_sessions": 0,
        "enable_photon": false,
        "enable_serverless_compute": false,
        "warehouse_type": "PRO",
        "tags": {},
        "health": health,
    })
}

async fn list_warehouses(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
) -> ApiResult<Json<Value>> {
    let warehouse = s.statements.warehouse();
    if !visible(&s, &user, "warehouses", warehouse.id())? {
        return Ok(Json(json!({})));
    }
    let status = warehouse.status(warehouse.id())?;
    Ok(Json(json!({"warehouses": [warehouse_json(&status)]})))
}

async fn get_warehouse(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    require(&s, &user, "warehouses", &id, "CAN_VIEW")?;
    Ok(Json(warehouse_json(&s.statements.warehouse().status(&id)?)))
}

async fn start_warehouse(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    // As in Databricks, whoever may use a warehouse may start it.
    require(&s, &user, "warehouses", &id, "CAN_USE")?;
    s.statements.warehouse().start(&id, &user.user_name)?;
    Ok(Json(json!({})))
}

async fn stop_warehouse(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    require(&s, &user, "warehouses", &id, "CAN_MANAGE")?;
    s.statements.warehouse().stop(&id, &user.user_name)?;
    Ok(Json(json!({})))
}

#[derive(Debug, Deserialize)]
struct Parameter {
    name: String,
    value: Option<String>,
    #[serde(rename = "type")]
    type_text: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ExecuteBody {
    statement: Option<String>,
    warehouse_id: Option<String>,
    catalog: Option<String>,
    schema: Option<String>,
    #[serde(default)]
    parameters: Vec<Parameter>,
    row_limit: Option<i64>,
    byte_limit: Option<i64>,
    disposition: Option<String>,
    format: Option<String>,
    wait_timeout: Option<String>,
    on_wait_timeout: Option<String>,
    session_id: Option<String>,
}

fn limit(value: Option<i64>, field: &str) -> ApiResult<Option<usize>> {
    value
        .map(|n| usize::try_from(n).map_err(|_| ApiError::invalid_parameter(format!("{field} must be >= 0, got {n}"))))
        .transpose()
        .map_err(Into::into)
}

fn statement_request(body: ExecuteBody, user: &str) -> ApiResult<StatementRequest> {
    match body.disposition.as_deref().unwrap_or("INLINE") {
        "INLINE" => {}
        d @ ("EXTERNAL_LINKS" | "INLINE_OR_EXTERNAL_LINKS") => {
            return Err(ApiError::not_implemented(format!("disposition {d} is not implemented; use INLINE")).into());
        }
        other => return Err(ApiError::invalid_parameter(format!("Unknown disposition: {other}")).into()),
    }
    match body.format.as_deref().unwrap_or("JSON_ARRAY") {
        "JSON_ARRAY" => {}
        f @ ("ARROW_STREAM" | "CSV") => {
            return Err(ApiError::invalid_parameter(format!(
                "format {f} needs disposition EXTERNAL_LINKS; INLINE results are JSON_ARRAY"
            ))
            .into());
        }
        other => return Err(ApiError::invalid_parameter(format!("Unknown format: {other}")).into()),
    }
    let on_wait_timeout = match body.on_wait_timeout.as_deref().unwrap_or("CONTINUE") {
        "CONTINUE" => OnWaitTimeout::Continue,
        "CANCEL" => OnWaitTimeout::Cancel,
        other => return Err(ApiError::invalid_parameter(format!("Unknown on_wait_timeout: {other}")).into()),
    };
    let parameters = body
        .parameters
        .into_iter()
        .map(|p| SqlParameter { name: p.name, value: p.value, type_text: p.type_text })
        .collect::<Vec<_>>();
    if let Some(p) = parameters.iter().find(|p| p.name.is_empty()) {
        return Err(ApiError::invalid_parameter(format!("A parameter needs a name (value {:?})", p.value)).into());
    }
    Ok(StatementRequest {
        statement: required(body.statement.as_deref(), "statement")?.to_string(),
        warehouse_id: required(body.warehouse_id.as_deref(), "warehouse_id")?.to_string(),
        catalog: body.catalog.filter(|c| !c.is_empty()),
        schema: body.schema.filter(|c| !c.is_empty()),
        parameters,
        row_limit: limit(body.row_limit, "row_limit")?,
        byte_limit: limit(body.byte_limit, "byte_limit")?,
        wait_timeout: parse_wait_timeout(body.wait_timeout.as_deref().unwrap_or("10s"))?,
        on_wait_timeout,
        user: user.to_string(),
        session_id: body.session_id.filter(|s| !s.is_empty()),
    })
}

async fn execute_statement(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(body): JsonBody<ExecuteBody>,
) -> ApiResult<Json<Value>> {
    let request = statement_request(body, &user.user_name)?;
    require(&s, &user, "warehouses", &request.warehouse_id, "CAN_USE")?;
    Ok(Json(statement_json(&s.statements.execute(request).await?)))
}

async fn get_statement(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(statement_json(&s.statements.get(&id)?)))
}

async fn cancel_statement(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    s.statements.cancel(&id).await?;
    Ok(Json(json!({})))
}

/// `DELETE /api/2.0/sql/statements/{id}`: the SQL connectors close a
/// statement they are done with.
async fn close_statement(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    s.statements.close(&id).await?;
    Ok(Json(json!({})))
}

async fn get_chunk(State(s): State<AppState>, Path((id, index)): Path<(String, String)>) -> ApiResult<Json<Value>> {
    let snapshot = s.statements.get(&id)?;
    let Some(result) = snapshot.result else {
        return Err(ApiError::invalid_state(format!(
            "Statement {id} is {} and has no result",
            snapshot.state.as_str()
        ))
        .into());
    };
    let chunk = index.parse::<usize>().ok().and_then(|i| result.chunks.get(i)).ok_or_else(|| {
        ApiError::invalid_parameter(format!(
            "chunk_index {index} is out of range: the result has {} chunks",
            result.chunks.len()
        ))
    })?;
    Ok(Json(chunk_json(&id, &result, chunk)))
}

fn statement_json(s: &StatementSnapshot) -> Value {
    let mut status = json!({"state": s.state.as_str()});
    if let Some(e) = &s.error {
        status["error"] = json!({"error_code": e.code, "message": e.message});
        if let Some(state) = &e.sql_state {
            status["sql_state"] = json!(state);
        }
    }
    let mut body = json!({"statement_id": s.id, "status": status});
    if let Some(result) = &s.result {
        body["manifest"] = manifest_json(result);
        if let Some(first) = result.chunks.first() {
            body["result"] = chunk_json(&s.id, result, first);
        }
    }
    body
}

fn manifest_json(result: &ResultSet) -> Value {
    let columns: Vec<Value> = result
        .columns
        .iter()
        .map(|c| {
            let mut column = json!({
                "name": c.name,
                "position": c.position,
                "type_text": c.type_text,
                "type_name": c.type_name,
            });
            if let (Some(p), Some(s)) = (c.precision, c.scale) {
                column["type_precision"] = json!(p);
                column["type_scale"] = json!(s);
            }
            column
        })
        .collect();
    let chunks: Vec<Value> = result.chunks.iter().map(chunk_info).collect();
    json!({
        "format": "JSON_ARRAY",
        "schema": {"column_count": columns.len(), "columns": columns},
        "total_chunk_count": chunks.len(),
        "chunks": chunks,
        "total_row_count": result.total_rows,
        "total_byte_count": result.total_bytes,
        "truncated": result.truncated,
    })
}

fn chunk_info(chunk: &Chunk) -> Value {
    json!({
        "chunk_index": chunk.index,
        "row_offset": chunk.row_offset,
        "row_count": chunk.rows.len(),
        "byte_count": chunk.byte_count,
    })
}

fn chunk_json(id: &str, result: &ResultSet, chunk: &Chunk) -> Value {
    let mut data = chunk_info(chunk);
    data["data_array"] = json!(chunk.rows);
    let next = chunk.index + 1;
    if next < result.chunks.len() {
        data["next_chunk_index"] = json!(next);
        data["next_chunk_internal_link"] = json!(format!("{STATEMENTS}/{id}/result/chunks/{next}"));
    }
    data
}
