//! Writing the output tables. A full refresh overwrites a table with its
//! rows. An incremental one overwrites it with the rows it computed plus
//! the rows of every other window carried over as read, so each (window,
//! granularity, model, slice, column, log type) keeps exactly one row.
//!
//! Why read, filter and overwrite rather than a Delta DELETE then an
//! append: the overwrite is one commit, so a reader sees the old table or
//! the new one, never the windows deleted and not yet appended; the
//! windows to replace are a set of struct values (`window.start`) plus
//! slice and model columns, which a Delta predicate would have to spell
//! out row by row; and the output tables grow with windows and columns,
//! never with the monitored table's rows, so reading one is cheap.

use std::collections::HashSet;

use deltalake::DeltaTable;
use deltalake::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch};
use deltalake::arrow::compute::{cast, filter_record_batch};
use deltalake::arrow::datatypes::{DataType, TimestampMicrosecondType};
use deltalake::datafusion::prelude::SessionContext;
use deltalake::operations::write::SchemaMode;
use deltalake::protocol::SaveMode;
use serde_json::{Map, Value, json};
use tarn_catalog::Catalog;

use crate::error::{MonitorError, Result};
use crate::window::{Slice, WindowKey};

/// Which rows already in a table stay.
pub struct Carry<'a> {
    /// The table's version when the last refresh wrote it: if it moved since,
    /// someone else changed it and nothing is carried.
    pub version: i64,
    /// Windows whose rows this refresh rewrites.
    pub rewritten: &'a HashSet<WindowKey>,
    pub model_col: Option<&'a str>,
}

/// How a write ended.
pub enum Written {
    /// The table's version after the write.
    Done(i64),
    /// The rows could not be carried over (the table changed since the last
    /// refresh, or its columns differ): write every window instead.
    CannotCarry(String),
}

fn refresh_error(e: impl std::fmt::Display) -> MonitorError {
    MonitorError::Refresh(e.to_string())
}

async fn open(catalog: &Catalog, full_name: &str, empty: RecordBatch, owner: &str) -> Result<DeltaTable> {
    let comment = "Written by a tarn quality monitor";
    let location = tarn_lake::managed::ensure_managed_table(catalog, full_name, owner, comment, empty)
        .await
        .map_err(|e| MonitorError::Refresh(e.unwrap_or_else(|| format!("the schema of {full_name} does not exist"))))?;
    tarn_lake::managed::open_table(&location).await.map_err(MonitorError::Refresh)
}

/// Writes `rows` (and, with `carry`, the other windows' rows already there)
/// as the table's new version, and its columns to the catalog.
pub async fn write(
    catalog: &Catalog,
    full_name: &str,
    rows: RecordBatch,
    carry: Option<Carry<'_>>,
    owner: &str,
) -> Result<Written> {
    let table = open(catalog, full_name, rows.slice(0, 0), owner).await?;
    let mut batches = Vec::new();
    if let Some(carry) = carry {
        let version = table.version().map_or(-1, |v| v as i64);
        if version != carry.version {
            return Ok(Written::CannotCarry(format!("{full_name} is at version {version}, not {}", carry.version)));
        }
        match carried(&table, &rows, &carry).await? {
            Ok(kept) => batches = kept,
            Err(reason) => return Ok(Written::CannotCarry(format!("{full_name}: {reason}"))),
        }
    }
    batches.push(rows);
    let table = table
        .write(batches)
        .with_save_mode(SaveMode::Overwrite)
        .with_schema_mode(SchemaMode::Overwrite)
        .await
        .map_err(|e| MonitorError::Refresh(format!("writing {full_name}: {e}")))?;
    let snapshot = table.snapshot().map_err(refresh_error)?;
    let fields: Vec<Value> = snapshot.schema().fields().map(|f| json!(f)).collect();
    let columns = tarn_lake::uc_columns(&fields, &[]);
    catalog
        .amend_table(full_name, owner, |info: &mut Map<String, Value>| {
            info.insert("columns".into(), Value::Array(columns));
        })
        .map_err(refresh_error)?;
    Ok(Written::Done(table.version().map_or(0, |v| v as i64)))
}

/// The table's rows outside `carry.rewritten`, in the columns of `rows`;
/// or why they cannot be carried.
async fn carried(
    table: &DeltaTable,
    rows: &RecordBatch,
    carry: &Carry<'_>,
) -> Result<std::result::Result<Vec<RecordBatch>, String>> {
    if table.version().is_none_or(|v| v == 0) {
        // Only the empty table `open` created: nothing to carry, and nothing lost.
        return Ok(Err("it has no rows yet".into()));
    }
    let ctx = SessionContext::new();
    table.update_datafusion_session(&ctx.state()).map_err(refresh_error)?;
    let provider = table.table_provider().await.map_err(refresh_error)?;
    let existing = ctx.read_table(provider).map_err(refresh_error)?.collect().await.map_err(refresh_error)?;
    let schema = rows.schema();
    let mut kept = Vec::with_capacity(existing.len());
    for batch in existing {
        let names: Vec<&String> = batch.schema_ref().fields().iter().map(|f| f.name()).collect();
        if names != schema.fields().iter().map(|f| f.name()).collect::<Vec<_>>() {
            return Ok(Err("its columns differ from this refresh's".into()));
        }
        let keep = match keep_mask(&batch, carry) {
            Ok(mask) => mask,
            Err(reason) => return Ok(Err(reason)),
        };
        let batch = filter_record_batch(&batch, &keep).map_err(refresh_error)?;
        // Parquet strings may come back as views: cast each column to what the new rows hold.
        let columns: std::result::Result<Vec<ArrayRef>, _> =
            batch.columns().iter().zip(schema.fields()).map(|(c, f)| cast(c, f.data_type())).collect();
        match columns.map(|c| RecordBatch::try_new(schema.clone(), c)) {
            Ok(Ok(batch)) => kept.push(batch),
            Ok(Err(e)) | Err(e) => return Ok(Err(format!("its rows do not fit this refresh's columns: {e}"))),
        }
    }
    Ok(Ok(kept))
}

fn text_column(batch: &RecordBatch, name: &str) -> std::result::Result<Option<Vec<Option<String>>>, String> {
    let Some(column) = batch.column_by_name(name) else { return Ok(None) };
    let text = cast(column, &DataType::Utf8).map_err(|e| format!("reading {name}: {e}"))?;
    Ok(Some(text.as_string::<i32>().iter().map(|v| v.map(str::to_string)).collect()))
}

/// What an output row is about, read back from its columns.
#[derive(Debug, Clone)]
pub struct RowKey {
    pub key: WindowKey,
    /// `log_type` (profile rows only).
    pub log_type: Option<String>,
    pub column: Option<String>,
    /// `drift_type` and `window_cmp` (drift rows only).
    pub drift_type: Option<String>,
    pub cmp: Option<(i64, i64)>,
}

/// Each row's window bounds in epoch milliseconds (`None`: a NULL struct).
type Bounds = Vec<Option<(i64, i64)>>;

/// A struct column's `start` and `end`, if the batch has the column.
fn bounds(batch: &RecordBatch, name: &str) -> std::result::Result<Option<Bounds>, String> {
    let Some(window) = batch.column_by_name(name) else { return Ok(None) };
    let window = window.as_struct_opt().ok_or_else(|| format!("its {name} column is not a struct"))?;
    let bound = |field: &str| -> std::result::Result<Vec<Option<i64>>, String> {
        let column = window.column_by_name(field).ok_or_else(|| format!("{name} has no {field}"))?;
        let column = cast(column, &DataType::Timestamp(deltalake::arrow::datatypes::TimeUnit::Microsecond, None))
            .map_err(|e| e.to_string())?;
        let column = column.as_primitive::<TimestampMicrosecondType>();
        Ok(column.iter().map(|v| v.map(|us| us.div_euclid(1000))).collect())
    };
    let (starts, ends) = (bound("start")?, bound("end")?);
    let valid = |row: usize| window.nulls().is_none_or(|n| n.is_valid(row));
    Ok(Some((0..window.len()).map(|r| valid(r).then(|| (starts[r].unwrap_or(0), ends[r].unwrap_or(0)))).collect()))
}

/// Each row's window, slice, model, column and log or drift type.
pub fn row_keys(batch: &RecordBatch, model_col: Option<&str>) -> std::result::Result<Vec<RowKey>, String> {
    let missing = |name: &str| format!("it has no {name} column");
    let windows = bounds(batch, "window")?.ok_or_else(|| missing("window"))?;
    let cmps = bounds(batch, "window_cmp")?;
    let granularity = text_column(batch, "granularity")?.ok_or_else(|| missing("granularity"))?;
    let slice_keys = text_column(batch, "slice_key")?.ok_or_else(|| missing("slice_key"))?;
    let slice_values = text_column(batch, "slice_value")?.ok_or_else(|| missing("slice_value"))?;
    let models = match model_col {
        Some(col) => Some(text_column(batch, col)?.ok_or_else(|| missing(col))?),
        None => None,
    };
    let (log_types, columns) = (text_column(batch, "log_type")?, text_column(batch, "column_name")?);
    let drift_types = text_column(batch, "drift_type")?;
    let at = |v: &Option<Vec<Option<String>>>, row: usize| v.as_ref().and_then(|v| v[row].clone());
    Ok((0..batch.num_rows())
        .map(|row| {
            let (start, end) = windows[row].unwrap_or_default();
            RowKey {
                key: WindowKey {
                    granularity: granularity[row].clone().unwrap_or_default(),
                    start,
                    end,
                    model: at(&models, row),
                    slice: slice_keys[row].clone().map(|key| Slice { key, value: slice_values[row].clone() }),
                },
                log_type: at(&log_types, row),
                column: at(&columns, row),
                drift_type: at(&drift_types, row),
                cmp: cmps.as_ref().and_then(|c| c[row]),
            }
        })
        .collect())
}

/// True for the rows of windows not rewritten, and for BASELINE profile rows.
fn keep_mask(batch: &RecordBatch, carry: &Carry<'_>) -> std::result::Result<BooleanArray, String> {
    let keys = row_keys(batch, carry.model_col)?;
    let keep =
        keys.iter().map(|k| Some(k.log_type.as_deref() == Some("BASELINE") || !carry.rewritten.contains(&k.key)));
    Ok(keep.collect())
}

/// The rows of `batch` (a profile batch) that are INPUT rows of windows in `only`.
pub fn only_windows(batch: &RecordBatch, keys: &[RowKey], only: &HashSet<WindowKey>) -> Result<RecordBatch> {
    let mask: BooleanArray =
        keys.iter().map(|k| Some(k.log_type.as_deref() != Some("BASELINE") && only.contains(&k.key))).collect();
    filter_record_batch(batch, &mask).map_err(refresh_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::Pass;
    use std::collections::BTreeMap;

    #[test]
    fn only_rewritten_windows_are_dropped() {
        let key = |start: i64, slice: Option<Slice>| WindowKey {
            granularity: "1 day".into(),
            start,
            end: start + 86_400_000,
            model: None,
            slice,
        };
        let mut windows = BTreeMap::new();
        let sliced = Some(Slice { key: "kind".into(), value: Some("a".into()) });
        for k in [key(0, None), key(86_400_000, None), key(0, sliced.clone())] {
            windows.insert(
                k,
                crate::window::WindowProfile { rows: 1, columns: vec![], quality: Default::default(), version: 0 },
            );
        }
        let mut pass = Pass { column_names: vec![], windows };
        let batch = crate::output::profile_batch(&mut pass, None, None, None, None).unwrap();
        let rewritten: HashSet<WindowKey> = [key(0, sliced)].into();
        let carry = Carry { version: 1, rewritten: &rewritten, model_col: None };
        let mask = keep_mask(&batch, &carry).unwrap();
        assert_eq!(mask.iter().map(Option::unwrap_or_default).filter(|k| *k).count(), 2);
        assert_eq!(mask.null_count(), 0);
    }
}
