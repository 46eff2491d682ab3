//! Writing a flow's rows into its dataset's Delta table with delta-rs, and
//! the table's catalog entry. A streaming flow's batch commits with a Delta
//! application transaction (`txn`, app id = the flow, version = the
//! batch), so whether a batch reached the table is read from the table
//! itself after a crash. Tables are created on their first write, and
//! registered as `STREAMING_TABLE` or `MATERIALIZED_VIEW` owned by the
//! pipeline.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::table_dir::TableDir;

use deltalake::DeltaTable;
use std::sync::Arc;

use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel as _;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties, TableReference};
use deltalake::kernel::{Action, Add, StructType, Transaction};
use deltalake::operations::write::SchemaMode;
use deltalake::protocol::{DeltaOperation, SaveMode};
use serde_json::{Map, Value, json};
use tarn_catalog::{Catalog, CatalogError, CreateRequest, Kind};

use super::staged::{self, Footer, Staging};
use crate::graph::{Dataset, DatasetKind};

/// The table property naming the pipeline that owns a dataset.
pub const OWNER_PROPERTY: &str = "pipelines.pipelineId";

/// A stored dataset: its name, where its files are, who owns it.
#[derive(Debug, Clone)]
pub struct Target {
    pub full_name: String,
    pub dir: TableDir,
    pub pipeline_id: String,
    /// `partition_cols` / `PARTITIONED BY` of the definition.
    pub partition_cols: Vec<String>,
}

/// Batch `version` of flow `app_id`, committed with the rows.
#[derive(Debug, Clone)]
pub struct Txn {
    pub app_id: String,
    pub version: i64,
}

/// The table at `dir`, created unloaded (nothing to load yet) when it has no log.
pub(crate) async fn open(dir: &TableDir) -> Result<DeltaTable, String> {
    dir.create()?;
    let url = dir.url()?;
    if dir.has_log() {
        DeltaTable::try_from_url(url).await.map_err(|e| e.to_string())
    } else {
        deltalake::DeltaTableBuilder::from_url(url).and_then(|b| b.build()).map_err(|e| e.to_string())
    }
}

/// The last batch of `app_id` the table holds.
pub async fn committed_batch(dir: &TableDir, app_id: &str) -> Result<Option<i64>, String> {
    if !dir.has_log() {
        return Ok(None);
    }
    let table = open(dir).await?;
    let state = table.snapshot().map_err(|e| e.to_string())?;
    state.transaction_version(table.log_store().as_ref(), app_id).await.map_err(|e| e.to_string())
}

/// Delta's timestamps: microseconds, UTC-adjusted (`TIMESTAMP`) or without
/// a zone (`TIMESTAMP_NTZ`); engines send other units and zone names.
fn delta_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Timestamp(_, Some(_)) => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        DataType::Timestamp(_, None) => DataType::Timestamp(TimeUnit::Microsecond, None),
        other => other.clone(),
    }
}

/// `schema` with Delta's timestamps.
fn delta_schema(schema: &Schema) -> Schema {
    let fields: Vec<Field> =
        schema.fields().iter().map(|f| f.as_ref().clone().with_data_type(delta_type(f.data_type()))).collect();
    Schema::new(fields)
}

fn for_delta(schema: SchemaRef, batches: Vec<RecordBatch>) -> Result<(SchemaRef, Vec<RecordBatch>), String> {
    if schema.fields().iter().all(|f| &delta_type(f.data_type()) == f.data_type()) {
        return Ok((schema, batches));
    }
    let target = Arc::new(delta_schema(&schema));
    let cast = |batch: RecordBatch| -> Result<RecordBatch, String> {
        let columns = batch
            .columns()
            .iter()
            .zip(target.fields())
            .map(|(c, f)| cast(c, f.data_type()).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        RecordBatch::try_new(target.clone(), columns).map_err(|e| e.to_string())
    };
    let batches = batches.into_iter().map(cast).collect::<Result<Vec<_>, _>>()?;
    Ok((target, batches))
}

/// A batch's rows: held here, or Parquet files the engine staged.
pub enum Output {
    Rows(SchemaRef, Vec<RecordBatch>),
    /// `files` of `staging` to commit; `schema` is the columns of every
    /// file the engine wrote (kept or not, so also when none is kept).
    Staged {
        staging: Staging,
        files: Vec<(PathBuf, Footer)>,
        schema: Schema,
    },
}

/// Commits `output` as the table's next version, replacing the rows when
/// `overwrite`; answers how many rows it holds and the schema's fields.
pub async fn commit(
    target: &Target,
    output: Output,
    overwrite: bool,
    txn: Option<&Txn>,
) -> Result<(u64, Vec<Value>), String> {
    match output {
        Output::Rows(schema, rows) => {
            let count = rows.iter().map(|b| b.num_rows() as u64).sum();
            Ok((count, write(target, schema, rows, overwrite, txn).await?.1))
        }
        Output::Staged { staging, files, schema } => {
            let committed = commit_staged(target, files, schema, overwrite, txn).await;
            drop(staging);
            committed
        }
    }
}

/// Whether rows of `schema` can be added to a table of `table` as they are.
fn same_columns(table: &StructType, schema: &StructType) -> bool {
    table.fields().len() == schema.fields().len()
        && table.fields().zip(schema.fields()).all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type())
}

/// Commits the engine's files as they are when their columns are the
/// table's (a new table is created with theirs first); else the rows are
/// read and written by delta-rs, which merges or replaces the schema.
async fn commit_staged(
    target: &Target,
    files: Vec<(PathBuf, Footer)>,
    file_schema: Schema,
    overwrite: bool,
    txn: Option<&Txn>,
) -> Result<(u64, Vec<Value>), String> {
    let schema = Arc::new(delta_schema(&file_schema));
    let columns: StructType = schema.as_ref().try_into_kernel().map_err(|e| e.to_string())?;
    if !target.dir.has_log() {
        write(target, schema.clone(), Vec::new(), false, None).await?;
    }
    let table = open(&target.dir).await?;
    let state = table.snapshot().map_err(|e| e.to_string())?;
    if !same_columns(&state.schema(), &columns) {
        let rows = staged::read(&files)?;
        let count = rows.iter().map(|b| b.num_rows() as u64).sum();
        return Ok((count, write(target, Arc::new(file_schema), rows, overwrite, txn).await?.1));
    }
    let mut actions: Vec<Action> = Vec::new();
    if overwrite {
        actions.extend(state.log_data().iter().map(|f| Action::Remove(f.remove_action(true))));
    }
    let batch = uuid::Uuid::new_v4();
    let mut count = 0u64;
    for (i, (file, footer)) in files.iter().enumerate() {
        let name = format!("part-{i:05}-{batch}-c000.snappy.parquet");
        let (size, modified) = target.dir.take_file(file, &name)?;
        let stats = json!({"numRecords": footer.rows, "nullCount": footer.null_counts});
        count += footer.rows;
        actions.push(Action::Add(Add {
            path: name,
            size: size as i64,
            modification_time: modified,
            data_change: true,
            stats: Some(stats.to_string()),
            ..Default::default()
        }));
    }
    let mode = if overwrite { SaveMode::Overwrite } else { SaveMode::Append };
    let operation = DeltaOperation::Write { mode, partition_by: None, predicate: None };
    CommitBuilder::from(commit_properties(txn))
        .with_actions(actions)
        .build(Some(state as &dyn TableReference), table.log_store(), operation)
        .await
        .map_err(|e| format!("writing {}: {e}", target.full_name))?;
    let fields = state.schema().fields().map(|f| json!(f)).collect();
    Ok((count, fields))
}

/// The batch's `txn`, when there is one, goes with the commit.
fn commit_properties(txn: Option<&Txn>) -> CommitProperties {
    let properties = CommitProperties::default();
    match txn {
        Some(txn) => properties.with_application_transaction(Transaction::new(&txn.app_id, txn.version)),
        None => properties,
    }
}

/// Writes `batches` (of `schema`), replacing the rows when `overwrite`,
/// and answers the table's new version and
/// its schema's fields as JSON.
pub async fn write(
    target: &Target,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    overwrite: bool,
    txn: Option<&Txn>,
) -> Result<(i64, Vec<Value>), String> {
    let table = open(&target.dir).await?;
    let (schema, batches) = for_delta(schema, batches)?;
    let batches = if batches.is_empty() { vec![RecordBatch::new_empty(schema)] } else { batches };
    let properties = commit_properties(txn);
    let (save, schema_mode) =
        if overwrite { (SaveMode::Overwrite, SchemaMode::Overwrite) } else { (SaveMode::Append, SchemaMode::Merge) };
    let mut write = table.write(batches);
    if !target.partition_cols.is_empty() {
        write = write.with_partition_columns(target.partition_cols.clone());
    }
    let table = write
        .with_save_mode(save)
        .with_schema_mode(schema_mode)
        .with_commit_properties(properties)
        .await
        .map_err(|e| format!("writing {}: {e}", target.full_name))?;
    let version = table.version().map_or(0, |v| v as i64);
    let fields = table.snapshot().map_err(|e| e.to_string())?.schema().fields().map(|f| json!(f)).collect();
    Ok((version, fields))
}

fn table_type(kind: DatasetKind) -> &'static str {
    match kind {
        DatasetKind::MaterializedView => "MATERIALIZED_VIEW",
        _ => "STREAMING_TABLE",
    }
}

fn owner_of(info: &Value) -> Option<&str> {
    info.pointer(&format!("/properties/{}", OWNER_PROPERTY.replace('/', "~1"))).and_then(Value::as_str)
}

/// Refuses a name that a table outside this pipeline already has.
pub fn check_ownership(catalog: &Catalog, target: &Target) -> Result<(), String> {
    match catalog.get(Kind::Table, &target.full_name) {
        Ok(info) if owner_of(&info) != Some(target.pipeline_id.as_str()) => {
            Err(format!("Table '{}' already exists and is not managed by this pipeline", target.full_name))
        }
        Ok(_) | Err(CatalogError::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

fn properties(dataset: &Dataset, pipeline_id: &str) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = dataset
        .table_properties
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))
        .collect();
    out.insert(OWNER_PROPERTY.into(), pipeline_id.into());
    out
}

/// Creates or refreshes the dataset's catalog entry after a write.
pub fn register(
    catalog: &Catalog,
    target: &Target,
    dataset: &Dataset,
    fields: &[Value],
    user: &str,
) -> Result<(), String> {
    let columns = tarn_lake::uc_columns(fields, &dataset.partition_cols);
    let props = properties(dataset, &target.pipeline_id);
    match catalog.get(Kind::Table, &target.full_name) {
        Ok(_) => {
            let comment = dataset.comment.clone();
            let kind = table_type(dataset.kind);
            catalog
                .amend_table(&target.full_name, user, |info: &mut Map<String, Value>| {
                    info.insert("columns".into(), Value::Array(columns));
                    info.insert("properties".into(), json!(props));
                    info.insert("table_type".into(), json!(kind));
                    match comment {
                        Some(c) => info.insert("comment".into(), json!(c)),
                        None => info.remove("comment"),
                    };
                })
                .map(drop)
                .map_err(|e| e.to_string())
        }
        Err(CatalogError::NotFound { .. }) => {
            let parts: Vec<&str> = target.full_name.splitn(3, '.').collect();
            let [catalog_name, schema_name, name] = parts.as_slice() else {
                return Err(format!("'{}' is not a catalog.schema.table name", target.full_name));
            };
            let request = CreateRequest {
                name: Some((*name).into()),
                catalog_name: Some((*catalog_name).into()),
                schema_name: Some((*schema_name).into()),
                comment: dataset.comment.clone(),
                properties: Some(props),
                table_type: Some(table_type(dataset.kind).into()),
                data_source_format: Some("DELTA".into()),
                storage_location: Some(target.dir.url()?.to_string()),
                columns,
                ..Default::default()
            };
            catalog.create(Kind::Table, &request, user).map(drop).map_err(|e| e.to_string())
        }
        Err(e) => Err(e.to_string()),
    }
}
