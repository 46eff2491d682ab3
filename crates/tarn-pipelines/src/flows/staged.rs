//! A flow's rows written by the engine instead of sent here, in one pass
//! of its query: the engine writes them as Parquet files into a staging
//! directory under the target, partitioned by the expectations' verdicts
//! (`__tarn_verdicts=tft/...`: one letter per expectation, `t` met), so the
//! files hold the data columns only and their directory says which
//! expectations their rows met. The counts are the files' row counts; a
//! FAIL expectation that a file's rows broke stops the flow before anything
//! is committed, naming that file's first row; the files every DROP
//! expectation kept are what [`super::write::commit`] commits as the
//! batch's Delta version. Moving the rows through Spark Connect and
//! encoding them again here cost more than the query itself.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use deltalake::arrow::datatypes::Schema;
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use deltalake::parquet::file::reader::{FileReader, SerializedFileReader};
use serde_json::{Map, Value, json};
use spark_connect_proto::Relation;
use tarn_gateway::connect::EngineSession;

use super::quality::{self, Quality};
use super::relation::{self, VERDICTS};
use super::write::Output;
use crate::graph::{Action, Expectation};

const STAGING: &str = "_tarn_staging";

/// Removes what batches of a table left staged when tarn stopped mid-flow;
/// called before an update's flows run, when none of them can be writing.
pub fn clear(table: &Path) {
    let dir = table.join(STAGING);
    if let Err(e) = std::fs::remove_dir_all(&dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(dir = %dir.display(), error = %e, "could not clear a table's staging directory");
    }
}

/// Where one batch's files wait for their commit; removed with whatever
/// the commit left in it (the rows DROP expectations refused).
pub struct Staging {
    pub dir: PathBuf,
}

/// A Parquet file the engine wrote, with the partition values of its
/// directories (`column=value` each).
pub struct StagedFile {
    pub path: PathBuf,
    pub partitions: BTreeMap<String, String>,
}

impl Staging {
    pub fn new(target: &Path) -> Staging {
        Staging { dir: target.join(STAGING).join(uuid::Uuid::new_v4().to_string()) }
    }

    /// The Parquet files the engine wrote, by path.
    pub fn files(&self) -> Result<Vec<StagedFile>, String> {
        let mut files = Vec::new();
        collect(&self.dir, &BTreeMap::new(), &mut files)?;
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }
}

fn collect(dir: &Path, partitions: &BTreeMap<String, String>, out: &mut Vec<StagedFile>) -> Result<(), String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("reading {}: {e}", dir.display())),
    };
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        if path.is_dir() {
            let Some((column, value)) = name.split_once('=') else { continue };
            let mut inner = partitions.clone();
            inner.insert(column.to_string(), value.to_string());
            collect(&path, &inner, out)?;
        } else if name.ends_with(".parquet") {
            out.push(StagedFile { path, partitions: partitions.clone() });
        }
    }
    Ok(())
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

/// What a staged file's footer says: its rows, columns and the nulls of
/// each top-level column (where every row group counted them).
pub struct Footer {
    pub rows: u64,
    pub schema: Schema,
    pub null_counts: Map<String, Value>,
}

pub fn footer(path: &Path) -> Result<Footer, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("opening {}: {e}", path.display()))?;
    let reader = SerializedFileReader::new(file).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let meta = reader.metadata();
    let file_meta = meta.file_metadata();
    let schema =
        deltalake::parquet::arrow::parquet_to_arrow_schema(file_meta.schema_descr(), file_meta.key_value_metadata())
            .map_err(|e| e.to_string())?;
    let mut counts: BTreeMap<String, Option<u64>> = BTreeMap::new();
    for group in meta.row_groups() {
        for column in group.columns() {
            let parts = column.column_descr().path().parts();
            if parts.len() != 1 {
                continue;
            }
            let count = column.statistics().and_then(|s| s.null_count_opt());
            let sum = counts.entry(parts[0].clone()).or_insert(Some(0));
            *sum = sum.zip(count).map(|(a, b)| a + b);
        }
    }
    let null_counts = counts.into_iter().filter_map(|(k, v)| v.map(|n| (k, json!(n)))).collect();
    Ok(Footer { rows: file_meta.num_rows().max(0) as u64, schema, null_counts })
}

fn rows_of(path: &Path, batch_size: usize) -> Result<ParquetRecordBatchReader, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("opening {}: {e}", path.display()))?;
    ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.with_batch_size(batch_size).build())
        .map_err(|e| e.to_string())
}

/// The rows of staged files, read here.
pub fn read(files: &[(PathBuf, Footer)]) -> Result<Vec<RecordBatch>, String> {
    let mut rows = Vec::new();
    for (path, _) in files {
        for batch in rows_of(path, 8192)? {
            rows.push(batch.map_err(|e| e.to_string())?);
        }
    }
    Ok(rows)
}

/// Whether the rows of `file` met expectation `i` (a NULL verdict did not).
fn met(file: &StagedFile, i: usize) -> bool {
    file.partitions.get(VERDICTS).and_then(|v| v.as_bytes().get(i)) == Some(&b't')
}

/// Runs `query` with `expectations` and has the engine write its rows into
/// `staging`; answers what the expectations counted and what to commit.
pub async fn write(
    session: &mut EngineSession,
    query: Relation,
    expectations: &[Expectation],
    dataset: &str,
    view: &str,
    staging: Staging,
) -> Result<(Output, Quality), String> {
    let verdicts: Vec<String> = match expectations.is_empty() {
        true => Vec::new(),
        false => vec![VERDICTS.to_string()],
    };
    let rows = relation::with_verdict_letters(query, expectations);
    let dir = staging.dir.to_string_lossy().to_string();
    session
        .run_command(relation::write_parquet(rows.clone(), &dir, verdicts.clone()))
        .await
        .map_err(|e| e.to_string())?;
    let files = staging.files()?;
    let files = files.into_iter().map(|f| Ok((footer(&f.path)?, f))).collect::<Result<Vec<_>, String>>()?;
    let n = expectations.len();
    let mut quality = Quality { passed: vec![0; n], failed: vec![0; n], dropped: 0 };
    let Some(schema) = files.first().map(|(counted, _)| counted.schema.clone()) else {
        // Nothing written, not even a schema: the rows' schema from the engine.
        session.run_command(relation::temp_view(view, rows)).await.map_err(|e| e.to_string())?;
        let mut limit = relation::sql(&format!("SELECT * FROM {view} LIMIT 0"));
        if !verdicts.is_empty() {
            limit = relation::drop_columns(limit, verdicts);
        }
        let (schema, _) = super::decode(&session.collect(limit).await.map_err(|e| e.to_string())?)?;
        let schema = schema.ok_or("the engine returned no schema for the flow's rows")?;
        return Ok((Output::Rows(schema, Vec::new()), quality));
    };
    let mut kept = Vec::new();
    for (counted, file) in files {
        let rows = counted.rows;
        for i in 0..n {
            match met(&file, i) {
                true => quality.passed[i] += rows,
                false => quality.failed[i] += rows,
            }
        }
        let refused = expectations.iter().enumerate().find(|(i, e)| e.action == Action::Fail && !met(&file, *i));
        if let Some((_, expectation)) = refused.filter(|_| rows > 0) {
            let violation = quality::Violation {
                expectation: expectation.name.clone(),
                condition: expectation.condition.clone(),
                row: first_row(&file.path)?,
            };
            return Err(violation.message(dataset));
        }
        let keep = expectations.iter().enumerate().all(|(i, e)| e.action != Action::Drop || met(&file, i));
        match keep {
            true => kept.push((file.path, counted)),
            false => quality.dropped += rows,
        }
    }
    Ok((Output::Staged { staging, files: kept, schema }, quality))
}

/// The values of a file's first row, as an error shows them.
fn first_row(path: &Path) -> Result<String, String> {
    match rows_of(path, 1)?.next() {
        Some(Ok(batch)) if batch.num_rows() > 0 => Ok(quality::row_text(&batch, 0, batch.num_columns())),
        Some(Err(e)) => Err(e.to_string()),
        _ => Ok("?".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_carry_their_verdicts() {
        let table = std::env::temp_dir().join(format!("tarn-staged-{}", uuid::Uuid::new_v4()));
        let staging = Staging::new(&table);
        for dir in ["__tarn_verdicts=tf", "__tarn_verdicts=ft"] {
            std::fs::create_dir_all(staging.dir.join(dir)).unwrap();
            std::fs::write(staging.dir.join(dir).join("part-0.snappy.parquet"), b"").unwrap();
            std::fs::write(staging.dir.join(dir).join("_SUCCESS"), b"").unwrap();
        }
        let files = staging.files().unwrap();
        assert_eq!(files.len(), 2);
        let verdicts: Vec<(bool, bool)> = files.iter().map(|f| (met(f, 0), met(f, 1))).collect();
        assert_eq!(verdicts, [(false, true), (true, false)]);
        let dir = staging.dir.clone();
        drop(staging);
        assert!(!dir.exists());
        clear(&table);
        assert!(!table.join(STAGING).exists());
        let _ = std::fs::remove_dir_all(&table);
    }
}
