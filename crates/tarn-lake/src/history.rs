//! `DESCRIBE HISTORY`, read straight from the commit files of `_delta_log`:
//! every commit's `commitInfo`, newest first, as the writer recorded it.

use std::path::PathBuf;
use std::sync::Arc;

use deltalake::arrow::record_batch::RecordBatch;
use serde_json::{Map, Value};
use tarn_storage::{ObjectRoot, Storage};

use crate::table::{Column, batch};
use crate::{LakeError, Result, TableRef};

/// A table's `_delta_log`: a directory here, or a prefix of the storage root.
enum LogDir {
    Local(PathBuf),
    Object(Arc<ObjectRoot>, String),
}

fn log_dir(storage: &Storage, table: &TableRef) -> Result<LogDir> {
    if let Some(root) = storage.object()
        && let Some(rel) = root.rel_of_url(&table.location)
    {
        return Ok(LogDir::Object(root.clone(), format!("{rel}/_delta_log")));
    }
    tarn_catalog::local_path(&table.location)
        .map(|p| LogDir::Local(p.join("_delta_log")))
        .ok_or_else(|| LakeError::InvalidArgument(format!("table {} is outside tarn's storage", table.full_name)))
}

fn not_found(table: &TableRef, e: impl std::fmt::Display) -> LakeError {
    LakeError::InvalidArgument(format!("[DELTA_TABLE_NOT_FOUND] reading the Delta log of {}: {e}", table.full_name))
}

impl LogDir {
    fn names(&self, table: &TableRef) -> Result<Vec<String>> {
        match self {
            LogDir::Local(dir) => {
                let entries = std::fs::read_dir(dir).map_err(|source| LakeError::Io {
                    context: format!("[DELTA_TABLE_NOT_FOUND] reading the Delta log of {}", table.full_name),
                    source,
                })?;
                Ok(entries.filter_map(|e| e.ok()?.file_name().to_str().map(str::to_string)).collect())
            }
            LogDir::Object(root, rel) => {
                let listed = root.list_dir(rel).map_err(|e| not_found(table, e))?;
                Ok(listed.objects.iter().map(|o| ObjectRoot::name_of(&o.location)).collect())
            }
        }
    }

    /// A log file's text and when it was written (epoch ms).
    fn read(&self, name: &str) -> Result<(String, Option<i64>)> {
        match self {
            LogDir::Local(dir) => {
                let path = dir.join(name);
                let text = std::fs::read_to_string(&path)
                    .map_err(|source| LakeError::Io { context: format!("reading {}", path.display()), source })?;
                let modified = std::fs::metadata(&path)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_millis() as i64);
                Ok((text, modified))
            }
            LogDir::Object(root, rel) => {
                let key = format!("{rel}/{name}");
                let failed =
                    |e: tarn_storage::object_store::Error| LakeError::InvalidArgument(format!("reading {key}: {e}"));
                let modified = root.head(&key).map_err(failed)?.map(|m| m.last_modified.timestamp_millis());
                let bytes = root.get(&key).map_err(failed)?;
                Ok((String::from_utf8_lossy(&bytes).into_owned(), modified))
            }
        }
    }
}

/// Commit versions in the log, newest first.
fn versions(log: &LogDir, table: &TableRef) -> Result<Vec<i64>> {
    let mut versions: Vec<i64> =
        log.names(table)?.iter().filter_map(|name| tarn_catalog::delta_log_version(name, "json")).collect();
    versions.sort_unstable_by(|a, b| b.cmp(a));
    Ok(versions)
}

fn commit_info(log: &LogDir, version: i64) -> Result<(Map<String, Value>, Option<i64>)> {
    let (text, modified) = log.read(&format!("{version:020}.json"))?;
    let info = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|mut v| match v.get_mut("commitInfo").map(Value::take) {
            Some(Value::Object(info)) => Some(info),
            _ => None,
        })
        .unwrap_or_default();
    Ok((info, modified))
}

fn timestamp(info: &Map<String, Value>, modified: Option<i64>) -> Option<i64> {
    info.get("inCommitTimestamp").or_else(|| info.get("timestamp")).and_then(Value::as_i64).or(modified)
}

/// When the newest commit was made.
pub(crate) fn latest_timestamp(storage: &Storage, table: &TableRef) -> Result<Option<i64>> {
    let log = log_dir(storage, table)?;
    match versions(&log, table)?.first() {
        Some(v) => {
            let (info, modified) = commit_info(&log, *v)?;
            Ok(timestamp(&info, modified))
        }
        None => Ok(None),
    }
}

fn text_map(value: Option<&Value>) -> Option<Vec<(String, String)>> {
    let object = value?.as_object()?;
    let mut pairs: Vec<(String, String)> =
        object.iter().map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string))).collect();
    pairs.sort();
    Some(pairs)
}

pub(crate) fn describe(storage: &Storage, table: &TableRef, limit: Option<usize>) -> Result<RecordBatch> {
    let log = log_dir(storage, table)?;
    let mut versions = versions(&log, table)?;
    if let Some(limit) = limit {
        versions.truncate(limit);
    }
    let commits = versions
        .iter()
        .map(|v| commit_info(&log, *v).map(|(info, modified)| (*v, info, modified)))
        .collect::<Result<Vec<_>>>()?;
    let text = |key: &str| {
        Column::Str(commits.iter().map(|(_, i, _)| i.get(key).and_then(Value::as_str).map(str::to_string)).collect())
    };
    batch(vec![
        ("version", Column::Long(commits.iter().map(|(v, _, _)| Some(*v)).collect())),
        ("timestamp", Column::Timestamp(commits.iter().map(|(_, i, m)| timestamp(i, *m)).collect())),
        ("userId", text("userId")),
        ("userName", text("userName")),
        ("operation", text("operation")),
        (
            "operationParameters",
            Column::Map(commits.iter().map(|(_, i, _)| text_map(i.get("operationParameters"))).collect()),
        ),
        ("clusterId", text("clusterId")),
        (
            "readVersion",
            Column::Long(commits.iter().map(|(_, i, _)| i.get("readVersion").and_then(Value::as_i64)).collect()),
        ),
        ("isolationLevel", text("isolationLevel")),
        (
            "isBlindAppend",
            Column::Bool(commits.iter().map(|(_, i, _)| i.get("isBlindAppend").and_then(Value::as_bool)).collect()),
        ),
        (
            "operationMetrics",
            Column::Map(commits.iter().map(|(_, i, _)| text_map(i.get("operationMetrics"))).collect()),
        ),
        ("userMetadata", text("userMetadata")),
        ("engineInfo", text("engineInfo")),
    ])
}
