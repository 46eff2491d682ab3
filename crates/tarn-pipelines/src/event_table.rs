//! The event log as a Delta table, so SQL reads it: `event_log('<id>')`
//! (the gateway rewrites it to the table's path, see [`event_log_dir`]),
//! or the name the pipeline's `event_log` setting publishes it under.
//!
//! After each update the events recorded since the last publication are
//! appended, in one commit carrying a Delta application transaction whose
//! version is the last event's sequence number: a crash between the store
//! and the table is settled by appending from the table's own watermark.
//! The columns are Databricks' (`id`, `sequence`, `origin`, `timestamp`,
//! `message`, `level`, `maturity_level`, `error`, `details`,
//! `event_type`); `details`, `error` and `sequence` are JSON text.

use deltalake::DeltaTable;
use deltalake::kernel::Transaction;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::operations::write::SchemaMode;
use deltalake::protocol::SaveMode;
use serde_json::{Value, json};
use tarn_catalog::{Catalog, CatalogError, CreateRequest, Kind};
use tarn_lake::{Column, batch};
use tarn_store::{PipelineEventFilter, PipelineEventRow, Store};

use crate::flows::write::{committed_batch, open};
use crate::table_dir::TableDir;

/// The application id of the event log's commits.
const APP_ID: &str = "tarn:event_log";
/// Events appended per commit at most.
const PAGE: usize = 10_000;

/// Where pipeline `pipeline_id`'s event log table is, under the pipelines'
/// tables directory; `None` for an id that is not a pipeline id's shape.
pub fn event_log_dir(tables_dir: &TableDir, pipeline_id: &str) -> Option<TableDir> {
    let plain = !pipeline_id.is_empty() && pipeline_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    plain.then(|| tables_dir.join(pipeline_id).join("_tarn_event_log"))
}

/// `{catalog, schema, name}` of the `event_log` setting, as a full name.
pub fn published_name(spec: &Value) -> Option<String> {
    let log = spec.get("event_log")?;
    let part = |k: &str| log.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    Some(format!("{}.{}.{}", part("catalog")?, part("schema")?, part("name")?))
}

fn origin_field(events: &[PipelineEventRow], field: &str) -> Column {
    Column::Str(events.iter().map(|e| e.origin.get(field).and_then(Value::as_str).map(str::to_string)).collect())
}

fn rows(events: &[PipelineEventRow]) -> Result<deltalake::arrow::record_batch::RecordBatch, String> {
    let text = |f: &dyn Fn(&PipelineEventRow) -> Option<String>| Column::Str(events.iter().map(f).collect());
    let origin = ["pipeline_id", "pipeline_name", "update_id", "cluster_id", "flow_name", "dataset_name"]
        .into_iter()
        .map(|f| (f, origin_field(events, f)))
        .collect();
    batch(vec![
        ("id", text(&|e| Some(e.id.clone()))),
        ("sequence", text(&|e| Some(json!({"control_plane_seq_no": e.seq}).to_string()))),
        ("origin", Column::Struct(origin)),
        ("timestamp", Column::Timestamp(events.iter().map(|e| Some(e.timestamp)).collect())),
        ("message", text(&|e| Some(e.message.clone()))),
        ("level", text(&|e| Some(e.level.clone()))),
        ("maturity_level", text(&|_| Some("STABLE".into()))),
        ("error", text(&|e| e.error.as_ref().map(Value::to_string))),
        ("details", text(&|e| Some(e.details.to_string()))),
        ("event_type", text(&|e| Some(e.event_type.clone()))),
    ])
    .map_err(|e| e.to_string())
}

/// Appends the events recorded since the table's watermark; registers the
/// table under `published` (a full name) when the setting asks for it.
pub async fn publish(
    store: &Store,
    catalog: &Catalog,
    dir: &TableDir,
    pipeline_id: &str,
    published: Option<&str>,
    owner: &str,
) -> Result<(), String> {
    let mut watermark = committed_batch(dir, APP_ID).await?.unwrap_or(0);
    loop {
        let filter = PipelineEventFilter { after_seq: Some(watermark), ascending: true, ..Default::default() };
        let events = store.list_pipeline_events(pipeline_id, &filter, 0, PAGE).map_err(|e| e.to_string())?;
        let Some(last) = events.last().map(|e| e.seq) else { break };
        let table = open(dir).await?;
        let commit = CommitProperties::default().with_application_transaction(Transaction::new(APP_ID, last));
        table
            .write(vec![rows(&events)?])
            .with_save_mode(SaveMode::Append)
            .with_schema_mode(SchemaMode::Merge)
            .with_commit_properties(commit)
            .await
            .map_err(|e| format!("writing the event log of pipeline {pipeline_id}: {e}"))?;
        watermark = last;
        if events.len() < PAGE {
            break;
        }
    }
    let Some(name) = published else { return Ok(()) };
    match catalog.get(Kind::Table, name) {
        Ok(_) => Ok(()),
        Err(CatalogError::NotFound { .. }) if dir.has_log() => register(catalog, dir, name, pipeline_id, owner).await,
        Err(CatalogError::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

async fn register(
    catalog: &Catalog,
    dir: &TableDir,
    full_name: &str,
    pipeline_id: &str,
    owner: &str,
) -> Result<(), String> {
    let [catalog_name, schema_name, name] = full_name.splitn(3, '.').collect::<Vec<_>>()[..] else {
        return Err(format!("event_log '{full_name}' is not a catalog.schema.table name"));
    };
    let location = dir.url()?;
    let table = DeltaTable::try_from_url(location.clone()).await.map_err(|e| e.to_string())?;
    let fields: Vec<Value> = table.snapshot().map_err(|e| e.to_string())?.schema().fields().map(|f| json!(f)).collect();
    let request = CreateRequest {
        name: Some(name.into()),
        catalog_name: Some(catalog_name.into()),
        schema_name: Some(schema_name.into()),
        comment: Some(format!("The event log of pipeline {pipeline_id}")),
        properties: Some([(crate::flows::write::OWNER_PROPERTY.to_string(), pipeline_id.to_string())].into()),
        table_type: Some("EXTERNAL".into()),
        data_source_format: Some("DELTA".into()),
        storage_location: Some(location.to_string()),
        columns: tarn_lake::uc_columns(&fields, &[]),
        ..Default::default()
    };
    catalog.create(Kind::Table, &request, owner).map(drop).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pipeline_ids_name_a_directory() {
        let base = &TableDir::Local("/lake/pipelines".into());
        assert!(event_log_dir(base, "0f1e-2d3c").is_some());
        assert!(event_log_dir(base, "../x").is_none());
        assert!(event_log_dir(base, "").is_none());
    }

    #[test]
    fn the_setting_names_a_full_table() {
        let spec = json!({"event_log": {"catalog": "main", "schema": "ops", "name": "events"}});
        assert_eq!(published_name(&spec).as_deref(), Some("main.ops.events"));
        assert_eq!(published_name(&json!({"event_log": {"name": "events"}})), None);
    }
}
