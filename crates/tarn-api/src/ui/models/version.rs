//! A model version: its facts, the run it came from (with the run's
//! latest metrics and params where the viewer may read its experiment),
//! the logged model it was registered from, and the endpoints serving it.

use axum::extract::{Path, State};
use maud::{Markup, html};
use tarn_mlflow::{LoggedModelRow, ModelVersionRow, RunData, RunRow};
use tarn_serving::EndpointConfig;
use tarn_store::User;
use tarn_ui::components::{badge, empty, facts, time};
use tarn_ui::layout::Section;

use super::model::tags;
use super::{logged_model_id, model_url, readable, reads_experiment, segment, source_run_id};
use crate::AppState;
use crate::error::ApiFailure;
use crate::routes::permissions::visible;
use crate::ui::{PageResult, Viewer};

pub(super) async fn page(
    viewer: Viewer,
    State(s): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> PageResult {
    let model = readable(&s, &viewer.user, &name)?;
    let v = s.tracking.model_version(&model.name, &version)?;
    let run_id = source_run_id(&s, &v);
    let run = run_id.as_deref().and_then(|id| s.tracking.run_with_data(id).ok());
    let logged = logged_model_id(&v).and_then(|id| s.tracking.logged_model(id, true).ok());
    let endpoints = serving(&s, &viewer.user, &v)?;
    let body = html! {
        (summary(&v))
        @if !v.tags.is_empty() { h2 { "Tags" } (tags(&v.tags)) }
        h2 { "Lineage" }
        (lineage(&s, &viewer.user, run_id.as_deref(), run.as_ref(), logged.as_ref()))
        h2 { "Serving endpoints" }
        @if endpoints.is_empty() { (empty("No endpoint serves this version.")) } @else {
            table.list.endpoints {
                thead { tr { th { "Endpoint" } th { "State" } th { "Served entity" } } }
                tbody {
                    @for (endpoint, ready, entity) in &endpoints {
                        tr {
                            td { a href={ "/ml/endpoints/" (segment(endpoint)) } { (endpoint) } }
                            td { (badge(if *ready { "READY" } else { "NOT_READY" })) }
                            td { (entity) }
                        }
                    }
                }
            }
        }
    };
    let title = format!("{} version {}", model.name, v.version);
    let crumbs = [("Models", "/ml/models"), (model.name.as_str(), &*model_url(&model.name))];
    Ok(viewer.page(&title, Section::Models, &crumbs, body))
}

fn summary(v: &ModelVersionRow) -> Markup {
    let text = |t: &str| html! { @if t.is_empty() { span.dim { "–" } } @else { (t) } };
    facts(&[
        ("Version", html! { (v.version) }),
        ("Stage", badge(&v.current_stage)),
        ("Status", badge(&v.status)),
        ("Aliases", html! { @for a in &v.aliases { span.alias { "@" (a) } " " } }),
        ("Created", time(v.creation_time)),
        ("Last modified", time(v.last_updated_time)),
        ("Created by", text(&v.user_id)),
        ("Source", html! { code { (v.source) } }),
        ("Storage location", html! { code { (v.storage_location) } }),
        ("Description", text(&v.description)),
    ])
}

fn lineage(
    s: &AppState,
    user: &User,
    run_id: Option<&str>,
    run: Option<&(RunRow, RunData)>,
    logged: Option<&LoggedModelRow>,
) -> Markup {
    html! {
        @match (run_id, run) {
            (None, _) => (empty("This version names no run.")),
            (Some(id), None) => p.dim { "Run " code { (id) } " no longer exists." },
            (Some(_), Some((run, data))) => (run_section(s, user, run, data)),
        }
        @if let Some(m) = logged.filter(|m| reads_experiment(s, user, m.experiment_id)) {
            h2 { "Logged model" }
            (facts(&[
                ("Name", html! { (m.name) }),
                ("Model id", html! { code { (m.model_id) } }),
                ("Status", badge(&m.status)),
                ("Created", time(m.creation_time)),
                ("Artifacts", html! { code { (m.artifact_location) } }),
            ]))
        }
    }
}

fn run_section(s: &AppState, user: &User, run: &RunRow, data: &RunData) -> Markup {
    let href = format!("/ml/experiments/{}/runs/{}", run.experiment_id, run.run_uuid);
    let readable = reads_experiment(s, user, run.experiment_id);
    html! {
        @if !readable {
            (facts(&[("Run", html! { a.run href=(href) { (run.run_uuid) } })]))
            p.dim { "You may not read this run's experiment, so the run's details are not shown." }
        } @else {
            (facts(&[
                ("Run", html! { a.run href=(href) { @if run.name.is_empty() { (run.run_uuid) } @else { (run.name) } } }),
                ("Experiment", html! { a href={ "/ml/experiments/" (run.experiment_id) } { (run.experiment_id) } }),
                ("Status", badge(&run.status)),
                ("Started", time(run.start_time)),
            ]))
            h2 { "Run metrics" }
            @if data.metrics.is_empty() { (empty("No metrics.")) } @else {
                table.list.metrics {
                    thead { tr { th { "Metric" } th.num { "Latest value" } th.num { "Step" } th { "Logged" } } }
                    tbody {
                        @for m in &data.metrics {
                            tr data-metric=(m.key) {
                                td { (m.key) }
                                td.num { @if m.is_nan { "NaN" } @else { (m.value) } }
                                td.num { (m.step) }
                                td { (time(m.timestamp)) }
                            }
                        }
                    }
                }
            }
            h2 { "Run params" }
            @if data.params.is_empty() { (empty("No params.")) } @else { (tags(&data.params)) }
        }
    }
}

/// The endpoints the viewer may see that serve this version: (endpoint,
/// ready, served entity name).
fn serving(s: &AppState, user: &User, v: &ModelVersionRow) -> Result<Vec<(String, bool, String)>, ApiFailure> {
    let version = v.version.to_string();
    let mut out = Vec::new();
    for view in s.serving.list()? {
        let Some(config) = view.row.config.as_ref().and_then(|c| EndpointConfig::parse(c).ok()) else { continue };
        let serving = config.served_entities.iter().filter(|e| e.entity_name == v.name && e.entity_version == version);
        let names: Vec<String> = serving.map(|e| e.name.clone()).collect();
        if !names.is_empty() && visible(s, user, "serving-endpoints", &view.row.name)? {
            out.extend(names.into_iter().map(|n| (view.row.name.clone(), view.ready, n)));
        }
    }
    Ok(out)
}
