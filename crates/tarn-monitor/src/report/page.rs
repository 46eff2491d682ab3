//! The report's HTML: the header (the monitor, its refreshes, what is
//! compared), a summary table of the columns ranked by drift, and a
//! section per column with its two plots. Styles are inline; there is no
//! script. Every text that comes from data goes through `escape`.

use std::fmt::Write;

use tarn_store::RefreshRow;

use super::charts::{self, Line, Side};
use super::svg::{escape, value};
use super::{Against, Column, Header, Kind, Measures, Report};

const STYLE: &str = r#"
:root { --ref: #4e79a7; --now: #f28e2b; --vs-base: #7b4ea3; --vs-prev: #2a9d8f; --flag: #d62728;
  --ink: #1f2328; --muted: #57606a; --line: #d0d7de; }
* { box-sizing: border-box; }
body { margin: 0; background: #f6f8fa; color: var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 24px; }
h1 { font-size: 22px; margin: 0 0 12px; }
h1 .table, h2 .name { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
h2 { font-size: 17px; margin: 0 0 8px; display: flex; gap: 10px; align-items: baseline; flex-wrap: wrap; }
h2 .type { color: var(--muted); font-size: 13px; font-weight: normal; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 16px; margin: 0 0 16px; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 18px; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
.warning { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 6px; padding: 8px 12px; margin-top: 12px; }
.note { color: var(--muted); margin: 0 0 10px; }
table.summary { border-collapse: collapse; width: 100%; }
table.summary th, table.summary td { padding: 6px 10px; border-bottom: 1px solid var(--line); text-align: left; }
table.summary th { color: var(--muted); font-weight: 600; font-size: 13px; }
table.summary td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.summary tr[data-drifted="true"] td:first-child { box-shadow: inset 4px 0 0 var(--flag); }
table.summary a { color: inherit; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.badge { border-radius: 10px; padding: 1px 9px; font-size: 12px; font-weight: 600; white-space: nowrap; }
.badge.drifted { background: #ffe1e0; color: #a40e26; }
.badge.stable { background: #dafbe1; color: #116329; }
.badge.none { background: #eaeef2; color: var(--muted); }
.stats { color: var(--muted); margin: 0 0 12px; }
.plots { display: grid; grid-template-columns: 1fr 1fr; gap: 20px; }
figure { margin: 0; min-width: 0; }
figcaption { font-weight: 600; margin-bottom: 4px; }
svg.chart { display: block; width: 100%; height: auto; }
svg text { font-family: inherit; }
svg .grid { stroke: #eaeef2; stroke-width: 1; }
svg .axis { stroke: var(--muted); stroke-width: 1; }
svg .tick, svg .bar-value { font-size: 11px; fill: var(--muted); }
svg .bar-value.inside { fill: #fff; font-weight: 600; }
svg .axis-title, svg .legend { font-size: 12px; fill: var(--ink); }
svg polyline.ref { stroke-width: 4.5; stroke-opacity: 0.6; }
svg polyline, svg line.ref, svg line.now, svg line.vs-base, svg line.vs-prev { fill: none; stroke-width: 2.25; }
svg .ref { stroke: var(--ref); } svg .now { stroke: var(--now); }
svg .vs-base { stroke: var(--vs-base); } svg .vs-prev { stroke: var(--vs-prev); }
svg .dashed { stroke-dasharray: 6 4; }
svg rect.ref, svg circle.ref { fill: var(--ref); stroke: none; }
svg rect.now, svg circle.now { fill: var(--now); stroke: none; }
svg circle.vs-base { fill: var(--vs-base); stroke: none; }
svg circle.vs-prev { fill: var(--vs-prev); stroke: none; }
svg circle.flag { fill: var(--flag); stroke: #fff; stroke-width: 1.5; }
@media (max-width: 900px) { .plots { grid-template-columns: 1fr; } }
.empty { color: var(--muted); font-style: italic; }
footer { color: var(--muted); font-size: 12px; margin-top: 8px; }
"#;

/// The whole page.
pub fn render(report: &Report) -> String {
    let h = &report.header;
    let mut out = String::with_capacity(64 * 1024 + report.columns.len() * 16 * 1024);
    _ = write!(
        out,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Drift report: {}</title><style>{STYLE}</style></head><body><main>"#,
        escape(&h.table)
    );
    header(&mut out, h);
    summary(&mut out, report);
    for (i, column) in report.columns.iter().enumerate() {
        section(&mut out, i, column, h);
    }
    _ = write!(
        out,
        "<footer>Drawn by tarn from {} and {} as refresh {} wrote them.</footer></main></body></html>",
        escape(&h.output_tables.0),
        escape(&h.output_tables.1),
        h.shown_refresh.refresh_id
    );
    out
}

fn time(ms: i64) -> String {
    charts::at(ms, "%Y-%m-%d %H:%M UTC")
}

/// 12345 as "12,345".
fn count(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

fn refresh(r: &RefreshRow) -> String {
    let when = r.end_time_ms.map_or_else(|| format!("started {}", time(r.start_time_ms)), time);
    format!("#{} {} · {} · {}", r.refresh_id, escape(&r.state), when, escape(&r.trigger))
}

fn header(out: &mut String, h: &Header) {
    _ = write!(
        out,
        r#"<header class="card"><h1>Drift report <span class="table">{}</span></h1><dl class="facts">"#,
        escape(&h.table)
    );
    let mut fact = |name: &str, html: String| _ = write!(out, "<dt>{name}</dt><dd>{html}</dd>");
    fact("Monitor", escape(&h.monitor_type).into_owned());
    fact("Status", escape(&h.status).into_owned());
    fact("Latest refresh", refresh(&h.latest_refresh));
    if h.shown_refresh.refresh_id != h.latest_refresh.refresh_id {
        fact("Shown refresh", refresh(&h.shown_refresh));
    }
    let compared = match (h.against, &h.baseline_table) {
        (Against::Baseline, Some(t)) => {
            format!("baseline table {} ({} rows)", escape(t), count(h.baseline_rows.unwrap_or(0)))
        }
        (Against::Baseline, None) => format!("the baseline ({} rows)", count(h.baseline_rows.unwrap_or(0))),
        (Against::Previous, _) if h.charted_windows.1 > 1 => "the window before (no baseline table)".to_string(),
        (Against::Previous, _) => "nothing: no baseline table, and a single window".to_string(),
    };
    fact("Compared with", compared);
    match (h.window, &h.granularity) {
        (Some((start, end, rows)), Some(g)) => {
            fact("Latest window", format!("{} to {} ({}; {} rows)", time(start), time(end), escape(g), count(rows)))
        }
        (Some((start, _, rows)), None) => fact("Snapshot", format!("{} ({} rows)", time(start), count(rows))),
        (None, _) => fact("Latest window", "none: the table had no rows".into()),
    }
    let (shown, all) = h.charted_windows;
    let mut windows = if shown < all { format!("the latest {shown} of {all}") } else { format!("{all}") };
    if !h.other_granularities.is_empty() {
        let others: Vec<String> = h.other_granularities.iter().map(|g| escape(g).into_owned()).collect();
        _ = write!(windows, "; also computed: {}", others.join(", "));
    }
    fact("Windows charted", windows);
    out.push_str("</dl>");
    if h.shown_refresh.refresh_id != h.latest_refresh.refresh_id {
        let why = h.latest_refresh.message.as_deref().map(|m| format!(": {}", escape(m))).unwrap_or_default();
        _ = write!(
            out,
            r#"<p class="warning">The latest refresh (#{}) is {}{why}. This report shows what refresh #{} wrote.</p>"#,
            h.latest_refresh.refresh_id,
            escape(&h.latest_refresh.state),
            h.shown_refresh.refresh_id
        );
    }
    out.push_str("</header>");
}

fn pvalue(p: f64) -> String {
    if p < 1e-4 { "&lt; 0.0001".into() } else { format!("{p:.4}") }
}

fn badge(drifted: Option<bool>) -> &'static str {
    match drifted {
        Some(true) => r#"<span class="badge drifted">drifted</span>"#,
        Some(false) => r#"<span class="badge stable">no drift</span>"#,
        None => r#"<span class="badge none">not compared</span>"#,
    }
}

/// The measures besides the headline statistic, as text.
fn others(m: &Measures) -> String {
    let mut parts = Vec::new();
    if let Some(w) = m.wasserstein {
        parts.push(format!("Wasserstein {}", value(w)));
    }
    if let Some(p) = m.psi {
        parts.push(format!("PSI {}", value(p)));
    }
    if let Some((chi, _)) = m.chi_squared {
        parts.push(format!("χ² {}", value(chi)));
    }
    if let Some(tv) = m.tv {
        parts.push(format!("TV {}", value(tv)));
    }
    parts.join(" · ")
}

fn summary(out: &mut String, report: &Report) {
    let against = report.header.against;
    let with = if against == Against::Baseline { "the baseline" } else { "the window before" };
    let note = if against == Against::Previous && report.header.charted_windows.1 < 2 {
        "There is nothing to compare the latest window with: give the monitor a baseline table (<code>baseline_table_name</code>) to see drift.".to_string()
    } else {
        format!(
            "The latest window against {with}: the KS statistic for numeric columns, the Jensen–Shannon distance for categorical ones. A column is flagged drifted when the KS or chi-squared p-value is under 0.05."
        )
    };
    _ = write!(
        out,
        r#"<section class="card"><h2>Columns by drift</h2><p class="note">{note}</p><table class="summary"><thead><tr><th>Column</th><th>Type</th><th>Statistic</th><th class="num">Value</th><th class="num">p-value</th><th>Other measures</th><th>Drift</th></tr></thead><tbody>"#
    );
    for (i, c) in report.columns.iter().enumerate() {
        let latest = c.latest(against);
        let drifted = latest.and_then(|m| m.drifted());
        let flag = drifted.map_or("unknown", |d| if d { "true" } else { "false" });
        let headline = latest.and_then(|m| m.headline());
        let (name, v, p) = match headline {
            Some(h) => (h.name, value(h.value), h.pvalue.map_or("—".into(), pvalue)),
            None => ("—", "—".into(), "—".into()),
        };
        _ = write!(
            out,
            r##"<tr data-column="{col}" data-drifted="{flag}"><td><a href="#c{i}">{col}</a></td><td>{}</td><td>{name}</td><td class="num">{v}</td><td class="num">{p}</td><td>{}</td><td>{}</td></tr>"##,
            escape(&c.data_type),
            latest.map(|m| others(&m)).unwrap_or_default(),
            badge(drifted),
            col = escape(&c.name),
        );
    }
    out.push_str("</tbody></table></section>");
}

/// A line of numbers under a column's title: rows, nulls, mean, distinct.
fn stats(c: &Column, reference: &str) -> String {
    let side = |label: &str, p: &super::Profile| {
        let mut s = format!("{label}: {} rows, {:.1}% null", count(p.rows), p.null_percent());
        if let Some(avg) = p.avg {
            _ = write!(s, ", mean {}", value(avg));
        }
        if let Some(d) = p.distinct {
            _ = write!(s, ", ~{} distinct", count(d));
        }
        s
    };
    let parts: Vec<String> = [("latest window", &c.now), (reference, &c.reference)]
        .into_iter()
        .filter_map(|(label, p)| p.as_ref().map(|p| side(label, p)))
        .collect();
    parts.join(" · ")
}

fn section(out: &mut String, i: usize, c: &Column, h: &Header) {
    let reference = if h.against == Against::Baseline { "baseline" } else { "previous window" };
    let drifted = c.latest(h.against).and_then(|m| m.drifted());
    _ = write!(
        out,
        r#"<section class="card column" id="c{i}" data-column="{}"><h2><span class="name">{}</span><span class="type">{}</span>{}</h2><p class="stats">{}</p>"#,
        escape(&c.name),
        escape(&c.name),
        escape(&c.data_type),
        badge(drifted),
        escape(&stats(c, reference))
    );
    if c.kind == Kind::Other {
        _ = write!(
            out,
            r#"<p class="empty">Values of type {} are counted, not compared: there is no distribution to plot.</p></section>"#,
            escape(&c.data_type)
        );
        return;
    }
    out.push_str(r#"<div class="plots">"#);
    let (caption, plot) = distribution(c, reference);
    figure(out, &caption, plot, "No values to plot.");
    let (caption, plot) = drift_over_windows(c);
    figure(out, &caption, plot, "No comparison: no baseline table and no earlier window.");
    out.push_str("</div></section>");
}

fn figure(out: &mut String, caption: &str, svg: Option<String>, empty: &str) {
    let body = svg.unwrap_or_else(|| format!(r#"<p class="empty">{empty}</p>"#));
    _ = write!(out, "<figure><figcaption>{}</figcaption>{body}</figure>", escape(caption));
}

/// The latest window's distribution against the reference's.
fn distribution(c: &Column, reference: &str) -> (String, Option<String>) {
    let versus = if c.reference.is_some() { format!(" vs {reference}") } else { String::new() };
    let title = format!("{}: latest window{versus}", c.name);
    let mut sides = Vec::new();
    if let Some(p) = &c.reference {
        sides.push(("ref", reference, p));
    }
    if let Some(p) = &c.now {
        sides.push(("now", "latest window", p));
    }
    match c.kind {
        Kind::Numeric => {
            let sides: Vec<Side<'_, &[f64]>> =
                sides.iter().map(|(class, label, p)| Side { class, label, values: &p.quantiles[..] }).collect();
            (format!("Distribution: cumulative share, latest window{versus}"), charts::cdf(&sides, &c.name, &title))
        }
        _ => {
            let sides: Vec<Side<'_, Vec<(String, f64)>>> = sides
                .iter()
                .map(|(class, label, p)| Side {
                    class,
                    label,
                    values: p.items.iter().map(|(item, _)| (item.clone(), p.share(item))).collect(),
                })
                .collect();
            (format!("Most frequent values: latest window{versus}"), charts::bars(&sides, &title))
        }
    }
}

/// The headline statistic per window, against the baseline and the window before.
fn drift_over_windows(c: &Column) -> (String, Option<String>) {
    let name = c.points.iter().flat_map(|p| [p.baseline, p.consecutive]).flatten().find_map(|m| m.headline());
    let statistic = name.map_or("Drift statistic", |h| h.name);
    let line = |class, label, dashed, pick: fn(&super::Point) -> Option<Measures>| {
        let points = c
            .points
            .iter()
            .filter_map(|p| {
                let m = pick(p)?;
                Some((p.start, m.headline()?.value, m.drifted() == Some(true)))
            })
            .collect();
        Line { class, label, dashed, points }
    };
    let lines: Vec<Line<'_>> = [
        line("vs-base", "vs baseline", false, |p| p.baseline),
        line("vs-prev", "vs previous window", true, |p| p.consecutive),
    ]
    .into_iter()
    .filter(|l| !l.points.is_empty())
    .collect();
    let title = format!("{}: {statistic} per window", c.name);
    (format!("{statistic} per window"), charts::over_windows(&lines, statistic, &title))
}
