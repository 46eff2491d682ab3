//! The Workflows pages: the jobs list (`/jobs`), a job with its grid of
//! recent runs by task (`/jobs/{id}`), and a run with its live task graph,
//! timeline and task outputs (`/jobs/{id}/runs/{run}`, or
//! `/jobs/runs/{run}` for a one-time run of no job: the `run_page_url` the
//! Jobs API answers). Who may see or act is checked as the Jobs API checks
//! it: CAN_VIEW to look, CAN_MANAGE_RUN to run, cancel or repair.

mod job;
mod list;
mod run;
mod task;

use axum::Router;
use axum::routing::{get, post};
use maud::{Markup, html};
use serde_json::Value;
use tarn_core::{ApiError, ErrorCode};
use tarn_jobs::runs::RunState;
use tarn_store::{JobRunRow, User};
use tarn_ui::components::state_class;

use crate::AppState;
use crate::error::ApiFailure;
use crate::routes::permissions::{job, permissions};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/jobs", get(list::page))
        .route("/jobs/{id}", get(job::page))
        .route("/jobs/{id}/run-now", post(job::run_now))
        .route("/jobs/{id}/runs/{run}", get(run::page))
        .route("/jobs/{id}/runs/{run}/dag", get(run::fragment))
        .route("/jobs/{id}/runs/{run}/cancel", post(run::cancel))
        .route("/jobs/{id}/runs/{run}/repair", post(run::repair))
        .route("/jobs/runs/{run}", get(run::page))
        .route("/jobs/runs/{run}/dag", get(run::fragment))
        .route("/jobs/runs/{run}/cancel", post(run::cancel))
        .route("/jobs/runs/{run}/repair", post(run::repair))
}

/// Refuses unless `user` holds `needed` on job `job_id`.
fn check_job(s: &AppState, user: &User, job_id: i64, needed: &str) -> Result<(), ApiFailure> {
    Ok(permissions(s).check(user, &job(s, job_id)?, needed)?)
}

/// Whether `user` may see job `job_id`, as `jobs/list` filters.
fn can_view(s: &AppState, user: &User, job_id: i64) -> Result<bool, ApiFailure> {
    let Ok(object) = job(s, job_id) else { return Ok(user.admin) };
    Ok(permissions(s).allows(user, &object, "CAN_VIEW")?)
}

/// Whether `user` may run job `job_id` (shows the buttons; the actions
/// check again).
fn can_run(s: &AppState, user: &User, job_id: Option<i64>) -> bool {
    match job_id.and_then(|id| job(s, id).ok()) {
        Some(object) => permissions(s).allows(user, &object, "CAN_MANAGE_RUN").unwrap_or(false),
        None => false,
    }
}

/// The rule of the Jobs API's run calls: `needed` on the run's job; a run
/// of no job (or of a job since deleted) is its creator's and admins'.
fn check_run(s: &AppState, user: &User, run: &JobRunRow, needed: &str) -> Result<(), ApiFailure> {
    if let Some(object) = run.job_id.and_then(|id| job(s, id).ok()) {
        return Ok(permissions(s).check(user, &object, needed)?);
    }
    if user.admin || run.creator_user_name == user.user_name {
        return Ok(());
    }
    let message = format!("{} cannot see run {}", user.user_name, run.run_id);
    Err(ApiError::new(ErrorCode::PermissionDenied, message).into())
}

/// The page of a run: of its job, or of no job.
fn run_path(job_id: Option<i64>, run_id: i64) -> String {
    match job_id {
        Some(job_id) => format!("/jobs/{job_id}/runs/{run_id}"),
        None => format!("/jobs/runs/{run_id}"),
    }
}

/// A run's or task run's state word: its result once it has one, else its
/// life cycle (BLOCKED, PENDING, RUNNING...).
fn state_word(row: &JobRunRow) -> &'static str {
    RunState::of(row).name()
}

/// One small square per run, coloured by its state, linking to its page.
fn square(href: &str, state: &str, title: &str) -> Markup {
    html! {
        a class={ "sq " (state_class(state)) } href=(href) title=(title) data-state=(state) {}
    }
}

/// A job's schedule or trigger in words, paused or not; `None` when it
/// runs only when asked.
fn schedule(settings: &Value) -> Option<Markup> {
    let text = |v: &Value, p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
    let paused = |v: &Value| text(v, "/pause_status").as_deref() == Some("PAUSED");
    let (what, paused) = if let Some(cron) = settings.get("schedule") {
        let expression = text(cron, "/quartz_cron_expression").unwrap_or_default();
        let zone = text(cron, "/timezone_id").unwrap_or_else(|| "UTC".into());
        (html! { "Cron " code { (expression) } " (" (zone) ")" }, paused(cron))
    } else if let Some(trigger) = settings.get("trigger") {
        let what = if let Some(url) = text(trigger, "/file_arrival/url") {
            html! { "File arrival at " code { (url) } }
        } else if let Some(every) = trigger.pointer("/periodic/interval") {
            let unit = text(trigger, "/periodic/unit").unwrap_or_default().to_lowercase();
            html! { "Every " (every) " " (unit) }
        } else if trigger.get("table_update").is_some() {
            html! { "Table update" }
        } else {
            html! { "Trigger" }
        };
        (what, paused(trigger))
    } else if let Some(continuous) = settings.get("continuous") {
        (html! { "Continuous" }, paused(continuous))
    } else {
        return None;
    };
    Some(html! {
        span.schedule data-paused=(paused) {
            (what) @if paused { " " span.badge.muted { "Paused" } }
        }
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn schedules_and_triggers_read_in_words() {
        let text = |settings: Value| schedule(&settings).map(Markup::into_string);
        let cron = text(json!({"schedule": {"quartz_cron_expression": "0 0 5 * * ?", "timezone_id": "Europe/Oslo",
                                            "pause_status": "PAUSED"}}))
        .unwrap();
        assert!(cron.contains("<code>0 0 5 * * ?</code> (Europe/Oslo)") && cron.contains("Paused"), "{cron}");
        let arrival = text(json!({"trigger": {"file_arrival": {"url": "/Volumes/a/b/c/"}}})).unwrap();
        assert!(arrival.contains("File arrival at") && !arrival.contains("Paused"), "{arrival}");
        let every = text(json!({"trigger": {"periodic": {"interval": 2, "unit": "HOURS"}}})).unwrap();
        assert!(every.contains("Every 2 hours"), "{every}");
        assert_eq!(text(json!({"name": "manual"})), None);
        assert_eq!(
            (run_path(Some(3), 9), run_path(None, 9)),
            ("/jobs/3/runs/9".to_string(), "/jobs/runs/9".to_string())
        );
    }
}
