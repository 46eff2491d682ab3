//! `DESCRIBE HISTORY`, read straight from the commit files of `_delta_log`:
//! every commit's `commitInfo`, newest first, as the writer recorded it.

use std::path::PathBuf;

use deltalake::arrow::record_batch::RecordBatch;
use serde_json::{Map, Value};

use crate::table::{Column, batch};
use crate::{LakeError, Result, TableRef};

fn log_dir(table: &TableRef) -> Result<PathBuf> {
    tarn_catalog::local_path(&table.location)
        .map(|p| p.join("_delta_log"))
        .ok_or_else(|| LakeError::InvalidArgument(format!("table {} is not on local disk", table.full_name)))
}

/// Commit versions in the log, newest first.
fn versions(table: &TableRef) -> Result<Vec<i64>> {
    let dir = log_dir(table)?;
    let entries = std::fs::read_dir(&dir).map_err(|source| LakeError::Io {
        context: format!("[DELTA_TABLE_NOT_FOUND] reading the Delta log of {}", table.full_name),
        source,
    })?;
    let mut versions: Vec<i64> =
        entries.filter_map(|e| tarn_catalog::delta_log_version(e.ok()?.file_name().to_str()?, "json")).collect();
    versions.sort_unstable_by(|a, b| b.cmp(a));
    Ok(versions)
}

fn commit_info(table: &TableRef, version: i64) -> Result<(Map<String, Value>, Option<i64>)> {
    let path = log_dir(table)?.join(format!("{version:020}.json"));
    let text = std::fs::read_to_string(&path)
        .map_err(|source| LakeError::Io { context: format!("reading {}", path.display()), source })?;
    let modified = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64);
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
pub(crate) fn latest_timestamp(table: &TableRef) -> Result<Option<i64>> {
    match versions(table)?.first() {
        Some(v) => {
            let (info, modified) = commit_info(table, *v)?;
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

pub(crate) fn describe(table: &TableRef, limit: Option<usize>) -> Result<RecordBatch> {
    let mut versions = versions(table)?;
    if let Some(limit) = limit {
        versions.truncate(limit);
    }
    let commits = versions
        .iter()
        .map(|v| commit_info(table, *v).map(|(info, modified)| (*v, info, modified)))
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
