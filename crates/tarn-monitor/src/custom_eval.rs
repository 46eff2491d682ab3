//! Computing custom metrics. An AGGREGATE metric is an arbitrary SQL
//! aggregate, which the one-pass sketches cannot express, so aggregate
//! metrics take a second DataFusion pass over the table: one `GROUP BY`
//! per granularity, slicing and model grouping, windows cut by a UDF that
//! calls [`Granularity::window`] so they match the sketches' windows
//! exactly. It reads only the columns the definitions name, but every row:
//! custom aggregates are not mergeable, so an incremental refresh still
//! recomputes them over the whole table. DERIVED metrics are evaluated
//! over the profile rows, DRIFT metrics over each drift row's two profile
//! rows joined as `current_df` and `base_df`.

use std::collections::HashMap;
use std::sync::Arc;

use deltalake::DeltaTable;
use deltalake::arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch, UInt64Array};
use deltalake::arrow::compute::{concat_batches, take};
use deltalake::arrow::datatypes::{DataType, Field, Int64Type, Schema};
use deltalake::datafusion::common::ScalarValue;
use deltalake::datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use deltalake::datafusion::prelude::SessionContext;

use crate::custom::{CustomMetric, Kind, TABLE, render};
use crate::error::{MonitorError, Result};
use crate::scan::{Source, Windows, millis};
use crate::slicing::SliceSet;
use crate::spec::Granularity;
use crate::tables::RowKey;
use crate::window::{Slice, WindowKey};

fn failed(e: impl std::fmt::Display) -> MonitorError {
    MonitorError::Refresh(format!("computing custom metrics: {e}"))
}

/// `tarn_window_<n>(ts)`: the start (epoch ms) of the window holding `ts`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct WindowStart {
    name: String,
    granularity: Granularity,
    signature: Signature,
}

impl ScalarUDFImpl for WindowStart {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> deltalake::datafusion::error::Result<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> deltalake::datafusion::error::Result<ColumnarValue> {
        let times = ColumnarValue::values_to_arrays(&args.args)?;
        let Some(times) = times.first() else {
            return Err(deltalake::datafusion::error::DataFusionError::Plan(format!(
                "{} takes one argument",
                self.name
            )));
        };
        let ms = millis(times).map_err(|e| deltalake::datafusion::error::DataFusionError::Execution(e.to_string()))?;
        let starts: Int64Array = ms.into_iter().map(|t| t.map(|t| self.granularity.window(t).0)).collect();
        Ok(ColumnarValue::Array(Arc::new(starts)))
    }
}

fn sql_type(t: &DataType) -> &'static str {
    match t {
        DataType::Float64 => "DOUBLE",
        DataType::Float32 => "FLOAT",
        DataType::Int64 => "BIGINT",
        DataType::Int32 => "INT",
        DataType::Int16 => "SMALLINT",
        DataType::Int8 => "TINYINT",
        DataType::Boolean => "BOOLEAN",
        _ => "VARCHAR",
    }
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Aggregate metric values per (window, column name), in the order of the aggregate metrics.
pub type Values = HashMap<(WindowKey, String), Vec<ScalarValue>>;

/// One GROUP BY: how its rows become window keys.
struct Grouping<'a> {
    start: String,
    granularity: Option<(&'a str, Granularity)>,
    at: i64,
    model: Option<String>,
    slice: Option<&'a SliceSet>,
}

/// The aggregate metrics of every window of `table` (as `windows` cuts
/// them), unsliced and in each of `slices`.
pub async fn aggregates(
    table: &DeltaTable,
    windows: &Windows<'_>,
    slices: &[SliceSet],
    metrics: &[CustomMetric],
) -> Result<Values> {
    let aggregate: Vec<&CustomMetric> = metrics.iter().filter(|m| m.kind == Kind::Aggregate).collect();
    let mut values = Values::new();
    if aggregate.is_empty() {
        return Ok(values);
    }
    let source = Source::open(table, None).await?;
    let mut selects = Vec::new();
    for (i, m) in aggregate.iter().enumerate() {
        for column in &m.input_columns {
            let sql = render(m, Some(column))?;
            selects.push((i, column.clone(), format!("CAST(({sql}) AS {})", sql_type(&m.output_type))));
        }
    }
    let (groupings, models) = groupings(&source.ctx, windows);
    for grouping in &groupings {
        for model in &models {
            for slice in std::iter::once(None).chain(slices.iter().map(Some)) {
                let g = Grouping { start: grouping.start.clone(), model: model.clone(), slice, ..*grouping };
                group_by(&source.ctx, &g, &selects, aggregate.len(), &aggregate, &mut values).await?;
            }
        }
    }
    Ok(values)
}

/// The window groupings of `windows` (registering their UDFs), and the model groupings.
fn groupings<'a>(ctx: &SessionContext, windows: &'a Windows<'a>) -> (Vec<Grouping<'a>>, Vec<Option<String>>) {
    let mut groupings = Vec::new();
    let models: Vec<Option<String>> = match windows {
        Windows::Whole { at } => {
            groupings.push(Grouping {
                start: format!("CAST({at} AS BIGINT)"),
                granularity: None,
                at: *at,
                model: None,
                slice: None,
            });
            vec![None]
        }
        Windows::Timed { timestamp_col, granularities, model_col } => {
            for (n, (text, granularity)) in granularities.iter().enumerate() {
                let udf = WindowStart {
                    name: format!("tarn_window_{n}"),
                    granularity: *granularity,
                    signature: Signature::any(1, Volatility::Immutable),
                };
                ctx.register_udf(ScalarUDF::from(udf));
                let start = format!("tarn_window_{n}({})", quoted(timestamp_col));
                groupings.push(Grouping {
                    start,
                    granularity: Some((text, *granularity)),
                    at: 0,
                    model: None,
                    slice: None,
                });
            }
            match model_col {
                Some(col) => {
                    vec![Some(format!("COALESCE(CAST({} AS VARCHAR), 'null')", quoted(col))), Some("'*'".into())]
                }
                None => vec![None],
            }
        }
    };
    (groupings, models)
}

async fn group_by(
    ctx: &SessionContext,
    g: &Grouping<'_>,
    selects: &[(usize, String, String)],
    count: usize,
    metrics: &[&CustomMetric],
    values: &mut Values,
) -> Result<()> {
    let model = g.model.as_deref().unwrap_or("CAST(NULL AS VARCHAR)");
    let slice = g.slice.map_or("CAST(NULL AS VARCHAR)".to_string(), |s| format!("CAST(({}) AS VARCHAR)", s.text));
    let aggregates: Vec<String> =
        selects.iter().enumerate().map(|(k, (_, _, sql))| format!("{sql} AS __a{k}")).collect();
    let sql = format!(
        "SELECT __start, __model, __slice, {} FROM (SELECT *, {} AS __start, {model} AS __model, {slice} AS __slice \
         FROM monitored) AS __t GROUP BY __start, __model, __slice",
        aggregates.join(", "),
        g.start
    );
    let batches = ctx.sql(&sql).await.map_err(failed)?.collect().await.map_err(failed)?;
    let nulls: Vec<ScalarValue> = metrics
        .iter()
        .map(|m| ScalarValue::try_from(&m.output_type))
        .collect::<std::result::Result<_, _>>()
        .map_err(failed)?;
    for batch in batches {
        let starts = batch.column(0).as_primitive::<Int64Type>();
        let text = |i: usize| -> Result<Vec<Option<String>>> {
            let a = deltalake::arrow::compute::cast(batch.column(i), &DataType::Utf8).map_err(failed)?;
            Ok(a.as_string::<i32>().iter().map(|v| v.map(str::to_string)).collect())
        };
        let (models, slice_values) = (text(1)?, text(2)?);
        for row in 0..batch.num_rows() {
            if starts.is_null(row) {
                continue;
            }
            let start = starts.value(row);
            let (granularity, end) = match g.granularity {
                Some((text, granularity)) => (text.to_string(), granularity.window(start).1),
                None => (String::new(), g.at),
            };
            let slice = g.slice.map(|s| Slice { key: s.text.clone(), value: slice_values[row].clone() });
            let key = WindowKey { granularity, start, end, model: g.model.as_ref().and(models[row].clone()), slice };
            for (k, (metric, column, _)) in selects.iter().enumerate() {
                let value = ScalarValue::try_from_array(batch.column(3 + k), row).map_err(failed)?;
                let entry = values.entry((key.clone(), column.clone())).or_insert_with(|| nulls[..count].to_vec());
                entry[*metric] = value;
            }
        }
    }
    Ok(())
}

fn with_index(batch: &RecordBatch) -> Result<RecordBatch> {
    let mut fields: Vec<Arc<Field>> = batch.schema().fields().iter().cloned().collect();
    fields.push(Arc::new(Field::new("__i", DataType::Int64, false)));
    let mut columns = batch.columns().to_vec();
    columns.push(Arc::new(Int64Array::from_iter_values(0..batch.num_rows() as i64)));
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(failed)
}

fn appended(batch: &RecordBatch, name: &str, column: ArrayRef) -> Result<RecordBatch> {
    let mut fields: Vec<Arc<Field>> = batch.schema().fields().iter().cloned().collect();
    fields.push(Arc::new(Field::new(name, column.data_type().clone(), true)));
    let mut columns = batch.columns().to_vec();
    columns.push(column);
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(failed)
}

/// `CASE WHEN <row's column is an input> THEN CAST((sql) AS type) END`.
fn guarded(metric: &CustomMetric, sql: &str, column_name: &str) -> String {
    let inputs: Vec<String> = metric.input_columns.iter().map(|c| format!("'{}'", c.replace('\'', "''"))).collect();
    format!(
        "CASE WHEN {column_name} IN ({}) THEN CAST(({sql}) AS {}) END",
        inputs.join(", "),
        sql_type(&metric.output_type)
    )
}

/// Runs `SELECT <expr> FROM <tables> ORDER BY __i` and answers the one column.
async fn evaluate(
    ctx: &SessionContext,
    expr: &str,
    from: &str,
    order: &str,
    metric: &CustomMetric,
    rows: usize,
) -> Result<ArrayRef> {
    if rows == 0 {
        return Ok(deltalake::arrow::array::new_empty_array(&metric.output_type));
    }
    let sql = format!("SELECT {expr} AS v FROM {from} ORDER BY {order}");
    let batches = ctx.sql(&sql).await.map_err(failed)?.collect().await.map_err(failed)?;
    let schema = batches.first().map(|b| b.schema()).ok_or_else(|| failed("no rows came back"))?;
    let column = concat_batches(&schema, &batches).map_err(failed)?.column(0).clone();
    if column.len() != rows {
        return Err(failed(format!("{} rows for {rows}", column.len())));
    }
    Ok(column)
}

/// The profile rows with a column per aggregate metric (from `current` or,
/// on BASELINE rows, `baseline`) and per derived metric.
pub async fn extend_profile(
    profile: RecordBatch,
    keys: &[RowKey],
    current: &Values,
    baseline: &Values,
    metrics: &[CustomMetric],
) -> Result<RecordBatch> {
    let mut batch = profile;
    let aggregate: Vec<&CustomMetric> = metrics.iter().filter(|m| m.kind == Kind::Aggregate).collect();
    for (i, metric) in aggregate.iter().enumerate() {
        let cells = keys.iter().map(|k| {
            let values = if k.log_type.as_deref() == Some("BASELINE") { baseline } else { current };
            let column = k.column.clone().unwrap_or_else(|| TABLE.into());
            values.get(&(k.key.clone(), column)).map(|v| v[i].clone())
        });
        let null = ScalarValue::try_from(&metric.output_type).map_err(failed)?;
        let cells: Vec<ScalarValue> = cells.map(|c| c.unwrap_or_else(|| null.clone())).collect();
        let array = if cells.is_empty() {
            deltalake::arrow::array::new_empty_array(&metric.output_type)
        } else {
            ScalarValue::iter_to_array(cells).map_err(failed)?
        };
        batch = appended(&batch, &metric.name, array)?;
    }
    for metric in metrics.iter().filter(|m| m.kind == Kind::Derived) {
        let ctx = SessionContext::new();
        ctx.register_batch("profile", with_index(&batch)?).map_err(failed)?;
        let expr = guarded(metric, &render(metric, None)?, "column_name");
        let column = evaluate(&ctx, &expr, "profile", "__i", metric, batch.num_rows()).await?;
        batch = appended(&batch, &metric.name, column)?;
    }
    Ok(batch)
}

/// The drift rows with a column per drift metric: each row's window
/// (`current_df`) against the window it is compared with (`base_df`), as
/// their profile rows in `profile` (every window's, the baseline's too).
pub async fn extend_drift(
    drift: RecordBatch,
    drift_keys: &[RowKey],
    profile: &RecordBatch,
    profile_keys: &[RowKey],
    metrics: &[CustomMetric],
) -> Result<RecordBatch> {
    let drifts: Vec<&CustomMetric> = metrics.iter().filter(|m| m.kind == Kind::Drift).collect();
    if drifts.is_empty() {
        return Ok(drift);
    }
    let mut index: HashMap<(bool, &WindowKey, &str), u64> = HashMap::new();
    let mut baseline_keys: HashMap<Option<Slice>, &WindowKey> = HashMap::new();
    for (i, k) in profile_keys.iter().enumerate() {
        let baseline = k.log_type.as_deref() == Some("BASELINE");
        index.insert((baseline, &k.key, k.column.as_deref().unwrap_or(TABLE)), i as u64);
        if baseline {
            baseline_keys.entry(k.key.slice.clone()).or_insert(&k.key);
        }
    }
    let (mut now, mut then) = (Vec::with_capacity(drift_keys.len()), Vec::with_capacity(drift_keys.len()));
    for k in drift_keys {
        let column = k.column.as_deref().unwrap_or(TABLE);
        now.push(index.get(&(false, &k.key, column)).copied());
        let compared = match (k.drift_type.as_deref(), k.cmp) {
            (Some("CONSECUTIVE"), Some((start, end))) => {
                index.get(&(false, &WindowKey { start, end, ..k.key.clone() }, column)).copied()
            }
            _ => baseline_keys.get(&k.key.slice).and_then(|b| index.get(&(true, *b, column))).copied(),
        };
        then.push(compared);
    }
    let picked = |rows: Vec<Option<u64>>| -> Result<RecordBatch> {
        let indices = UInt64Array::from(rows);
        let columns = profile
            .columns()
            .iter()
            .map(|c| take(c, &indices, None))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(failed)?;
        with_index(&RecordBatch::try_new(profile.schema(), columns).map_err(failed)?)
    };
    let ctx = SessionContext::new();
    ctx.register_batch("current_df", picked(now)?).map_err(failed)?;
    ctx.register_batch("base_df", picked(then)?).map_err(failed)?;
    let mut batch = drift;
    for metric in drifts {
        let expr = guarded(metric, &render(metric, None)?, "current_df.column_name");
        let from = "current_df JOIN base_df ON current_df.__i = base_df.__i";
        let column = evaluate(&ctx, &expr, from, "current_df.__i", metric, batch.num_rows()).await?;
        batch = appended(&batch, &metric.name, column)?;
    }
    Ok(batch)
}
