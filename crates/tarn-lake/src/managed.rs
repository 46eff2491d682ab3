//! Delta tables tarn writes itself (inference tables, monitor outputs)
//! registered as MANAGED tables of the catalog, at a location the catalog
//! staged for them, as an engine's managed table would be.

use deltalake::DeltaTable;
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::protocol::SaveMode;
use serde_json::{Value, json};
use tarn_catalog::{Catalog, CatalogError, CreateRequest, Kind};

use crate::table::uc_columns;

/// The Delta table at `location` (a local path, `file://` or the storage
/// root's `s3://` URL), built unloaded when it has no log yet.
pub async fn open_table(location: &str) -> Result<DeltaTable, String> {
    if let Some(dir) = tarn_catalog::local_path(location) {
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    let url = deltalake::ensure_table_uri(location).map_err(|e| e.to_string())?;
    let table = match DeltaTable::try_from_url(url.clone()).await {
        Err(deltalake::DeltaTableError::NotATable(_)) => {
            deltalake::DeltaTableBuilder::from_url(url).and_then(|b| b.build())
        }
        other => other,
    };
    table.map_err(|e| format!("opening {location}: {e}"))
}

/// Where (the location URL) the managed table `catalog.schema.name` keeps its files: the
/// existing table's, or a new one's, created empty with `empty`'s columns
/// and registered with `comment`. Refuses a name whose schema is missing
/// (`Err(None)` means exactly that) or a table tarn cannot write.
pub async fn ensure_managed_table(
    catalog: &Catalog,
    full_name: &str,
    owner: &str,
    comment: &str,
    empty: RecordBatch,
) -> Result<String, Option<String>> {
    let parts: Vec<&str> = full_name.splitn(3, '.').collect();
    let [catalog_name, schema_name, name] = parts.as_slice() else {
        return Err(Some(format!("'{full_name}' is not a catalog.schema.table name")));
    };
    match catalog.get(Kind::Schema, &format!("{catalog_name}.{schema_name}")) {
        Ok(_) => {}
        Err(CatalogError::NotFound { .. }) => return Err(None),
        Err(e) => return Err(Some(e.to_string())),
    }
    match catalog.get(Kind::Table, full_name) {
        Ok(info) => {
            let location = info.get("storage_location").and_then(Value::as_str).unwrap_or_default();
            return writable(catalog, location)
                .ok_or_else(|| Some(format!("Table {full_name} exists and is not a table tarn can write")));
        }
        Err(CatalogError::NotFound { .. }) => {}
        Err(e) => return Err(Some(e.to_string())),
    }
    let text = |s: &str| Some(s.to_string());
    let names = CreateRequest {
        catalog_name: text(catalog_name),
        schema_name: text(schema_name),
        name: text(name),
        ..Default::default()
    };
    let staged = catalog.create(Kind::Staging, &names, owner).map_err(|e| Some(e.to_string()))?;
    let location = staged.get("staging_location").and_then(Value::as_str).unwrap_or_default().to_string();
    let table = open_table(&location).await?;
    let table = table
        .write(vec![empty])
        .with_save_mode(SaveMode::Append)
        .await
        .map_err(|e| Some(format!("creating {full_name}: {e}")))?;
    let fields: Vec<Value> =
        table.snapshot().map_err(|e| Some(e.to_string()))?.schema().fields().map(|f| json!(f)).collect();
    let request = CreateRequest {
        table_type: text("MANAGED"),
        data_source_format: text("DELTA"),
        storage_location: Some(location),
        columns: uc_columns(&fields, &[]),
        comment: text(comment),
        ..names
    };
    let location = request.storage_location.clone().unwrap_or_default();
    catalog.create(Kind::Table, &request, owner).map_err(|e| Some(e.to_string()))?;
    Ok(location)
}

/// `location` when tarn can write there: on this machine or under the
/// storage root.
fn writable(catalog: &Catalog, location: &str) -> Option<String> {
    let local = tarn_catalog::local_path(location).is_some();
    let in_root = catalog.storage().object().is_some_and(|root| root.rel_of_url(location).is_some());
    (local || in_root).then(|| location.to_string())
}
