//! The Thrift endpoint at a warehouse's `http_path`
//! (`/sql/1.0/warehouses/{id}`) and an all-purpose cluster's
//! (`/sql/protocolv1/o/{workspace}/{cluster}`, its statements run on the
//! cluster's engine), where `databricks-sql-connector` sends TCLIService
//! calls. A call the service answers is HTTP 200 whatever its
//! status; what stops a call before the service (an unknown warehouse, no
//! `CAN_USE`, a body that is not Thrift) is a 4xx the driver does not retry,
//! its message in `x-thriftserver-error-message` as the driver reads it.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{Value, json};
use tarn_thrift::{Answer, Caller as ThriftCaller};

use super::permissions::require;
use crate::{AppState, Caller};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/sql/1.0/warehouses/{id}", post(warehouse_call))
        .route("/sql/protocolv1/o/{workspace}/{cluster}", post(cluster_call))
        .route("/api/2.0/connector-service/feature-flags/{driver}/{version}", get(feature_flags))
}

/// The flags SQL drivers read before they connect: tarn sets none, so each
/// driver keeps its defaults (its telemetry stays off).
async fn feature_flags() -> Json<Value> {
    Json(json!({"flags": [], "ttl_seconds": 900}))
}

fn refused(status: StatusCode, message: &str) -> Response {
    let mut response = (status, message.to_string()).into_response();
    // Header values are ASCII: anything else in the message is dropped.
    let ascii: String = message.chars().filter(|c| c.is_ascii() && !c.is_ascii_control()).collect();
    if let Ok(value) = HeaderValue::from_str(&ascii) {
        response.headers_mut().insert("x-thriftserver-error-message", value);
    }
    response
}

async fn warehouse_call(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(e) = s.statements.warehouse().status(&id) {
        return refused(StatusCode::NOT_FOUND, &e.to_string());
    }
    if let Err(e) = require(&s, &user, "warehouses", &id, "CAN_USE") {
        return refused(StatusCode::FORBIDDEN, &e.0.message);
    }
    answer(&s, ThriftCaller { user: &user, warehouse_id: &id, cluster_id: None }, &body).await
}

/// A cluster's Thrift path, as the cluster's JDBC/ODBC settings show it.
/// The workspace id is not checked: tarn is one workspace. A TERMINATED
/// cluster starts with the first statement (which waits for it).
async fn cluster_call(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path((_, cluster)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if let Err(e) = s.clusters.get(&cluster) {
        return refused(StatusCode::NOT_FOUND, &e.to_string());
    }
    if let Err(e) = require(&s, &user, "clusters", &cluster, "CAN_ATTACH_TO") {
        return refused(StatusCode::FORBIDDEN, &e.0.message);
    }
    let warehouse_id = s.statements.warehouse().id().to_string();
    answer(&s, ThriftCaller { user: &user, warehouse_id: &warehouse_id, cluster_id: Some(&cluster) }, &body).await
}

async fn answer(s: &AppState, caller: ThriftCaller<'_>, body: &[u8]) -> Response {
    match s.thrift.handle(&caller, body).await {
        Answer::Reply(bytes) => {
            ([(header::CONTENT_TYPE, HeaderValue::from_static("application/x-thrift"))], bytes).into_response()
        }
        Answer::Malformed(message) => refused(StatusCode::BAD_REQUEST, &message),
    }
}
