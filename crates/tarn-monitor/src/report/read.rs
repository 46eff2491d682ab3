//! Reads a monitor's output tables for its report through DataFusion, as
//! tarn-lake opens them: only the rows of the windows the page shows
//! (filters pushed into the scan), only the columns it draws, each cast to
//! the type decoded here so that how a table was written does not matter.

use std::sync::Arc;

use deltalake::arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, StringArray};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{DataType, Field, TimeUnit};
use deltalake::datafusion::functions::core::expr_fn::get_field;
use deltalake::datafusion::prelude::{DataFrame, Expr, SessionContext, cast as cast_expr, ident, in_list, lit};
use tarn_lake::LakeError;

use super::{Measures, Profile};
use crate::error::{MonitorError, Result};

const PROFILE: &str = "profile_metrics";
const DRIFT: &str = "drift_metrics";

/// A window of the monitored table (its `:table` profile row).
#[derive(Debug, Clone, PartialEq)]
pub struct WindowRow {
    pub granularity: Option<String>,
    pub start: i64,
    pub end: i64,
    pub rows: i64,
}

/// A column's profile in a window (`INPUT`) or in the baseline.
#[derive(Debug, Clone)]
pub struct ProfileRow {
    pub log_type: String,
    pub start: i64,
    pub column: String,
    pub data_type: String,
    pub profile: Profile,
}

/// A column's drift in a window against the window before or the baseline.
#[derive(Debug, Clone)]
pub struct DriftRow {
    pub start: i64,
    pub end: i64,
    pub column: String,
    pub drift_type: String,
    pub measures: Measures,
}

fn failed(e: impl std::fmt::Display) -> MonitorError {
    MonitorError::Report(format!("reading the monitor's output tables: {e}"))
}

/// Both output tables registered in one DataFusion session.
pub struct Tables {
    ctx: SessionContext,
    /// The inference log's model id column: rows for all models (`*`) only.
    model_col: Option<String>,
}

impl Tables {
    pub async fn open(lake: &tarn_lake::Lake, profile: &str, drift: &str, model_col: Option<&str>) -> Result<Self> {
        let ctx = SessionContext::new();
        for (alias, name) in [(PROFILE, profile), (DRIFT, drift)] {
            let table = lake.open_table(name).await.map_err(|e| match e {
                LakeError::TableNotFound(_) => {
                    MonitorError::NotFound(format!("The output table '{name}' does not exist; a refresh writes it."))
                }
                other => failed(format!("{name}: {other}")),
            })?;
            table.update_datafusion_session(&ctx.state()).map_err(failed)?;
            let provider = table.table_provider().await.map_err(failed)?;
            ctx.register_table(alias, provider).map_err(failed)?;
        }
        Ok(Self { ctx, model_col: model_col.map(str::to_string) })
    }

    /// Tables already registered in `ctx` under their aliases (tests).
    #[cfg(test)]
    pub fn registered(ctx: SessionContext, model_col: Option<&str>) -> Self {
        Self { ctx, model_col: model_col.map(str::to_string) }
    }

    /// `table`'s rows for all models (a no-op but for inference logs).
    async fn scoped(&self, table: &str) -> Result<DataFrame> {
        let frame = self.ctx.table(table).await.map_err(failed)?;
        match &self.model_col {
            Some(m) => frame.filter(ident(m).eq(lit("*")).or(ident(m).is_null())).map_err(failed),
            None => Ok(frame),
        }
    }

    /// Every window of the monitored table, of every granularity.
    pub async fn windows(&self) -> Result<Vec<WindowRow>> {
        let frame = self.scoped(PROFILE).await?;
        let frame = frame
            .filter(ident("log_type").eq(lit("INPUT")).and(ident("column_name").eq(lit(":table"))))
            .and_then(|f| f.select(vec![text("granularity"), millis("start"), millis("end"), long("count")]))
            .map_err(failed)?;
        let mut out = Vec::new();
        for batch in frame.collect().await.map_err(failed)? {
            let (g, start, end, count) = (strings(&batch, 0)?, longs(&batch, 1)?, longs(&batch, 2)?, longs(&batch, 3)?);
            for i in 0..batch.num_rows() {
                let granularity = g.is_valid(i).then(|| g.value(i).to_string());
                let (Some(start), Some(end)) = (opt(&start, i), opt(&end, i)) else { continue };
                out.push(WindowRow { granularity, start, end, rows: opt(&count, i).unwrap_or(0) });
            }
        }
        Ok(out)
    }

    /// The baseline's profiles and those of the windows starting at
    /// `starts` (of `granularity`), `:table` rows included.
    pub async fn profiles(&self, granularity: Option<&str>, starts: &[i64]) -> Result<Vec<ProfileRow>> {
        let frame = self.scoped(PROFILE).await?;
        let windows = ident("log_type").eq(lit("INPUT")).and(same_granularity(granularity));
        let frame = frame
            .filter(ident("log_type").eq(lit("BASELINE")).or(windows))
            .and_then(|f| f.select(profile_columns()))
            .and_then(|f| {
                let at = in_list(ident("start"), starts.iter().map(|s| lit(*s)).collect(), false);
                f.filter(ident("log_type").eq(lit("BASELINE")).or(at))
            })
            .map_err(failed)?;
        let mut out = Vec::new();
        for batch in frame.collect().await.map_err(failed)? {
            profile_rows(&batch, &mut out)?;
        }
        Ok(out)
    }

    /// The drift rows of `granularity`'s windows starting at `since` or later.
    pub async fn drifts(&self, granularity: Option<&str>, since: i64) -> Result<Vec<DriftRow>> {
        let frame = self.scoped(DRIFT).await?;
        let frame = frame
            .filter(same_granularity(granularity))
            .and_then(|f| f.select(drift_columns()))
            .and_then(|f| f.filter(ident("start").gt_eq(lit(since))))
            .map_err(failed)?;
        let mut out = Vec::new();
        for batch in frame.collect().await.map_err(failed)? {
            drift_rows(&batch, &mut out)?;
        }
        Ok(out)
    }
}

fn same_granularity(granularity: Option<&str>) -> Expr {
    match granularity {
        Some(g) => ident("granularity").eq(lit(g.to_string())),
        None => ident("granularity").is_null(),
    }
}

fn text(name: &str) -> Expr {
    cast_expr(ident(name), DataType::Utf8).alias(name)
}

fn long(name: &str) -> Expr {
    cast_expr(ident(name), DataType::Int64).alias(name)
}

fn float(name: &str) -> Expr {
    cast_expr(ident(name), DataType::Float64).alias(name)
}

/// A struct column's field as a double, named `<struct>_<field>`.
fn field(name: &str, member: &str) -> Expr {
    cast_expr(get_field(ident(name), member), DataType::Float64).alias(format!("{name}_{member}"))
}

/// `window.<bound>` as epoch milliseconds, named `<bound>`.
fn millis(bound: &str) -> Expr {
    let at = cast_expr(get_field(ident("window"), bound), DataType::Timestamp(TimeUnit::Millisecond, None));
    cast_expr(at, DataType::Int64).alias(bound)
}

fn column(batch: &RecordBatch, i: usize, to: &DataType) -> Result<ArrayRef> {
    cast(batch.column(i), to).map_err(failed)
}

fn strings(batch: &RecordBatch, i: usize) -> Result<StringArray> {
    column(batch, i, &DataType::Utf8)?.as_string_opt::<i32>().cloned().ok_or_else(|| failed("expected text"))
}

fn longs(batch: &RecordBatch, i: usize) -> Result<Int64Array> {
    column(batch, i, &DataType::Int64)?.as_primitive_opt().cloned().ok_or_else(|| failed("expected integers"))
}

fn floats(batch: &RecordBatch, i: usize) -> Result<Float64Array> {
    column(batch, i, &DataType::Float64)?.as_primitive_opt().cloned().ok_or_else(|| failed("expected numbers"))
}

fn opt<T: deltalake::arrow::datatypes::ArrowPrimitiveType>(
    a: &deltalake::arrow::array::PrimitiveArray<T>,
    i: usize,
) -> Option<T::Native> {
    a.is_valid(i).then(|| a.value(i))
}

fn quantiles(list: &ArrayRef, i: usize) -> Result<Vec<f64>> {
    let Some(list) = list.as_list_opt::<i32>().filter(|l| l.is_valid(i)) else { return Ok(Vec::new()) };
    let values = cast(&list.value(i), &DataType::Float64).map_err(failed)?;
    let values: &Float64Array = values.as_primitive_opt().ok_or_else(|| failed("expected quantiles"))?;
    Ok(values.iter().flatten().collect())
}

fn items(list: &ArrayRef, i: usize) -> Result<Vec<(String, i64)>> {
    let Some(list) = list.as_list_opt::<i32>().filter(|l| l.is_valid(i)) else { return Ok(Vec::new()) };
    let entries = list.value(i);
    let entries = entries.as_struct_opt().ok_or_else(|| failed("expected frequent items"))?;
    let (Some(item), Some(count)) = (entries.column_by_name("item"), entries.column_by_name("count")) else {
        return Err(failed("frequent_items lacks item or count"));
    };
    let item = cast(item, &DataType::Utf8).map_err(failed)?;
    let count = cast(count, &DataType::Int64).map_err(failed)?;
    let (Some(item), Some(count)) =
        (item.as_string_opt::<i32>(), count.as_primitive_opt::<deltalake::arrow::datatypes::Int64Type>())
    else {
        return Err(failed("frequent_items has unexpected types"));
    };
    Ok((0..entries.len())
        .filter(|j| item.is_valid(*j))
        .map(|j| (item.value(j).to_string(), opt(count, j).unwrap_or(0)))
        .collect())
}

fn profile_rows(batch: &RecordBatch, out: &mut Vec<ProfileRow>) -> Result<()> {
    let (log_type, start, name, data_type) =
        (strings(batch, 0)?, longs(batch, 1)?, strings(batch, 2)?, strings(batch, 3)?);
    let (count, nulls, avg, distinct) = (longs(batch, 4)?, longs(batch, 5)?, floats(batch, 6)?, longs(batch, 7)?);
    let list_of_doubles = DataType::List(Arc::new(Field::new_list_field(DataType::Float64, true)));
    let quantile_lists = column(batch, 8, &list_of_doubles)?;
    for i in 0..batch.num_rows() {
        if !(log_type.is_valid(i) && name.is_valid(i)) {
            continue;
        }
        let profile = Profile {
            rows: opt(&count, i).unwrap_or(0),
            nulls: opt(&nulls, i).unwrap_or(0),
            avg: opt(&avg, i),
            quantiles: quantiles(&quantile_lists, i)?,
            items: items(batch.column(9), i)?,
            distinct: opt(&distinct, i),
        };
        out.push(ProfileRow {
            log_type: log_type.value(i).to_string(),
            start: opt(&start, i).unwrap_or(0),
            column: name.value(i).to_string(),
            data_type: if data_type.is_valid(i) { data_type.value(i).to_string() } else { String::new() },
            profile,
        });
    }
    Ok(())
}

fn drift_rows(batch: &RecordBatch, out: &mut Vec<DriftRow>) -> Result<()> {
    let (start, end, name, kind) = (longs(batch, 0)?, longs(batch, 1)?, strings(batch, 2)?, strings(batch, 3)?);
    let f: Vec<Float64Array> = (4..12).map(|i| floats(batch, i)).collect::<Result<_>>()?;
    let pair = |a: &Float64Array, b: &Float64Array, i| opt(a, i).zip(opt(b, i));
    for i in 0..batch.num_rows() {
        let (Some(s), Some(e)) = (opt(&start, i), opt(&end, i)) else { continue };
        if !(name.is_valid(i) && kind.is_valid(i)) {
            continue;
        }
        let measures = Measures {
            ks: pair(&f[0], &f[1], i),
            chi_squared: pair(&f[2], &f[3], i),
            js: opt(&f[4], i),
            tv: opt(&f[5], i),
            wasserstein: opt(&f[6], i),
            psi: opt(&f[7], i),
        };
        out.push(DriftRow {
            start: s,
            end: e,
            column: name.value(i).to_string(),
            drift_type: kind.value(i).to_string(),
            measures,
        });
    }
    Ok(())
}

/// One column's rows over time, for the monitor page's charts.
impl Tables {
    /// `column`'s profiles in `granularity`'s windows starting at `since` or
    /// later, and in the baseline.
    pub async fn column_profiles(
        &self,
        granularity: Option<&str>,
        column: &str,
        since: i64,
    ) -> Result<Vec<ProfileRow>> {
        let frame = self.scoped(PROFILE).await?;
        let windows = ident("log_type").eq(lit("INPUT")).and(same_granularity(granularity));
        let frame = frame
            .filter(ident("column_name").eq(lit(column.to_string())))
            .and_then(|f| f.filter(ident("log_type").eq(lit("BASELINE")).or(windows)))
            .and_then(|f| f.select(profile_columns()))
            .and_then(|f| f.filter(ident("log_type").eq(lit("BASELINE")).or(ident("start").gt_eq(lit(since)))))
            .map_err(failed)?;
        let mut out = Vec::new();
        for batch in frame.collect().await.map_err(failed)? {
            profile_rows(&batch, &mut out)?;
        }
        Ok(out)
    }

    /// `column`'s drift rows in `granularity`'s windows starting at `since` or later.
    pub async fn column_drifts(&self, granularity: Option<&str>, column: &str, since: i64) -> Result<Vec<DriftRow>> {
        let frame = self.scoped(DRIFT).await?;
        let frame = frame
            .filter(ident("column_name").eq(lit(column.to_string())).and(same_granularity(granularity)))
            .and_then(|f| f.select(drift_columns()))
            .and_then(|f| f.filter(ident("start").gt_eq(lit(since))))
            .map_err(failed)?;
        let mut out = Vec::new();
        for batch in frame.collect().await.map_err(failed)? {
            drift_rows(&batch, &mut out)?;
        }
        Ok(out)
    }
}

/// What [`profile_rows`] decodes, in its order.
fn profile_columns() -> Vec<Expr> {
    vec![
        text("log_type"),
        millis("start"),
        text("column_name"),
        text("data_type"),
        long("count"),
        long("num_nulls"),
        float("avg"),
        long("distinct_count"),
        ident("quantiles"),
        ident("frequent_items"),
    ]
}

/// What [`drift_rows`] decodes, in its order.
fn drift_columns() -> Vec<Expr> {
    vec![
        millis("start"),
        millis("end"),
        text("column_name"),
        text("drift_type"),
        field("ks_test", "statistic"),
        field("ks_test", "pvalue"),
        field("chi_squared_test", "statistic"),
        field("chi_squared_test", "pvalue"),
        float("js_distance"),
        float("tv_distance"),
        float("wasserstein_distance"),
        float("population_stability_index"),
    ]
}
