//! A flow's rows written by the engine instead of sent here: the engine
//! counts the target's expectations over the query (a FAIL expectation
//! stops the flow there, before anything is written, naming the first row
//! that broke it), then writes the rows the DROP expectations keep as
//! Parquet files into a staging directory under the target, which
//! [`super::write::commit`] commits as the batch's Delta version. Moving
//! the rows through Spark Connect and encoding them again here cost more
//! than the query itself. The query runs twice when there are
//! expectations, so one that is not deterministic may count other rows
//! than it writes.

use std::path::{Path, PathBuf};

use deltalake::arrow::array::{Array, Int64Array};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::DataType;
use spark_connect_proto::Relation;
use tarn_gateway::connect::EngineSession;

use super::quality::{self, Quality};
use super::relation::{self, verdict_column};
use super::write::Output;
use crate::graph::{Action, Expectation};

/// Where one batch's files wait for their commit; removed with whatever
/// the commit left in it.
pub struct Staging {
    pub dir: PathBuf,
}

impl Staging {
    pub fn new(target: &Path) -> Staging {
        Staging { dir: target.join("_tarn_staging").join(uuid::Uuid::new_v4().to_string()) }
    }

    /// The Parquet files the engine wrote, by name.
    pub fn files(&self) -> Result<Vec<PathBuf>, String> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(format!("reading {}: {e}", self.dir.display())),
        };
        let mut files = Vec::new();
        for entry in entries {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.extension().is_some_and(|x| x == "parquet") {
                files.push(path);
            }
        }
        files.sort();
        Ok(files)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %self.dir.display(), error = %e, "could not remove a staging directory");
        }
    }
}

fn verdict(i: usize) -> String {
    format!("coalesce(`{}`, false)", verdict_column(i))
}

/// The rows every DROP expectation keeps, as a SQL condition.
fn kept(expectations: &[Expectation]) -> Option<String> {
    let drops: Vec<String> =
        expectations.iter().enumerate().filter(|(_, e)| e.action == Action::Drop).map(|(i, _)| verdict(i)).collect();
    (!drops.is_empty()).then(|| drops.join(" AND "))
}

/// Runs `query` with `expectations` and has the engine write the rows they
/// keep into `staging`; answers what they counted and what to commit.
pub async fn write(
    session: &mut EngineSession,
    query: Relation,
    expectations: &[Expectation],
    dataset: &str,
    view: &str,
    staging: Staging,
) -> Result<(Output, Quality), String> {
    let rows = if expectations.is_empty() {
        query
    } else {
        let checked = relation::with_verdicts(query, expectations);
        session.run_command(relation::temp_view(view, checked)).await.map_err(|e| e.to_string())?;
        let where_kept = kept(expectations).map(|k| format!(" WHERE {k}")).unwrap_or_default();
        let verdicts = (0..expectations.len()).map(verdict_column).collect();
        relation::drop_columns(relation::sql(&format!("SELECT * FROM {view}{where_kept}")), verdicts)
    };
    let quality = match expectations.is_empty() {
        true => Quality::default(),
        false => count(session, view, expectations, dataset).await?,
    };
    let dir = staging.dir.to_string_lossy().to_string();
    session.run_command(relation::write_parquet(rows.clone(), &dir)).await.map_err(|e| e.to_string())?;
    if !staging.files()?.is_empty() {
        return Ok((Output::Staged(staging), quality));
    }
    // Nothing written, not even a schema: the rows' schema from the engine.
    let limit = relation::sql(&format!("SELECT * FROM {view} LIMIT 0"));
    let empty = if expectations.is_empty() {
        session.run_command(relation::temp_view(view, rows)).await.map_err(|e| e.to_string())?;
        limit
    } else {
        let verdicts = (0..expectations.len()).map(verdict_column).collect();
        relation::drop_columns(limit, verdicts)
    };
    let (schema, _) = super::decode(&session.collect(empty).await.map_err(|e| e.to_string())?)?;
    let schema = schema.ok_or("the engine returned no schema for the flow's rows")?;
    Ok((Output::Rows(schema, Vec::new()), quality))
}

/// What the expectations count over `view` (the query with its verdict
/// columns); an error naming the first row a FAIL expectation refused.
async fn count(
    session: &mut EngineSession,
    view: &str,
    expectations: &[Expectation],
    dataset: &str,
) -> Result<Quality, String> {
    let mut columns = vec!["count(*)".to_string()];
    columns.extend((0..expectations.len()).map(|i| format!("count_if({})", verdict(i))));
    columns.push(kept(expectations).map_or("0L".into(), |k| format!("count_if(NOT ({k}))")));
    let sql = format!("SELECT {} FROM {view}", columns.join(", "));
    let (_, batches) = super::decode(&session.collect(relation::sql(&sql)).await.map_err(|e| e.to_string())?)?;
    let row = batches.first().filter(|b| b.num_rows() == 1).ok_or("the engine returned no expectation counts")?;
    let value = |c: usize| -> Result<u64, String> {
        let column = cast(row.column(c), &DataType::Int64).map_err(|e| e.to_string())?;
        let column = column.as_any().downcast_ref::<Int64Array>().ok_or("an expectation count is not a number")?;
        Ok(if column.is_null(0) { 0 } else { column.value(0).max(0) as u64 })
    };
    let total = value(0)?;
    let passed = (1..=expectations.len()).map(value).collect::<Result<Vec<_>, _>>()?;
    let failed = passed.iter().map(|p| total - p).collect::<Vec<_>>();
    let dropped = value(expectations.len() + 1)?;
    let refused = expectations.iter().enumerate().find(|(i, e)| e.action == Action::Fail && failed[*i] > 0);
    if let Some((i, expectation)) = refused {
        let sql = format!("SELECT * FROM {view} WHERE NOT {} LIMIT 1", verdict(i));
        let (_, rows) = super::decode(&session.collect(relation::sql(&sql)).await.map_err(|e| e.to_string())?)?;
        let row = rows
            .first()
            .map(|b| quality::row_text(b, 0, b.num_columns().saturating_sub(expectations.len())))
            .unwrap_or_else(|| "?".into());
        let violation =
            quality::Violation { expectation: expectation.name.clone(), condition: expectation.condition.clone(), row };
        return Err(violation.message(dataset));
    }
    Ok(Quality { passed, failed, dropped })
}
