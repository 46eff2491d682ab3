//! One column's profile and drift over time, for tarn's monitor page: read
//! from the output tables as the report reads them, only that column's rows
//! of the report's granularity and only its latest windows.

use serde_json::Value;

use super::read::{ProfileRow, Tables};
use super::{CHART_WINDOWS, Kind, Point, Profile, choose_granularity, granularities, points};
use crate::Monitors;
use crate::error::{MonitorError, Result};

/// A column's profile in one window.
#[derive(Debug, Clone)]
pub struct Window {
    pub start: i64,
    pub end: i64,
    pub profile: Profile,
}

/// What the monitor page charts of one column.
#[derive(Debug, Clone)]
pub struct History {
    /// The granularity of the windows (none for a snapshot).
    pub granularity: Option<String>,
    /// The profiled columns (name, Spark type), in the tables' order.
    pub columns: Vec<(String, String)>,
    /// The column shown: the one asked for, else the first profiled.
    pub column: Option<String>,
    pub kind: Kind,
    /// Oldest first, at most the report's charted windows.
    pub windows: Vec<Window>,
    /// Drift per window, against the window before and the baseline.
    pub drift: Vec<Point>,
    pub baseline: Option<Profile>,
}

impl History {
    fn empty(granularity: Option<String>, columns: Vec<(String, String)>) -> Self {
        Self { granularity, columns, column: None, kind: Kind::Other, windows: vec![], drift: vec![], baseline: None }
    }
}

impl Monitors {
    /// `column`'s history (the first profiled column's without one) from the
    /// monitor's output tables; NOT_FOUND until a refresh wrote them.
    pub async fn column_history(&self, table_name: &str, column: Option<&str>) -> Result<History> {
        let info = self.get(table_name)?;
        let text = |key: &str| info[key].as_str().unwrap_or_default().to_string();
        let (profile, drift) = (text("profile_metrics_table_name"), text("drift_metrics_table_name"));
        let model_col = info["inference_log"]["model_id_col"].as_str();
        let tables = Tables::open(&self.inner.lake, &profile, &drift, model_col).await?;
        read(&tables, &info, column).await
    }
}

async fn read(tables: &Tables, info: &Value, column: Option<&str>) -> Result<History> {
    let present = tables.windows().await?;
    let (granularity, _) = choose_granularity(&granularities(info), &present);
    let mut starts: Vec<i64> = present.iter().filter(|w| w.granularity == granularity).map(|w| w.start).collect();
    starts.sort_unstable();
    let Some(latest) = starts.last().copied() else { return Ok(History::empty(granularity, vec![])) };
    let since = starts[starts.len().saturating_sub(CHART_WINDOWS)];
    let mut columns: Vec<(String, String)> = Vec::new();
    for p in tables.profiles(granularity.as_deref(), &[latest]).await? {
        if p.column != ":table" && !columns.iter().any(|(n, _)| *n == p.column) {
            columns.push((p.column, p.data_type));
        }
    }
    let chosen = match column {
        Some(c) if !columns.iter().any(|(n, _)| n == c) => {
            return Err(MonitorError::InvalidParameter(format!("The monitor does not profile a column '{c}'.")));
        }
        Some(c) => c.to_string(),
        None => match columns.first() {
            Some((c, _)) => c.clone(),
            None => return Ok(History::empty(granularity, columns)),
        },
    };
    let g = granularity.as_deref();
    let rows = tables.column_profiles(g, &chosen, since).await?;
    let drifts = tables.column_drifts(g, &chosen, since).await?;
    let kind = columns.iter().find(|(n, _)| *n == chosen).map_or(Kind::Other, |(_, t)| Kind::of(t));
    let end = |start: i64| present.iter().find(|w| w.granularity == granularity && w.start == start).map(|w| w.end);
    let (baseline, mut windows) = split(rows, end);
    windows.sort_by_key(|w| w.start);
    let drift = points(drifts.iter());
    Ok(History { granularity, columns, column: Some(chosen), kind, windows, drift, baseline })
}

/// The baseline's profile and the windows' (a profile row carries its
/// window's start; `end` finds the end).
fn split(rows: Vec<ProfileRow>, end: impl Fn(i64) -> Option<i64>) -> (Option<Profile>, Vec<Window>) {
    let mut baseline = None;
    let mut windows = Vec::new();
    for row in rows {
        match row.log_type.as_str() {
            "BASELINE" => baseline = Some(row.profile),
            _ => windows.push(Window {
                start: row.start,
                end: end(row.start).unwrap_or(row.start),
                profile: row.profile,
            }),
        }
    }
    (baseline, windows)
}
