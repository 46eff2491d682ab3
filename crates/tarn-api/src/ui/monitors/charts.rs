//! A column's profile and drift over time as uPlot charts, with the column
//! selector (`?column=`): rows and nulls, the value distribution (mean,
//! median, min and max for numbers; distinct values otherwise), and the
//! drift statistic against the baseline and against the window before.

use maud::{Markup, html};
use tarn_monitor::report::history::{History, Window};
use tarn_monitor::report::{Kind, Measures, Point};
use tarn_ui::chart::{Chart, Series};
use tarn_ui::components::empty;

use super::seg;

/// Charts side by side where the page is wide enough (uPlot draws each at
/// least 320 pixels wide).
const GRID: &str = "display: grid; grid-template-columns: repeat(auto-fill, minmax(460px, 1fr)); gap: 12px";

/// Milliseconds since the epoch as the charts' seconds.
fn x(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

fn series(label: &str, windows: &[Window], value: impl Fn(&Window) -> Option<f64>) -> Series {
    let points = windows.iter().filter_map(|w| value(w).map(|v| (x(w.start), v))).collect();
    Series { label: label.to_string(), points }
}

/// The profile's quantile at `at` (0 to 100) of its 101 points.
fn quantile(w: &Window, at: usize) -> Option<f64> {
    w.profile.quantiles.get(at).copied()
}

/// The selector, then the charts of the chosen column.
pub(super) fn render(table: &str, history: &History) -> Markup {
    let Some(column) = &history.column else {
        return empty("The monitor's output tables have no profiled column yet.");
    };
    html! {
        form.toolbar.columns method="get" action={ "/monitors/" (seg(table)) } {
            label for="column" { "Column" }
            select #column name="column" {
                @for (name, data_type) in &history.columns {
                    option value=(name) selected[name == column] { (name) " (" (data_type) ")" }
                }
            }
            button type="submit" { "Show" }
            @if let Some(g) = &history.granularity { span.dim { "Windows of " (g) } }
        }
        div.charts data-column=(column) style=(GRID) {
            @for chart in charts(column, history) { div { (chart) } }
        }
    }
}

fn charts(column: &str, h: &History) -> Vec<Markup> {
    let w = &h.windows;
    let counts = Chart {
        title: &format!("Rows and nulls · {column}"),
        x_label: "window",
        time_x: true,
        bars: false,
        series: vec![
            series("rows", w, |w| Some(w.profile.rows as f64)),
            series("nulls", w, |w| Some(w.profile.nulls as f64)),
        ],
    };
    let values = match h.kind {
        Kind::Numeric => Chart {
            title: &format!("Values · {column}"),
            x_label: "window",
            time_x: true,
            bars: false,
            series: vec![
                series("mean", w, |w| w.profile.avg),
                series("median", w, |w| quantile(w, 50)),
                series("min", w, |w| quantile(w, 0)),
                series("max", w, |w| quantile(w, 100)),
            ],
        },
        _ => Chart {
            title: &format!("Distinct values · {column}"),
            x_label: "window",
            time_x: true,
            bars: false,
            series: vec![series("distinct", w, |w| w.profile.distinct.map(|d| d as f64))],
        },
    };
    let drift = drift_chart(column, &h.drift);
    vec![counts.render(), values.render(), drift]
}

/// The headline statistic (KS for numbers, JS distance for categories)
/// against the baseline and against the window before.
fn drift_chart(column: &str, points: &[Point]) -> Markup {
    let name =
        points.iter().find_map(|p| p.baseline.or(p.consecutive).and_then(|m| m.headline())).map_or("drift", |h| h.name);
    let line = |label: String, pick: fn(&Point) -> Option<Measures>| Series {
        label,
        points: points.iter().filter_map(|p| Some((x(p.start), pick(p)?.headline()?.value))).collect(),
    };
    Chart {
        title: &format!("Drift ({name}) · {column}"),
        x_label: "window",
        time_x: true,
        bars: false,
        series: vec![line("vs baseline".into(), |p| p.baseline), line("vs previous window".into(), |p| p.consecutive)],
    }
    .render()
}
