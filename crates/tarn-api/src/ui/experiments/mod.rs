//! The MLflow experiment pages at Databricks' paths: the experiments list
//! (`/ml/experiments`), an experiment's runs searched with MLflow's grammar
//! (`/ml/experiments/{id}`), a run with its metrics, charts and artifacts
//! (`/ml/experiments/{id}/runs/{run}`) and runs compared side by side
//! (`/ml/experiments/{id}/compare`). A viewer sees an experiment, and its
//! runs, where the MLflow API would let them read it (`CAN_READ`).

mod artifacts;
mod compare;
mod run;
mod runs;

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use maud::{Markup, html};
use serde::Deserialize;
use tarn_mlflow::{ExperimentRow, LoggedModelRow, RunRow};
use tarn_store::User;
use tarn_ui::components::{Pager, badge, empty, time};
use tarn_ui::layout::Section;

use super::encode as enc;
use super::segment;
use super::{PageResult, Paging, Viewer};
use crate::AppState;
use crate::error::{ApiFailure, ApiResult};
use crate::routes::permission_objects::experiment as experiment_object;
use crate::routes::permissions::permissions;

/// Runs counted per experiment in the list, at most: a larger one shows "1000+".
const RUN_COUNT_CAP: u64 = 1000;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/ml/experiments", get(list))
        .route("/ml/experiments/{id}", get(runs::page))
        .route("/ml/experiments/{id}/compare", get(compare::page))
        .route("/ml/experiments/{id}/runs/{run}", get(run::page))
        .route("/ml/experiments/{id}/runs/{run}/artifact", get(artifacts::download))
}

/// Experiment `id`, if `user` may read it (as `experiments/get` checks).
fn readable_experiment(s: &AppState, user: &User, id: &str) -> ApiResult<ExperimentRow> {
    let experiment = s.tracking.experiment(id)?;
    if !user.admin {
        permissions(s).check(user, &experiment_object(&experiment)?, "CAN_READ")?;
    }
    Ok(experiment)
}

/// Run `run` of experiment `id`, if `user` may read the experiment.
fn readable_run(s: &AppState, user: &User, id: &str, run: &str) -> ApiResult<(ExperimentRow, RunRow)> {
    let experiment = readable_experiment(s, user, id)?;
    let row = s.tracking.run(run)?;
    if row.experiment_id != experiment.experiment_id {
        return Err(tarn_core::ApiError::not_found(format!("Run '{run}' is not in experiment {id}")).into());
    }
    Ok((experiment, row))
}

/// Whether `user` may read experiment `e` (for the list; an error reading
/// permissions hides it, as the API's search does).
fn reads(s: &AppState, user: &User, e: &ExperimentRow) -> bool {
    user.admin || experiment_object(e).is_ok_and(|o| permissions(s).allows(user, &o, "CAN_READ").unwrap_or(false))
}

/// The message the API would answer for `e`.
fn api_message(e: impl Into<ApiFailure>) -> String {
    e.into().for_client().2
}

fn run_href(experiment_id: i64, run: &str) -> String {
    format!("/ml/experiments/{experiment_id}/runs/{run}")
}

/// A run's name, or its id where it has none.
fn run_label(r: &RunRow) -> &str {
    if r.name.is_empty() { &r.run_uuid } else { &r.name }
}

/// A page token of the tracking search for `offset`.
fn token(offset: u64) -> Option<String> {
    (offset > 0).then(|| tarn_core::page::encode(usize::try_from(offset).unwrap_or(usize::MAX)))
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    #[serde(default)]
    name: String,
    #[serde(flatten)]
    paging: Paging,
}

async fn list(viewer: Viewer, State(s): State<AppState>, Query(q): Query<ListQuery>) -> PageResult {
    let needle = q.name.trim().to_lowercase();
    let limit = q.paging.limit();
    let page = s.tracking.search_experiments(
        &|e| (needle.is_empty() || e.name.to_lowercase().contains(&needle)) && reads(&s, &viewer.user, e),
        None,
        None,
        &["last_update_time DESC".to_string()],
        Some(i64::try_from(limit).unwrap_or(200)),
        token(q.paging.offset).as_deref(),
    )?;
    let counts = page
        .items
        .iter()
        .map(|e| s.tracking.count_active_runs(e.experiment_id, RUN_COUNT_CAP + 1))
        .collect::<Result<Vec<_>, _>>()?;
    let base = if needle.is_empty() {
        "/ml/experiments".to_string()
    } else {
        format!("/ml/experiments?name={}", enc(&q.name))
    };
    let pager = Pager {
        base: &base,
        offset: q.paging.offset,
        limit,
        shown: page.items.len() as u64,
        has_more: page.next_page_token.is_some(),
        total: None,
    };
    let body = html! {
        form.toolbar method="get" action="/ml/experiments" {
            input type="search" name="name" value=(q.name) placeholder="Filter by name";
            button type="submit" { "Filter" }
        }
        @if page.items.is_empty() {
            (empty("No experiments."))
        } @else {
            table.list.experiments {
                thead { tr { th { "Name" } th { "ID" } th.num { "Runs" } th { "Last updated" } th { "Created" } } }
                tbody {
                    @for (e, count) in page.items.iter().zip(counts) {
                        tr data-experiment=(e.experiment_id) {
                            td { a href={ "/ml/experiments/" (e.experiment_id) } { (e.name) } }
                            td.dim { (e.experiment_id) }
                            td.num.runs { @if count > RUN_COUNT_CAP { (RUN_COUNT_CAP) "+" } @else { (count) } }
                            td { (time(e.last_update_time)) }
                            td { (time(e.creation_time)) }
                        }
                    }
                }
            }
        }
        (pager.render())
    };
    Ok(viewer.page("Experiments", Section::Experiments, &[], body))
}

/// Logged models (MLflow 3) as a table linking their source runs.
fn logged_models_table(models: &[LoggedModelRow]) -> Markup {
    html! {
        @if models.is_empty() {
            (empty("No logged models."))
        } @else {
            table.list.logged-models {
                thead { tr { th { "Name" } th { "Model ID" } th { "Status" } th { "Source run" } th { "Created" } } }
                tbody {
                    @for m in models {
                        tr data-model=(m.model_id) {
                            td { (m.name) }
                            td.dim { (m.model_id) }
                            td { (badge(m.status.trim_start_matches("LOGGED_MODEL_"))) }
                            td {
                                @if let Some(run) = &m.source_run_id {
                                    a href=(run_href(m.experiment_id, run)) { (tarn_ui::components::shorten(run, 12)) }
                                }
                            }
                            td { (time(m.creation_time)) }
                        }
                    }
                }
            }
        }
    }
}

/// Charts two or three to a row, each as wide as its cell.
fn charts_grid(charts: &[Markup]) -> Markup {
    html! {
        @if !charts.is_empty() {
            div.metric-charts style="display: grid; grid-template-columns: repeat(auto-fill, minmax(480px, 1fr)); gap: 0 16px;" {
                @for c in charts { div { (c) } }
            }
        }
    }
}
