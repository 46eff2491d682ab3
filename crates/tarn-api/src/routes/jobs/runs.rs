//! Job runs: run-now, runs/submit, get, get-output, list, cancel,
//! cancel-all, delete and repair, thin over `tarn_jobs::Runs`.

use axum::extract::State;
use axum::http::{Method, Uri};
use axum::routing::{any, get, post};
use axum::{Extension, Json, Router};
use serde_json::{Map, Value, json};
use tarn_core::{ApiError, ErrorCode};
use tarn_jobs::{JobSettings, RepairRequest, RunFilter, RunNow, Submit};
use tarn_store::User;

use super::view::{job_run, output, render_run};
use super::{ListPage, can_view, id_field, job_id};
use crate::body::{JsonBody, QueryPairs};
use crate::error::{ApiFailure, ApiResult};
use crate::paging::{Page, Paged};
use crate::routes::permissions::{job, permissions};
use crate::{AppState, Caller};

pub(super) fn routes(router: Router<AppState>, version: &str) -> Router<AppState> {
    let at = |op: &str| format!("/api/{version}/jobs/{op}");
    router
        .route(&at("run-now"), post(run_now))
        .route(&at("runs/submit"), post(submit))
        .route(&at("runs/get"), get(get_run))
        .route(&at("runs/get-output"), get(get_output))
        .route(&at("runs/list"), get(list))
        .route(&at("runs/cancel"), post(cancel))
        .route(&at("runs/cancel-all"), post(cancel_all))
        .route(&at("runs/delete"), post(delete))
        .route(&at("runs/repair"), post(repair))
        .route(&at("runs/export"), any(not_implemented))
}

async fn not_implemented(method: Method, uri: Uri) -> ApiFailure {
    ApiError::not_implemented(format!("{method} {} is not implemented by tarn", uri.path())).into()
}

fn run_id(value: Option<&Value>) -> Result<i64, ApiFailure> {
    id_field(value, "run_id")
}

fn query_run_id(q: &QueryPairs) -> Result<i64, ApiFailure> {
    run_id(q.get("run_id").map(|v| Value::String(v.into())).as_ref())
}

fn flag(q: &QueryPairs, name: &str) -> bool {
    q.flag_or(name, false)
}

async fn run_now(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    let job_id = job_id(body.get("job_id"))?;
    permissions(&s).check(&user, &job(&s, job_id)?, "CAN_MANAGE_RUN")?;
    let run_id = s.runs.run_now(job_id, &user.user_name, run_now_request(body))?;
    Ok(Json(json!({"run_id": run_id, "number_in_job": run_id})))
}

async fn submit(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    super::check_git_source(&user, &body)?;
    let run_id = s.runs.submit(&user.user_name, submit_request(body)?)?;
    Ok(Json(json!({"run_id": run_id})))
}

/// Parameters run-now passes to the tasks of their kind.
const OVERRIDES: &[&str] = &[
    "notebook_params",
    "python_params",
    "jar_params",
    "sql_params",
    "python_named_params",
    "pipeline_params",
    "dbt_commands",
];

fn idempotency_token(body: &Value) -> Option<String> {
    body.get("idempotency_token").and_then(Value::as_str).map(str::to_string)
}

fn run_now_request(body: Value) -> RunNow {
    let given = |field: &&str| body.get(*field).filter(|v| !v.is_null()).map(|v| (field.to_string(), v.clone()));
    RunNow {
        job_parameters: body.get("job_parameters").cloned(),
        overriding_parameters: OVERRIDES.iter().filter_map(given).collect(),
        idempotency_token: idempotency_token(&body),
    }
}

/// The body is the run's settings, less the token.
fn submit_request(mut body: Value) -> Result<Submit, ApiFailure> {
    let idempotency_token = idempotency_token(&body);
    if let Some(map) = body.as_object_mut() {
        map.remove("idempotency_token");
    }
    let run_name = body.get("run_name").and_then(Value::as_str).map(str::to_string);
    Ok(Submit { settings: JobSettings::from_value(body)?, run_name, idempotency_token })
}

/// Refuses unless `user` holds `needed` on the run's job; a run of no job
/// (or of a job since deleted) is its creator's and admins'.
fn check_run(s: &AppState, user: &User, run_id: i64, needed: &str) -> Result<(), ApiFailure> {
    let Some(run) = s.store.get_job_run(run_id)? else { return Ok(()) };
    if let Some(object) = run.job_id.and_then(|id| job(s, id).ok()) {
        return Ok(permissions(s).check(user, &object, needed)?);
    }
    if user.admin || run.creator_user_name == user.user_name {
        return Ok(());
    }
    Err(ApiError::new(ErrorCode::PermissionDenied, format!("{} cannot see run {run_id}", user.user_name)).into())
}

async fn get_run(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    let run_id = query_run_id(&q)?;
    check_run(&s, &user, run_id, "CAN_VIEW")?;
    Ok(Json(render_run(&s.runs.get(run_id, flag(&q, "include_resolved_values"))?)))
}

async fn get_output(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    let run_id = query_run_id(&q)?;
    check_run(&s, &user, run_id, "CAN_VIEW")?;
    Ok(Json(output(&s.runs.get_output(run_id)?)))
}

/// Only runs the caller may see (filtered within the page).
async fn list(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    q: QueryPairs,
    page: Page<ListPage>,
) -> ApiResult<Paged<Value>> {
    let (active_only, completed_only) = (flag(&q, "active_only"), flag(&q, "completed_only"));
    if active_only && completed_only {
        return Err(ApiError::invalid_parameter("active_only and completed_only cannot both be true").into());
    }
    let filter = RunFilter {
        job_id: q.int("job_id")?,
        active_only,
        completed_only,
        run_type: q.get("run_type").map(str::to_string),
        start_time_from: q.int("start_time_from")?,
        start_time_to: q.int("start_time_to")?,
    };
    // A job since deleted leaves its runs to the per-run rule below.
    if let Some(object) = filter.job_id.and_then(|id| job(&s, id).ok()) {
        permissions(&s).check(&user, &object, "CAN_VIEW")?;
    }
    let (runs, has_more) = s.runs.list(&filter, page.offset, page.requested, flag(&q, "expand_tasks"))?;
    let mut shown = Vec::new();
    for run in &runs {
        let visible = match run.row.job_id {
            Some(job_id) => can_view(&s, &user, job_id)?,
            None => user.admin || run.row.creator_user_name == user.user_name,
        };
        if visible {
            shown.push(job_run(run));
        }
    }
    Ok(page.answer("runs", shown, has_more).omit_empty())
}

async fn cancel(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    let run_id = run_id(body.get("run_id"))?;
    check_run(&s, &user, run_id, "CAN_MANAGE_RUN")?;
    s.runs.cancel(run_id, &user.user_name)?;
    Ok(Json(json!({})))
}

async fn cancel_all(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> ApiResult<Json<Value>> {
    let job = match body.get("job_id") {
        None | Some(Value::Null) => None,
        given => Some(job_id(given)?),
    };
    let all_queued = body.get("all_queued_runs").and_then(Value::as_bool).unwrap_or(false);
    match job {
        Some(job_id) => {
            permissions(&s).check(&user, &crate::routes::permissions::job(&s, job_id)?, "CAN_MANAGE_RUN")?
        }
        None if !user.admin => {
            return Err(ApiError::new(ErrorCode::PermissionDenied, "Only admins can cancel every job's runs").into());
        }
        None => {}
    }
    s.runs.cancel_all(job, all_queued, &user.user_name)?;
    Ok(Json(json!({})))
}

async fn delete(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    let run_id = run_id(body.get("run_id"))?;
    check_run(&s, &user, run_id, "CAN_MANAGE")?;
    s.runs.delete(run_id)?;
    Ok(Json(json!({})))
}

async fn repair(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    let run_id = run_id(body.get("run_id"))?;
    check_run(&s, &user, run_id, "CAN_MANAGE_RUN")?;
    let request: RepairRequest = serde_json::from_value(body)
        .map_err(|e| ApiError::invalid_parameter(format!("Malformed repair request: {e}")))?;
    let repair_id = s.runs.repair(run_id, &request)?;
    Ok(Json(json!({"repair_id": repair_id})))
}
