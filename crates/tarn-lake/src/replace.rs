//! `CREATE OR REPLACE TABLE t (columns)` of an existing table: the engine's
//! catalog cannot replace a table, so tarn does it as Databricks does: the
//! new schema and no rows as the table's next version (history, id and
//! grants kept). A missing table is the engine's to create (see
//! [`crate::Lake::execute_sql`]).

use deltalake::arrow::datatypes::Schema as ArrowSchema;
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::kernel::engine::arrow_conversion::TryIntoArrow;
use deltalake::kernel::{StructField, StructType};
use deltalake::operations::write::SchemaMode;
use deltalake::protocol::SaveMode;
use serde_json::json;

use crate::ops::{commit_properties, conflict, delta_type, open, set_properties, sync_columns};
use crate::statement::TableColumn;
use crate::{Lake, LakeError, Result};

pub(crate) async fn replace_table(
    lake: &Lake,
    parts: &[String],
    columns: &[TableColumn],
    comment: Option<String>,
    properties: Vec<(String, String)>,
) -> Result<RecordBatch> {
    let empty = empty_batch(columns)?;
    let table = lake.resolve(parts)?;
    let (delta, _store) = open(lake, &table).await?;
    let replaced = delta
        .write(vec![empty])
        .with_save_mode(SaveMode::Overwrite)
        .with_schema_mode(SchemaMode::Overwrite)
        .with_commit_properties(commit_properties())
        .await
        .map_err(conflict)?;
    sync_columns(lake, &table, &replaced)?;
    lake.catalog().amend_table(&table.full_name, lake.user(), |info| match &comment {
        Some(c) => {
            info.insert("comment".into(), json!(c));
        }
        None => {
            info.remove("comment");
        }
    })?;
    if !properties.is_empty() {
        set_properties(lake, &table, properties).await?;
    }
    crate::table::empty()
}

/// No rows, with the columns' types (and comments) as Delta writes them.
fn empty_batch(columns: &[TableColumn]) -> Result<RecordBatch> {
    let mut fields = Vec::new();
    for c in columns {
        let mut field = StructField::new(c.column.name.clone(), delta_type(&c.column.data_type)?, c.nullable);
        if let Some(comment) = &c.column.comment {
            field = field.with_metadata([("comment".to_string(), comment.clone())]);
        }
        fields.push(field);
    }
    let schema = StructType::try_new(fields).map_err(|e| LakeError::InvalidArgument(e.to_string()))?;
    let arrow: ArrowSchema = (&schema).try_into_arrow().map_err(|e| LakeError::InvalidArgument(e.to_string()))?;
    Ok(RecordBatch::new_empty(std::sync::Arc::new(arrow)))
}
