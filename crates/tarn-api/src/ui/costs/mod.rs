//! The costs page (`/costs`): the last 30 days of usage records per day,
//! per job and per cluster, and a right-sizing table from measured uptime
//! against task time. Every figure is a sum of records; the cost is the
//! estimate each task attempt was recorded with (`TARN_COST_PER_CORE_HOUR`).

pub(super) mod rightsize;
pub(super) mod usage;

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use maud::{Markup, html};
use tarn_core::time::now_ms;
use tarn_ui::chart::{Chart, Series};
use tarn_ui::components::{duration, empty};
use tarn_ui::layout::Section;

use self::rightsize::{SHORTER_MINUTES, Sizing};
use self::usage::{DAY_MS, Summary, Totals, date, day_start, hours, money};
use super::{PageResult, Viewer};
use crate::AppState;

const DAYS: i64 = 30;
/// Rows in the per-job and per-cluster tables, most costly first.
const TOP: usize = 50;
/// Clusters drawn per day in the chart.
const CHART_CLUSTERS: usize = 5;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/costs", get(costs))
}

async fn costs(State(s): State<AppState>, viewer: Viewer) -> PageResult {
    let since = day_start(now_ms()) - (DAYS - 1) * DAY_MS;
    let mut summary = Summary::default();
    usage::each_visible(&s, &viewer.user, since, None, |r| summary.add(r))?;
    let sizing = rightsize::measure(&s, &viewer.user, &summary.clusters, since)?;
    let total = summary.total;
    let body = html! {
        p.dim { "Usage of the last " (DAYS) " days (UTC), from the usage records of job task runs (the rows of "
            code { "system.billing.usage" } "). Costs are tarn's estimates at the rate each run was recorded with." }
        div.cards {
            (card(&money(total.cost), "estimated cost"))
            (card(&hours(total.core_hours()), "core-hours"))
            (card(&total.attempts.to_string(), "task runs"))
        }
        @if total.attempts == 0 {
            (empty("No usage recorded in the last 30 days."))
        } @else {
            (per_day(&s, since, &summary))
            (per_job(&s, &summary))
            (per_cluster(&s, &summary))
        }
        (right_sizing(&sizing))
    };
    Ok(viewer.page("Costs", Section::Costs, &[("Costs", "/costs")], body))
}

fn card(figure: &str, caption: &str) -> Markup {
    html! { div.card { div.figure { (figure) } div.caption { (caption) } } }
}

/// Each day of the window (a day without records used nothing), as chart points.
fn daily(since: i64, days: &BTreeMap<i64, Totals>, value: impl Fn(&Totals) -> f64) -> Vec<(f64, f64)> {
    (0..DAYS).map(|i| since + i * DAY_MS).map(|d| (d as f64 / 1000.0, days.get(&d).map_or(0.0, &value))).collect()
}

fn per_day(s: &AppState, since: i64, summary: &Summary) -> Markup {
    let days = &summary.days;
    let top = ranked(summary.clusters.iter().map(|(id, c)| (id.as_str(), c.totals)));
    let cluster_series = top.iter().take(CHART_CLUSTERS).filter_map(|(id, _)| {
        let label = s.clusters.get(id).map_or_else(|_| id.to_string(), |c| c.spec.name().to_string());
        let used = summary.clusters.get(*id)?;
        Some(Series { label, points: daily(since, &used.days, Totals::core_hours) })
    });
    let cost = Series { label: "cost".into(), points: daily(since, days, |t| t.cost) };
    html! {
        h2 { "Per day" }
        (Chart { title: "Estimated cost per day", x_label: "day", time_x: true, bars: true, series: vec![cost] }.render())
        (Chart { title: "Core-hours per day by cluster", x_label: "day", time_x: true, bars: true, series: cluster_series.collect() }.render())
        table.list.per-day {
            thead { tr { th { "Day" } th.num { "Core-hours" } th.num { "Cost" } th.num { "Task runs" } } }
            tbody {
                @for (day, t) in days.iter().rev() {
                    tr { td { (date(*day)) } td.num { (hours(t.core_hours())) } td.num { (money(t.cost)) } td.num { (t.attempts) } }
                }
            }
        }
    }
}

/// The most costly first, at most [`TOP`].
fn ranked<K>(totals: impl Iterator<Item = (K, Totals)>) -> Vec<(K, Totals)> {
    let mut rows: Vec<(K, Totals)> = totals.collect();
    rows.sort_by(|a, b| b.1.cost.total_cmp(&a.1.cost));
    rows.truncate(TOP);
    rows
}

fn per_job(s: &AppState, summary: &Summary) -> Markup {
    let jobs = ranked(summary.jobs.iter().map(|(id, t)| (*id, *t)));
    let name = |id: i64| {
        let row = s.jobs.get(id).ok();
        row.and_then(|j| j.settings.get("name").and_then(|n| n.as_str()).map(str::to_string))
    };
    html! {
        h2 { "Per job" }
        table.list.per-job {
            thead { tr { th { "Job" } th.num { "Core-hours" } th.num { "Cost" } th.num { "Task runs" } } }
            tbody {
                @for (id, t) in &jobs {
                    tr {
                        td { a href={ "/jobs/" (id) } { (name(*id).unwrap_or_else(|| format!("Job {id}"))) } }
                        td.num { (hours(t.core_hours())) } td.num { (money(t.cost)) } td.num { (t.attempts) }
                    }
                }
            }
        }
    }
}

fn per_cluster(s: &AppState, summary: &Summary) -> Markup {
    let clusters = ranked(summary.clusters.iter().map(|(id, c)| (id.as_str(), c.totals)));
    let name = |id: &str| s.clusters.get(id).map(|c| c.spec.name().to_string()).ok();
    html! {
        h2 { "Per cluster" }
        table.list.per-cluster {
            thead { tr { th { "Cluster" } th { "Id" } th.num { "Core-hours" } th.num { "Cost" } th.num { "Task runs" } } }
            tbody {
                @for (id, t) in &clusters {
                    tr data-cluster=(id) {
                        td { a href={ "/compute/clusters/" (id) } { (name(id).unwrap_or_else(|| id.to_string())) } }
                        td.dim { (id) }
                        td.num { (hours(t.core_hours())) } td.num { (money(t.cost)) } td.num { (t.attempts) }
                    }
                }
            }
        }
    }
}

fn opt_money(v: Option<f64>) -> Markup {
    match v {
        Some(v) => html! { (money(v)) },
        None => html! { span.dim { "–" } },
    }
}

fn right_sizing(rows: &[Sizing]) -> Markup {
    html! {
        h2 { "Right-sizing" }
        p.dim {
            "tarn records no CPU utilisation. Idle time is measured as the time a cluster was up (its RUNNING to \
             TERMINATING or RESTARTING events) with no job task running on it (the usage records); commands and \
             Spark Connect sessions leave no usage records, so interactive use counts as idle here. Savings use each \
             cluster's recorded rate: shorter autotermination is the time each stop came more than "
            (SHORTER_MINUTES) " minutes after the last task; half the cores is the idle time at half the cores."
        }
        @if rows.is_empty() {
            (empty("No cluster was up or used in the last 30 days."))
        } @else {
            div.scroll { table.list.right-sizing {
                thead { tr {
                    th { "Cluster" } th.num { "Cores" } th.num { "Autotermination" } th.num { "Up" } th.num { "Busy" }
                    th.num { "Idle" } th.num { "Idle core-hours" } th.num { "Idle cost" }
                    th.num { "Saving at " (SHORTER_MINUTES) " min autotermination" } th.num { "Saving at half the cores" }
                } }
                tbody {
                    @for r in rows {
                        tr data-cluster=(r.cluster_id) {
                            td { a href={ "/compute/clusters/" (r.cluster_id) } { (r.name) } }
                            td.num { (r.cores) }
                            td.num { @if r.autotermination > 0 { (r.autotermination) " min" } @else { "never" } }
                            td.num { (duration(r.uptime_ms)) }
                            td.num { (duration(r.busy_ms)) }
                            td.num { (duration(r.idle_ms())) }
                            td.num { (hours(r.idle_core_hours())) }
                            td.num { (opt_money(r.idle_cost())) }
                            td.num { (opt_money(r.autotermination_saving())) }
                            td.num { (opt_money(r.half_size_saving())) }
                        }
                    }
                }
            } }
            p.dim { "A cluster with no task runs in the window has no recorded rate, so its idle cost shows as –." }
        }
    }
}
