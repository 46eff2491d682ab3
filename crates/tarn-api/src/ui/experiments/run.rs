//! A run's page: its facts and tags, params, latest metrics with a chart
//! of each over steps, its artifacts, the logged models it produced and
//! the registered model versions made from it.

use axum::extract::{Path, State};
use maud::{Markup, html};
use tarn_mlflow::{ExperimentRow, MetricRow, ModelSearch, ModelVersionRow, RunData, RunRow};
use tarn_ui::chart::{Chart, Series};
use tarn_ui::components::{badge, duration, empty, facts, shorten, time};
use tarn_ui::layout::Section;

use super::runs::metric_text;
use super::{logged_models_table, readable_run, run_label, segment};
use crate::AppState;
use crate::body::QueryPairs;
use crate::error::ApiResult;
use crate::routes::permission_objects::registered_model;
use crate::routes::permissions::permissions;
use crate::ui::{PageResult, Viewer};
use tarn_store::User;

/// Points drawn per metric chart: longer histories are sampled evenly
/// (keeping the last), as `metrics/get-history-bulk-interval` does.
pub(super) const CHART_POINTS: i64 = 1000;
/// Charts drawn on one page, at most (a run may log thousands of keys).
pub(super) const MAX_CHARTS: usize = 24;
/// Tags whose values are documents for the client, not for reading.
const HIDDEN_TAGS: &[&str] = &["mlflow.log-model.history"];

pub(super) async fn page(
    viewer: Viewer,
    State(s): State<AppState>,
    Path((id, run_id)): Path<(String, String)>,
    q: QueryPairs,
) -> PageResult {
    let (experiment, run) = readable_run(&s, &viewer.user, &id, &run_id)?;
    let (_, data) = s.tracking.run_with_data(&run.run_uuid)?;
    let charts = metric_charts(&s, &run, &data)?;
    let models = s.tracking.search_logged_models(&ModelSearch {
        experiment_ids: vec![experiment.experiment_id.to_string()],
        filter: Some(format!("source_run_id = '{}'", run.run_uuid.replace('\'', ""))),
        max_results: Some(100),
        ..ModelSearch::default()
    })?;
    let model_ids: Vec<&str> = models.items.iter().map(|m| m.model_id.as_str()).collect();
    let versions = model_versions(&s, &viewer.user, &run.run_uuid, &model_ids)?;
    let artifacts = super::artifacts::browser(&s, &run, q.get("path").unwrap_or(""))?;
    let body = html! {
        (run_facts(&experiment, &run, &data))
        h2 { "Parameters" }
        (pairs_table("params", "Parameter", &data.params))
        h2 { "Metrics" }
        (metrics_table(&data.metrics))
        (super::charts_grid(&charts))
        h2 { "Artifacts" }
        (artifacts)
        h2 { "Logged models" }
        (logged_models_table(&models.items))
        h2 { "Registered model versions" }
        (versions_table(&versions))
        h2 { "Tags" }
        (pairs_table("tags", "Tag", &visible_tags(&data)))
    };
    let experiment_href = format!("/ml/experiments/{}", experiment.experiment_id);
    let crumbs = [("Experiments", "/ml/experiments"), (experiment.name.as_str(), experiment_href.as_str())];
    Ok(viewer.page(run_label(&run), Section::Experiments, &crumbs, body))
}

fn tag<'a>(data: &'a RunData, key: &str) -> Option<&'a str> {
    data.tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn visible_tags(data: &RunData) -> Vec<(String, String)> {
    data.tags.iter().filter(|(k, _)| !HIDDEN_TAGS.contains(&k.as_str())).cloned().collect()
}

fn run_facts(experiment: &ExperimentRow, run: &RunRow, data: &RunData) -> Markup {
    let source = tag(data, "mlflow.source.name").unwrap_or("");
    facts(&[
        ("Run name", html! { span.run-name { (run.name) } }),
        ("Run ID", html! { code { (run.run_uuid) } }),
        ("Experiment", html! { a href={ "/ml/experiments/" (experiment.experiment_id) } { (experiment.name) } }),
        ("Status", badge(&run.status)),
        ("User", html! { (run.user_id) }),
        ("Started", time(run.start_time)),
        (
            "Duration",
            html! { @if let Some(end) = run.end_time { (duration(end - run.start_time)) } @else { span.dim { "–" } } },
        ),
        ("Source", html! { @if source.is_empty() { span.dim { "–" } } @else { code { (source) } } }),
        ("Lifecycle", html! { (run.lifecycle_stage) }),
    ])
}

fn pairs_table(class: &str, label: &str, pairs: &[(String, String)]) -> Markup {
    let mut sorted: Vec<&(String, String)> = pairs.iter().collect();
    sorted.sort();
    html! {
        @if sorted.is_empty() {
            (empty(&format!("No {}s.", label.to_lowercase())))
        } @else {
            table class={ "list " (class) } {
                thead { tr { th { (label) } th { "Value" } } }
                tbody { @for (k, v) in sorted { tr data-key=(k) { td { (k) } td { (shorten(v, 500)) } } } }
            }
        }
    }
}

fn metrics_table(metrics: &[MetricRow]) -> Markup {
    let mut sorted: Vec<&MetricRow> = metrics.iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    html! {
        @if sorted.is_empty() {
            (empty("No metrics."))
        } @else {
            table.list.metrics {
                thead { tr { th { "Metric" } th.num { "Latest" } th.num { "Step" } th { "Logged" } } }
                tbody {
                    @for m in sorted {
                        tr data-key=(m.key) {
                            td { (m.key) }
                            td.num { (metric_text(m.value, m.is_nan)) }
                            td.num { (m.step) }
                            td { (time(m.timestamp)) }
                        }
                    }
                }
            }
        }
    }
}

/// One chart per metric key over steps, from the metric's (sampled) history.
fn metric_charts(s: &AppState, run: &RunRow, data: &RunData) -> ApiResult<Vec<Markup>> {
    let mut keys: Vec<&str> = data.metrics.iter().map(|m| m.key.as_str()).collect();
    keys.sort();
    let ids = [run.run_uuid.clone()];
    keys.into_iter()
        .take(MAX_CHARTS)
        .map(|key| {
            let history = s.tracking.sampled_history(&ids, key, Some(CHART_POINTS), (None, None))?;
            let points = history.iter().filter(|(_, m)| !m.is_nan).map(|(_, m)| (m.step as f64, m.value)).collect();
            let chart = Chart {
                title: key,
                x_label: "step",
                time_x: false,
                bars: false,
                series: vec![Series { label: key.to_string(), points }],
            };
            Ok(chart.render())
        })
        .collect()
}

/// Registered model versions made from this run: registered from its
/// artifacts (`run_id`) or, as MLflow 3 does, from a model it logged
/// (`model_id`); of the models the viewer may read, as
/// `model-versions/search` answers them.
fn model_versions(s: &AppState, user: &User, run_id: &str, model_ids: &[&str]) -> ApiResult<Vec<ModelVersionRow>> {
    let reads = |name: &str| {
        user.admin
            || s.tracking.registered_model(name).is_ok_and(|m| {
                registered_model(&m).is_ok_and(|o| permissions(s).allows(user, &o, "CAN_READ").unwrap_or(false))
            })
    };
    let quoted = |id: &str| format!("'{}'", id.replace('\'', ""));
    let mut filters = vec![format!("run_id = {}", quoted(run_id))];
    if !model_ids.is_empty() {
        let ids: Vec<String> = model_ids.iter().map(|id| quoted(id)).collect();
        filters.push(format!("model_id IN ({})", ids.join(", ")));
    }
    let mut versions = Vec::new();
    for filter in filters {
        versions.extend(s.tracking.search_model_versions(&reads, Some(&filter), Some(100), None)?.items);
    }
    versions.sort_by(|a, b| a.name.cmp(&b.name).then(b.version.cmp(&a.version)));
    versions.dedup_by(|a, b| a.name == b.name && a.version == b.version);
    Ok(versions)
}

fn versions_table(versions: &[ModelVersionRow]) -> Markup {
    html! {
        @if versions.is_empty() {
            (empty("No registered model versions come from this run."))
        } @else {
            table.list.versions {
                thead { tr { th { "Model" } th { "Version" } th { "Stage" } th { "Status" } th { "Created" } } }
                tbody {
                    @for v in versions {
                        tr {
                            td { a href={ "/ml/models/" (segment(&v.name)) } { (v.name) } }
                            td { a href={ "/ml/models/" (segment(&v.name)) "/versions/" (v.version) } { "Version " (v.version) } }
                            td { (v.current_stage) }
                            td { (badge(&v.status)) }
                            td { (time(v.creation_time)) }
                        }
                    }
                }
            }
        }
    }
}
