//! `runs/*` and `metrics/get-history`.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tarn_core::time::now_ms;
use tarn_mlflow::{MetricRow, MlflowError, ModelMetric, RunData, RunIo, RunRow, RunSearch};

use super::guard;
use super::{KeyValue, de_f64, de_i64, key_values, metric_value, page_json, pairs, required, route};
use crate::body::{JsonBody, QueryPairs};
use crate::error::ApiResult;
use crate::paging::{Page, PageRule, Paged};
use crate::{AppState, Caller};

pub fn router() -> Router<AppState> {
    [
        ("runs/create", post(create)),
        ("runs/get", get(get_run)),
        ("runs/update", post(update)),
        ("runs/delete", post(delete)),
        ("runs/restore", post(restore)),
        ("runs/log-metric", post(log_metric)),
        ("runs/log-parameter", post(log_param)),
        ("runs/log-batch", post(log_batch)),
        ("runs/set-tag", post(set_tag)),
        ("runs/delete-tag", post(delete_tag)),
        ("runs/search", post(search)),
        ("runs/log-model", post(log_model)),
        ("metrics/get-history", get(metric_history)),
        ("metrics/get-history-bulk-interval", get(metric_history_bulk)),
        ("artifacts/list", get(list_artifacts)),
    ]
    .into_iter()
    .fold(Router::new(), |router, (path, handler)| route(router, path, handler))
}

pub(crate) fn run_info_json(r: &RunRow) -> Value {
    let mut info = json!({
        "run_id": r.run_uuid,
        "run_uuid": r.run_uuid,
        "run_name": r.name,
        "experiment_id": r.experiment_id.to_string(),
        "user_id": r.user_id,
        "status": r.status,
        "start_time": r.start_time,
        "artifact_uri": r.artifact_uri,
        "lifecycle_stage": r.lifecycle_stage,
    });
    if let Some(end) = r.end_time {
        info["end_time"] = json!(end);
    }
    info
}

fn metric_json(m: &MetricRow) -> Value {
    json!({"key": m.key, "value": metric_value(m.value, m.is_nan), "timestamp": m.timestamp, "step": m.step})
}

pub(crate) fn run_json(r: &RunRow, d: &RunData) -> Value {
    json!({
        "info": run_info_json(r),
        "data": {
            "metrics": d.metrics.iter().map(metric_json).collect::<Vec<_>>(),
            "params": key_values(&d.params),
            "tags": key_values(&d.tags),
        },
        "inputs": {
            "dataset_inputs": inputs(d, RunIo::Dataset),
            "model_inputs": inputs(d, RunIo::ModelInput),
        },
        "outputs": {"model_outputs": inputs(d, RunIo::ModelOutput)},
    })
}

fn inputs(d: &RunData, kind: RunIo) -> Vec<Value> {
    d.inputs.iter().filter(|(k, _)| k == kind.as_str()).map(|(_, v)| v.clone()).collect()
}

#[derive(Debug, Default, Deserialize)]
struct Metric {
    #[serde(default)]
    key: String,
    #[serde(default, deserialize_with = "de_f64")]
    value: Option<f64>,
    #[serde(default, deserialize_with = "de_i64")]
    timestamp: Option<i64>,
    #[serde(default, deserialize_with = "de_i64")]
    step: Option<i64>,
    model_id: Option<String>,
    dataset_name: Option<String>,
    dataset_digest: Option<String>,
}

impl Metric {
    fn row(&self) -> Result<MetricRow, MlflowError> {
        let value = self.value.ok_or_else(|| {
            MlflowError::InvalidParameter(format!(
                "Missing value for required parameter 'value' of metric '{}'",
                self.key
            ))
        })?;
        Ok(MetricRow {
            key: self.key.clone(),
            value,
            is_nan: false,
            timestamp: self.timestamp.unwrap_or_else(now_ms),
            step: self.step.unwrap_or(0),
        })
    }
}

#[derive(Debug, Default, Deserialize)]
struct Body {
    run_id: Option<String>,
    run_uuid: Option<String>,
    experiment_id: Option<String>,
    user_id: Option<String>,
    run_name: Option<String>,
    #[serde(default, deserialize_with = "de_i64")]
    start_time: Option<i64>,
    #[serde(default, deserialize_with = "de_i64")]
    end_time: Option<i64>,
    status: Option<String>,
    #[serde(default)]
    tags: Vec<KeyValue>,
    #[serde(default)]
    params: Vec<KeyValue>,
    #[serde(default)]
    metrics: Vec<Metric>,
    key: Option<String>,
    value: Option<Value>,
    #[serde(default, deserialize_with = "de_i64")]
    timestamp: Option<i64>,
    #[serde(default, deserialize_with = "de_i64")]
    step: Option<i64>,
    model_id: Option<String>,
    dataset_name: Option<String>,
    dataset_digest: Option<String>,
    #[serde(default)]
    experiment_ids: Vec<String>,
    filter: Option<String>,
    run_view_type: Option<String>,
    #[serde(default, deserialize_with = "de_i64")]
    max_results: Option<i64>,
    #[serde(default)]
    order_by: Vec<String>,
    page_token: Option<String>,
    model_json: Option<String>,
}

impl Body {
    /// `run_id`, or the older `run_uuid`.
    fn run(&self) -> Result<&str, MlflowError> {
        required(self.run_id.as_deref().or(self.run_uuid.as_deref()), "run_id")
    }

    fn key(&self) -> Result<&str, MlflowError> {
        required(self.key.as_deref(), "key")
    }

    /// A param or tag value: text as sent (numbers as their JSON text).
    fn text_value(&self) -> String {
        match &self.value {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        }
    }
}

async fn create(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(b): JsonBody<Body>,
) -> ApiResult<Json<Value>> {
    let experiment = b.experiment_id.as_deref().filter(|e| !e.is_empty()).unwrap_or("0");
    guard::experiment(&s, &user, experiment, "CAN_EDIT")?;
    let user_id = b.user_id.as_deref().filter(|u| !u.is_empty()).unwrap_or(&user.user_name);
    let run = s.tracking.create_run(experiment, user_id, b.run_name.as_deref(), b.start_time, &pairs(&b.tags))?;
    // The answer shows the tags as stored (with the run name's).
    let (run, data) = s.tracking.run_with_data(&run.run_uuid)?;
    Ok(Json(json!({"run": run_json(&run, &data)})))
}

async fn get_run(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    let id = required(q.get("run_id").or(q.get("run_uuid")), "run_id")?;
    guard::run(&s, &user, id, "CAN_READ")?;
    let (run, data) = s.tracking.run_with_data(id)?;
    Ok(Json(json!({"run": run_json(&run, &data)})))
}

async fn update(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(b): JsonBody<Body>,
) -> ApiResult<Json<Value>> {
    guard::run(&s, &user, b.run()?, "CAN_EDIT")?;
    let run = s.tracking.update_run(b.run()?, b.status.as_deref(), b.end_time, b.run_name.as_deref())?;
    Ok(Json(json!({"run_info": run_info_json(&run)})))
}

async fn delete(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(b): JsonBody<Body>,
) -> ApiResult<Json<Value>> {
    guard::run(&s, &user, b.run()?, "CAN_EDIT")?;
    s.tracking.delete_run(b.run()?)?;
    Ok(Json(json!({})))
}

async fn restore(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(b): JsonBody<Body>,
) -> ApiResult<Json<Value>> {
    guard::run(&s, &user, b.run()?, "CAN_EDIT")?;
    s.tracking.restore_run(b.run()?)?;
    Ok(Json(json!({})))
}

async fn log_metric(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(b): JsonBody<Body>,
) -> ApiResult<Json<Value>> {
    guard::run(&s, &user, b.run()?, "CAN_EDIT")?;
    let value = match &b.value {
        Some(v) => {
            de_f64(v.clone()).map_err(|e| MlflowError::InvalidParameter(format!("Invalid metric value: {e}")))?
        }
        None => None,
    };
    let metric = Metric {
        key: b.key()?.to_string(),
        value,
        timestamp: b.timestamp,
        step: b.step,
        model_id: b.model_id.clone(),
        dataset_name: b.dataset_name.clone(),
        dataset_digest: b.dataset_digest.clone(),
    };
    log_metrics(&s, b.run()?, &[metric], &[], &[])?;
    Ok(Json(json!({})))
}

/// Logs a batch to the run in one write, then the metrics naming a model
/// to that model too.
fn log_metrics(
    s: &AppState,
    run: &str,
    metrics: &[Metric],
    params: &[(String, String)],
    tags: &[(String, String)],
) -> Result<(), MlflowError> {
    let rows = metrics.iter().map(Metric::row).collect::<Result<Vec<_>, _>>()?;
    s.tracking.log_batch(run, &rows, params, tags)?;
    for (m, row) in metrics.iter().zip(rows) {
        if let Some(model) = m.model_id.as_deref().filter(|id| !id.is_empty()) {
            let metric = ModelMetric {
                metric: row,
                run_uuid: Some(run.to_string()),
                dataset_name: m.dataset_name.clone(),
                dataset_digest: m.dataset_digest.clone(),
            };
            s.tracking.log_model_metrics(model, &[metric])?;
        }
    }
    Ok(())
}

async fn log_param(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(b): JsonBody<Body>,
) -> ApiResult<Json<Value>> {
    guard::run(&s, &user, b.run()?, "CAN_EDIT")?;
    s.tracking.log_batch(b.run()?, &[], &[(b.key()?.to_string(), b.text_value())], &[])?;
    Ok(Json(json!({})))
}

async fn set_tag(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(b): JsonBody<Body>,
) -> ApiResult<Json<Value>> {
    guard::run(&s, &user, b.run()?, "CAN_EDIT")?;
    s.tracking.log_batch(b.run()?, &[], &[], &[(b.key()?.to_string(), b.text_value())])?;
    Ok(Json(json!({})))
}

async fn log_batch(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(b): JsonBody<Body>,
) -> ApiResult<Json<Value>> {
    guard::run(&s, &user, b.run()?, "CAN_EDIT")?;
    log_metrics(&s, b.run()?, &b.metrics, &pairs(&b.params), &pairs(&b.tags))?;
    Ok(Json(json!({})))
}

async fn delete_tag(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(b): JsonBody<Body>,
) -> ApiResult<Json<Value>> {
    guard::run(&s, &user, b.run()?, "CAN_EDIT")?;
    s.tracking.delete_tag(b.run()?, b.key()?)?;
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
    let search = RunSearch {
        experiment_ids: b.experiment_ids,
        filter: b.filter,
        view_type: b.run_view_type,
        max_results: b.max_results,
        order_by: b.order_by,
        page_token: b.page_token,
    };
    let page = s.tracking.search_runs(&search)?;
    Ok(page_json("runs", page.items.iter().map(|(r, d)| run_json(r, d)).collect(), page.next_page_token))
}

/// `metrics/get-history`: every point unless `max_results` (a positive
/// integer; anything else is ignored) asks for fewer.
struct HistoryPage;

impl PageRule for HistoryPage {
    const SIZE: &'static str = "max_results";
    const MAX: usize = usize::MAX;
    fn refusal(_: &str, _: Option<i64>) -> Option<String> {
        None
    }
}

async fn metric_history(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    q: QueryPairs,
    page: Page<HistoryPage>,
) -> ApiResult<Paged<Value>> {
    let run = required(q.get("run_id").or(q.get("run_uuid")), "run_id")?;
    guard::run(&s, &user, run, "CAN_READ")?;
    let key = required(q.get("metric_key"), "metric_key")?;
    let history = s.tracking.metric_history(run, key)?;
    Ok(page.slice("metrics", &history).map(|m| metric_json(&m)))
}

async fn log_model(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(b): JsonBody<Body>,
) -> ApiResult<Json<Value>> {
    guard::run(&s, &user, b.run()?, "CAN_EDIT")?;
    s.tracking.record_logged_model(b.run()?, required(b.model_json.as_deref(), "model_json")?)?;
    Ok(Json(json!({})))
}

async fn metric_history_bulk(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    let run_ids: Vec<String> = q.all("run_ids").map(str::to_string).collect();
    for run in &run_ids {
        guard::run(&s, &user, run, "CAN_READ")?;
    }
    let key = required(q.get("metric_key"), "metric_key")?;
    let steps = (q.int("start_step")?, q.int("end_step")?);
    let metrics = s.tracking.sampled_history(&run_ids, key, q.int("max_results")?, steps)?;
    let metrics: Vec<Value> = metrics
        .iter()
        .map(|(run, m)| {
            let mut metric = metric_json(m);
            metric["run_id"] = json!(run);
            metric
        })
        .collect();
    Ok(Json(json!({"metrics": metrics})))
}

/// A run's artifacts under `path`, relative to its artifact root.
async fn list_artifacts(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    let run = s.tracking.run(required(q.get("run_id").or(q.get("run_uuid")), "run_id")?)?;
    guard::experiment(&s, &user, &run.experiment_id.to_string(), "CAN_READ")?;
    let files = s.artifacts.list_root(&run.artifact_uri, q.get("path"))?;
    Ok(Json(json!({"root_uri": run.artifact_uri, "files": super::artifacts::files_json(&files)})))
}
