//! One streaming pass over a Delta table (DataFusion reads it batch by
//! batch): each row goes to its windows (one per granularity, for its
//! model and for all models), and each column's values to that window's
//! sketches, so memory depends on windows and columns, not rows.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use deltalake::DeltaTable;
use deltalake::arrow::array::{Array, ArrayRef, AsArray};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{DataType, Float64Type, Schema, TimeUnit};
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::datafusion::prelude::SessionContext;
use futures_util::StreamExt;

use crate::error::{MonitorError, Result};
use crate::profile::{ColumnProfile, Sketch};
use crate::spec::{Granularity, Mode};

/// Which window a row falls in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WindowKey {
    /// The granularity's text ("1 day"); empty for a snapshot or a baseline.
    pub granularity: String,
    pub start: i64,
    pub end: i64,
    /// The model id for inference logs ("*" for all models), else `None`.
    pub model: Option<String>,
}

/// Prediction quality in one window of an inference log with labels.
#[derive(Debug, Clone, Default)]
pub struct Quality {
    pub labeled: u64,
    pub correct: u64,
    pub squared_error: f64,
    pub absolute_error: f64,
    pub label_sum: f64,
    pub label_square_sum: f64,
}

#[derive(Debug, Clone)]
pub struct WindowProfile {
    pub rows: u64,
    /// In the table's column order.
    pub columns: Vec<ColumnProfile>,
    pub quality: Quality,
}

/// Every window the pass saw, and the table's columns.
pub struct Pass {
    pub column_names: Vec<String>,
    pub windows: BTreeMap<WindowKey, WindowProfile>,
}

/// Spark's name for an Arrow type, as `data_type` shows it.
pub fn spark_type(t: &DataType) -> String {
    match t {
        DataType::Boolean => "boolean",
        DataType::Int8 => "tinyint",
        DataType::Int16 => "smallint",
        DataType::Int32 | DataType::UInt8 | DataType::UInt16 => "int",
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => "bigint",
        DataType::Float16 | DataType::Float32 => "float",
        DataType::Float64 => "double",
        DataType::Decimal128(..) | DataType::Decimal256(..) => "decimal",
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "string",
        DataType::Date32 | DataType::Date64 => "date",
        DataType::Timestamp(_, Some(_)) => "timestamp",
        DataType::Timestamp(_, None) => "timestamp_ntz",
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "binary",
        DataType::List(_) | DataType::LargeList(_) => "array",
        DataType::Struct(_) => "struct",
        DataType::Map(..) => "map",
        _ => "other",
    }
    .to_string()
}

fn is_numeric(t: &DataType) -> bool {
    t.is_numeric()
}

fn is_categorical(t: &DataType) -> bool {
    matches!(t, DataType::Boolean | DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// How rows are assigned to windows.
pub enum Windows<'a> {
    /// One window for the whole table (a snapshot or a baseline), at `at`.
    Whole {
        at: i64,
    },
    Timed {
        timestamp_col: &'a str,
        granularities: &'a [(String, Granularity)],
        model_col: Option<&'a str>,
    },
}

impl<'a> Windows<'a> {
    pub fn of(mode: &'a Mode, at: i64) -> Self {
        match mode {
            Mode::Snapshot => Self::Whole { at },
            Mode::TimeSeries { timestamp_col, granularities } => {
                Self::Timed { timestamp_col, granularities, model_col: None }
            }
            Mode::InferenceLog { timestamp_col, granularities, model_id_col, .. } => {
                Self::Timed { timestamp_col, granularities, model_col: Some(model_id_col) }
            }
        }
    }
}

/// The label and prediction columns whose agreement is measured.
pub struct Scoring<'a> {
    pub prediction_col: &'a str,
    pub label_col: &'a str,
    pub classification: bool,
}

fn column(batch: &RecordBatch, name: &str) -> Result<ArrayRef> {
    let index = batch
        .schema()
        .fields()
        .iter()
        .position(|f| f.name().eq_ignore_ascii_case(name))
        .ok_or_else(|| MonitorError::Refresh(format!("column '{name}' is not in the table")))?;
    Ok(batch.column(index).clone())
}

/// Epoch milliseconds of a timestamp or date column.
fn millis(array: &ArrayRef) -> Result<Vec<Option<i64>>> {
    let as_ms = cast(array, &DataType::Timestamp(TimeUnit::Millisecond, None))
        .and_then(|a| cast(&a, &DataType::Int64))
        .map_err(|e| MonitorError::Refresh(format!("reading the timestamp column: {e}")))?;
    let values = as_ms.as_primitive::<deltalake::arrow::datatypes::Int64Type>();
    Ok((0..values.len()).map(|i| values.is_valid(i).then(|| values.value(i))).collect())
}

fn strings(array: &ArrayRef) -> Result<Vec<Option<String>>> {
    let text =
        cast(array, &DataType::Utf8).map_err(|e| MonitorError::Refresh(format!("reading a column as text: {e}")))?;
    let text = text.as_string::<i32>();
    Ok((0..text.len()).map(|i| text.is_valid(i).then(|| text.value(i).to_string())).collect())
}

/// Reads `table` once and profiles every window.
pub async fn scan(
    table: &DeltaTable,
    windows: &Windows<'_>,
    scoring: Option<&Scoring<'_>>,
    cancel: &AtomicBool,
) -> Result<Pass> {
    let ctx = SessionContext::new();
    table.update_datafusion_session(&ctx.state()).map_err(|e| MonitorError::Refresh(e.to_string()))?;
    let provider = table.table_provider().await.map_err(|e| MonitorError::Refresh(e.to_string()))?;
    let schema: Arc<Schema> = provider.schema();
    ctx.register_table("monitored", provider).map_err(|e| MonitorError::Refresh(e.to_string()))?;
    let frame = ctx.table("monitored").await.map_err(|e| MonitorError::Refresh(e.to_string()))?;
    let mut stream = frame.execute_stream().await.map_err(|e| MonitorError::Refresh(e.to_string()))?;
    let mut pass =
        Pass { column_names: schema.fields().iter().map(|f| f.name().clone()).collect(), windows: BTreeMap::new() };
    let fresh = || WindowProfile {
        rows: 0,
        columns: schema
            .fields()
            .iter()
            .map(|f| {
                ColumnProfile::new(&spark_type(f.data_type()), is_numeric(f.data_type()), is_categorical(f.data_type()))
            })
            .collect(),
        quality: Quality::default(),
    };
    // Decoding the next batches overlaps profiling this one.
    let (tx, mut batches) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        while let Some(batch) = stream.next().await {
            if tx.send(batch).await.is_err() {
                break;
            }
        }
    });
    while let Some(batch) = batches.recv().await {
        if cancel.load(Ordering::Relaxed) {
            return Err(MonitorError::Refresh("the refresh was canceled".into()));
        }
        let batch = batch.map_err(|e| MonitorError::Refresh(format!("reading the table: {e}")))?;
        let groups = group_rows(&batch, windows)?;
        let scored = match scoring {
            Some(s) => Some((column(&batch, s.prediction_col)?, column(&batch, s.label_col)?, s.classification)),
            None => None,
        };
        for (key, rows) in groups {
            let window = pass.windows.entry(key).or_insert_with(fresh);
            window.rows += rows.len() as u64;
            tokio::task::block_in_place(|| add_columns(&mut window.columns, &batch, &rows))?;
            if let Some((prediction, label, classification)) = &scored {
                add_quality(&mut window.quality, prediction, label, *classification, &rows)?;
            }
        }
    }
    Ok(pass)
}

/// The rows of `batch` in each window.
fn group_rows(batch: &RecordBatch, windows: &Windows<'_>) -> Result<HashMap<WindowKey, Vec<usize>>> {
    let mut groups: HashMap<WindowKey, Vec<usize>> = HashMap::new();
    match windows {
        Windows::Whole { at } => {
            let key = WindowKey { granularity: String::new(), start: *at, end: *at, model: None };
            groups.insert(key, (0..batch.num_rows()).collect());
        }
        Windows::Timed { timestamp_col, granularities, model_col } => {
            let times = millis(&column(batch, timestamp_col)?)?;
            let models = match model_col {
                Some(col) => Some(strings(&column(batch, col)?)?),
                None => None,
            };
            for (row, ms) in times.iter().enumerate() {
                let Some(ms) = ms else { continue };
                for (text, granularity) in granularities.iter() {
                    let (start, end) = granularity.window(*ms);
                    let key = |model| WindowKey { granularity: text.clone(), start, end, model };
                    match &models {
                        None => groups.entry(key(None)).or_default().push(row),
                        Some(models) => {
                            let model = models[row].clone().unwrap_or_else(|| "null".into());
                            groups.entry(key(Some(model))).or_default().push(row);
                            groups.entry(key(Some("*".into()))).or_default().push(row);
                        }
                    }
                }
            }
        }
    }
    Ok(groups)
}

/// Adds the rows to every column's profile, the columns split between threads.
fn add_columns(profiles: &mut [ColumnProfile], batch: &RecordBatch, rows: &[usize]) -> Result<()> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_thread = profiles.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = profiles
            .chunks_mut(per_thread)
            .enumerate()
            .map(|(chunk, profiles)| {
                scope.spawn(move || {
                    for (i, profile) in profiles.iter_mut().enumerate() {
                        add_values(profile, batch.column(chunk * per_thread + i), rows)?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles.into_iter().try_for_each(|h| {
            h.join().unwrap_or_else(|_| Err(MonitorError::Refresh("a profiling thread panicked".into())))
        })
    })
}

fn add_values(profile: &mut ColumnProfile, array: &ArrayRef, rows: &[usize]) -> Result<()> {
    // A batch wholly in one window (a snapshot, mostly) is read straight through.
    let whole = rows.len() == array.len();
    profile.rows += rows.len() as u64;
    profile.nulls +=
        if whole { array.null_count() as u64 } else { rows.iter().filter(|&&r| array.is_null(r)).count() as u64 };
    let each = |visit: &mut dyn FnMut(usize)| {
        if whole {
            (0..array.len()).for_each(&mut *visit);
        } else {
            rows.iter().for_each(|&r| visit(r));
        }
    };
    match &mut profile.sketch {
        Sketch::Numeric(numbers) => {
            let values = cast(array, &DataType::Float64).map_err(|e| MonitorError::Refresh(e.to_string()))?;
            let values = values.as_primitive::<Float64Type>();
            if whole && values.null_count() == 0 {
                numbers.add_all(values.values());
            } else {
                each(&mut |r| {
                    if values.is_valid(r) {
                        numbers.add(values.value(r));
                    }
                });
            }
        }
        // Parquet strings come back as views; other text is cast once.
        Sketch::Categorical(items) => match array.as_string_view_opt() {
            Some(text) => each(&mut |r| {
                if text.is_valid(r) {
                    items.add(text.value(r));
                }
            }),
            None => {
                let text = cast(array, &DataType::Utf8).map_err(|e| MonitorError::Refresh(e.to_string()))?;
                let text = text.as_string::<i32>();
                each(&mut |r| {
                    if text.is_valid(r) {
                        items.add(text.value(r));
                    }
                });
            }
        },
        Sketch::Other => {}
    }
    Ok(())
}

fn add_quality(
    q: &mut Quality,
    prediction: &ArrayRef,
    label: &ArrayRef,
    classification: bool,
    rows: &[usize],
) -> Result<()> {
    if classification {
        let (p, l) = (strings(prediction)?, strings(label)?);
        for &r in rows {
            if let (Some(p), Some(l)) = (&p[r], &l[r]) {
                q.labeled += 1;
                q.correct += u64::from(p == l);
            }
        }
        return Ok(());
    }
    let float = |a: &ArrayRef| cast(a, &DataType::Float64).map_err(|e| MonitorError::Refresh(e.to_string()));
    let (p, l) = (float(prediction)?, float(label)?);
    let (p, l) = (p.as_primitive::<Float64Type>(), l.as_primitive::<Float64Type>());
    for &r in rows {
        if p.is_valid(r) && l.is_valid(r) {
            let (p, l) = (p.value(r), l.value(r));
            q.labeled += 1;
            q.squared_error += (p - l).powi(2);
            q.absolute_error += (p - l).abs();
            q.label_sum += l;
            q.label_square_sum += l * l;
        }
    }
    Ok(())
}
