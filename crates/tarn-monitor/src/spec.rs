//! A monitor's definition as `w.quality_monitors.create` sends it: the
//! profile type (`snapshot`, `time_series` or `inference_log`), its columns
//! and granularities, the baseline table and the output schema, checked
//! against the monitored table's columns.

use chrono::{DateTime, Datelike, TimeZone, Utc};
use serde_json::Value;

use crate::custom::CustomMetric;
use crate::error::{MonitorError, Result, invalid};

/// A window length: "5 minutes", "1 hour", "1 day", "2 weeks", "1 month", "1 year".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Granularity {
    Minutes(i64),
    Days(i64),
    Months(i64),
}

impl Granularity {
    pub fn parse(text: &str) -> Result<Self> {
        let refused = || {
            invalid(format!(
                "Invalid granularity '{text}': use e.g. '30 minutes', '1 hour', '1 day', '1 week', '1 month', '1 year'"
            ))
        };
        let mut parts = text.split_whitespace();
        let n: i64 = parts.next().and_then(|n| n.parse().ok()).filter(|n| *n > 0).ok_or_else(refused)?;
        let unit = parts.next().ok_or_else(refused)?.trim_end_matches('s');
        if parts.next().is_some() {
            return Err(refused());
        }
        Ok(match unit {
            "minute" => Self::Minutes(n),
            "hour" => Self::Minutes(60 * n),
            "day" => Self::Days(n),
            "week" => Self::Days(7 * n),
            "month" => Self::Months(n),
            "year" => Self::Months(12 * n),
            _ => return Err(refused()),
        })
    }

    /// The window holding `ms` (epoch milliseconds): its start and end.
    pub fn window(self, ms: i64) -> (i64, i64) {
        const MINUTE: i64 = 60_000;
        match self {
            Self::Minutes(n) => {
                let len = n * MINUTE;
                let start = ms.div_euclid(len) * len;
                (start, start + len)
            }
            Self::Days(n) => {
                let len = n * 1440 * MINUTE;
                let start = ms.div_euclid(len) * len;
                (start, start + len)
            }
            Self::Months(n) => {
                let t = DateTime::from_timestamp_millis(ms).unwrap_or_default();
                let months = i64::from(t.year()) * 12 + i64::from(t.month0());
                let first = months.div_euclid(n) * n;
                (month_start(first), month_start(first + n))
            }
        }
    }
}

/// The first millisecond of the month `months` after year 0's January.
fn month_start(months: i64) -> i64 {
    let (year, month0) = (months.div_euclid(12), months.rem_euclid(12));
    let year = i32::try_from(year).unwrap_or(1970);
    Utc.with_ymd_and_hms(year, month0 as u32 + 1, 1, 0, 0, 0).single().map_or(0, |t| t.timestamp_millis())
}

#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Snapshot,
    TimeSeries {
        timestamp_col: String,
        granularities: Vec<(String, Granularity)>,
    },
    InferenceLog {
        timestamp_col: String,
        granularities: Vec<(String, Granularity)>,
        model_id_col: String,
        prediction_col: String,
        label_col: Option<String>,
        classification: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct MonitorSpec {
    pub mode: Mode,
    pub output_schema_name: String,
    pub baseline_table_name: Option<String>,
    /// SQL expressions the rows are sliced by, as sent.
    pub slicing_exprs: Vec<String>,
    pub custom_metrics: Vec<CustomMetric>,
}

/// Output table columns a custom metric cannot be named after.
const RESERVED: &[&str] = &[
    "window",
    "log_type",
    "logging_table_commit_version",
    "monitor_version",
    "granularity",
    "slice_key",
    "slice_value",
    "column_name",
    "data_type",
    "count",
    "num_nulls",
    "avg",
    "quantiles",
    "min",
    "max",
    "stddev",
    "num_zeros",
    "num_nan",
    "min_length",
    "max_length",
    "avg_length",
    "non_null_columns",
    "frequent_items",
    "median",
    "distinct_count",
    "percent_nan",
    "percent_null",
    "percent_zeros",
    "percent_distinct",
    "accuracy_score",
    "mean_squared_error",
    "root_mean_squared_error",
    "mean_absolute_error",
    "r2_score",
    "window_cmp",
    "drift_type",
    "count_delta",
    "avg_delta",
    "percent_null_delta",
    "percent_zeros_delta",
    "percent_distinct_delta",
    "js_distance",
    "ks_test",
    "wasserstein_distance",
    "population_stability_index",
    "chi_squared_test",
    "tv_distance",
    "l_infinity_distance",
];

fn text<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    object.get(field).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn required<'a>(object: &'a Value, field: &str, within: &str) -> Result<&'a str> {
    text(object, field).ok_or_else(|| invalid(format!("{within}.{field} is required")))
}

fn granularities(object: &Value, within: &str) -> Result<Vec<(String, Granularity)>> {
    let list = object.get("granularities").and_then(Value::as_array).filter(|a| !a.is_empty());
    let list = list.ok_or_else(|| invalid(format!("{within}.granularities needs at least one granularity")))?;
    list.iter()
        .map(|g| {
            let g = g.as_str().ok_or_else(|| invalid("granularities must be strings"))?;
            Ok((g.to_string(), Granularity::parse(g)?))
        })
        .collect()
}

fn slicing_exprs(body: &Value) -> Result<Vec<String>> {
    let Some(list) = body.get("slicing_exprs").filter(|v| !v.is_null()) else { return Ok(Vec::new()) };
    let list = list.as_array().ok_or_else(|| invalid("slicing_exprs must be a list of SQL expressions"))?;
    let mut exprs: Vec<String> = Vec::with_capacity(list.len());
    for e in list {
        let e = e.as_str().map(str::trim).filter(|e| !e.is_empty());
        let e = e.ok_or_else(|| invalid("slicing_exprs entries must be non-empty SQL expressions"))?;
        if !exprs.iter().any(|x| x == e) {
            exprs.push(e.to_string());
        }
    }
    Ok(exprs)
}

impl MonitorSpec {
    /// Everything a kept profile depends on: a kept state whose fingerprint
    /// differs is recomputed. (Debug output is stable within a build; a new
    /// build that prints it differently only costs one full refresh.)
    pub fn fingerprint(&self) -> String {
        format!("{:?}", (&self.mode, &self.slicing_exprs, &self.custom_metrics))
    }

    /// Reads a create or update body; `columns` are the monitored table's.
    pub fn parse(body: &Value, columns: &[String]) -> Result<Self> {
        let modes: Vec<&str> = ["snapshot", "time_series", "inference_log"]
            .into_iter()
            .filter(|m| body.get(*m).is_some_and(|v| !v.is_null()))
            .collect();
        let mode = match modes.as_slice() {
            ["snapshot"] => Mode::Snapshot,
            ["time_series"] => {
                let ts = &body["time_series"];
                Mode::TimeSeries {
                    timestamp_col: required(ts, "timestamp_col", "time_series")?.to_string(),
                    granularities: granularities(ts, "time_series")?,
                }
            }
            ["inference_log"] => {
                let il = &body["inference_log"];
                let problem = required(il, "problem_type", "inference_log")?;
                let classification = match problem {
                    "PROBLEM_TYPE_CLASSIFICATION" => true,
                    "PROBLEM_TYPE_REGRESSION" => false,
                    other => return Err(invalid(format!("Unknown inference_log.problem_type '{other}'"))),
                };
                Mode::InferenceLog {
                    timestamp_col: required(il, "timestamp_col", "inference_log")?.to_string(),
                    granularities: granularities(il, "inference_log")?,
                    model_id_col: required(il, "model_id_col", "inference_log")?.to_string(),
                    prediction_col: required(il, "prediction_col", "inference_log")?.to_string(),
                    label_col: text(il, "label_col").map(str::to_string),
                    classification,
                }
            }
            _ => return Err(invalid("A monitor needs exactly one of snapshot, time_series and inference_log")),
        };
        crate::schedule::check(body)?;
        for field in ["data_classification_config"] {
            if body.get(field).is_some_and(|v| !v.is_null() && v != &serde_json::json!({})) {
                return Err(MonitorError::NotImplemented(format!("Monitor {field} is not implemented by tarn yet")));
            }
        }
        let spec = Self {
            mode,
            output_schema_name: required(body, "output_schema_name", "monitor")?.to_string(),
            baseline_table_name: text(body, "baseline_table_name").map(str::to_string),
            slicing_exprs: slicing_exprs(body)?,
            custom_metrics: Vec::new(),
        };
        let mut reserved = RESERVED.to_vec();
        if let Mode::InferenceLog { model_id_col, .. } = &spec.mode {
            reserved.push(model_id_col);
        }
        let custom_metrics = crate::custom::parse(body, columns, &reserved)?;
        let spec = Self { custom_metrics, ..spec };
        for column in spec.named_columns() {
            if !columns.iter().any(|c| c.eq_ignore_ascii_case(column)) {
                return Err(invalid(format!("Column '{column}' does not exist in the monitored table")));
            }
        }
        Ok(spec)
    }

    /// The columns the definition names.
    pub fn named_columns(&self) -> Vec<&str> {
        match &self.mode {
            Mode::Snapshot => Vec::new(),
            Mode::TimeSeries { timestamp_col, .. } => vec![timestamp_col],
            Mode::InferenceLog { timestamp_col, model_id_col, prediction_col, label_col, .. } => {
                let mut cols = vec![timestamp_col.as_str(), model_id_col, prediction_col];
                cols.extend(label_col.as_deref());
                cols
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn granularities_cut_windows_on_their_boundaries() {
        let hour = Granularity::parse("1 hour").unwrap();
        assert_eq!(hour.window(3_600_000 + 5), (3_600_000, 7_200_000));
        let month = Granularity::parse("1 month").unwrap();
        // 2024-02-15 falls in February 2024.
        assert_eq!(month.window(1_707_955_200_000), (1_706_745_600_000, 1_709_251_200_000));
        assert!(Granularity::parse("3 fortnights").is_err());
        assert_eq!(Granularity::parse("2 weeks").unwrap(), Granularity::Days(14));
    }

    #[test]
    fn a_missing_column_is_refused() {
        let cols = vec!["ts".to_string(), "x".to_string()];
        let body = json!({"output_schema_name": "main.m", "time_series": {"timestamp_col": "when", "granularities": ["1 day"]}});
        let err = MonitorSpec::parse(&body, &cols).unwrap_err();
        assert!(err.to_string().contains("'when'"), "{err}");
        let body = json!({"output_schema_name": "main.m", "snapshot": {}});
        assert_eq!(MonitorSpec::parse(&body, &cols).unwrap().mode, Mode::Snapshot);
        let both = json!({"output_schema_name": "main.m", "snapshot": {}, "time_series": {}});
        assert!(MonitorSpec::parse(&both, &cols).is_err());
    }
}
