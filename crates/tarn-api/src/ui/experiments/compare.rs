//! Runs of one experiment compared (`/ml/experiments/{id}/compare?runs=a,b`):
//! each metric charted with one series per run, and params and latest
//! metrics side by side with the rows whose values differ marked.

use std::collections::BTreeSet;

use axum::extract::{Path, State};
use maud::{Markup, html};
use tarn_mlflow::{RunData, RunRow};
use tarn_ui::chart::{Chart, Series};
use tarn_ui::components::{badge, empty};
use tarn_ui::layout::Section;

use super::run::{CHART_POINTS, MAX_CHARTS};
use super::runs::metric_text;
use super::{readable_experiment, readable_run, run_href, run_label};
use crate::AppState;
use crate::body::QueryPairs;
use crate::error::ApiResult;
use crate::ui::{PageResult, Viewer};

/// Runs compared at once, at most (the bulk history's limit is 100).
const MAX_RUNS: usize = 20;

pub(super) async fn page(
    viewer: Viewer,
    State(s): State<AppState>,
    Path(id): Path<String>,
    q: QueryPairs,
) -> PageResult {
    let experiment = readable_experiment(&s, &viewer.user, &id)?;
    let mut ids: Vec<&str> =
        q.all("runs").flat_map(|r| r.split(',')).map(str::trim).filter(|r| !r.is_empty()).collect();
    ids.dedup();
    if ids.len() > MAX_RUNS {
        return Err(tarn_core::ApiError::invalid_parameter(format!("Compare at most {MAX_RUNS} runs at once")).into());
    }
    let mut runs = Vec::with_capacity(ids.len());
    for run in &ids {
        readable_run(&s, &viewer.user, &id, run)?;
        runs.push(s.tracking.run_with_data(run)?);
    }
    let body = html! {
        @if runs.is_empty() {
            (empty("Pick runs on the experiment's page to compare them."))
        } @else {
            (differ_style())
            table.list.compared-runs {
                thead { tr { th { "Run" } @for (r, _) in &runs { th { a href=(run_href(r.experiment_id, &r.run_uuid)) { (run_label(r)) } } } } }
                tbody { tr { td { "Status" } @for (r, _) in &runs { td { (badge(&r.status)) } } } }
            }
            h2 { "Metrics" }
            (super::charts_grid(&overlaid_charts(&s, &runs)?))
            (side_by_side("metrics", "Metric", &runs, &|d: &RunData, k: &str| {
                d.metrics.iter().find(|m| m.key == k).map(|m| metric_text(m.value, m.is_nan))
            }, &|d: &RunData| d.metrics.iter().map(|m| m.key.clone()).collect()))
            h2 { "Parameters" }
            (side_by_side("params", "Parameter", &runs, &|d: &RunData, k: &str| {
                d.params.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone())
            }, &|d: &RunData| d.params.iter().map(|(k, _)| k.clone()).collect()))
        }
    };
    let experiment_href = format!("/ml/experiments/{}", experiment.experiment_id);
    let crumbs = [("Experiments", "/ml/experiments"), (experiment.name.as_str(), experiment_href.as_str())];
    Ok(viewer.page("Compare runs", Section::Experiments, &crumbs, body))
}

fn differ_style() -> Markup {
    html! { style { "tr.differs td { background: #fff8c5; } tr.differs td:first-child { font-weight: 600; }" } }
}

/// One chart per metric key any run logged, a series per run.
fn overlaid_charts(s: &AppState, runs: &[(RunRow, RunData)]) -> ApiResult<Vec<Markup>> {
    let keys: BTreeSet<&str> = runs.iter().flat_map(|(_, d)| d.metrics.iter().map(|m| m.key.as_str())).collect();
    let ids: Vec<String> = runs.iter().map(|(r, _)| r.run_uuid.clone()).collect();
    keys.into_iter()
        .take(MAX_CHARTS)
        .map(|key| {
            let history = s.tracking.sampled_history(&ids, key, Some(CHART_POINTS), (None, None))?;
            let series = runs
                .iter()
                .map(|(r, _)| Series {
                    label: run_label(r).to_string(),
                    points: history
                        .iter()
                        .filter(|(id, m)| *id == r.run_uuid && !m.is_nan)
                        .map(|(_, m)| (m.step as f64, m.value))
                        .collect(),
                })
                .collect();
            Ok(Chart { title: key, x_label: "step", time_x: false, bars: false, series }.render())
        })
        .collect()
}

type Value<'a> = &'a dyn Fn(&RunData, &str) -> Option<String>;
type Keys<'a> = &'a dyn Fn(&RunData) -> Vec<String>;

/// Rows = keys, columns = runs; a row whose values are not all the same
/// (a missing value counts as one) is marked `differs`.
fn side_by_side(class: &str, label: &str, runs: &[(RunRow, RunData)], value: Value, keys: Keys) -> Markup {
    let all: BTreeSet<String> = runs.iter().flat_map(|(_, d)| keys(d)).collect();
    html! {
        @if all.is_empty() {
            (empty(&format!("No {}s.", label.to_lowercase())))
        } @else {
            table class={ "list side-by-side " (class) } {
                thead { tr { th { (label) } @for (r, _) in runs { th { (run_label(r)) } } } }
                tbody {
                    @for key in &all {
                        @let values: Vec<Option<String>> = runs.iter().map(|(_, d)| value(d, key)).collect();
                        @let differs = values.windows(2).any(|w| w[0] != w[1]);
                        tr data-key=(key) class=[differs.then_some("differs")] {
                            td { (key) }
                            @for v in &values { td { @if let Some(v) = v { (v) } @else { span.dim { "–" } } } }
                        }
                    }
                }
            }
        }
    }
}
