//! A Gantt timeline as SVG: one row per bar (a task attempt, a flow), laid on
//! a shared time axis from the first start to the last end.

use maud::{Markup, html};

use crate::components::{duration, shorten, state_class};

/// One bar: `end_ms` is `None` while it is still going (drawn up to `now`).
#[derive(Debug, Clone)]
pub struct Bar {
    pub label: String,
    pub start_ms: i64,
    pub end_ms: Option<i64>,
    pub state: String,
}

const LABEL_W: f64 = 190.0;
const PLOT_W: f64 = 640.0;
const ROW_H: f64 = 26.0;
const AXIS_H: f64 = 22.0;

/// The timeline of `bars` (those with a start), `now_ms` closing open bars.
pub fn svg(bars: &[Bar], now_ms: i64) -> Markup {
    let started: Vec<&Bar> = bars.iter().filter(|b| b.start_ms > 0).collect();
    let Some(first) = started.iter().map(|b| b.start_ms).min() else {
        return html! { p.empty { "Nothing has started yet." } };
    };
    let end_of = |b: &Bar| b.end_ms.filter(|e| *e > 0).unwrap_or(now_ms).max(b.start_ms);
    let last = started.iter().map(|b| end_of(b)).max().unwrap_or(first);
    let span = (last - first).max(1) as f64;
    let x = |t: i64| LABEL_W + (t - first) as f64 / span * PLOT_W;
    let height = AXIS_H + started.len() as f64 * ROW_H + 4.0;
    let width = LABEL_W + PLOT_W + 70.0;
    html! {
        svg.gantt xmlns="http://www.w3.org/2000/svg" width=(width) height=(height)
            viewBox={ "0 0 " (width) " " (height) } role="img" {
            @for i in 0..=4 {
                @let t = first + (span * f64::from(i) / 4.0) as i64;
                line.tick x1=(x(t)) x2=(x(t)) y1=(AXIS_H - 4.0) y2=(height) {}
                text.axis x=(x(t)) y="12" text-anchor="middle" { "+" (duration(t - first)) }
            }
            @for (row, bar) in started.iter().enumerate() {
                @let y = AXIS_H + row as f64 * ROW_H;
                @let (x1, x2) = (x(bar.start_ms), x(end_of(bar)));
                g class={ "bar " (state_class(&bar.state)) } data-bar=(bar.label) data-state=(bar.state) {
                    title { (bar.label) " · " (bar.state) " · " (duration(end_of(bar) - bar.start_ms)) }
                    text.label x="4" y=(y + 17.0) { (shorten(&bar.label, 26)) }
                    rect x=(x1) y=(y + 4.0) width=((x2 - x1).max(2.0)) height=(ROW_H - 8.0) rx="3" {}
                    text.detail x=(x2 + 4.0) y=(y + 17.0) { (duration(end_of(bar) - bar.start_ms)) }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_share_one_axis() {
        let bars = vec![
            Bar { label: "a".into(), start_ms: 1_000, end_ms: Some(3_000), state: "SUCCESS".into() },
            Bar { label: "b".into(), start_ms: 3_000, end_ms: None, state: "RUNNING".into() },
            Bar { label: "never".into(), start_ms: 0, end_ms: None, state: "PENDING".into() },
        ];
        let svg = svg(&bars, 5_000).into_string();
        assert!(svg.contains(r#"data-bar="a""#) && svg.contains(r#"data-bar="b""#), "{svg}");
        assert!(!svg.contains("never"));
        // a spans the first half of the plot, b the second.
        assert!(svg.contains(r#"<rect x="190" y="26" width="320""#), "{svg}");
    }
}
