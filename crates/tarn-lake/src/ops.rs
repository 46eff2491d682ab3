//! Each lake statement against delta-rs, and the catalog changes that follow.

use std::collections::HashMap;
use std::sync::Arc;

use deltalake::DeltaTable;
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::kernel::{DataType, PrimitiveType, StructField};
use deltalake::operations::optimize::OptimizeType;
use deltalake::operations::update_table_metadata::TableMetadataUpdate;
use deltalake::operations::vacuum::VacuumMode;
use deltalake::table::config::TablePropertiesExt;
use serde_json::{Map, Value, json};
use url::Url;

use crate::log_store::{CoordinatedStore, Coordinator};
use crate::statement::{NewColumn, RestoreTarget, Statement};
use crate::table::{Column, batch};
use crate::{Lake, LakeError, Result, TableRef};

/// Hours Delta keeps removed files when the table does not say otherwise.
const DEFAULT_RETENTION_HOURS: f64 = 168.0;

pub(crate) async fn execute(lake: &Lake, statement: Statement) -> Result<RecordBatch> {
    match statement {
        Statement::DescribeHistory { table, limit } => {
            crate::history::describe(lake.catalog().storage(), &lake.resolve(&table)?, limit)
        }
        Statement::DescribeDetail { table } => detail(lake, &lake.resolve(&table)?).await,
        Statement::Optimize { table, partition_filters, zorder_by } => {
            optimize(lake, &lake.resolve(&table)?, &partition_filters, zorder_by).await
        }
        Statement::Vacuum { table, retain_hours, dry_run } => {
            vacuum(lake, &lake.resolve(&table)?, retain_hours, dry_run).await
        }
        Statement::Restore { table, to } => restore(lake, &lake.resolve(&table)?, to).await,
        Statement::AddColumns { table, columns } => add_columns(lake, &lake.resolve(&table)?, columns).await,
        Statement::SetProperties { table, properties } => {
            set_properties(lake, &lake.resolve(&table)?, properties).await
        }
        Statement::CommentOnTable { table, comment } => comment_on(lake, &lake.resolve(&table)?, comment).await,
        Statement::CommentOnColumn { table, column, comment } => {
            comment_on_column(lake, &lake.resolve(&table)?, &column, comment).await
        }
        Statement::ShowProperties { table, key } => match lake.view(&table)? {
            Some(view) => property_rows(&view.full_name, view.properties, key),
            None => show_properties(lake, &lake.resolve(&table)?, key).await,
        },
        Statement::ReplaceTable { table, columns, comment, properties } => {
            crate::replace::replace_table(lake, &table, &columns, comment, properties).await
        }
    }
}

/// Opens the table through the catalog-aware store.
pub(crate) async fn open(lake: &Lake, table: &TableRef) -> Result<(DeltaTable, Arc<CoordinatedStore>)> {
    let url = Url::parse(&table.location)
        .map_err(|e| LakeError::InvalidArgument(format!("table {} has a bad location: {e}", table.full_name)))?;
    let (inner, root) = crate::storage::store_for(lake.catalog().storage(), &url)
        .map_err(|e| LakeError::InvalidArgument(format!("table {}: {e}", table.full_name)))?;
    let coordinator =
        table.managed.then(|| Coordinator { catalog: lake.catalog().clone(), table_id: table.table_id.clone() });
    let store = Arc::new(CoordinatedStore::new(inner, coordinator));
    let mut delta = deltalake::DeltaTableBuilder::from_url(url)?.with_storage_backend(store.clone(), root).build()?;
    delta.load().await.map_err(|e| match e {
        deltalake::DeltaTableError::NotATable(_) => LakeError::InvalidArgument(format!(
            "[DELTA_TABLE_NOT_FOUND] {} has no Delta log yet: write to it first.",
            table.full_name
        )),
        e => e.into(),
    })?;
    Ok((delta, store))
}

/// How many data files the table's current version has, and their bytes.
fn file_stats(delta: &DeltaTable) -> Result<(i64, i64)> {
    Ok(delta.snapshot()?.log_data().iter().fold((0, 0), |(files, size), f| (files + 1, size + f.size())))
}

/// Commits tarn makes: no checkpoints or log cleanup, which engines do.
pub(crate) fn commit_properties() -> CommitProperties {
    CommitProperties::default().with_create_checkpoint(false).with_cleanup_expired_logs(Some(false))
}

pub(crate) fn conflict(e: deltalake::DeltaTableError) -> LakeError {
    match e {
        deltalake::DeltaTableError::Transaction { source } => LakeError::Conflict(source.to_string()),
        e => e.into(),
    }
}

async fn detail(lake: &Lake, table: &TableRef) -> Result<RecordBatch> {
    let (delta, store) = open(lake, table).await?;
    let snapshot = delta.snapshot()?;
    let metadata = snapshot.metadata();
    let (files, size) = file_stats(&delta)?;
    let protocol = store.original_protocol().unwrap_or(Value::Null);
    let version = |key: &str| protocol.get(key).and_then(Value::as_i64).unwrap_or(1);
    let mut features: Vec<String> = ["readerFeatures", "writerFeatures"]
        .iter()
        .filter_map(|k| protocol.get(*k).and_then(Value::as_array))
        .flatten()
        .filter_map(|f| f.as_str().map(str::to_string))
        .collect();
    features.sort();
    features.dedup();
    let mut properties: Vec<(String, String)> =
        metadata.configuration().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    properties.sort();
    let comment = table.info.get("comment").and_then(Value::as_str).map(str::to_string);
    let last_modified = crate::history::latest_timestamp(lake.catalog().storage(), table)?;
    batch(vec![
        ("format", Column::Str(vec![Some("delta".into())])),
        ("id", Column::Str(vec![Some(metadata.id().to_string())])),
        ("name", Column::Str(vec![Some(table.full_name.clone())])),
        ("description", Column::Str(vec![comment.or_else(|| metadata.description().map(str::to_string))])),
        ("location", Column::Str(vec![Some(table.location.clone())])),
        ("createdAt", Column::Timestamp(vec![metadata.created_time()])),
        ("lastModified", Column::Timestamp(vec![last_modified])),
        ("partitionColumns", Column::List(vec![Some(metadata.partition_columns().to_vec())])),
        ("clusteringColumns", Column::List(vec![Some(Vec::new())])),
        ("numFiles", Column::Long(vec![Some(files)])),
        ("sizeInBytes", Column::Long(vec![Some(size)])),
        ("properties", Column::Map(vec![Some(properties)])),
        ("minReaderVersion", Column::Int(vec![Some(version("minReaderVersion") as i32)])),
        ("minWriterVersion", Column::Int(vec![Some(version("minWriterVersion") as i32)])),
        ("tableFeatures", Column::List(vec![Some(features)])),
    ])
}

async fn optimize(
    lake: &Lake,
    table: &TableRef,
    partition_filters: &[(String, String)],
    zorder_by: Vec<String>,
) -> Result<RecordBatch> {
    let (delta, _store) = open(lake, table).await?;
    let columns: Vec<String> = delta.snapshot()?.schema().fields().map(|f| f.name().to_string()).collect();
    let partitions = delta.snapshot()?.metadata().partition_columns().to_vec();
    for c in &zorder_by {
        if !columns.iter().any(|k| k.eq_ignore_ascii_case(c)) {
            return Err(LakeError::InvalidArgument(format!(
                "[DELTA_ZORDERING_COLUMN_DOES_NOT_EXIST] Z-Ordering column {c} does not exist in the table schema."
            )));
        }
        if partitions.iter().any(|p| p.eq_ignore_ascii_case(c)) {
            return Err(LakeError::InvalidArgument(format!(
                "[DELTA_ZORDERING_ON_PARTITION_COLUMN] {c} is a partition column. Z-Ordering can only be performed on data columns."
            )));
        }
    }
    let filters = partition_filters
        .iter()
        .map(|(c, v)| deltalake::filter_literal(c, "=", deltalake::FilterValue::Scalar(v)))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let kind = if zorder_by.is_empty() { OptimizeType::Compact } else { OptimizeType::ZOrder(zorder_by.clone()) };
    let (_, metrics) = delta
        .optimize()
        .with_type(kind)
        .with_filters(&filters)
        .with_commit_properties(commit_properties())
        .await
        .map_err(conflict)?;
    let mut stats = vec![
        ("numFilesAdded".to_string(), metrics.num_files_added.to_string()),
        ("numFilesRemoved".to_string(), metrics.num_files_removed.to_string()),
        ("partitionsOptimized".to_string(), metrics.partitions_optimized.to_string()),
        ("numBatches".to_string(), metrics.num_batches.to_string()),
        ("totalConsideredFiles".to_string(), metrics.total_considered_files.to_string()),
        ("totalFilesSkipped".to_string(), metrics.total_files_skipped.to_string()),
    ];
    if !zorder_by.is_empty() {
        stats.push(("zOrderBy".to_string(), zorder_by.join(",")));
    }
    batch(vec![("path", Column::Str(vec![Some(table.location.clone())])), ("metrics", Column::Map(vec![Some(stats)]))])
}

async fn vacuum(lake: &Lake, table: &TableRef, retain_hours: Option<f64>, dry_run: bool) -> Result<RecordBatch> {
    let (delta, _store) = open(lake, table).await?;
    let minimum = delta.snapshot()?.table_config().deleted_file_retention_duration().as_secs_f64() / 3600.0;
    let minimum = if minimum.is_finite() { minimum } else { DEFAULT_RETENTION_HOURS };
    let retain = retain_hours.unwrap_or(minimum);
    if retain < minimum {
        return Err(LakeError::InvalidArgument(format!(
            "[DELTA_VACUUM_RETENTION_PERIOD_TOO_SHORT] requirement failed: Are you sure you would like to vacuum \
             files with such a low retention period ({retain} hours)? The table's \
             delta.deletedFileRetentionDuration is {minimum} hours; removing files still referenced by versions \
             younger than that can break readers and time travel. Lower the table property to go below it."
        )));
    }
    let (_, metrics) = delta
        .vacuum()
        .with_retention_period(chrono::Duration::seconds((retain * 3600.0) as i64))
        .with_enforce_retention_duration(false)
        .with_mode(VacuumMode::Full)
        .with_dry_run(dry_run)
        .with_commit_properties(commit_properties())
        .await
        .map_err(conflict)?;
    let base = table.location.trim_end_matches('/');
    let paths = if dry_run {
        metrics.files_deleted.iter().map(|f| Some(format!("{base}/{f}"))).collect()
    } else {
        vec![Some(table.location.clone())]
    };
    batch(vec![("path", Column::Str(paths))])
}

async fn restore(lake: &Lake, table: &TableRef, to: RestoreTarget) -> Result<RecordBatch> {
    let (delta, _store) = open(lake, table).await?;
    let builder = delta.restore().with_commit_properties(commit_properties());
    let builder = match to {
        RestoreTarget::Version(v) => builder.with_version_to_restore(
            u64::try_from(v).map_err(|_| LakeError::InvalidArgument(format!("version {v} is negative")))?,
        ),
        RestoreTarget::Timestamp(ts) => builder.with_datetime_to_restore(parse_timestamp(&ts)?),
    };
    let (restored, metrics) = builder.await.map_err(conflict)?;
    sync_columns(lake, table, &restored)?;
    let (files, size) = file_stats(&restored)?;
    let count = |n: usize| Column::Long(vec![Some(n as i64)]);
    batch(vec![
        ("table_size_after_restore", Column::Long(vec![Some(size)])),
        ("num_of_files_after_restore", Column::Long(vec![Some(files)])),
        ("num_removed_files", count(metrics.num_removed_file)),
        ("num_restored_files", count(metrics.num_restored_file)),
    ])
}

fn parse_timestamp(text: &str) -> Result<chrono::DateTime<chrono::Utc>> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    Err(LakeError::InvalidArgument(format!("'{text}' is not a timestamp (use 'yyyy-MM-dd HH:mm:ss')")))
}

/// A Spark SQL primitive type name as Delta's, for new columns.
pub(crate) fn delta_type(name: &str) -> Result<DataType> {
    let primitive = match name {
        "string" | "varchar" | "char" => PrimitiveType::String,
        "bigint" | "long" => PrimitiveType::Long,
        "int" | "integer" => PrimitiveType::Integer,
        "smallint" | "short" => PrimitiveType::Short,
        "tinyint" | "byte" => PrimitiveType::Byte,
        "double" => PrimitiveType::Double,
        "float" | "real" => PrimitiveType::Float,
        "boolean" => PrimitiveType::Boolean,
        "binary" => PrimitiveType::Binary,
        "date" => PrimitiveType::Date,
        "timestamp" => PrimitiveType::Timestamp,
        "timestamp_ntz" => PrimitiveType::TimestampNtz,
        other => match other.strip_prefix("decimal(").and_then(|r| r.strip_suffix(')')) {
            Some(args) => {
                let (p, s) = args.split_once(',').unwrap_or((args, "0"));
                let (p, s) = (p.trim().parse::<u8>(), s.trim().parse::<u8>());
                match (p, s) {
                    (Ok(p), Ok(s)) => PrimitiveType::decimal(p, s)
                        .map_err(|e| LakeError::InvalidArgument(format!("bad decimal type {other}: {e}")))?,
                    _ => return Err(LakeError::InvalidArgument(format!("bad decimal type {other}"))),
                }
            }
            None => {
                return Err(LakeError::InvalidArgument(format!(
                    "[UNSUPPORTED_DATATYPE] tarn's Delta statements take primitive and decimal types; '{other}' is not one"
                )));
            }
        },
    };
    Ok(DataType::Primitive(primitive))
}

async fn add_columns(lake: &Lake, table: &TableRef, columns: Vec<NewColumn>) -> Result<RecordBatch> {
    let (delta, _store) = open(lake, table).await?;
    let existing: Vec<String> = delta.snapshot()?.schema().fields().map(|f| f.name().to_lowercase()).collect();
    let mut fields = Vec::new();
    for c in &columns {
        if existing.contains(&c.name.to_lowercase()) {
            return Err(LakeError::InvalidArgument(format!(
                "[FIELDS_ALREADY_EXISTS] Cannot add column, because `{}` already exists in {}.",
                c.name, table.full_name
            )));
        }
        let mut field = StructField::new(c.name.clone(), delta_type(&c.data_type)?, true);
        if let Some(comment) = &c.comment {
            field = field.with_metadata([("comment".to_string(), comment.clone())]);
        }
        fields.push(field);
    }
    let updated =
        delta.add_columns().with_fields(fields).with_commit_properties(commit_properties()).await.map_err(conflict)?;
    sync_columns(lake, table, &updated)?;
    crate::table::empty()
}

/// Engines read a table's columns from the catalog: keep them the log's.
pub(crate) fn sync_columns(lake: &Lake, table: &TableRef, delta: &DeltaTable) -> Result<()> {
    let schema: Vec<Value> = delta.snapshot()?.schema().fields().map(|f| json!(f)).collect();
    let partitions = delta.snapshot()?.metadata().partition_columns().to_vec();
    lake.catalog().amend_table(&table.full_name, lake.user(), |info| {
        info.insert("columns".into(), Value::Array(crate::table::uc_columns(&schema, &partitions)));
    })?;
    Ok(())
}

pub(crate) async fn set_properties(
    lake: &Lake,
    table: &TableRef,
    properties: Vec<(String, String)>,
) -> Result<RecordBatch> {
    // Databricks keeps any key but an unknown `delta.` one; delta-rs knows
    // only its own unless told not to check.
    let unknown = |k: &str| {
        k.starts_with("delta.") && !k.starts_with("delta.feature.") && k.parse::<deltalake::TableProperty>().is_err()
    };
    if let Some((key, _)) = properties.iter().find(|(k, _)| unknown(k)) {
        return Err(LakeError::InvalidArgument(format!(
            "[DELTA_UNKNOWN_CONFIGURATION] Unknown configuration was specified: {key}"
        )));
    }
    let (delta, _store) = open(lake, table).await?;
    let map: HashMap<String, String> = properties.iter().cloned().collect();
    delta
        .set_tbl_properties()
        .with_properties(map)
        .with_raise_if_not_exists(false)
        .with_commit_properties(commit_properties())
        .await
        .map_err(conflict)?;
    lake.catalog().amend_table(&table.full_name, lake.user(), |info| {
        let mut merged = info.get("properties").and_then(Value::as_object).cloned().unwrap_or_default();
        for (k, v) in properties {
            merged.insert(k, json!(v));
        }
        info.insert("properties".into(), Value::Object(merged));
    })?;
    crate::table::empty()
}

async fn comment_on(lake: &Lake, table: &TableRef, comment: Option<String>) -> Result<RecordBatch> {
    let (delta, _store) = open(lake, table).await?;
    let update = TableMetadataUpdate { name: None, description: Some(comment.clone().unwrap_or_default()) };
    delta
        .update_table_metadata()
        .with_update(update)
        .with_commit_properties(commit_properties())
        .await
        .map_err(conflict)?;
    lake.catalog().amend_table(&table.full_name, lake.user(), |info: &mut Map<String, Value>| match comment {
        Some(c) => {
            info.insert("comment".into(), json!(c));
        }
        None => {
            info.remove("comment");
        }
    })?;
    crate::table::empty()
}

/// `SHOW TBLPROPERTIES`: the Delta log's configuration and the protocol's
/// versions, as Databricks lists them (one key asked for, one row).
async fn show_properties(lake: &Lake, table: &TableRef, key: Option<String>) -> Result<RecordBatch> {
    let (delta, _store) = open(lake, table).await?;
    let snapshot = delta.snapshot()?;
    let protocol = snapshot.protocol();
    let mut rows: Vec<(String, String)> =
        snapshot.metadata().configuration().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    rows.push(("delta.minReaderVersion".into(), protocol.min_reader_version().to_string()));
    rows.push(("delta.minWriterVersion".into(), protocol.min_writer_version().to_string()));
    property_rows(&table.full_name, rows, key)
}

/// `SHOW TBLPROPERTIES`' rows: all of them sorted, or the one asked for.
fn property_rows(full_name: &str, mut rows: Vec<(String, String)>, key: Option<String>) -> Result<RecordBatch> {
    rows.sort();
    if let Some(key) = key {
        let value = rows.into_iter().find(|(k, _)| *k == key).map(|(_, v)| v);
        let value = value.unwrap_or_else(|| format!("Table {full_name} does not have property: {key}"));
        rows = vec![(key, value)];
    }
    let (keys, values): (Vec<_>, Vec<_>) = rows.into_iter().map(|(k, v)| (Some(k), Some(v))).unzip();
    batch(vec![("key", Column::Str(keys)), ("value", Column::Str(values))])
}

/// A column's comment, kept in its Delta field metadata (where engines and
/// `DESCRIBE` read it) and in the catalog's columns.
async fn comment_on_column(
    lake: &Lake,
    table: &TableRef,
    column: &str,
    comment: Option<String>,
) -> Result<RecordBatch> {
    let (delta, _store) = open(lake, table).await?;
    let field =
        delta.snapshot()?.schema().fields().find(|f| f.name().eq_ignore_ascii_case(column)).map(|f| f.name().clone());
    let Some(field) = field else {
        return Err(LakeError::InvalidArgument(format!(
            "[UNRESOLVED_COLUMN] A column with name `{column}` cannot be resolved in {}.",
            table.full_name
        )));
    };
    let value = deltalake::kernel::MetadataValue::String(comment.unwrap_or_default());
    let updated = delta
        .update_field_metadata()
        .with_field_name(&field)
        .with_metadata(HashMap::from([("comment".to_string(), value)]))
        .with_commit_properties(commit_properties())
        .await
        .map_err(conflict)?;
    sync_columns(lake, table, &updated)?;
    crate::table::empty()
}
