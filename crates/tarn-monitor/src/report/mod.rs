//! A monitor's drift report: one self-contained HTML page built from its
//! output tables, with a section per column and inline SVG plots drawn
//! here (no JavaScript, no external assets).
//!
//! [`read`] loads what the page shows from `_profile_metrics` and
//! `_drift_metrics`; this module assembles it into a [`Report`] (which
//! windows, which comparison, columns ranked by drift, the drifted flag);
//! [`page`] lays the report out and [`charts`] draws its plots on
//! [`svg`]'s primitives.
//!
//! Invariants: only the output tables are read, never the monitored
//! table, and only the windows the page shows; every text that comes from
//! data (names, items, messages) is escaped before it reaches the page.

mod charts;
pub mod history;
mod page;
mod read;
mod svg;

use serde_json::Value;
use tarn_store::RefreshRow;

use crate::error::{MonitorError, Result};
use read::{DriftRow, ProfileRow, Tables, WindowRow};

/// A KS or chi-squared p-value under this flags a column as drifted.
pub const DRIFT_PVALUE: f64 = 0.05;
/// A Jensen–Shannon distance at or over this flags a categorical column as
/// drifted when there is no chi-squared p-value.
pub const DRIFT_JS: f64 = 0.1;
/// How many of the latest windows the drift-over-time charts show.
const CHART_WINDOWS: usize = 90;

/// How a column is plotted, from its Spark type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Numeric,
    Categorical,
    /// Counted only (timestamps, structs...): no distribution to draw.
    Other,
}

impl Kind {
    fn of(data_type: &str) -> Self {
        match data_type {
            "tinyint" | "smallint" | "int" | "bigint" | "float" | "double" => Kind::Numeric,
            t if t.starts_with("decimal") => Kind::Numeric,
            "string" | "boolean" => Kind::Categorical,
            _ => Kind::Other,
        }
    }
}

/// A column's profile in one window or in the baseline.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    pub rows: i64,
    pub nulls: i64,
    pub avg: Option<f64>,
    /// 101 points, 0 to 1 (numeric columns).
    pub quantiles: Vec<f64>,
    /// The most frequent items and their counts (categorical columns).
    pub items: Vec<(String, i64)>,
    pub distinct: Option<i64>,
}

impl Profile {
    /// An item's share of the non-null values.
    pub fn share(&self, item: &str) -> f64 {
        let counted = (self.rows - self.nulls).max(1) as f64;
        self.items.iter().find(|(i, _)| i == item).map_or(0.0, |(_, c)| *c as f64 / counted)
    }

    pub fn null_percent(&self) -> f64 {
        if self.rows == 0 { 0.0 } else { self.nulls as f64 * 100.0 / self.rows as f64 }
    }
}

/// The drift measures of one comparison, as `_drift_metrics` holds them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Measures {
    /// Statistic and p-value.
    pub ks: Option<(f64, f64)>,
    pub chi_squared: Option<(f64, f64)>,
    pub js: Option<f64>,
    pub tv: Option<f64>,
    pub wasserstein: Option<f64>,
    pub psi: Option<f64>,
}

/// The statistic a column is ranked and plotted by.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Headline {
    pub name: &'static str,
    pub value: f64,
    pub pvalue: Option<f64>,
}

impl Measures {
    /// KS for numbers; for categories the Jensen–Shannon distance (bounded
    /// like KS, so the two rank together) with the chi-squared p-value.
    pub fn headline(&self) -> Option<Headline> {
        if let Some((value, pvalue)) = self.ks {
            return Some(Headline { name: "KS statistic", value, pvalue: Some(pvalue) });
        }
        let pvalue = self.chi_squared.map(|c| c.1);
        self.js.map(|value| Headline { name: "JS distance", value, pvalue })
    }

    /// Drifted when the test's p-value is under 0.05 (or, lacking one, the
    /// JS distance is 0.1 or more); `None` when nothing was measured.
    pub fn drifted(&self) -> Option<bool> {
        let h = self.headline()?;
        Some(match h.pvalue {
            Some(p) => p < DRIFT_PVALUE,
            None => h.value >= DRIFT_JS,
        })
    }
}

/// A window's drift against the window before and against the baseline.
#[derive(Debug, Clone, Default)]
pub struct Point {
    pub start: i64,
    pub end: i64,
    pub consecutive: Option<Measures>,
    pub baseline: Option<Measures>,
}

/// What the latest window is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Against {
    Baseline,
    /// No baseline table: the window before.
    Previous,
}

/// One column of the report.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub data_type: String,
    pub kind: Kind,
    /// The latest window's profile.
    pub now: Option<Profile>,
    /// The baseline's profile, or the previous window's.
    pub reference: Option<Profile>,
    /// Oldest window first; the last is the latest window.
    pub points: Vec<Point>,
}

impl Column {
    /// The latest window's comparison the summary ranks by.
    pub fn latest(&self, against: Against) -> Option<Measures> {
        let last = self.points.last()?;
        match against {
            Against::Baseline => last.baseline,
            Against::Previous => last.consecutive,
        }
    }
}

/// The page's header: the monitor and what the report shows of it.
#[derive(Debug, Clone)]
pub struct Header {
    pub table: String,
    pub monitor_type: String,
    pub status: String,
    pub latest_refresh: RefreshRow,
    /// The refresh whose output tables the report reads.
    pub shown_refresh: RefreshRow,
    pub baseline_table: Option<String>,
    pub against: Against,
    pub granularity: Option<String>,
    /// Granularities the monitor has but the report does not show.
    pub other_granularities: Vec<String>,
    /// The latest window's start, end and rows.
    pub window: Option<(i64, i64, i64)>,
    pub baseline_rows: Option<i64>,
    /// Windows in the drift charts, of how many the granularity has.
    pub charted_windows: (usize, usize),
    pub output_tables: (String, String),
}

#[derive(Debug, Clone)]
pub struct Report {
    pub header: Header,
    /// Most drifted first.
    pub columns: Vec<Column>,
}

/// The report of the monitor on `table_name` as an HTML page.
pub async fn html(lake: &tarn_lake::Lake, table_name: &str, info: &Value, refreshes: &[RefreshRow]) -> Result<String> {
    let report = build(lake, table_name, info, refreshes).await?;
    Ok(page::render(&report))
}

async fn build(lake: &tarn_lake::Lake, table_name: &str, info: &Value, refreshes: &[RefreshRow]) -> Result<Report> {
    let refreshes = shown_refreshes(table_name, refreshes)?;
    let text = |key: &str| info[key].as_str().unwrap_or_default().to_string();
    let (profile, drift) = (text("profile_metrics_table_name"), text("drift_metrics_table_name"));
    let model_col = info["inference_log"]["model_id_col"].as_str();
    let tables = Tables::open(lake, &profile, &drift, model_col).await?;
    assemble(&tables, table_name, info, refreshes).await
}

/// The latest refresh and the latest successful one, whose tables are read.
fn shown_refreshes<'a>(table_name: &str, refreshes: &'a [RefreshRow]) -> Result<(&'a RefreshRow, &'a RefreshRow)> {
    let latest = refreshes.first().ok_or_else(|| no_success(table_name, None))?;
    let shown = refreshes.iter().find(|r| r.state == "SUCCESS").ok_or_else(|| no_success(table_name, Some(latest)))?;
    Ok((latest, shown))
}

async fn assemble(
    tables: &Tables,
    table_name: &str,
    info: &Value,
    (latest, shown): (&RefreshRow, &RefreshRow),
) -> Result<Report> {
    let text = |key: &str| info[key].as_str().unwrap_or_default().to_string();
    let windows = tables.windows().await?;
    let (granularity, others) = choose_granularity(&granularities(info), &windows);
    let mut shown_windows: Vec<&WindowRow> = windows.iter().filter(|w| w.granularity == granularity).collect();
    shown_windows.sort_by_key(|w| w.start);
    let starts: Vec<i64> = shown_windows.iter().rev().take(2).map(|w| w.start).collect();
    let profiles = tables.profiles(granularity.as_deref(), &starts).await?;
    let since = shown_windows.get(shown_windows.len().saturating_sub(CHART_WINDOWS)).map_or(i64::MIN, |w| w.start);
    let drifts = tables.drifts(granularity.as_deref(), since).await?;
    let baseline_rows =
        profiles.iter().find(|p| p.log_type == "BASELINE" && p.column == ":table").map(|p| p.profile.rows);
    let against = if baseline_rows.is_some() { Against::Baseline } else { Against::Previous };
    let columns = ranked(columns(&profiles, &drifts, &starts, against), against);
    let header = Header {
        table: table_name.to_string(),
        monitor_type: monitor_type(info),
        status: text("status"),
        latest_refresh: latest.clone(),
        shown_refresh: shown.clone(),
        baseline_table: info["baseline_table_name"].as_str().map(str::to_string),
        against,
        granularity,
        other_granularities: others,
        window: shown_windows.last().map(|w| (w.start, w.end, w.rows)),
        baseline_rows,
        charted_windows: (shown_windows.len().min(CHART_WINDOWS), shown_windows.len()),
        output_tables: (text("profile_metrics_table_name"), text("drift_metrics_table_name")),
    };
    Ok(Report { header, columns })
}

fn no_success(table_name: &str, latest: Option<&RefreshRow>) -> MonitorError {
    let latest = latest.map_or("there is none".to_string(), |r| format!("refresh {} is {}", r.refresh_id, r.state));
    MonitorError::InvalidState(format!(
        "The monitor on '{table_name}' has no successful refresh yet ({latest}); its report is drawn from the output tables a refresh writes."
    ))
}

/// The granularities the definition lists, in its order.
fn granularities(info: &Value) -> Vec<String> {
    let listed = info["time_series"]["granularities"].as_array().or(info["inference_log"]["granularities"].as_array());
    listed.map(|g| g.iter().filter_map(|g| g.as_str().map(str::to_string)).collect()).unwrap_or_default()
}

/// The first listed granularity the tables have windows of (else any they
/// have; `None` for a snapshot), and the others they have.
fn choose_granularity(listed: &[String], windows: &[WindowRow]) -> (Option<String>, Vec<String>) {
    let mut present: Vec<Option<String>> = Vec::new();
    for w in windows {
        if !present.contains(&w.granularity) {
            present.push(w.granularity.clone());
        }
    }
    present.sort_by_key(|g| listed.iter().position(|l| Some(l) == g.as_ref()).unwrap_or(usize::MAX));
    let mut present = present.into_iter();
    let chosen = present.next().flatten();
    (chosen, present.flatten().collect())
}

fn monitor_type(info: &Value) -> String {
    let listed = granularities(info).join(", ");
    if info.get("snapshot").is_some_and(|v| !v.is_null()) {
        "Snapshot".into()
    } else if let Some(log) = info.get("inference_log").filter(|v| !v.is_null()) {
        let problem =
            log["problem_type"].as_str().unwrap_or_default().trim_start_matches("PROBLEM_TYPE_").to_lowercase();
        format!("Inference log ({problem}; model id column {}; {listed})", log["model_id_col"].as_str().unwrap_or("?"))
    } else {
        format!("Time series ({listed})")
    }
}

/// Columns from the latest window's profiles, the reference's, and the drift rows.
fn columns(profiles: &[ProfileRow], drifts: &[DriftRow], starts: &[i64], against: Against) -> Vec<Column> {
    let profile = |column: &str, log_type: &str, start: Option<i64>| {
        profiles
            .iter()
            .find(|p| p.column == column && p.log_type == log_type && (start.is_none() || Some(p.start) == start))
            .map(|p| p.profile.clone())
    };
    let mut names: Vec<(&str, &str)> = Vec::new();
    for p in profiles.iter().filter(|p| p.column != ":table") {
        if !names.iter().any(|(n, _)| *n == p.column) {
            names.push((&p.column, &p.data_type));
        }
    }
    names
        .into_iter()
        .map(|(name, data_type)| Column {
            name: name.to_string(),
            data_type: data_type.to_string(),
            kind: Kind::of(data_type),
            now: profile(name, "INPUT", starts.first().copied()),
            reference: match against {
                Against::Baseline => profile(name, "BASELINE", None),
                Against::Previous => starts.get(1).and_then(|s| profile(name, "INPUT", Some(*s))),
            },
            points: points(drifts.iter().filter(|d| d.column == name)),
        })
        .collect()
}

/// One point per window, oldest first.
fn points<'a>(rows: impl Iterator<Item = &'a DriftRow>) -> Vec<Point> {
    let mut points: Vec<Point> = Vec::new();
    for row in rows {
        let at = match points.iter().position(|p| p.start == row.start) {
            Some(i) => i,
            None => {
                points.push(Point { start: row.start, end: row.end, ..Point::default() });
                points.len() - 1
            }
        };
        match row.drift_type.as_str() {
            "BASELINE" => points[at].baseline = Some(row.measures),
            _ => points[at].consecutive = Some(row.measures),
        }
    }
    points.sort_by_key(|p| p.start);
    points
}

/// Drifted columns first, then by the headline statistic, largest first.
fn ranked(mut columns: Vec<Column>, against: Against) -> Vec<Column> {
    let key = |c: &Column| {
        let latest = c.latest(against);
        let rank = match latest.and_then(|m| m.drifted()) {
            Some(true) => 0,
            Some(false) => 1,
            None => 2,
        };
        (rank, latest.and_then(|m| m.headline()).map_or(0.0, |h| h.value))
    };
    columns.sort_by(|a, b| {
        let (ka, kb) = (key(a), key(b));
        ka.0.cmp(&kb.0).then(kb.1.total_cmp(&ka.1)).then_with(|| a.name.cmp(&b.name))
    });
    columns
}

#[cfg(test)]
mod tests;
