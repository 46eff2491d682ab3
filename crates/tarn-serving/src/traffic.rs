//! What an endpoint's inference table says about its recent traffic, for
//! the endpoint's page: requests and latency per minute, status codes, and
//! the last few requests. Read through DataFusion as tarn-lake opens the
//! table: only the rows of the window (the time filter is pushed into the
//! scan, so files whose statistics lie before it are skipped) and only the
//! columns drawn; payloads only when asked for.

use std::collections::BTreeMap;

use deltalake::arrow::array::{Array, AsArray, Int64Array, RecordBatch, StringArray};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{DataType, TimeUnit};
use deltalake::datafusion::common::ScalarValue;
use deltalake::datafusion::prelude::{DataFrame, Expr, SessionContext, cast as cast_expr, col, lit};
use tarn_catalog::Catalog;
use tarn_store::EndpointRow;

use crate::endpoints::table_config;
use crate::error::{Result, ServingError};
use crate::inference::Shape;

/// One minute of traffic.
#[derive(Debug, Clone, PartialEq)]
pub struct Minute {
    pub start_ms: i64,
    pub requests: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
}

/// One logged request.
#[derive(Debug, Clone, PartialEq)]
pub struct Logged {
    pub time_ms: i64,
    pub status_code: i64,
    pub duration_ms: i64,
    /// The served entity that answered (AI Gateway tables only).
    pub served_entity: Option<String>,
    /// The payloads, when they were asked for.
    pub request: Option<String>,
    pub response: Option<String>,
}

/// An endpoint's traffic since `since_ms`, as its inference table holds it
/// (requests not yet flushed to the table are not in it).
#[derive(Debug, Clone, PartialEq)]
pub struct Traffic {
    /// The table's full name.
    pub table: String,
    pub since_ms: i64,
    pub requests: u64,
    pub minutes: Vec<Minute>,
    /// (status code, requests), by code.
    pub status_codes: Vec<(i64, u64)>,
    /// The newest requests first.
    pub recent: Vec<Logged>,
}

/// Column names of each table shape: time, status, duration, served entity.
fn columns(shape: Shape) -> (&'static str, &'static str, &'static str, Option<&'static str>) {
    match shape {
        Shape::Gateway => ("request_time", "status_code", "execution_duration_ms", Some("served_entity_id")),
        Shape::AutoCapture => ("timestamp_ms", "status_code", "execution_time_ms", None),
    }
}

fn failed(e: impl std::fmt::Display) -> ServingError {
    ServingError::Unavailable(format!("reading the inference table: {e}"))
}

/// The full name of the endpoint's inference table, if it has one.
pub fn table_name(row: &EndpointRow) -> Result<Option<String>> {
    Ok(table_config(row)?.map(|c| c.full_name()))
}

/// What to read of the table.
#[derive(Debug, Clone, Copy)]
pub struct Ask {
    /// The window's start.
    pub since_ms: i64,
    /// How many of the latest requests to list.
    pub recent: usize,
    /// Whether to read their request and response payloads.
    pub payloads: bool,
}

/// `None` when the endpoint logs to no inference table.
pub async fn read(catalog: &Catalog, row: &EndpointRow, ask: Ask) -> Result<Option<Traffic>> {
    let Ask { since_ms, recent, payloads } = ask;
    let Some(config) = table_config(row)? else { return Ok(None) };
    let table = config.full_name();
    let delta = tarn_lake::Lake::new(catalog.clone(), &row.creator).open_table(&table).await.map_err(failed)?;
    let ctx = SessionContext::new();
    delta.update_datafusion_session(&ctx.state()).map_err(failed)?;
    let provider = delta.table_provider().await.map_err(failed)?;
    ctx.register_table("t", provider).map_err(failed)?;
    let (time, status, duration, served) = columns(config.shape);
    let frame = ctx.table("t").await.map_err(failed)?;
    let time_type = frame.schema().field_with_unqualified_name(time).map_err(failed)?.data_type().clone();
    let since = ScalarValue::Int64(Some(since_ms))
        .cast_to(&DataType::Timestamp(TimeUnit::Millisecond, None))
        .and_then(|t| t.cast_to(&time_type))
        .or_else(|_| ScalarValue::Int64(Some(since_ms)).cast_to(&time_type))
        .map_err(failed)?;
    let window = frame.filter(col(time).gt_eq(lit(since))).map_err(failed)?;
    let mut out = summary(window.clone(), time, status, duration).await?;
    out.table = table;
    out.since_ms = since_ms;
    out.recent = latest(window, (time, status, duration, served), recent, payloads).await?;
    Ok(Some(out))
}

fn millis(name: &str) -> Expr {
    let at = cast_expr(col(name), DataType::Timestamp(TimeUnit::Millisecond, None));
    cast_expr(at, DataType::Int64).alias("time_ms")
}

fn long(name: &str, alias: &str) -> Expr {
    cast_expr(col(name), DataType::Int64).alias(alias)
}

fn text(name: &str, alias: &str) -> Expr {
    cast_expr(col(name), DataType::Utf8).alias(alias)
}

fn longs(batch: &RecordBatch, i: usize) -> Result<Int64Array> {
    let column = cast(batch.column(i), &DataType::Int64).map_err(failed)?;
    column.as_primitive_opt().cloned().ok_or_else(|| failed("expected integers"))
}

/// Row `i`, 0 where null.
fn value(column: &Int64Array, i: usize) -> i64 {
    if column.is_valid(i) { column.value(i) } else { 0 }
}

fn strings(batch: &RecordBatch, i: usize) -> Result<StringArray> {
    let column = cast(batch.column(i), &DataType::Utf8).map_err(failed)?;
    column.as_string_opt::<i32>().cloned().ok_or_else(|| failed("expected text"))
}

/// Per-minute counts and latency percentiles, and status code counts.
async fn summary(window: DataFrame, time: &str, status: &str, duration: &str) -> Result<Traffic> {
    let frame =
        window.select(vec![millis(time), long(status, "status"), long(duration, "duration")]).map_err(failed)?;
    let mut minutes: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    let mut codes: BTreeMap<i64, u64> = BTreeMap::new();
    let mut requests = 0;
    for batch in frame.collect().await.map_err(failed)? {
        let (times, statuses, durations) = (longs(&batch, 0)?, longs(&batch, 1)?, longs(&batch, 2)?);
        for i in 0..batch.num_rows() {
            if times.is_null(i) {
                continue;
            }
            requests += 1;
            let minute = times.value(i).div_euclid(60_000) * 60_000;
            let slot = minutes.entry(minute).or_default();
            if durations.is_valid(i) {
                slot.push(durations.value(i));
            }
            if statuses.is_valid(i) {
                *codes.entry(statuses.value(i)).or_default() += 1;
            }
        }
    }
    let minutes = minutes
        .into_iter()
        .map(|(start_ms, mut d)| {
            d.sort_unstable();
            let requests = d.len() as u64;
            Minute { start_ms, requests, p50_ms: percentile(&d, 0.5), p95_ms: percentile(&d, 0.95) }
        })
        .collect();
    Ok(Traffic {
        table: String::new(),
        since_ms: 0,
        requests,
        minutes,
        status_codes: codes.into_iter().collect(),
        recent: Vec::new(),
    })
}

/// The nearest-rank percentile of sorted values (0 for none).
fn percentile(sorted: &[i64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64
}

/// The newest `n` requests of the window.
async fn latest(
    window: DataFrame,
    (time, status, duration, served): (&str, &str, &str, Option<&str>),
    n: usize,
    payloads: bool,
) -> Result<Vec<Logged>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut select = vec![millis(time), long(status, "status"), long(duration, "duration")];
    select.push(served.map_or_else(|| lit(ScalarValue::Utf8(None)).alias("served"), |s| text(s, "served")));
    if payloads {
        select.extend([text("request", "request"), text("response", "response")]);
    }
    let frame = window
        .select(select)
        .and_then(|f| f.sort(vec![col("time_ms").sort(false, true)]))
        .and_then(|f| f.limit(0, Some(n)))
        .map_err(failed)?;
    let mut out = Vec::new();
    for batch in frame.collect().await.map_err(failed)? {
        let (times, statuses, durations, entities) =
            (longs(&batch, 0)?, longs(&batch, 1)?, longs(&batch, 2)?, strings(&batch, 3)?);
        let payload = |i: usize, row: usize| -> Result<Option<String>> {
            if !payloads {
                return Ok(None);
            }
            let column = strings(&batch, i)?;
            Ok(column.is_valid(row).then(|| column.value(row).to_string()))
        };
        for i in 0..batch.num_rows() {
            out.push(Logged {
                time_ms: value(&times, i),
                status_code: value(&statuses, i),
                duration_ms: value(&durations, i),
                served_entity: entities.is_valid(i).then(|| entities.value(i).to_string()),
                request: payload(4, i)?,
                response: payload(5, i)?,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        assert_eq!(percentile(&[], 0.5), 0.0);
        assert_eq!(percentile(&[7], 0.95), 7.0);
        let values: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&values, 0.5), 50.0);
        assert_eq!(percentile(&values, 0.95), 95.0);
    }
}
