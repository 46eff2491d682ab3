//! One streaming pass over a Delta table, or over the data files a
//! refresh has not read yet (DataFusion reads them batch by batch): each
//! row goes to its windows (one per granularity, for its model and for all
//! models, unsliced and in each of its slices), and each column's values to
//! that window's sketches, so memory depends on windows and columns, not
//! rows. Windows and passes merge and write themselves to bytes, so a
//! refresh adds new rows to what the last one kept.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use deltalake::DeltaTable;
use deltalake::arrow::array::{Array, ArrayRef, AsArray};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{DataType, Float64Type, Schema, TimeUnit};
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::datafusion::dataframe::DataFrame;
use deltalake::datafusion::prelude::{Expr, SessionContext};
use futures_util::StreamExt;

use crate::error::{MonitorError, Result};
use crate::profile::{ColumnProfile, Sketch};
use crate::slicing::SliceSet;
use crate::spec::{Granularity, Mode};
use crate::window::{Pass, Quality, Slice, WindowKey, WindowProfile};

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
#[derive(Clone, Copy)]
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
pub(crate) fn millis(array: &ArrayRef) -> Result<Vec<Option<i64>>> {
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

fn refresh_error(e: impl std::fmt::Display) -> MonitorError {
    MonitorError::Refresh(e.to_string())
}

/// What a pass reads: the whole table, or only some of its data files.
pub struct Source {
    pub ctx: SessionContext,
    pub frame: DataFrame,
    /// The table's columns (the profiled ones).
    pub schema: Arc<Schema>,
    /// Data files read.
    pub files: usize,
}

impl Source {
    /// `files`: paths relative to the table root, as the log's `add`
    /// actions name them; `None` for every file of the version loaded.
    pub async fn open(table: &DeltaTable, files: Option<Vec<String>>) -> Result<Self> {
        let ctx = SessionContext::new();
        table.update_datafusion_session(&ctx.state()).map_err(refresh_error)?;
        let count = match &files {
            Some(f) => f.len(),
            None => table.snapshot().map_err(refresh_error)?.log_data().iter().count(),
        };
        let builder = table.table_provider();
        let provider = match files {
            Some(paths) => builder.with_file_paths(paths).await,
            None => builder.await,
        }
        .map_err(refresh_error)?;
        let schema: Arc<Schema> = provider.schema();
        ctx.register_table("monitored", provider).map_err(refresh_error)?;
        let frame = ctx.table("monitored").await.map_err(refresh_error)?;
        Ok(Self { ctx, frame, schema, files: count })
    }

    /// A `slicing_exprs` entry as a DataFusion expression over the table.
    pub fn expression(&self, text: &str) -> Result<Expr> {
        self.ctx.parse_sql_expr(text, self.frame.schema()).map_err(|e| MonitorError::InvalidParameter(e.to_string()))
    }
}

/// How a pass profiles what it reads.
pub struct Plan<'a> {
    pub windows: Windows<'a>,
    pub scoring: Option<Scoring<'a>>,
    /// Slices, each with the values that get one.
    pub slices: &'a [SliceSet],
    /// The table version read (`logging_table_commit_version`).
    pub version: i64,
}

/// Reads the source once and profiles every window; also answers how many rows it read.
pub async fn scan(source: Source, plan: &Plan<'_>, cancel: &AtomicBool) -> Result<(Pass, u64)> {
    let schema = source.schema.clone();
    let mut projection: Vec<Expr> =
        schema.fields().iter().map(|f| deltalake::datafusion::prelude::ident(f.name())).collect();
    for (i, slice) in plan.slices.iter().enumerate() {
        projection.push(source.expression(&slice.text)?.alias(format!("__tarn_slice_{i}")));
    }
    let frame = source.frame.select(projection).map_err(refresh_error)?;
    let mut stream = frame.execute_stream().await.map_err(refresh_error)?;
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
        version: plan.version,
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
    let mut rows_read = 0;
    while let Some(batch) = batches.recv().await {
        if cancel.load(Ordering::Relaxed) {
            return Err(MonitorError::Refresh("the refresh was canceled".into()));
        }
        let batch = batch.map_err(|e| MonitorError::Refresh(format!("reading the table: {e}")))?;
        rows_read += batch.num_rows() as u64;
        let groups = group_rows(&batch, &plan.windows, plan.slices, schema.fields().len())?;
        let scored = match &plan.scoring {
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
    Ok((pass, rows_read))
}

/// The window keys of one row before slicing, pushed into `out`.
fn row_windows(windows: &Windows<'_>, ms: Option<i64>, model: Option<&Option<String>>, out: &mut Vec<WindowKey>) {
    out.clear();
    match windows {
        Windows::Whole { at } => {
            out.push(WindowKey { granularity: String::new(), start: *at, end: *at, model: None, slice: None })
        }
        Windows::Timed { granularities, .. } => {
            let Some(ms) = ms else { return };
            for (text, granularity) in granularities.iter() {
                let (start, end) = granularity.window(ms);
                let key = |model| WindowKey { granularity: text.clone(), start, end, model, slice: None };
                match model {
                    None => out.push(key(None)),
                    Some(model) => {
                        out.push(key(Some(model.clone().unwrap_or_else(|| "null".into()))));
                        out.push(key(Some("*".into())));
                    }
                }
            }
        }
    }
}

/// The rows of `batch` in each window; the slice values are the batch's
/// columns after the table's `columns`.
fn group_rows(
    batch: &RecordBatch,
    windows: &Windows<'_>,
    slices: &[SliceSet],
    columns: usize,
) -> Result<HashMap<WindowKey, Vec<usize>>> {
    let mut groups: HashMap<WindowKey, Vec<usize>> = HashMap::new();
    let values: Vec<Vec<Option<String>>> =
        (0..slices.len()).map(|i| strings(batch.column(columns + i))).collect::<Result<_>>()?;
    if let (Windows::Whole { .. }, true) = (windows, slices.is_empty()) {
        // A snapshot or a baseline unsliced: the whole batch, with no key per row.
        let mut keys = Vec::new();
        row_windows(windows, None, None, &mut keys);
        groups.extend(keys.into_iter().map(|k| (k, (0..batch.num_rows()).collect())));
        return Ok(groups);
    }
    let (times, models) = match windows {
        Windows::Whole { .. } => (None, None),
        Windows::Timed { timestamp_col, model_col, .. } => {
            let models = match model_col {
                Some(col) => Some(strings(&column(batch, col)?)?),
                None => None,
            };
            (Some(millis(&column(batch, timestamp_col)?)?), models)
        }
    };
    let mut keys = Vec::new();
    for row in 0..batch.num_rows() {
        let ms = times.as_ref().and_then(|t| t[row]);
        row_windows(windows, ms, models.as_ref().map(|m| &m[row]), &mut keys);
        for key in &keys {
            groups.entry(key.clone()).or_default().push(row);
            for (slice, values) in slices.iter().zip(&values) {
                if slice.allowed.contains(&values[row]) {
                    let value = values[row].clone();
                    let sliced = WindowKey { slice: Some(Slice { key: slice.text.clone(), value }), ..key.clone() };
                    groups.entry(sliced).or_default().push(row);
                }
            }
        }
    }
    Ok(groups)
}

/// Adds the rows to every column's profile. Threads take the columns one
/// at a time, so a thread that drew cheap columns (booleans, say) takes more
/// of them rather than waiting at the end of the batch for the other.
fn add_columns(profiles: &mut [ColumnProfile], batch: &RecordBatch, rows: &[usize]) -> Result<()> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(profiles.len());
    let columns: Vec<Mutex<(&mut ColumnProfile, &ArrayRef)>> =
        profiles.iter_mut().zip(batch.columns()).map(Mutex::new).collect();
    let next = AtomicUsize::new(0);
    let work = || -> Result<()> {
        while let Some(column) = columns.get(next.fetch_add(1, Ordering::Relaxed)) {
            // Each index is taken once, so the lock is never contended.
            let mut column = column.lock().map_err(|_| MonitorError::Refresh("a profiling thread panicked".into()))?;
            let (profile, array) = &mut *column;
            add_values(profile, array, rows)?;
        }
        Ok(())
    };
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(work)).collect();
        let mine = work();
        helpers.into_iter().try_for_each(|h| {
            h.join().unwrap_or_else(|_| Err(MonitorError::Refresh("a profiling thread panicked".into())))
        })?;
        mine
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
