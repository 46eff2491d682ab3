//! `metrics/get-history-bulk-interval`: one metric's history across runs,
//! sampled to at most `max_results` points a run as the MLflow server
//! samples it (evenly spaced rows, the last one always kept), for charts.

use tarn_store::mlflow::MetricRow;

use crate::{MlflowError, Result, Tracking};

/// The server's bounds on run count and points a run.
pub const MAX_RUNS: usize = 100;
pub const MAX_POINTS: i64 = 2500;

/// The first row of each of `max` near-equal buckets (SQL's NTILE), with
/// the last row in place of the final pick when it was not picked.
fn sample(mut rows: Vec<MetricRow>, max: usize) -> Vec<MetricRow> {
    rows.sort_by(|a, b| {
        (a.step, a.timestamp)
            .cmp(&(b.step, b.timestamp))
            .then(a.value.total_cmp(&b.value))
            .then(a.is_nan.cmp(&b.is_nan))
    });
    let n = rows.len();
    let Some(last) = rows.last().cloned() else { return rows };
    let buckets = max.min(n);
    let (small, extra) = (n / buckets, n % buckets);
    let mut picked = Vec::with_capacity(buckets);
    let mut start = 0;
    for bucket in 0..buckets {
        picked.push(rows[start].clone());
        start += small + usize::from(bucket < extra);
    }
    if picked.last() != Some(&last) {
        if picked.len() >= max {
            picked.pop();
        }
        picked.push(last);
    }
    picked
}

impl Tracking {
    /// Each run's sampled history of `key`, optionally within
    /// `[start_step, end_step]` (both or neither).
    pub fn sampled_history(
        &self,
        run_ids: &[String],
        key: &str,
        max_results: Option<i64>,
        steps: (Option<i64>, Option<i64>),
    ) -> Result<Vec<(String, MetricRow)>> {
        if run_ids.is_empty() || run_ids.len() > MAX_RUNS {
            return Err(MlflowError::InvalidParameter(format!(
                "GetMetricHistoryBulkInterval request must specify between 1 and {MAX_RUNS} run_ids. Received {} \
                 run_ids.",
                run_ids.len()
            )));
        }
        let max = max_results.unwrap_or(MAX_POINTS);
        if !(1..=MAX_POINTS).contains(&max) {
            return Err(MlflowError::InvalidParameter(format!("max_results must be between 1 and {MAX_POINTS}.")));
        }
        let range = match steps {
            (Some(start), Some(end)) if start > end => {
                return Err(MlflowError::InvalidParameter(format!(
                    "end_step must be greater than start_step. Found start_step={start} and end_step={end}."
                )));
            }
            (Some(start), Some(end)) => Some((start, end)),
            (None, None) => None,
            _ => {
                return Err(MlflowError::InvalidParameter(
                    "If either start step or end step are specified, both must be specified.".into(),
                ));
            }
        };
        let mut out = Vec::new();
        for run_id in run_ids {
            let rows = self
                .metric_history(run_id, key)?
                .into_iter()
                .filter(|m| range.is_none_or(|(start, end)| (start..=end).contains(&m.step)))
                .collect();
            let max = usize::try_from(max).unwrap_or(1);
            out.extend(sample(rows, max).into_iter().map(|m| (run_id.clone(), m)));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(steps: std::ops::Range<i64>) -> Vec<MetricRow> {
        steps.map(|step| MetricRow { key: "m".into(), value: step as f64, is_nan: false, timestamp: 0, step }).collect()
    }

    fn steps(rows: &[MetricRow]) -> Vec<i64> {
        rows.iter().map(|m| m.step).collect()
    }

    #[test]
    fn samples_evenly_and_keeps_the_last_point() {
        assert_eq!(steps(&sample(rows(0..10), 3)), vec![0, 4, 9]);
        assert_eq!(steps(&sample(rows(0..10), 5)), vec![0, 2, 4, 6, 9]);
        assert_eq!(steps(&sample(rows(0..4), 10)), vec![0, 1, 2, 3]);
        assert_eq!(steps(&sample(rows(0..10), 1)), vec![9]);
        assert!(sample(Vec::new(), 3).is_empty());
    }
}
