//! Inference tables: every request an endpoint answers, with its response,
//! appended to `<catalog>.<schema>.<prefix>_payload`, a Delta table in the
//! catalog, in the columns Databricks writes: AI Gateway's
//! (`inference_table_config`) or the older auto capture's
//! (`auto_capture_config`).
//!
//! The request path only offers a record to a bounded queue: a full queue
//! drops the record and counts it, never waits. A batcher task takes
//! records off the queue into a spool file (one per batch, under the
//! endpoint's serving directory) and commits a batch to the table every
//! 1,000 records or flush interval, with a Delta application transaction
//! (app id = the endpoint's id, version = the batch), then deletes its
//! spool. At start, spools left by a stopped tarn are committed unless the
//! table already holds their batch, so what reached a spool is written
//! once.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use deltalake::DeltaTable;
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::kernel::Transaction;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::operations::write::SchemaMode;
use deltalake::protocol::SaveMode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tarn_catalog::Catalog;
use tarn_lake::managed::ensure_managed_table;
use tarn_lake::{Column, batch};
use tokio::sync::mpsc;

use crate::error::{Result, ServingError, invalid};

/// Payloads larger than this are logged as NULL with an error code.
const MAX_PAYLOAD_BYTES: usize = 1 << 20;
const QUEUE_CAPACITY: usize = 10_000;
const BATCH_ROWS: usize = 1_000;

/// Which generation of inference table, and so which columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `ai_gateway.inference_table_config`.
    Gateway,
    /// `config.auto_capture_config`.
    AutoCapture,
}

/// Where an endpoint's requests are logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableConfig {
    pub catalog_name: String,
    pub schema_name: String,
    pub table_name_prefix: String,
    pub shape: Shape,
}

impl TableConfig {
    /// The enabled table of an `inference_table_config` or
    /// `auto_capture_config` object; `None` when it is absent or disabled.
    pub fn parse(value: Option<&Value>, endpoint: &str, shape: Shape) -> Result<Option<Self>> {
        let Some(value) = value.filter(|v| !v.is_null()) else { return Ok(None) };
        // auto capture is on unless disabled; AI Gateway's table only when enabled.
        let enabled = value.get("enabled").and_then(Value::as_bool).unwrap_or(shape == Shape::AutoCapture);
        if !enabled {
            return Ok(None);
        }
        let field = |name: &str| -> Result<String> {
            value
                .get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .ok_or_else(|| invalid(format!("An enabled inference table needs {name}")))
        };
        let prefix = value.get("table_name_prefix").and_then(Value::as_str).filter(|s| !s.is_empty());
        Ok(Some(Self {
            catalog_name: field("catalog_name")?,
            schema_name: field("schema_name")?,
            table_name_prefix: prefix.unwrap_or(endpoint).to_string(),
            shape,
        }))
    }

    pub fn full_name(&self) -> String {
        format!("{}.{}.{}_payload", self.catalog_name, self.schema_name, self.table_name_prefix)
    }
}

/// One answered request, as logged.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub databricks_request_id: String,
    pub client_request_id: Option<String>,
    pub time_ms: i64,
    pub status_code: u16,
    pub execution_duration_ms: i64,
    pub request: String,
    pub response: String,
    pub served_entity_name: String,
    /// The registered model and version that answered.
    pub model_name: String,
    pub model_version: String,
    pub requester: String,
}

/// An endpoint's inference table while it logs.
pub struct InferenceTable {
    pub config: TableConfig,
    queue: mpsc::Sender<Record>,
    pub dropped: AtomicU64,
}

/// What the batcher needs to write.
struct Batcher {
    config: TableConfig,
    /// The table's location URL.
    table: String,
    spool: PathBuf,
    app_id: String,
    endpoint: String,
    flush: Duration,
}

impl InferenceTable {
    /// Creates the table if needed, commits spools a stopped tarn left, and
    /// starts the batcher.
    pub async fn open(
        catalog: &Catalog,
        config: TableConfig,
        endpoint: (&str, &str),
        spool: PathBuf,
        owner: &str,
        flush: Duration,
    ) -> Result<Arc<Self>> {
        let (endpoint_id, endpoint_name) = endpoint;
        let table = ensure_table(catalog, &config, owner).await?;
        std::fs::create_dir_all(&spool).map_err(|e| unavailable(format!("creating {}: {e}", spool.display())))?;
        let batcher = Batcher {
            config: config.clone(),
            table,
            spool,
            app_id: format!("serving-endpoint-{endpoint_id}"),
            endpoint: endpoint_name.to_string(),
            flush,
        };
        let next = batcher.recover().await?;
        let (queue, rx) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(batcher.run(rx, next));
        Ok(Arc::new(Self { config, queue, dropped: AtomicU64::new(0) }))
    }

    /// Offers a record to the batcher; never waits.
    pub fn log(&self, record: Record) {
        if self.queue.try_send(record).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn unavailable(message: String) -> ServingError {
    ServingError::Unavailable(message)
}

/// The table's location, creating the table (empty, in the shape's
/// columns) and its catalog entry the first time.
async fn ensure_table(catalog: &Catalog, config: &TableConfig, owner: &str) -> Result<String> {
    let full_name = config.full_name();
    let comment = "Requests and responses of a serving endpoint, written by tarn";
    let empty = rows(config.shape, "", &[])?;
    ensure_managed_table(catalog, &full_name, owner, comment, empty).await.map_err(|e| match e {
        None => ServingError::NotFound(format!(
            "Schema '{}.{}' for the inference table does not exist",
            config.catalog_name, config.schema_name
        )),
        Some(message) => invalid(message),
    })
}

async fn open_table(location: &str) -> Result<DeltaTable> {
    tarn_lake::managed::open_table(location).await.map_err(unavailable)
}

/// A payload as logged: NULL with an error code past the size limit.
fn payload(text: &str, code: &'static str, errors: &mut Vec<String>) -> Option<String> {
    if text.len() > MAX_PAYLOAD_BYTES {
        errors.push(code.to_string());
        return None;
    }
    Some(text.to_string())
}

/// Records of `endpoint` as a batch in the shape's columns.
fn rows(shape: Shape, endpoint: &str, records: &[Record]) -> Result<RecordBatch> {
    let mut requests = Vec::new();
    let mut responses = Vec::new();
    let mut errors = Vec::new();
    for r in records {
        let mut codes = Vec::new();
        requests.push(payload(&r.request, "MAX_REQUEST_SIZE_EXCEEDED", &mut codes));
        responses.push(payload(&r.response, "MAX_RESPONSE_SIZE_EXCEEDED", &mut codes));
        errors.push(codes);
    }
    let strings = |f: &dyn Fn(&Record) -> Option<String>| Column::Str(records.iter().map(f).collect());
    let day = |ms: i64| i32::try_from(ms.div_euclid(86_400_000)).ok();
    let ids = ("databricks_request_id", strings(&|r| Some(r.databricks_request_id.clone())));
    let client = ("client_request_id", strings(&|r| r.client_request_id.clone()));
    let status = ("status_code", Column::Int(records.iter().map(|r| Some(i32::from(r.status_code))).collect()));
    let sampling = ("sampling_fraction", Column::Double(records.iter().map(|_| Some(1.0)).collect()));
    let duration = Column::Long(records.iter().map(|r| Some(r.execution_duration_ms)).collect());
    let columns = match shape {
        Shape::Gateway => vec![
            ("request_date", Column::Date(records.iter().map(|r| day(r.time_ms)).collect())),
            ids,
            client,
            ("request_time", Column::Timestamp(records.iter().map(|r| Some(r.time_ms)).collect())),
            status,
            sampling,
            ("execution_duration_ms", duration),
            ("request", Column::Str(requests)),
            ("response", Column::Str(responses)),
            ("served_entity_id", strings(&|r| Some(r.served_entity_name.clone()))),
            ("logging_error_codes", Column::List(errors.into_iter().map(Some).collect())),
            ("requester", strings(&|r| Some(r.requester.clone()))),
        ],
        Shape::AutoCapture => vec![
            ids,
            client,
            ("date", Column::Date(records.iter().map(|r| day(r.time_ms)).collect())),
            ("timestamp_ms", Column::Long(records.iter().map(|r| Some(r.time_ms)).collect())),
            status,
            sampling,
            ("execution_time_ms", duration),
            ("request", Column::Str(requests)),
            ("response", Column::Str(responses)),
            ("request_metadata", Column::Map(records.iter().map(|r| Some(metadata(endpoint, r))).collect())),
        ],
    };
    batch(columns).map_err(|e| unavailable(format!("building inference rows: {e}")))
}

/// The legacy table's `request_metadata`.
fn metadata(endpoint: &str, r: &Record) -> Vec<(String, String)> {
    vec![
        ("endpoint_name".into(), endpoint.to_string()),
        ("model_name".into(), r.model_name.clone()),
        ("model_version".into(), r.model_version.clone()),
    ]
}

impl Batcher {
    fn spool_file(&self, seq: i64) -> PathBuf {
        self.spool.join(format!("{seq:012}.jsonl"))
    }

    /// Commits the spools a stopped tarn left; returns the next batch number.
    async fn recover(&self) -> Result<i64> {
        let committed = self.committed().await?.unwrap_or(0);
        let mut spools: Vec<(i64, PathBuf)> = std::fs::read_dir(&self.spool)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| Some((p.file_stem()?.to_str()?.parse().ok()?, p)))
            .collect();
        spools.sort();
        let mut next = committed + 1;
        for (seq, path) in spools {
            if seq > committed {
                let records = read_spool(&path);
                if !records.is_empty() {
                    self.commit(seq, &records).await?;
                    tracing::info!(endpoint = %self.endpoint, rows = records.len(), "inference rows spooled before a restart written");
                }
            }
            let _ = std::fs::remove_file(&path);
            next = next.max(seq + 1);
        }
        Ok(next)
    }

    async fn committed(&self) -> Result<Option<i64>> {
        let table = open_table(&self.table).await?;
        let snapshot = table.snapshot().map_err(|e| unavailable(e.to_string()))?;
        snapshot
            .transaction_version(table.log_store().as_ref(), &self.app_id)
            .await
            .map_err(|e| unavailable(e.to_string()))
    }

    async fn commit(&self, seq: i64, records: &[Record]) -> Result<()> {
        let table = open_table(&self.table).await?;
        let properties = CommitProperties::default().with_application_transaction(Transaction::new(&self.app_id, seq));
        table
            .write(vec![rows(self.config.shape, &self.endpoint, records)?])
            .with_save_mode(SaveMode::Append)
            .with_schema_mode(SchemaMode::Merge)
            .with_commit_properties(properties)
            .await
            .map_err(|e| unavailable(format!("appending to {}: {e}", self.config.full_name())))?;
        Ok(())
    }

    /// Spools records as they come and commits each batch when it is full
    /// or has waited the flush interval; ends when the queue closes.
    async fn run(self, mut rx: mpsc::Receiver<Record>, mut seq: i64) {
        let mut pending: Vec<Record> = Vec::new();
        let mut spool: Option<std::fs::File> = None;
        let mut due = tokio::time::Instant::now();
        loop {
            let received = tokio::select! {
                r = rx.recv() => r.map(Some),
                () = tokio::time::sleep_until(due), if !pending.is_empty() => Some(None),
            };
            let Some(received) = received else { break };
            if let Some(record) = received {
                if pending.is_empty() {
                    due = tokio::time::Instant::now() + self.flush;
                }
                let mut batch = vec![record];
                while let Ok(more) = rx.try_recv() {
                    batch.push(more);
                }
                self.append_spool(&mut spool, seq, &batch);
                pending.extend(batch);
                if pending.len() < BATCH_ROWS && tokio::time::Instant::now() < due {
                    continue;
                }
            }
            self.flush(&mut spool, &mut pending, &mut seq).await;
        }
        if !pending.is_empty() {
            self.flush(&mut spool, &mut pending, &mut seq).await;
        }
    }

    fn append_spool(&self, spool: &mut Option<std::fs::File>, seq: i64, records: &[Record]) {
        if spool.is_none() {
            let path = self.spool_file(seq);
            *spool = std::fs::OpenOptions::new().create(true).append(true).open(&path).ok();
        }
        let Some(file) = spool.as_mut() else { return };
        let mut text = String::new();
        for r in records {
            if let Ok(line) = serde_json::to_string(r) {
                text.push_str(&line);
                text.push('\n');
            }
        }
        if let Err(e) = file.write_all(text.as_bytes()).and_then(|()| file.flush()) {
            tracing::warn!(endpoint = %self.endpoint, error = %e, "spooling inference rows");
        }
    }

    async fn flush(&self, spool: &mut Option<std::fs::File>, pending: &mut Vec<Record>, seq: &mut i64) {
        match self.commit(*seq, pending).await {
            Ok(()) => {
                *spool = None;
                let _ = std::fs::remove_file(self.spool_file(*seq));
                pending.clear();
                *seq += 1;
            }
            // The spool stays; the next flush tries the same batch again.
            Err(e) => tracing::warn!(endpoint = %self.endpoint, error = %e, "writing inference rows"),
        }
    }
}

fn read_spool(path: &Path) -> Vec<Record> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// The `client_request_id` of a JSON request, and the request without it
/// (the model never sees it, as on Databricks).
pub fn split_client_request_id(body: &[u8]) -> Option<(String, Vec<u8>)> {
    let needle = b"\"client_request_id\"";
    if !body.windows(needle.len()).any(|w| w == needle) {
        return None;
    }
    let mut object: Map<String, Value> = serde_json::from_slice(body).ok()?;
    let id = match object.remove("client_request_id")? {
        Value::String(s) => s,
        other => other.to_string(),
    };
    Some((id, serde_json::to_vec(&object).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn client_request_ids_are_taken_out_of_the_request() {
        let (id, rest) = split_client_request_id(br#"{"client_request_id": "abc", "inputs": [1]}"#).unwrap();
        assert_eq!(id, "abc");
        assert_eq!(rest, br#"{"inputs":[1]}"#);
        assert!(split_client_request_id(br#"{"inputs": [1]}"#).is_none());
    }

    #[test]
    fn tables_take_the_endpoint_name_as_default_prefix_and_only_when_enabled() {
        let on = json!({"catalog_name": "main", "schema_name": "default", "enabled": true});
        let config = TableConfig::parse(Some(&on), "ep", Shape::Gateway).unwrap().unwrap();
        assert_eq!(config.full_name(), "main.default.ep_payload");
        let off = json!({"catalog_name": "main", "schema_name": "default", "enabled": false});
        assert!(TableConfig::parse(Some(&off), "ep", Shape::Gateway).unwrap().is_none());
        let capture = json!({"catalog_name": "main", "schema_name": "default", "table_name_prefix": "p"});
        let config = TableConfig::parse(Some(&capture), "ep", Shape::AutoCapture).unwrap().unwrap();
        assert_eq!(config.full_name(), "main.default.p_payload");
        assert!(TableConfig::parse(Some(&json!({"enabled": true})), "ep", Shape::Gateway).is_err());
    }

    #[test]
    fn oversized_payloads_are_logged_null_with_a_code() {
        let big = "x".repeat(MAX_PAYLOAD_BYTES + 1);
        let record = Record {
            databricks_request_id: "1".into(),
            client_request_id: None,
            time_ms: 0,
            status_code: 200,
            execution_duration_ms: 1,
            request: big,
            response: "{}".into(),
            served_entity_name: "a".into(),
            model_name: "m".into(),
            model_version: "1".into(),
            requester: "u".into(),
        };
        let batch = rows(Shape::Gateway, "ep", &[record]).unwrap();
        assert_eq!(batch.column_by_name("request").unwrap().null_count(), 1);
        assert_eq!(batch.num_columns(), 12);
    }
}
