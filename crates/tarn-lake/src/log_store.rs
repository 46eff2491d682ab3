//! The object store delta-rs reads and writes tables through.
//!
//! Engines create managed tables as catalog-managed Delta tables: their
//! protocol names `catalogManaged`, `inCommitTimestamp` and
//! `vacuumProtocolCheck`, which delta-rs refuses to touch. tarn is the
//! catalog of those tables, so it can honour them itself:
//! - reads of log files hide those three features from delta-rs (the
//!   original protocol is kept for `DESCRIBE DETAIL`);
//! - each commit delta-rs writes gets its `inCommitTimestamp` (commit info
//!   first, timestamps increasing), and for a managed table it is decided
//!   under the catalog's commit lock: refused when the catalog already gave
//!   that version to an engine, recorded when written (published and, as
//!   engines expect of ratified commits, staged).

use std::fmt;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use serde_json::{Map, Value, json};
use tarn_catalog::Catalog;
use tarn_core::time::now_ms;
use tarn_store::DeltaCommit;

/// Features tarn implements on delta-rs's behalf.
const HIDDEN_FEATURES: &[&str] =
    &["catalogManaged", "catalogOwned-preview", "inCommitTimestamp", "vacuumProtocolCheck"];

/// Where a managed table's commits are decided.
#[derive(Clone)]
pub(crate) struct Coordinator {
    pub catalog: Catalog,
    pub table_id: String,
}

pub(crate) struct CoordinatedStore {
    inner: Arc<dyn ObjectStore>,
    coordinator: Option<Coordinator>,
    /// The protocol of the newest log file read, as written.
    protocol: Mutex<Option<(i64, Value)>>,
}

impl fmt::Debug for CoordinatedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CoordinatedStore({})", self.inner)
    }
}

impl fmt::Display for CoordinatedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CoordinatedStore({})", self.inner)
    }
}

/// The version of a `_delta_log/<20 digits>.<ext>` path.
fn log_version(location: &Path, ext: &str) -> Option<i64> {
    let mut parts: Vec<_> = location.parts().collect();
    let file = parts.pop()?;
    if parts.pop()?.as_ref() != "_delta_log" {
        return None;
    }
    tarn_catalog::delta_log_version(file.as_ref(), ext)
}

fn strip_features(features: &mut Value) {
    if let Some(list) = features.as_array_mut() {
        list.retain(|f| !f.as_str().is_some_and(|f| HIDDEN_FEATURES.contains(&f)));
    }
}

/// The log lines (or `.crc` object) with the hidden features taken out of
/// any protocol; also returns the protocol as written.
fn hide_features(bytes: &[u8]) -> (Bytes, Option<Value>) {
    let Ok(text) = std::str::from_utf8(bytes) else { return (Bytes::copy_from_slice(bytes), None) };
    let mut original = None;
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let mut value: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(_) => {
                out.push_str(line);
                continue;
            }
        };
        let Some(protocol) = value.get_mut("protocol").filter(|p| p.is_object()) else {
            out.push_str(line);
            continue;
        };
        original = Some(protocol.clone());
        for key in ["readerFeatures", "writerFeatures"] {
            if let Some(features) = protocol.get_mut(key) {
                strip_features(features);
            }
        }
        out.push_str(&value.to_string());
        if line.ends_with('\n') {
            out.push('\n');
        }
    }
    (Bytes::from(out), original)
}

/// Gives a protocol delta-rs writes back the hidden features `original` had.
fn restore_features(protocol: &mut Map<String, Value>, original: &Value) {
    for key in ["readerFeatures", "writerFeatures"] {
        let hidden: Vec<Value> = original
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|f| f.as_str().is_some_and(|f| HIDDEN_FEATURES.contains(&f)))
            .cloned()
            .collect();
        if hidden.is_empty() {
            continue;
        }
        let list = protocol.entry(key).or_insert_with(|| json!([]));
        if let Some(list) = list.as_array_mut() {
            list.extend(hidden.into_iter().filter(|f| !list.contains(f)).collect::<Vec<_>>());
        }
    }
}

/// Puts commit info first and gives it an in-commit timestamp after
/// `previous`; a protocol in the commit keeps the features hidden from
/// delta-rs (`original`).
fn stamp_commit(bytes: &[u8], previous: Option<i64>, original: Option<&Value>) -> (Bytes, i64) {
    let timestamp = previous.map_or(now_ms(), |p| now_ms().max(p + 1));
    let text = String::from_utf8_lossy(bytes);
    let mut commit_info = None;
    let mut others = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(mut action)) if action.contains_key("commitInfo") => {
                if let Some(Value::Object(info)) = action.get_mut("commitInfo") {
                    info.insert("inCommitTimestamp".into(), json!(timestamp));
                }
                commit_info = Some(Value::Object(action).to_string());
            }
            Ok(Value::Object(mut action)) if action.contains_key("protocol") => {
                if let (Some(Value::Object(protocol)), Some(original)) = (action.get_mut("protocol"), original) {
                    restore_features(protocol, original);
                }
                others.push(Value::Object(action).to_string());
            }
            _ => others.push(line.to_string()),
        }
    }
    let first = commit_info.unwrap_or_else(|| {
        let mut info = Map::new();
        info.insert("inCommitTimestamp".into(), json!(timestamp));
        info.insert("timestamp".into(), json!(timestamp));
        json!({ "commitInfo": info }).to_string()
    });
    let mut out = first;
    for line in others {
        out.push('\n');
        out.push_str(&line);
    }
    out.push('\n');
    (Bytes::from(out), timestamp)
}

fn in_commit_timestamp(bytes: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(bytes).ok()?;
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|v| v.pointer("/commitInfo/inCommitTimestamp").and_then(Value::as_i64))
}

fn store_error(e: impl std::error::Error + Send + Sync + 'static) -> object_store::Error {
    object_store::Error::Generic { store: "tarn catalog", source: Box::new(e) }
}

impl CoordinatedStore {
    pub(crate) fn new(inner: Arc<dyn ObjectStore>, coordinator: Option<Coordinator>) -> Self {
        Self { inner, coordinator, protocol: Mutex::new(None) }
    }

    /// The table's protocol as its log states it, once a log file was read.
    pub(crate) fn original_protocol(&self) -> Option<Value> {
        self.protocol.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map(|(_, p)| p.clone())
    }

    fn remember_protocol(&self, version: i64, protocol: Value) {
        let mut seen = self.protocol.lock().unwrap_or_else(|p| p.into_inner());
        if seen.as_ref().is_none_or(|(v, _)| *v <= version) {
            *seen = Some((version, protocol));
        }
    }

    async fn previous_timestamp(&self, location: &Path, version: i64) -> Option<i64> {
        let previous =
            location.to_string().replace(&format!("{version:020}.json"), &format!("{:020}.json", version - 1));
        let bytes = self.inner.get_opts(&Path::from(previous), GetOptions::default()).await.ok()?.bytes().await.ok()?;
        in_commit_timestamp(&bytes)
    }

    async fn put_commit(
        &self,
        location: &Path,
        version: i64,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let written: Vec<u8> = payload.iter().flat_map(|b| b.iter().copied()).collect();
        let previous = if version > 0 { self.previous_timestamp(location, version).await } else { None };
        let (bytes, timestamp) = stamp_commit(&written, previous, self.original_protocol().as_ref());
        let size = bytes.len() as i64;
        let Some(coordinator) = &self.coordinator else {
            return self.inner.put_opts(location, bytes.into(), opts).await;
        };
        let _guard = coordinator.catalog.lock_commits(&coordinator.table_id).await;
        let latest = coordinator.catalog.latest_commit(&coordinator.table_id).map_err(store_error)?;
        if latest >= version {
            return Err(object_store::Error::AlreadyExists {
                path: location.to_string(),
                source: format!("the catalog already gave version {version} to another writer").into(),
            });
        }
        let result = self.inner.put_opts(location, bytes.clone().into(), opts).await?;
        // Engines expect every ratified version as a staged commit too.
        let file_name = format!("{version:020}.{}.json", uuid::Uuid::new_v4());
        let staged =
            location.to_string().replace(&format!("{version:020}.json"), &format!("_staged_commits/{file_name}"));
        self.inner.put_opts(&Path::from(staged), bytes.into(), PutOptions::default()).await?;
        let commit =
            DeltaCommit { version, timestamp, file_name, file_size: size, file_modification_timestamp: now_ms() };
        coordinator.catalog.record_published_commit(&coordinator.table_id, commit).map_err(store_error)?;
        Ok(result)
    }
}

#[async_trait]
impl ObjectStore for CoordinatedStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        match log_version(location, "json") {
            Some(version) => self.put_commit(location, version, payload, opts).await,
            None => self.inner.put_opts(location, payload, opts).await,
        }
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> object_store::Result<GetResult> {
        let version = log_version(location, "json").or_else(|| log_version(location, "crc"));
        let Some(version) = version.filter(|_| !options.head && options.range.is_none()) else {
            return self.inner.get_opts(location, options).await;
        };
        let result = self.inner.get_opts(location, options).await?;
        let (meta, attributes) = (result.meta.clone(), result.attributes.clone());
        let (bytes, protocol) = hide_features(&result.bytes().await?);
        if let Some(protocol) = protocol {
            self.remember_protocol(version, protocol);
        }
        let size = bytes.len() as u64;
        Ok(GetResult {
            payload: GetResultPayload::Stream(Box::pin(futures_util::stream::once(async move { Ok(bytes) }))),
            meta: ObjectMeta { size, ..meta },
            range: Range { start: 0, end: size },
            attributes,
        })
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_paths_are_recognised() {
        assert_eq!(log_version(&Path::from("t/_delta_log/00000000000000000012.json"), "json"), Some(12));
        assert_eq!(log_version(&Path::from("t/_delta_log/00000000000000000012.crc"), "crc"), Some(12));
        assert_eq!(log_version(&Path::from("t/_delta_log/_staged_commits/00000000000000000012.json"), "json"), None);
        assert_eq!(log_version(&Path::from("t/part-0.json"), "json"), None);
    }

    #[test]
    fn catalog_features_are_hidden_and_remembered() {
        let log = concat!(
            r#"{"commitInfo":{"operation":"CREATE TABLE"}}"#,
            "\n",
            r#"{"protocol":{"minReaderVersion":3,"minWriterVersion":7,"readerFeatures":["catalogManaged","deletionVectors"],"writerFeatures":["appendOnly","catalogManaged","inCommitTimestamp"]}}"#,
            "\n"
        );
        let (bytes, original) = hide_features(log.as_bytes());
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        assert!(text.contains(r#""readerFeatures":["deletionVectors"]"#), "{text}");
        assert!(text.contains(r#""writerFeatures":["appendOnly"]"#), "{text}");
        assert!(original.unwrap()["writerFeatures"].as_array().unwrap().len() == 3);
    }

    #[test]
    fn commits_get_increasing_in_commit_timestamps_with_commit_info_first() {
        let commit = concat!(r#"{"add":{"path":"a"}}"#, "\n", r#"{"commitInfo":{"operation":"OPTIMIZE"}}"#, "\n");
        let later = now_ms() + 60_000;
        let (bytes, ts) = stamp_commit(commit.as_bytes(), Some(later), None);
        assert_eq!(ts, later + 1);
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        assert!(text.starts_with(r#"{"commitInfo":"#), "{text}");
        assert_eq!(in_commit_timestamp(&bytes), Some(later + 1));
    }

    #[test]
    fn protocols_written_keep_the_hidden_features() {
        let original =
            json!({"readerFeatures": ["catalogManaged"], "writerFeatures": ["catalogManaged", "appendOnly"]});
        let commit = r#"{"protocol":{"minReaderVersion":3,"minWriterVersion":7,"readerFeatures":[],"writerFeatures":["appendOnly"]}}"#;
        let (bytes, _) = stamp_commit(commit.as_bytes(), None, Some(&original));
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        assert!(text.contains(r#""readerFeatures":["catalogManaged"]"#), "{text}");
        assert!(text.contains(r#""writerFeatures":["appendOnly","catalogManaged"]"#), "{text}");
    }
}
