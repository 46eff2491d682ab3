//! The MLflow REST API (`/api/2.0/mlflow/*`, `/api/2.0/mlflow-artifacts/*`),
//! as the `mlflow` client calls it. Wire shapes are MLflow's protobuf JSON:
//! ids as strings, empty fields left out, NaN and infinities as strings.

mod artifacts;
mod experiments;
mod guard;
mod models;
mod registry;
mod runs;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{MethodRouter, any, get};
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};
use tarn_mlflow::MlflowError;

use crate::AppState;
use crate::paging::Paged;

pub const PREFIXES: &[&str] = &["/api/2.0/mlflow/", "/api/2.0/mlflow-artifacts/", "/api/3.0/mlflow/"];

/// Requests may carry a whole batch, or a param value the limits refuse
/// with MLflow's own error rather than a transport one.
const BODY_LIMIT: usize = 64 << 20;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(experiments::router())
        .merge(runs::router())
        .merge(models::router())
        .merge(registry::router())
        .merge(artifacts::router())
        .route("/api/3.0/mlflow/server-info", get(server_info))
        .merge(PREFIXES.iter().fold(Router::new(), |r, prefix| r.route(&format!("{prefix}{{*rest}}"), any(missing))))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

pub use artifacts::part_router;

/// What this server offers, as `mlflow server` tells its clients: the
/// artifact client asks before a large upload whether to go multipart.
async fn server_info() -> axum::Json<Value> {
    axum::Json(json!({
        "store_type": "SqlStore",
        "workspaces_enabled": false,
        "trace_archival_enabled": false,
        "multipart_uploads_enabled": true,
        "multipart_downloads_enabled": false,
        "presigned_upload_run_id_supported": false,
        "presigned_upload_model_id_supported": false,
        "features_enabled": {"gateway": false},
    }))
}

/// MLflow endpoints tarn does not serve (traces, datasets, prompts, the
/// gateway, ...) answer so, rather than as unknown paths.
async fn missing(method: axum::http::Method, uri: axum::http::Uri) -> crate::error::ApiFailure {
    MlflowError::NotImplemented(format!("MLflow's '{method} {}'", uri.path())).into()
}

/// Serves `handler` at `/api/2.0/mlflow/<path>` and `/api/3.0/mlflow/<path>`.
fn route(router: Router<AppState>, path: &str, handler: MethodRouter<AppState>) -> Router<AppState> {
    router.route(&format!("/api/2.0/mlflow/{path}"), handler.clone()).route(&format!("/api/3.0/mlflow/{path}"), handler)
}

/// A required field, or MLflow's error for its absence.
fn required<'a>(value: Option<&'a str>, name: &str) -> Result<&'a str, MlflowError> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| MlflowError::InvalidParameter(format!("Missing value for required parameter '{name}'.")))
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct KeyValue {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub value: String,
}

pub(crate) fn pairs(items: &[KeyValue]) -> Vec<(String, String)> {
    items.iter().map(|kv| (kv.key.clone(), kv.value.clone())).collect()
}

pub(crate) fn key_values(items: &[(String, String)]) -> Value {
    items.iter().map(|(k, v)| json!({"key": k, "value": v})).collect()
}

/// An int64 as protobuf JSON may send it: a number or a string.
pub(crate) fn de_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("{n} is not an integer"))),
        Some(Value::String(s)) => s.parse().map(Some).map_err(serde::de::Error::custom),
        Some(other) => Err(serde::de::Error::custom(format!("{other} is not an integer"))),
    }
}

/// A double as protobuf JSON may send it: a number, or "NaN", "Infinity",
/// "-Infinity" (or a numeric string).
pub(crate) fn de_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(Value::String(s)) => match s.as_str() {
            "NaN" | "nan" => Ok(Some(f64::NAN)),
            "Infinity" | "inf" => Ok(Some(f64::INFINITY)),
            "-Infinity" | "-inf" => Ok(Some(f64::NEG_INFINITY)),
            other => other.parse().map(Some).map_err(serde::de::Error::custom),
        },
        Some(other) => Err(serde::de::Error::custom(format!("{other} is not a number"))),
    }
}

/// A search answer: `key` holds the items, `next_page_token` is left out on
/// the last page.
pub(crate) fn page_json(key: &'static str, items: Vec<Value>, next: Option<String>) -> Paged<Value> {
    Paged::new(key, items).next_page_token(next)
}

/// A metric value as protobuf JSON writes it.
pub(crate) fn metric_value(value: f64, is_nan: bool) -> Value {
    if is_nan { json!("NaN") } else { json!(value) }
}
