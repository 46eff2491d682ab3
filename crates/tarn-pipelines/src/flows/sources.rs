//! What a streaming flow has not read yet: files under an Auto Loader or
//! `read_files` path that no committed batch took, with the columns Auto
//! Loader would infer for them; and the data files a Delta table gained
//! since the version a flow last read.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use deltalake::DeltaTable;
use serde_json::{Map, Value};
use tarn_files::Files;
use tarn_sqltext::quote_identifier;
use tarn_storage::ObjectRoot;

/// Where a file source's path is: on this machine, or under the storage
/// root (a volume or DBFS in object storage).
pub enum SourceDir {
    Local(PathBuf),
    Object(Arc<ObjectRoot>, String),
}

/// Where a source path is: a volume, DBFS or a local path.
pub fn source_dir(files: &Files, path: &str) -> Result<SourceDir, String> {
    let shown = path.trim_end_matches('/');
    let place = |location: tarn_files::Location| match location.object_key() {
        Some((root, key)) => Ok(SourceDir::Object(root, key)),
        None => location.local_path().map(SourceDir::Local).map_err(|e| e.to_string()),
    };
    if shown.starts_with("/Volumes/") {
        return place(files.volumes().locate(shown).map_err(|e| e.to_string())?);
    }
    if shown.starts_with("dbfs:") || shown.starts_with("/dbfs/") {
        return place(files.dbfs().locate(shown).map_err(|e| e.to_string())?);
    }
    let local = shown.strip_prefix("file://").unwrap_or(shown);
    if !local.starts_with('/') {
        return Err(format!("{path} is not a path tarn can read: use /Volumes/..., dbfs:/... or an absolute path"));
    }
    Ok(SourceDir::Local(PathBuf::from(local)))
}

/// A name Spark leaves out of a listing: markers, checksums, hidden files.
fn hidden(name: &str) -> bool {
    name.starts_with('_') || name.starts_with('.')
}

impl SourceDir {
    /// Every data file under the path, sorted, as the engine names it (a
    /// local path or an `s3://` URL); hidden names are left out.
    pub fn list_files(&self) -> Result<Vec<String>, String> {
        match self {
            SourceDir::Local(dir) => {
                Ok(list_files(dir)?.into_iter().map(|p| p.to_string_lossy().into_owned()).collect())
            }
            SourceDir::Object(root, key) => {
                let failed = |e: tarn_storage::object_store::Error| format!("{}: {e}", root.url(key));
                if root.head(key).map_err(failed)?.is_some() {
                    return Ok(vec![root.url(key)]);
                }
                let mut out: Vec<String> = root
                    .list_all(key)
                    .map_err(failed)?
                    .iter()
                    .filter_map(|meta| root.rel_of_key(&meta.location))
                    .filter(|at| at.strip_prefix(&format!("{key}/")).is_some_and(|tail| !tail.split('/').any(hidden)))
                    .map(|at| root.url(&at))
                    .collect();
                out.sort();
                Ok(out)
            }
        }
    }

    /// The start of `file` (one [`SourceDir::list_files`] gave), for
    /// sampling its columns.
    fn head(&self, file: &str) -> Result<String, String> {
        let mut bytes = Vec::new();
        match self {
            SourceDir::Local(_) => {
                let handle = std::fs::File::open(file).map_err(|e| format!("{file}: {e}"))?;
                handle.take(SAMPLE_BYTES).read_to_end(&mut bytes).map_err(|e| format!("{file}: {e}"))?;
            }
            SourceDir::Object(root, _) => {
                let key = root.rel_of_url(file).ok_or_else(|| format!("{file} is outside the storage root"))?;
                let failed = |e: tarn_storage::object_store::Error| format!("{file}: {e}");
                let size = root.head(&key).map_err(failed)?.map_or(0, |meta| meta.size);
                if size > 0 {
                    bytes = root.get_range(&key, 0..size.min(SAMPLE_BYTES)).map_err(failed)?.to_vec();
                }
            }
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// Every data file under `dir`, sorted; names starting with `_` or `.`
/// (markers, checksums, hidden files) are left out, as Spark leaves them.
fn list_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let meta = std::fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if meta.is_file() {
        return Ok(vec![dir.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        let entries = std::fs::read_dir(&next).map_err(|e| format!("{}: {e}", next.display()))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if hidden(&name) {
                continue;
            }
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => pending.push(path),
                Ok(_) => out.push(path),
                Err(_) => {}
            }
        }
    }
    out.sort();
    Ok(out)
}

/// How many files schema inference samples, and lines of each.
const SAMPLE_FILES: usize = 50;
const SAMPLE_LINES: usize = 1000;
/// Bytes read from the start of each sampled file at most.
const SAMPLE_BYTES: u64 = 1 << 20;

/// An option's value, its name matched in any case.
pub fn option<'a>(options: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    options.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).and_then(|(_, v)| v.as_str())
}

pub fn is_true(options: &Map<String, Value>, name: &str) -> bool {
    option(options, name).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// The columns Auto Loader finds in `files` for JSON and CSV, in the order
/// they first appear (None for formats that carry their schema).
pub fn sample_columns(
    dir: &SourceDir,
    format: &str,
    files: &[String],
    options: &Map<String, Value>,
) -> Result<Option<Vec<String>>, String> {
    let mut columns: Vec<String> = Vec::new();
    let mut add = |name: &str| {
        if !columns.iter().any(|c| c == name) {
            columns.push(name.to_string());
        }
    };
    match format {
        "json" => {
            for file in files.iter().take(SAMPLE_FILES) {
                for record in json_records(&dir.head(file)?) {
                    if let Value::Object(map) = record {
                        map.keys().for_each(|k| add(k));
                    }
                }
            }
        }
        "csv" => {
            let sep = option(options, "sep").or(option(options, "delimiter")).unwrap_or(",");
            let header = is_true(options, "header");
            for file in files.iter().take(SAMPLE_FILES) {
                let text = dir.head(file)?;
                let line = text.lines().next().unwrap_or_default();
                let fields: Vec<&str> = line.split(sep).collect();
                for (i, field) in fields.iter().enumerate() {
                    let name = if header { field.trim().trim_matches('"').to_string() } else { format!("_c{i}") };
                    add(&name);
                }
            }
        }
        "text" => add("value"),
        _ => return Ok(None),
    }
    Ok(Some(columns))
}

/// The JSON records of the first lines of `text`; a malformed line (or
/// one cut at the sample's end) is the reader's to report, not inference's.
fn json_records(text: &str) -> Vec<Value> {
    let lines = text.lines().filter(|line| !line.trim().is_empty()).take(SAMPLE_LINES);
    lines.filter_map(|line| serde_json::from_str(line).ok()).collect()
}

/// `a STRING, b STRING, ...` for columns read as text.
pub fn string_schema(columns: &[String]) -> String {
    columns.iter().map(|c| format!("{} STRING", quote_identifier(c))).collect::<Vec<_>>().join(", ")
}

/// The data files of a Delta table added after `since` (all of them when
/// `None`), and the version they reach. A version that removed data (an
/// overwrite, a delete, an update) cannot be read incrementally: that is an
/// error, unless `skip_changes` (`skipChangeCommits`), which passes over
/// such versions whole, their added files too, as Databricks does.
pub async fn delta_files_since(
    location: &str,
    since: Option<i64>,
    skip_changes: bool,
) -> Result<(Vec<String>, i64), String> {
    let url = deltalake::ensure_table_uri(location).map_err(|e| e.to_string())?;
    let table = DeltaTable::try_from_url(url.clone()).await.map_err(|e| format!("{location}: {e}"))?;
    let now = table.version().map_or(0, |v| v as i64);
    let current: BTreeSet<String> = table.get_file_uris().map_err(|e| e.to_string())?.collect();
    let Some(since) = since else { return Ok((current.into_iter().collect(), now)) };
    if since >= now {
        return Ok((Vec::new(), now));
    }
    let files_at = |version: i64| {
        let url = url.clone();
        async move {
            let mut table = DeltaTable::try_from_url(url).await.map_err(|e| e.to_string())?;
            table
                .load_version(version.max(0) as u64)
                .await
                .map_err(|e| format!("{location} at version {version}: {e}"))?;
            table.get_file_uris().map(|f| f.collect::<BTreeSet<String>>()).map_err(|e| e.to_string())
        }
    };
    let earlier = files_at(since).await?;
    if !earlier.iter().any(|f| !current.contains(f)) {
        return Ok((current.difference(&earlier).cloned().collect(), now));
    }
    if !skip_changes {
        return Err(format!(
            "Detected a data update in the source table {location} after version {since}. A streaming read \
             takes only appends; set skipChangeCommits to read past updates and deletes, or run a full refresh"
        ));
    }
    // Version by version: the appends are taken, a version that removed
    // anything is passed over.
    let mut added = Vec::new();
    let mut before = earlier;
    for version in since + 1..=now {
        let after = if version == now { current.clone() } else { files_at(version).await? };
        if before.is_subset(&after) {
            added.extend(after.difference(&before).cloned());
        }
        before = after;
    }
    Ok((added, now))
}
