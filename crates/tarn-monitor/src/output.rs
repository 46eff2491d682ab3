//! The monitor's output tables, in the columns Databricks writes:
//! `<table>_profile_metrics` (a row per window, model, column; `:table`
//! for the table as a whole) and `<table>_drift_metrics` (a row per window,
//! column and drift type, CONSECUTIVE against the window before and
//! BASELINE against the baseline table), each in the whole table
//! (`slice_key` NULL) and in each slice. A refresh may ask for the rows of
//! some windows only: those its new rows changed.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use deltalake::arrow::array::{
    ArrayRef, BooleanBufferBuilder, Float64Array, Int32Array, Int64Array, ListArray, StringArray, StructArray,
    TimestampMicrosecondArray,
};
use deltalake::arrow::buffer::{NullBuffer, OffsetBuffer};
use deltalake::arrow::datatypes::{DataType, Field, Fields, TimeUnit};
use deltalake::arrow::record_batch::RecordBatch;

use crate::drift;
use crate::error::{MonitorError, Result};
use crate::profile::{ColumnProfile, Sketch};
use crate::window::{Pass, Slice, WindowKey, WindowProfile};

/// Quantile points of `quantiles` in the profile table (0, 0.01, ..., 1).
const PROFILE_QUANTILES: usize = 101;
const FREQUENT_ITEMS: usize = 10;

/// One profile row before it becomes columns.
struct ProfileRow {
    key: WindowKey,
    /// `logging_table_commit_version`.
    version: i64,
    log_type: &'static str,
    column_name: String,
    data_type: String,
    count: i64,
    num_nulls: Option<i64>,
    avg: Option<f64>,
    quantiles: Option<Vec<f64>>,
    min: Option<f64>,
    max: Option<f64>,
    stddev: Option<f64>,
    num_zeros: Option<i64>,
    num_nan: Option<i64>,
    lengths: Option<(f64, f64, f64)>,
    non_null_columns: Option<Vec<String>>,
    frequent_items: Option<Vec<(String, u64)>>,
    distinct_count: Option<i64>,
    quality: [Option<f64>; 5],
}

fn pct(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 * 100.0 / whole as f64)
}

fn column_row(key: &WindowKey, version: i64, log_type: &'static str, name: &str, p: &mut ColumnProfile) -> ProfileRow {
    let mut row = ProfileRow {
        key: key.clone(),
        version,
        log_type,
        column_name: name.to_string(),
        data_type: p.data_type.clone(),
        count: p.rows as i64,
        num_nulls: Some(p.nulls as i64),
        avg: None,
        quantiles: None,
        min: None,
        max: None,
        stddev: None,
        num_zeros: None,
        num_nan: None,
        lengths: None,
        non_null_columns: None,
        frequent_items: None,
        distinct_count: p.distinct().map(|d| d as i64),
        quality: [None; 5],
    };
    match &mut p.sketch {
        Sketch::Numeric(n) if n.numbers() > 0 => {
            let points: Vec<f64> = (0..PROFILE_QUANTILES).map(|i| i as f64 / (PROFILE_QUANTILES - 1) as f64).collect();
            row.avg = Some(n.mean);
            row.quantiles = Some(n.quantiles(&points));
            row.min = Some(n.min);
            row.max = Some(n.max);
            row.stddev = n.stddev();
            row.num_zeros = Some(n.zeros as i64);
            row.num_nan = Some(n.nan as i64);
        }
        Sketch::Numeric(n) => {
            row.num_zeros = Some(0);
            row.num_nan = Some(n.nan as i64);
        }
        Sketch::Categorical(c) => {
            if c.count > 0 {
                row.lengths = Some((
                    c.min_length.unwrap_or(0) as f64,
                    c.max_length as f64,
                    c.total_length as f64 / c.count as f64,
                ));
            }
            row.frequent_items = Some(c.frequent(FREQUENT_ITEMS));
        }
        Sketch::Other => {}
    }
    row
}

fn table_row(
    key: &WindowKey,
    log_type: &'static str,
    names: &[String],
    w: &WindowProfile,
    classification: Option<bool>,
) -> ProfileRow {
    let non_null: Vec<String> =
        names.iter().zip(&w.columns).filter(|(_, p)| p.nulls < p.rows).map(|(n, _)| n.clone()).collect();
    let q = &w.quality;
    let n = q.labeled as f64;
    let quality = match classification {
        _ if q.labeled == 0 => [None; 5],
        Some(true) => [Some(q.correct as f64 / n), None, None, None, None],
        _ => {
            let mse = q.squared_error / n;
            let total = q.label_square_sum - q.label_sum * q.label_sum / n;
            let r2 = (total > 0.0).then(|| 1.0 - q.squared_error / total);
            [None, Some(mse), Some(mse.sqrt()), Some(q.absolute_error / n), r2]
        }
    };
    ProfileRow {
        key: key.clone(),
        version: w.version,
        log_type,
        column_name: ":table".into(),
        data_type: ":table".into(),
        count: w.rows as i64,
        num_nulls: None,
        avg: None,
        quantiles: None,
        min: None,
        max: None,
        stddev: None,
        num_zeros: None,
        num_nan: None,
        lengths: None,
        non_null_columns: Some(non_null),
        frequent_items: None,
        distinct_count: None,
        quality,
    }
}

/// The profile rows of a pass (`log_type` INPUT or BASELINE), of the
/// windows in `only` if given.
fn profile_rows(
    pass: &mut Pass,
    log_type: &'static str,
    classification: Option<bool>,
    only: Option<&HashSet<WindowKey>>,
    out: &mut Vec<ProfileRow>,
) {
    for (key, window) in pass.windows.iter_mut() {
        if only.is_some_and(|o| !o.contains(key)) {
            continue;
        }
        out.push(table_row(key, log_type, &pass.column_names, window, classification));
        for (name, profile) in pass.column_names.iter().zip(window.columns.iter_mut()) {
            out.push(column_row(key, window.version, log_type, name, profile));
        }
    }
}

fn slice_key(key: &WindowKey) -> Option<&str> {
    key.slice.as_ref().map(|s| s.key.as_str())
}

fn slice_value(key: &WindowKey) -> Option<&str> {
    key.slice.as_ref().and_then(|s| s.value.as_deref())
}

fn window_array(starts: Vec<Option<i64>>, ends: Vec<Option<i64>>) -> ArrayRef {
    let valid: Vec<bool> = starts.iter().map(Option::is_some).collect();
    let ts = |v: Vec<Option<i64>>| -> ArrayRef {
        Arc::new(
            TimestampMicrosecondArray::from(v.into_iter().map(|t| t.map(|ms| ms * 1000)).collect::<Vec<_>>())
                .with_timezone("UTC"),
        )
    };
    let ts_type = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let fields = Fields::from(vec![Field::new("start", ts_type.clone(), true), Field::new("end", ts_type, true)]);
    Arc::new(StructArray::new(fields, vec![ts(starts), ts(ends)], Some(NullBuffer::from(valid))))
}

fn doubles(v: impl Iterator<Item = Option<f64>>) -> ArrayRef {
    Arc::new(Float64Array::from(v.collect::<Vec<_>>()))
}

fn longs(v: impl Iterator<Item = Option<i64>>) -> ArrayRef {
    Arc::new(Int64Array::from(v.collect::<Vec<_>>()))
}

fn texts<'a>(v: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(StringArray::from(v.collect::<Vec<_>>()))
}

fn list_of<T>(rows: &[Option<Vec<T>>], item: Field, values: ArrayRef) -> Result<ArrayRef> {
    let offsets = OffsetBuffer::from_lengths(rows.iter().map(|r| r.as_ref().map_or(0, Vec::len)));
    let mut valid = BooleanBufferBuilder::new(rows.len());
    rows.iter().for_each(|r| valid.append(r.is_some()));
    let nulls = NullBuffer::new(valid.finish());
    ListArray::try_new(Arc::new(item), offsets, values, Some(nulls))
        .map(|a| Arc::new(a) as ArrayRef)
        .map_err(|e| MonitorError::Refresh(e.to_string()))
}

fn pair_struct(fields: [(&str, DataType); 2], arrays: [ArrayRef; 2], valid: Vec<bool>) -> ArrayRef {
    let fields = Fields::from(fields.into_iter().map(|(n, t)| Field::new(n, t, true)).collect::<Vec<_>>());
    Arc::new(StructArray::new(fields, arrays.to_vec(), Some(NullBuffer::from(valid))))
}

/// The `_profile_metrics` batch of the current pass (the windows in
/// `only`, or all) and, if given, the baseline's.
pub fn profile_batch(
    current: &mut Pass,
    baseline: Option<&mut Pass>,
    model_col: Option<&str>,
    classification: Option<bool>,
    only: Option<&HashSet<WindowKey>>,
) -> Result<RecordBatch> {
    let mut rows = Vec::new();
    profile_rows(current, "INPUT", classification, only, &mut rows);
    if let Some(baseline) = baseline {
        profile_rows(baseline, "BASELINE", classification, None, &mut rows);
    }
    profile_columns(&rows, model_col)
}

fn profile_columns(rows: &[ProfileRow], model_col: Option<&str>) -> Result<RecordBatch> {
    let quantiles: Vec<Option<Vec<f64>>> = rows.iter().map(|r| r.quantiles.clone()).collect();
    let quantile_values = doubles(quantiles.iter().flatten().flatten().map(|v| Some(*v)));
    let items: Vec<Option<Vec<(String, u64)>>> = rows.iter().map(|r| r.frequent_items.clone()).collect();
    let flat: Vec<&(String, u64)> = items.iter().flatten().flatten().collect();
    let item_fields =
        Fields::from(vec![Field::new("item", DataType::Utf8, true), Field::new("count", DataType::Int64, true)]);
    let item_values: ArrayRef = Arc::new(StructArray::new(
        item_fields.clone(),
        vec![texts(flat.iter().map(|(i, _)| Some(i.as_str()))), longs(flat.iter().map(|(_, c)| Some(*c as i64)))],
        None,
    ));
    let non_null: Vec<Option<Vec<String>>> = rows.iter().map(|r| r.non_null_columns.clone()).collect();
    let non_null_values = texts(non_null.iter().flatten().flatten().map(|s| Some(s.as_str())));
    let percent = |f: &dyn Fn(&ProfileRow) -> Option<i64>| {
        doubles(rows.iter().map(|r| f(r).and_then(|n| pct(n as u64, r.count as u64))))
    };
    let percent_distinct = doubles(rows.iter().map(|r| {
        let counted = r.count as u64 - r.num_nulls.unwrap_or(0) as u64;
        r.distinct_count.and_then(|d| pct((d as u64).min(counted), counted))
    }));
    let mut columns: Vec<(&str, ArrayRef)> = vec![
        (
            "window",
            window_array(
                rows.iter().map(|r| Some(r.key.start)).collect(),
                rows.iter().map(|r| Some(r.key.end)).collect(),
            ),
        ),
        ("log_type", texts(rows.iter().map(|r| Some(r.log_type)))),
        (
            "logging_table_commit_version",
            Arc::new(Int32Array::from(rows.iter().map(|r| Some(r.version as i32)).collect::<Vec<_>>())),
        ),
        ("monitor_version", longs(rows.iter().map(|_| Some(1)))),
        ("granularity", texts(rows.iter().map(|r| Some(r.key.granularity.as_str()).filter(|g| !g.is_empty())))),
        ("slice_key", texts(rows.iter().map(|r| slice_key(&r.key)))),
        ("slice_value", texts(rows.iter().map(|r| slice_value(&r.key)))),
        ("column_name", texts(rows.iter().map(|r| Some(r.column_name.as_str())))),
        ("data_type", texts(rows.iter().map(|r| Some(r.data_type.as_str())))),
        ("count", longs(rows.iter().map(|r| Some(r.count)))),
        ("num_nulls", longs(rows.iter().map(|r| r.num_nulls))),
        ("avg", doubles(rows.iter().map(|r| r.avg))),
        ("quantiles", list_of(&quantiles, Field::new("element", DataType::Float64, true), quantile_values)?),
        ("min", doubles(rows.iter().map(|r| r.min))),
        ("max", doubles(rows.iter().map(|r| r.max))),
        ("stddev", doubles(rows.iter().map(|r| r.stddev))),
        ("num_zeros", longs(rows.iter().map(|r| r.num_zeros))),
        ("num_nan", longs(rows.iter().map(|r| r.num_nan))),
        ("min_length", doubles(rows.iter().map(|r| r.lengths.map(|l| l.0)))),
        ("max_length", doubles(rows.iter().map(|r| r.lengths.map(|l| l.1)))),
        ("avg_length", doubles(rows.iter().map(|r| r.lengths.map(|l| l.2)))),
        ("non_null_columns", list_of(&non_null, Field::new("element", DataType::Utf8, true), non_null_values)?),
        ("frequent_items", list_of(&items, Field::new("element", DataType::Struct(item_fields), true), item_values)?),
        (
            "median",
            doubles(rows.iter().map(|r| r.quantiles.as_ref().and_then(|q| q.get(PROFILE_QUANTILES / 2).copied()))),
        ),
        ("distinct_count", longs(rows.iter().map(|r| r.distinct_count))),
        ("percent_nan", percent(&|r| r.num_nan)),
        ("percent_null", percent(&|r| r.num_nulls)),
        ("percent_zeros", percent(&|r| r.num_zeros)),
        ("percent_distinct", percent_distinct),
    ];
    let quality_names =
        ["accuracy_score", "mean_squared_error", "root_mean_squared_error", "mean_absolute_error", "r2_score"];
    for (i, name) in quality_names.iter().enumerate() {
        columns.push((name, doubles(rows.iter().map(|r| r.quality[i]))));
    }
    if let Some(model_col) = model_col {
        columns.insert(5, (model_col, texts(rows.iter().map(|r| r.key.model.as_deref()))));
    }
    batch(columns)
}

fn batch(columns: Vec<(&str, ArrayRef)>) -> Result<RecordBatch> {
    RecordBatch::try_from_iter_with_nullable(columns.into_iter().map(|(n, a)| (n, a, true)))
        .map_err(|e| MonitorError::Refresh(format!("building an output batch: {e}")))
}

/// One drift row: a window's column against the window it is compared with.
struct DriftRow {
    key: WindowKey,
    cmp: Option<(i64, i64)>,
    drift_type: &'static str,
    column_name: String,
    data_type: String,
    count_delta: f64,
    avg_delta: Option<f64>,
    percent_null_delta: Option<f64>,
    percent_zeros_delta: Option<f64>,
    percent_distinct_delta: Option<f64>,
    ks: Option<(f64, f64)>,
    wasserstein: Option<f64>,
    psi: Option<f64>,
    categorical: Option<drift::Categorical>,
}

fn compare(
    key: &WindowKey,
    cmp: Option<(i64, i64)>,
    kind: &'static str,
    name: &str,
    now: &mut ColumnProfile,
    then: &mut ColumnProfile,
) -> DriftRow {
    let null_pct = |p: &ColumnProfile| pct(p.nulls, p.rows).unwrap_or(0.0);
    let distinct_pct = |p: &ColumnProfile| p.distinct().and_then(|d| pct(d.min(p.rows - p.nulls), p.rows - p.nulls));
    let mut row = DriftRow {
        key: key.clone(),
        cmp,
        drift_type: kind,
        column_name: name.to_string(),
        data_type: now.data_type.clone(),
        count_delta: now.rows as f64 - then.rows as f64,
        avg_delta: None,
        percent_null_delta: Some(null_pct(now) - null_pct(then)),
        percent_zeros_delta: None,
        percent_distinct_delta: distinct_pct(now).zip(distinct_pct(then)).map(|(a, b)| a - b),
        ks: None,
        wasserstein: None,
        psi: None,
        categorical: None,
    };
    match (&mut now.sketch, &mut then.sketch) {
        (Sketch::Numeric(a), Sketch::Numeric(b)) if a.numbers() > 0 && b.numbers() > 0 => {
            let grid = drift::grid();
            let (qa, qb) = (a.quantiles(&grid), b.quantiles(&grid));
            row.avg_delta = Some(a.mean - b.mean);
            row.percent_zeros_delta = pct(a.zeros, a.count).zip(pct(b.zeros, b.count)).map(|(x, y)| x - y);
            row.ks = Some(drift::ks_test(&qa, a.numbers(), &qb, b.numbers()));
            row.wasserstein = Some(drift::wasserstein(&qa, &qb));
            row.psi = Some(drift::psi(&qa, &qb));
        }
        (Sketch::Categorical(a), Sketch::Categorical(b)) => row.categorical = drift::categorical(&a.items, &b.items),
        _ => {}
    }
    row
}

/// The `_drift_metrics` batch: each window against the window before it
/// (same granularity, model and slice) and against the baseline (its same
/// slice). With `touched`, only the rows of those windows and of the
/// windows right after them (whose CONSECUTIVE drift they change); also
/// answers which windows' rows it wrote.
pub fn drift_batch(
    current: &mut Pass,
    baseline: Option<&mut Pass>,
    model_col: Option<&str>,
    touched: Option<&HashSet<WindowKey>>,
) -> Result<(RecordBatch, HashSet<WindowKey>)> {
    let (rows, written) = drift_rows(current, baseline, touched)?;
    Ok((drift_columns(&rows, model_col)?, written))
}

/// The drift rows of [`drift_batch`], and the windows they are of.
fn drift_rows(
    current: &mut Pass,
    mut baseline: Option<&mut Pass>,
    touched: Option<&HashSet<WindowKey>>,
) -> Result<(Vec<DriftRow>, HashSet<WindowKey>)> {
    let mut rows = Vec::new();
    let keys: Vec<WindowKey> = current.windows.keys().cloned().collect();
    let names = current.column_names.clone();
    let base_index: Vec<Option<usize>> = match baseline.as_deref() {
        Some(b) => names.iter().map(|n| b.column_names.iter().position(|m| m.eq_ignore_ascii_case(n))).collect(),
        None => Vec::new(),
    };
    let base_keys: HashMap<Option<Slice>, WindowKey> = match baseline.as_deref() {
        Some(b) => b.windows.keys().rev().map(|k| (k.slice.clone(), k.clone())).collect(),
        None => HashMap::new(),
    };
    let mut last: HashMap<(String, Option<String>, Option<Slice>), WindowKey> = HashMap::new();
    let mut written = HashSet::new();
    // Keys are ordered by granularity then start, so each series comes in time order.
    for key in &keys {
        let previous = last.insert((key.granularity.clone(), key.model.clone(), key.slice.clone()), key.clone());
        if let Some(touched) = touched
            && !touched.contains(key)
            && !previous.as_ref().is_some_and(|p| touched.contains(p))
        {
            continue;
        }
        written.insert(key.clone());
        if let Some(previous) = previous {
            let mut then = current.windows[&previous].clone();
            let now = current.windows.get_mut(key).ok_or_else(|| MonitorError::Refresh("window vanished".into()))?;
            for ((name, a), b) in names.iter().zip(now.columns.iter_mut()).zip(then.columns.iter_mut()) {
                rows.push(compare(key, Some((previous.start, previous.end)), "CONSECUTIVE", name, a, b));
            }
        }
        let base_key = base_keys.get(&key.slice);
        if let Some(base) = baseline.as_deref_mut().zip(base_key).and_then(|(b, k)| b.windows.get_mut(k)) {
            let now = current.windows.get_mut(key).ok_or_else(|| MonitorError::Refresh("window vanished".into()))?;
            for ((name, a), index) in names.iter().zip(now.columns.iter_mut()).zip(base_index.iter().copied()) {
                if let Some(b) = index.and_then(|j| base.columns.get_mut(j)) {
                    rows.push(compare(key, None, "BASELINE", name, a, b));
                }
            }
        }
    }
    Ok((rows, written))
}

fn drift_columns(rows: &[DriftRow], model_col: Option<&str>) -> Result<RecordBatch> {
    let struct_of = |f: &dyn Fn(&DriftRow) -> Option<(f64, f64)>| {
        let values: Vec<Option<(f64, f64)>> = rows.iter().map(f).collect();
        pair_struct(
            [("statistic", DataType::Float64), ("pvalue", DataType::Float64)],
            [doubles(values.iter().map(|v| v.map(|p| p.0))), doubles(values.iter().map(|v| v.map(|p| p.1)))],
            values.iter().map(Option::is_some).collect(),
        )
    };
    let mut columns: Vec<(&str, ArrayRef)> = vec![
        (
            "window",
            window_array(
                rows.iter().map(|r| Some(r.key.start)).collect(),
                rows.iter().map(|r| Some(r.key.end)).collect(),
            ),
        ),
        ("granularity", texts(rows.iter().map(|r| Some(r.key.granularity.as_str()).filter(|g| !g.is_empty())))),
        ("monitor_version", longs(rows.iter().map(|_| Some(1)))),
        ("slice_key", texts(rows.iter().map(|r| slice_key(&r.key)))),
        ("slice_value", texts(rows.iter().map(|r| slice_value(&r.key)))),
        ("column_name", texts(rows.iter().map(|r| Some(r.column_name.as_str())))),
        ("data_type", texts(rows.iter().map(|r| Some(r.data_type.as_str())))),
        (
            "window_cmp",
            window_array(
                rows.iter().map(|r| r.cmp.map(|c| c.0)).collect(),
                rows.iter().map(|r| r.cmp.map(|c| c.1)).collect(),
            ),
        ),
        ("drift_type", texts(rows.iter().map(|r| Some(r.drift_type)))),
        ("count_delta", doubles(rows.iter().map(|r| Some(r.count_delta)))),
        ("avg_delta", doubles(rows.iter().map(|r| r.avg_delta))),
        ("percent_null_delta", doubles(rows.iter().map(|r| r.percent_null_delta))),
        ("percent_zeros_delta", doubles(rows.iter().map(|r| r.percent_zeros_delta))),
        ("percent_distinct_delta", doubles(rows.iter().map(|r| r.percent_distinct_delta))),
        ("js_distance", doubles(rows.iter().map(|r| r.categorical.map(|c| c.js)))),
        ("ks_test", struct_of(&|r| r.ks)),
        ("wasserstein_distance", doubles(rows.iter().map(|r| r.wasserstein))),
        ("population_stability_index", doubles(rows.iter().map(|r| r.psi))),
        ("chi_squared_test", struct_of(&|r| r.categorical.map(|c| c.chi_squared))),
        ("tv_distance", doubles(rows.iter().map(|r| r.categorical.map(|c| c.tv)))),
        ("l_infinity_distance", doubles(rows.iter().map(|r| r.categorical.map(|c| c.l_infinity)))),
    ];
    if let Some(model_col) = model_col {
        columns.insert(5, (model_col, texts(rows.iter().map(|r| r.key.model.as_deref()))));
    }
    batch(columns)
}
