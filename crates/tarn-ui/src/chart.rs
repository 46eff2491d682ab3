//! Charts drawn in the browser by the vendored uPlot: the page carries the
//! data as JSON in a `data-chart` attribute and `app.js` draws every such
//! element when it appears (on load and after each htmx swap).

use maud::{Markup, html};
use serde_json::json;

/// One line (or set of bars): (x, y) points.
#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// What to draw.
#[derive(Debug, Clone)]
pub struct Chart<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    /// X values are seconds since the epoch, shown as dates.
    pub time_x: bool,
    /// Bars instead of lines.
    pub bars: bool,
    pub series: Vec<Series>,
}

impl Chart<'_> {
    /// The chart's element; series with different x values are aligned on the
    /// union of them (missing points are gaps, as uPlot wants).
    pub fn render(&self) -> Markup {
        let mut xs: Vec<f64> = self.series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).collect();
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        let columns: Vec<Vec<Option<f64>>> = self
            .series
            .iter()
            .map(|s| {
                let mut points = s.points.clone();
                points.sort_by(|a, b| a.0.total_cmp(&b.0));
                xs.iter()
                    .map(|x| points.binary_search_by(|p| p.0.total_cmp(x)).ok().map(|i| points[i].1))
                    .map(|y| y.filter(|v| v.is_finite()))
                    .collect()
            })
            .collect();
        let data = json!({
            "title": self.title,
            "x_label": self.x_label,
            "time": self.time_x,
            "bars": self.bars,
            "x": xs,
            "series": self.series.iter().zip(columns).map(|(s, ys)| json!({"label": s.label, "y": ys})).collect::<Vec<_>>(),
        });
        html! {
            figure.chart data-chart=(data.to_string()) {
                figcaption { (self.title) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_aligned_on_shared_x() {
        let chart = Chart {
            title: "loss",
            x_label: "step",
            time_x: false,
            bars: false,
            series: vec![
                Series { label: "run a".into(), points: vec![(0.0, 1.0), (1.0, 0.5)] },
                Series { label: "run b".into(), points: vec![(1.0, 0.7), (2.0, 0.6)] },
            ],
        };
        let html = chart.render().into_string();
        assert!(html.contains("&quot;x&quot;:[0.0,1.0,2.0]"), "{html}");
        assert!(html.contains("&quot;y&quot;:[1.0,0.5,null]") && html.contains("[null,0.7,0.6]"), "{html}");
    }
}
