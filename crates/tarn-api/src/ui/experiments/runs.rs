//! An experiment's page: its runs, searched on the server with MLflow's
//! grammar (`?filter=`, `?order_by=`), with chosen param and metric columns
//! (`?columns=`), runs picked for comparing, and its logged models.

use axum::extract::{Path, State};
use maud::{Markup, html};
use tarn_mlflow::{ExperimentRow, ModelSearch, RunData, RunRow, RunSearch};
use tarn_ui::components::{Pager, badge, duration, empty, error, facts, time};
use tarn_ui::layout::Section;

use super::{api_message, enc, logged_models_table, readable_experiment, run_href, run_label, token};
use crate::AppState;
use crate::body::QueryPairs;
use crate::ui::{PageResult, Viewer};

/// Param and metric columns shown when the viewer chose none, of each kind.
const DEFAULT_COLUMNS: usize = 3;
/// Logged models listed on the page, newest first.
const MODELS_SHOWN: i64 = 25;

/// What the runs table shows: the search and the chosen columns.
struct View {
    experiment_id: i64,
    filter: String,
    order_by: String,
    columns: Vec<String>,
    limit: u64,
}

impl View {
    /// The page's URL with `order_by` replaced (and paging reset).
    fn href(&self, order_by: &str) -> String {
        let mut url = format!("/ml/experiments/{}?limit={}", self.experiment_id, self.limit);
        for (key, value) in [("filter", self.filter.as_str()), ("order_by", order_by)] {
            if !value.is_empty() {
                url.push_str(&format!("&{key}={}", enc(value)));
            }
        }
        if !self.columns.is_empty() {
            url.push_str(&format!("&columns={}", enc(&self.columns.join(","))));
        }
        url
    }
}

pub(super) async fn page(
    viewer: Viewer,
    State(s): State<AppState>,
    Path(id): Path<String>,
    q: QueryPairs,
) -> PageResult {
    let experiment = readable_experiment(&s, &viewer.user, &id)?;
    let offset = q.int("offset")?.unwrap_or(0).max(0) as u64;
    let limit = q.int("limit")?.unwrap_or(50).clamp(1, 200) as u64;
    let mut view = View {
        experiment_id: experiment.experiment_id,
        filter: q.get("filter").unwrap_or("").trim().to_string(),
        order_by: q.get("order_by").unwrap_or("").trim().to_string(),
        columns: q
            .all("columns")
            .flat_map(|c| c.split(','))
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect(),
        limit,
    };
    let search = RunSearch {
        experiment_ids: vec![experiment.experiment_id.to_string()],
        filter: Some(view.filter.clone()).filter(|f| !f.is_empty()),
        max_results: Some(limit as i64),
        order_by: if view.order_by.is_empty() { Vec::new() } else { vec![view.order_by.clone()] },
        page_token: token(offset),
        ..RunSearch::default()
    };
    let (runs, has_more, problem) = match s.tracking.search_runs(&search) {
        Ok(page) => (page.items, page.next_page_token.is_some(), None),
        Err(e) => (Vec::new(), false, Some(api_message(e))),
    };
    let seen = keys_seen(&runs);
    let chosen = view.columns.clone();
    if chosen.is_empty() {
        view.columns = default_columns(&seen);
    }
    let models = s.tracking.search_logged_models(&ModelSearch {
        experiment_ids: vec![experiment.experiment_id.to_string()],
        max_results: Some(MODELS_SHOWN),
        ..ModelSearch::default()
    })?;
    let base = view.href(&view.order_by);
    let pager = Pager { base: &base, offset, limit, shown: runs.len() as u64, has_more, total: None };
    let body = html! {
        (summary(&experiment))
        (search_form(&view))
        @if let Some(message) = &problem { (error(message)) }
        (columns_chooser(&view, &seen))
        form #compare method="get" action={ "/ml/experiments/" (experiment.experiment_id) "/compare" } {
            button.primary type="submit" { "Compare" }
        }
        @if runs.is_empty() && problem.is_none() { (empty("No runs match.")) } @else { (runs_table(&view, &runs)) }
        (pager.render())
        h2 { "Logged models" }
        (logged_models_table(&models.items))
    };
    let crumbs = [("Experiments", "/ml/experiments")];
    Ok(viewer.page(&experiment.name, Section::Experiments, &crumbs, body))
}

fn summary(e: &ExperimentRow) -> Markup {
    facts(&[
        ("Experiment ID", html! { (e.experiment_id) }),
        ("Artifact location", html! { code { (e.artifact_location) } }),
        ("Created", time(e.creation_time)),
        ("Last updated", time(e.last_update_time)),
    ])
}

fn search_form(view: &View) -> Markup {
    html! {
        form.toolbar.search method="get" action={ "/ml/experiments/" (view.experiment_id) } {
            input type="search" name="filter" value=(view.filter) size="60"
                placeholder="metrics.rmse < 1 and params.alpha = '0.5'";
            input type="hidden" name="order_by" value=(view.order_by);
            input type="hidden" name="columns" value=(view.columns.join(","));
            button type="submit" { "Search" }
        }
    }
}

/// The param and metric keys the page's runs logged, sorted, params first.
fn keys_seen(runs: &[(RunRow, RunData)]) -> Vec<String> {
    let mut params: Vec<String> =
        runs.iter().flat_map(|(_, d)| d.params.iter().map(|(k, _)| format!("params.{k}"))).collect();
    let mut metrics: Vec<String> =
        runs.iter().flat_map(|(_, d)| d.metrics.iter().map(|m| format!("metrics.{}", m.key))).collect();
    params.sort();
    params.dedup();
    metrics.sort();
    metrics.dedup();
    params.into_iter().chain(metrics).collect()
}

fn default_columns(seen: &[String]) -> Vec<String> {
    let of =
        |prefix: &str| seen.iter().filter(|k| k.starts_with(prefix)).take(DEFAULT_COLUMNS).cloned().collect::<Vec<_>>();
    of("metrics.").into_iter().chain(of("params.")).collect()
}

fn columns_chooser(view: &View, seen: &[String]) -> Markup {
    let mut all: Vec<&String> = seen.iter().chain(view.columns.iter()).collect();
    all.sort();
    all.dedup();
    html! {
        details.columns {
            summary { "Columns" }
            form.columns method="get" action={ "/ml/experiments/" (view.experiment_id) } {
                input type="hidden" name="filter" value=(view.filter);
                input type="hidden" name="order_by" value=(view.order_by);
                @for key in all {
                    label {
                        input type="checkbox" name="columns" value=(key) checked[view.columns.contains(key)];
                        " " (key)
                    }
                    " "
                }
                button type="submit" { "Show" }
            }
        }
    }
}

/// A search identifier for `column` (`metrics.rmse`), quoted where the key
/// is not a plain word.
fn identifier(column: &str) -> String {
    match column.split_once('.') {
        Some((kind, key)) if !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
            format!("{kind}.`{}`", key.replace('`', ""))
        }
        _ => column.to_string(),
    }
}

/// A column header that sorts by `key`, descending first, then flipping.
fn sort_header(view: &View, label: &str, key: &str) -> Markup {
    let asc = format!("{key} ASC");
    let desc = format!("{key} DESC");
    let current = view.order_by.as_str();
    let (next, arrow) = match current {
        c if c.eq_ignore_ascii_case(&desc) => (asc.as_str(), " ↓"),
        c if c.eq_ignore_ascii_case(&asc) || c.eq_ignore_ascii_case(key) => (desc.as_str(), " ↑"),
        _ => (desc.as_str(), ""),
    };
    html! { th data-column=(key) { a.sort href=(view.href(next)) { (label) (arrow) } } }
}

fn cell(data: &RunData, column: &str) -> Markup {
    let value = match column.split_once('.') {
        Some(("metrics", key)) => data.metrics.iter().find(|m| m.key == key).map(|m| metric_text(m.value, m.is_nan)),
        Some(("params", key)) => data.params.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()),
        Some(("tags", key)) => data.tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()),
        _ => None,
    };
    html! { td.num data-column=(column) { (value.unwrap_or_default()) } }
}

/// A metric value as MLflow shows it (NaN stored as 0 with its flag).
pub(super) fn metric_text(value: f64, is_nan: bool) -> String {
    if is_nan { "NaN".to_string() } else { value.to_string() }
}

fn runs_table(view: &View, runs: &[(RunRow, RunData)]) -> Markup {
    html! {
        table.list.runs {
            thead {
                tr {
                    th { span.dim { "Pick" } }
                    (sort_header(view, "Run", "attributes.run_name"))
                    (sort_header(view, "Status", "attributes.status"))
                    (sort_header(view, "Created", "attributes.start_time"))
                    th { "Duration" }
                    (sort_header(view, "User", "attributes.user_id"))
                    @for column in &view.columns { (sort_header(view, column, &identifier(column))) }
                }
            }
            tbody {
                @for (r, d) in runs {
                    tr data-run=(r.run_uuid) {
                        td { input type="checkbox" name="runs" value=(r.run_uuid) form="compare"; }
                        td.name { a href=(run_href(r.experiment_id, &r.run_uuid)) { (run_label(r)) } }
                        td { (badge(&r.status)) }
                        td { (time(r.start_time)) }
                        td { @if let Some(end) = r.end_time { (duration(end - r.start_time)) } }
                        td { (r.user_id) }
                        @for column in &view.columns { (cell(d, column)) }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_sort_by_quoted_identifiers_and_flip() {
        assert_eq!(identifier("metrics.rmse"), "metrics.rmse");
        assert_eq!(identifier("params.learning rate"), "params.`learning rate`");
        let view = View {
            experiment_id: 7,
            filter: "metrics.rmse < 1".into(),
            order_by: "metrics.rmse DESC".into(),
            columns: vec!["metrics.rmse".into()],
            limit: 50,
        };
        let html = sort_header(&view, "rmse", "metrics.rmse").into_string();
        assert!(html.contains("order_by=metrics.rmse+ASC"), "{html}");
        assert!(html.contains("filter=metrics.rmse+%3C+1") && html.contains("columns=metrics.rmse"), "{html}");
        let other = sort_header(&view, "alpha", "params.alpha").into_string();
        assert!(other.contains("order_by=params.alpha+DESC"), "{other}");
    }

    #[test]
    fn default_columns_take_the_first_metrics_and_params() {
        let seen: Vec<String> =
            ["params.a", "params.b", "params.c", "params.d", "metrics.x"].iter().map(|s| s.to_string()).collect();
        assert_eq!(default_columns(&seen), vec!["metrics.x", "params.a", "params.b", "params.c"]);
    }
}
