//! Jobs API, served under both `/api/2.1/jobs` and `/api/2.2/jobs`: job
//! definitions (create, get, list, reset, update, delete) here, runs in
//! `runs`, the run view in `view`. Bodies are read into `tarn_jobs`'
//! typed requests (`JobSettings`, `JobUpdate`) before the domain call.

mod runs;
pub(crate) mod view;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tarn_core::ApiError;
use tarn_jobs::{JobRow, JobSettings, JobUpdate};
use tarn_store::User;

use crate::body::{JsonBody, QueryPairs};
use crate::error::{ApiFailure, ApiResult};
use crate::paging::{Page, PageRule, Paged};
use crate::routes::permissions::{check_run_as, job, permissions};
use crate::{AppState, Caller};

pub fn router() -> Router<AppState> {
    let mut router = Router::new();
    for version in ["2.1", "2.2"] {
        let at = |op: &str| format!("/api/{version}/jobs/{op}");
        router = router
            .route(&at("create"), post(create))
            .route(&at("get"), get(get_job))
            .route(&at("list"), get(list))
            .route(&at("reset"), post(reset))
            .route(&at("update"), post(update))
            .route(&at("delete"), post(delete));
        router = runs::routes(router, version);
    }
    router
}

/// An id field (`job_id`, `run_id`) sent as a number or a numeric string.
pub(super) fn id_field(value: Option<&Value>, name: &str) -> Result<i64, ApiFailure> {
    let id = match value {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    id.ok_or_else(|| ApiError::invalid_parameter(format!("Missing or malformed required field: {name}")).into())
}

pub(super) fn job_id(value: Option<&Value>) -> Result<i64, ApiFailure> {
    id_field(value, "job_id")
}

/// A job as `jobs/get` answers it; `full` keeps the tasks and clusters that
/// `jobs/list` leaves out unless `expand_tasks`.
fn job_json(job: &JobRow, full: bool) -> Value {
    let mut settings = job.settings.clone();
    if !full && let Some(map) = settings.as_object_mut() {
        for field in ["tasks", "job_clusters", "environments", "parameters"] {
            map.remove(field);
        }
    }
    json!({
        "job_id": job.job_id,
        "creator_user_name": job.creator_user_name,
        "run_as_user_name": run_as_name(&job.settings).unwrap_or(&job.run_as_user_name),
        "settings": settings,
        "created_time": job.created_time,
    })
}

/// A `git_source` that clones a path on the server needs an admin, as a
/// repo does.
pub(super) fn check_git_source(user: &User, settings: &Value) -> Result<(), ApiFailure> {
    match settings.pointer("/git_source/git_url").and_then(Value::as_str) {
        Some(url) => super::repos::check_git_url(user, url),
        None => Ok(()),
    }
}

/// The principal a job's settings name in `run_as` (one naming none or
/// both is refused with the settings).
fn run_as_name(settings: &Value) -> Option<&str> {
    tarn_core::run_as::named(settings).ok().flatten()
}

async fn create(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> ApiResult<Json<Value>> {
    let settings = JobSettings::from_value(Value::Object(body))?;
    check_run_as(&s, &user, settings.run_as_name())?;
    check_git_source(&user, &settings.raw)?;
    let job_id = s.jobs.create(&user.user_name, settings)?;
    Ok(Json(json!({"job_id": job_id})))
}

async fn get_job(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    let id = job_id(q.get("job_id").map(|v| Value::String(v.into())).as_ref())?;
    permissions(&s).check(&user, &job(&s, id)?, "CAN_VIEW")?;
    Ok(Json(job_json(&s.jobs.get(id)?, true)))
}

/// Whether `user` may see job `job_id` (a job gone since counts as not).
pub(super) fn can_view(s: &AppState, user: &User, job_id: i64) -> Result<bool, ApiFailure> {
    let Ok(object) = job(s, job_id) else { return Ok(user.admin) };
    Ok(permissions(s).allows(user, &object, "CAN_VIEW")?)
}

/// Jobs and job runs: `page_token` or `offset`, and a `limit` the domain
/// bounds; the answer always says `has_more`.
pub(super) struct ListPage;

impl PageRule for ListPage {
    const SIZE: &'static str = "limit";
    const MAX: usize = usize::MAX;
    const OFFSET: bool = true;
    fn refusal(raw: &str, parsed: Option<i64>) -> Option<String> {
        parsed.is_none().then(|| format!("limit must be an integer, got {raw}"))
    }
}

/// Only the jobs the caller may view (filtered within the page).
async fn list(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    q: QueryPairs,
    page: Page<ListPage>,
) -> ApiResult<Paged<Value>> {
    let expand = q.flag_or("expand_tasks", false);
    let listed = s.jobs.list(q.get("name"), page.offset, page.requested)?;
    let mut jobs = Vec::new();
    for j in &listed.jobs {
        if can_view(&s, &user, j.job_id)? {
            jobs.push(job_json(j, expand));
        }
    }
    Ok(page.answer("jobs", jobs, listed.has_more).omit_empty())
}

#[derive(Debug, Deserialize)]
struct Change {
    job_id: Option<Value>,
    new_settings: Option<Value>,
    #[serde(default)]
    fields_to_remove: Vec<String>,
}

async fn reset(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(b): JsonBody<Change>,
) -> ApiResult<Json<Value>> {
    let settings = b.new_settings.ok_or_else(|| ApiError::invalid_parameter("Missing required field: new_settings"))?;
    let id = job_id(b.job_id.as_ref())?;
    let settings = JobSettings::from_value(settings)?;
    check_run_as(&s, &user, settings.run_as_name())?;
    check_git_source(&user, &settings.raw)?;
    permissions(&s).check(&user, &job(&s, id)?, "CAN_MANAGE")?;
    s.jobs.reset(id, settings)?;
    Ok(Json(json!({})))
}

async fn update(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(b): JsonBody<Change>,
) -> ApiResult<Json<Value>> {
    let id = job_id(b.job_id.as_ref())?;
    if let Some(settings) = &b.new_settings {
        check_run_as(&s, &user, run_as_name(settings))?;
        check_git_source(&user, settings)?;
    }
    let change = JobUpdate::new(b.new_settings, &b.fields_to_remove)?;
    permissions(&s).check(&user, &job(&s, id)?, "CAN_MANAGE")?;
    s.jobs.update(id, change)?;
    Ok(Json(json!({})))
}

async fn delete(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(b): JsonBody<Change>,
) -> ApiResult<Json<Value>> {
    let id = job_id(b.job_id.as_ref())?;
    permissions(&s).check(&user, &job(&s, id)?, "CAN_MANAGE")?;
    s.jobs.delete(id)?;
    s.store.set_object_acls("jobs", &id.to_string(), &[])?;
    Ok(Json(json!({})))
}
