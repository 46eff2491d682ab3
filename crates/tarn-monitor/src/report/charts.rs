//! The report's plots as inline SVG: a numeric column's distribution as
//! cumulative curves from its quantiles, a categorical column's frequent
//! items as grouped bars, and a drift statistic per window as lines. Each
//! returns `None` when it has nothing to draw.

use std::fmt::Write;

use chrono::{DateTime, Utc};

use super::svg::{self, Margins, Mark, Plot, escape, shorten};

const WIDTH: f64 = 580.0;
const HEIGHT: f64 = 300.0;
/// Characters of an item label shown left of its bars.
const LABEL_CHARS: usize = 18;
/// About how wide a character of an 11 px tick label is.
const LABEL_PX: f64 = 6.5;
/// Bars shown at most (the items both sides count most).
const MAX_BARS: usize = 10;

fn margins(left: f64) -> Margins {
    Margins { top: 32.0, right: 18.0, bottom: 46.0, left }
}

/// One side of a distribution plot: CSS class, legend label, values.
pub struct Side<'a, T> {
    pub class: &'a str,
    pub label: &'a str,
    pub values: T,
}

/// Cumulative share of values at or below x, one curve per side, from
/// quantiles evenly spaced from 0 to 1.
pub fn cdf(sides: &[Side<'_, &[f64]>], x_title: &str, title: &str) -> Option<String> {
    let drawn: Vec<&Side<'_, &[f64]>> = sides.iter().filter(|s| s.values.len() >= 2).collect();
    let finite = || drawn.iter().flat_map(|s| s.values.iter().copied()).filter(|v| v.is_finite());
    let lo = finite().reduce(f64::min)?;
    let hi = finite().reduce(f64::max)?;
    let (xticks, step) = svg::ticks(lo, hi, 6);
    let x = (xticks.first().copied().unwrap_or(lo), xticks.last().copied().unwrap_or(hi));
    let mut plot = Plot::new((WIDTH, HEIGHT), margins(58.0), x, (0.0, 1.0), title);
    let yticks: Vec<(f64, String)> = (0..=4).map(|i| (f64::from(i) / 4.0, format!("{}%", i * 25))).collect();
    plot.y_axis(&yticks, "share of values ≤ x");
    plot.x_axis(&xticks.iter().map(|v| (*v, svg::number(*v, step))).collect::<Vec<_>>(), x_title);
    for side in &drawn {
        let last = (side.values.len() - 1) as f64;
        let mut points = vec![(x.0, 0.0)];
        points
            .extend(side.values.iter().enumerate().filter(|(_, v)| v.is_finite()).map(|(i, v)| (*v, i as f64 / last)));
        points.push((x.1, 1.0));
        plot.polyline(&points, side.class);
    }
    let legend: Vec<(&str, &str, Mark)> = drawn.iter().map(|s| (s.class, s.label, Mark::Line)).collect();
    plot.legend(&legend);
    Some(plot.finish())
}

/// Grouped horizontal bars: each item's share of non-null values on each side.
pub fn bars(sides: &[Side<'_, Vec<(String, f64)>>], title: &str) -> Option<String> {
    let mut items: Vec<(&str, f64)> = Vec::new();
    for (item, share) in sides.iter().flat_map(|s| s.values.iter()) {
        match items.iter_mut().find(|(i, _)| i == item) {
            Some(entry) => entry.1 = entry.1.max(*share),
            None => items.push((item, *share)),
        }
    }
    items.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    items.truncate(MAX_BARS);
    let top = items.first()?.1;
    let row = 12.0 * sides.len() as f64 + 10.0;
    let m = margins(132.0);
    let height = m.top + m.bottom + row * items.len() as f64;
    // The axis ends on its last tick, at 100% at most.
    let (xticks, step) = svg::ticks(0.0, (top * 100.0).max(1.0), 5);
    let hi = xticks.last().copied().unwrap_or(100.0).min(100.0);
    let mut plot = Plot::new((WIDTH, height), m, (0.0, hi), (0.0, 1.0), title);
    plot.x_axis(
        &xticks.iter().map(|v| (*v, format!("{}%", svg::number(*v, step)))).collect::<Vec<_>>(),
        "share of non-null values",
    );
    let (left, top_y, right, bottom) = plot.area();
    let mut out = String::new();
    for (row_index, (item, _)) in items.iter().enumerate() {
        let y0 = top_y + row * row_index as f64 + 5.0;
        _ = write!(
            out,
            r#"<text class="tick item" x="{:.1}" y="{:.1}" text-anchor="end"><title>{}</title>{}</text>"#,
            left - 8.0,
            y0 + 6.0 * sides.len() as f64 + 4.0,
            escape(item),
            escape(&shorten(item, LABEL_CHARS))
        );
        for (k, side) in sides.iter().enumerate() {
            let share = side.values.iter().find(|(i, _)| i == item).map_or(0.0, |(_, s)| *s) * 100.0;
            let (y, end) = (y0 + 12.0 * k as f64, plot.x.at(share));
            // A label that would run past the plot goes inside its bar.
            let (x, anchor, class) = if end + 44.0 > right {
                (end - 4.0, "end", "bar-value inside")
            } else {
                (end + 4.0, "start", "bar-value")
            };
            _ = write!(
                out,
                r#"<rect class="{}" x="{left:.1}" y="{y:.1}" width="{:.1}" height="10"><title>{}: {share:.1}%</title></rect><text class="{class}" x="{x:.1}" y="{:.1}" text-anchor="{anchor}">{share:.1}%</text>"#,
                side.class,
                (end - left).max(0.5),
                escape(side.label),
                y + 9.0,
            );
        }
    }
    _ = write!(out, r#"<line class="axis" x1="{left:.1}" y1="{top_y:.1}" x2="{left:.1}" y2="{bottom:.1}"/>"#);
    plot.raw(&out);
    plot.legend(&sides.iter().map(|s| (s.class, s.label, Mark::Box)).collect::<Vec<_>>());
    Some(plot.finish())
}

/// One line of the drift chart: `(window start ms, value, flagged)` points.
pub struct Line<'a> {
    pub class: &'a str,
    pub label: &'a str,
    pub dashed: bool,
    pub points: Vec<(i64, f64, bool)>,
}

/// A drift statistic per window, one line per comparison; points whose
/// comparison is flagged drifted are drawn as larger red dots.
pub fn over_windows(lines: &[Line<'_>], y_title: &str, title: &str) -> Option<String> {
    let mut starts: Vec<i64> = lines.iter().flat_map(|l| l.points.iter().map(|p| p.0)).collect();
    starts.sort_unstable();
    starts.dedup();
    let (first, last) = (*starts.first()?, *starts.last()?);
    let top = lines.iter().flat_map(|l| l.points.iter().map(|p| p.1)).fold(0.0, f64::max);
    // KS and JS never exceed 1; small values keep a 0.1 axis so that they look small.
    let hi = svg::nice_ceil((top * 1.1).max(0.1)).min(1.0);
    let (yticks, ystep) = svg::ticks(0.0, hi, 5);
    let mut plot = Plot::new((WIDTH, HEIGHT), margins(58.0), (first as f64, last as f64), (0.0, hi), title);
    plot.y_axis(&yticks.iter().map(|v| (*v, svg::number(*v, ystep))).collect::<Vec<_>>(), y_title);
    plot.x_axis(&time_ticks(&starts), "window start (UTC)");
    let (left, _, right, _) = plot.area();
    let crowded = (right - left) / starts.len() as f64 <= 12.0;
    let mut dots = String::new();
    for line in lines {
        let class = if line.dashed { format!("{} dashed", line.class) } else { line.class.to_string() };
        let points: Vec<(f64, f64)> = line.points.iter().map(|p| (p.0 as f64, p.1)).collect();
        plot.polyline(&points, &class);
        for (start, v, flagged) in &line.points {
            let (cx, cy) = (plot.x.at(*start as f64), plot.y.at(*v));
            // Dots closer than a few pixels would hide the line: then only drifted ones, smaller.
            let (dot, r) = match (*flagged, crowded) {
                (true, false) => ("flag", 4.5),
                (true, true) => ("flag", 3.0),
                (false, false) => (line.class, 3.0),
                (false, true) => continue,
            };
            _ = write!(
                dots,
                r#"<circle class="{dot}" cx="{cx:.1}" cy="{cy:.1}" r="{r}"><title>{}: {} {}</title></circle>"#,
                escape(line.label),
                at(*start, "%Y-%m-%d %H:%M"),
                svg::value(*v)
            );
        }
    }
    plot.raw(&dots);
    let mut legend: Vec<(&str, &str, Mark)> =
        lines.iter().map(|l| (l.class, l.label, if l.dashed { Mark::Dashed } else { Mark::Line })).collect();
    if lines.iter().any(|l| l.points.iter().any(|p| p.2)) {
        legend.push(("flag", "drifted (p < 0.05)", Mark::Dot));
    }
    plot.legend(&legend);
    Some(plot.finish())
}

/// Window starts as x ticks: all of them when their labels fit side by
/// side, else those on the finest round period (an hour... a fortnight)
/// that leaves few enough, else every k-th.
fn time_ticks(starts: &[i64]) -> Vec<(f64, String)> {
    const HOUR: i64 = 3_600_000;
    const DAY: i64 = 24 * HOUR;
    const PERIODS: [i64; 10] =
        [HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY, 14 * DAY, 28 * DAY];
    let span = starts.last().copied().unwrap_or(0) - starts.first().copied().unwrap_or(0);
    let (long, dated) = if span > 300 * DAY { ("%Y-%m-%d %H:%M", "%Y-%m-%d") } else { ("%b %-d %H:%M", "%b %-d") };
    // How many labels of this format fit side by side.
    let fit = |format: &str| {
        let widest = starts.iter().map(|s| at(*s, format).chars().count()).max().unwrap_or(1);
        (((WIDTH - 58.0 - 18.0) / (widest as f64 * LABEL_PX + 14.0)) as usize).max(2)
    };
    let all_dated = starts.iter().all(|s| s % DAY == 0);
    let picked: Vec<i64> = if starts.len() <= fit(if all_dated { dated } else { long }) {
        starts.to_vec()
    } else {
        let on = |period: i64| starts.iter().copied().filter(|s| s % period == 0).collect::<Vec<_>>();
        let fits = |period: &i64, picked: &Vec<i64>| {
            !picked.is_empty() && picked.len() <= fit(if period % DAY == 0 { dated } else { long })
        };
        PERIODS
            .iter()
            .map(|p| (p, on(*p)))
            .find(|(p, picked)| fits(p, picked))
            .map(|(_, picked)| picked)
            .unwrap_or_else(|| starts.iter().copied().step_by(starts.len().div_ceil(fit(long))).collect())
    };
    let format = if picked.iter().all(|s| s % DAY == 0) { dated } else { long };
    picked.into_iter().map(|s| (s as f64, at(s, format))).collect()
}

/// Epoch milliseconds in UTC, as chrono's `format` writes them.
pub fn at(ms: i64, format: &str) -> String {
    match DateTime::<Utc>::from_timestamp_millis(ms) {
        Some(t) => t.format(format).to_string(),
        None => ms.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_ticks_fall_on_round_times_and_fit() {
        let hour = 3_600_000;
        let days: Vec<i64> = (0..7).map(|d| d * 24 * hour).collect();
        let labels: Vec<String> = time_ticks(&days).into_iter().map(|t| t.1).collect();
        assert_eq!(labels, ["Jan 1", "Jan 2", "Jan 3", "Jan 4", "Jan 5", "Jan 6", "Jan 7"]);
        let hours: Vec<i64> = (5..167).map(|h| h * hour).collect();
        let ticks = time_ticks(&hours);
        assert!(ticks.len() >= 2 && ticks.len() <= 6, "{ticks:?}");
        assert!(ticks.iter().all(|(x, _)| *x as i64 % (24 * hour) == 0), "{ticks:?}");
        assert_eq!(ticks[0].1, "Jan 2");
    }
}
