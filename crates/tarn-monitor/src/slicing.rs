//! `slicing_exprs`, as Databricks slices: each expression independently
//! groups the rows by its value, a column into one slice per value (the
//! 100 most frequent), a predicate such as `age > 30` into `true` and
//! `false`. Expressions are SQL parsed by DataFusion against the table's
//! schema and evaluated in the profiling pass itself, as extra columns of
//! the same stream; only the choice of values costs a `GROUP BY` of the
//! expression first.

use std::collections::BTreeSet;

use deltalake::arrow::datatypes::DataType;
use deltalake::datafusion::functions_aggregate::expr_fn::count;
use deltalake::datafusion::logical_expr::ExprSchemable;
use deltalake::datafusion::prelude::{cast, col, lit};

use crate::codec::{Decoded, Reader, Writer};
use crate::error::{MonitorError, Result};
use crate::scan::Source;

/// Values of one expression that get a slice, as Databricks caps them.
pub const MAX_SLICE_VALUES: usize = 100;

/// One slicing expression and the values (as text; NULL is `None`) that get a slice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SliceSet {
    pub text: String,
    pub allowed: BTreeSet<Option<String>>,
}

impl SliceSet {
    pub fn encode(&self, w: &mut Writer) {
        w.str(&self.text);
        w.len(self.allowed.len());
        self.allowed.iter().for_each(|v| w.opt_str(v.as_deref()));
    }

    pub fn decode(r: &mut Reader<'_>) -> Decoded<Self> {
        let text = r.str()?;
        let allowed = (0..r.count()?).map(|_| r.opt_str()).collect::<Decoded<_>>()?;
        Ok(Self { text, allowed })
    }
}

/// Refuses an expression DataFusion cannot plan over the table (a missing
/// column, a syntax error, a type that does not fit).
pub fn check(source: &Source, text: &str) -> Result<()> {
    let refused = |e: String| MonitorError::InvalidParameter(format!("slicing_exprs entry '{text}': {e}"));
    let expr = source.expression(text).map_err(|e| refused(e.to_string()))?;
    expr.get_type(source.frame.schema()).map(|_| ()).map_err(|e| refused(e.to_string()))
}

/// The values that get a slice: those `kept` from the last refresh, then
/// the most frequent others in `source` while under [`MAX_SLICE_VALUES`].
/// A full refresh passes no `kept`, so it takes the top values afresh.
pub async fn admit(source: &Source, exprs: &[String], kept: &[SliceSet]) -> Result<Vec<SliceSet>> {
    let mut out = Vec::with_capacity(exprs.len());
    for text in exprs {
        let mut allowed = kept.iter().find(|k| &k.text == text).map(|k| k.allowed.clone()).unwrap_or_default();
        if allowed.len() < MAX_SLICE_VALUES {
            for value in top_values(source, text).await? {
                if allowed.len() >= MAX_SLICE_VALUES {
                    break;
                }
                allowed.insert(value);
            }
        }
        out.push(SliceSet { text: text.clone(), allowed });
    }
    Ok(out)
}

/// The expression's most frequent values in `source`, most frequent first.
async fn top_values(source: &Source, text: &str) -> Result<Vec<Option<String>>> {
    let failed = |e: deltalake::datafusion::error::DataFusionError| {
        MonitorError::Refresh(format!("counting the values of '{text}': {e}"))
    };
    let value = cast(source.expression(text)?, DataType::Utf8).alias("v");
    let batches = source
        .frame
        .clone()
        .aggregate(vec![value], vec![count(lit(1)).alias("n")])
        .and_then(|f| f.sort(vec![col("n").sort(false, false), col("v").sort(true, true)]))
        .and_then(|f| f.limit(0, Some(MAX_SLICE_VALUES)))
        .map_err(failed)?
        .collect()
        .await
        .map_err(failed)?;
    let mut values = Vec::new();
    for batch in batches {
        let text = deltalake::arrow::compute::cast(batch.column(0), &DataType::Utf8)
            .map_err(|e| MonitorError::Refresh(e.to_string()))?;
        let text = deltalake::arrow::array::AsArray::as_string::<i32>(&text);
        values.extend(text.iter().map(|v| v.map(str::to_string)));
    }
    Ok(values)
}
