//! Delta commit coordination for managed tables: the catalog is the arbiter
//! of which writer gets each version (Sail writes version 0 itself, then
//! stages each later commit and asks here before publishing it).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tarn_core::time::now_ms;
use tarn_store::{CommitOutcome, DeltaCommit, UcObject};
use tokio::sync::OwnedMutexGuard;

use crate::{Catalog, CatalogError, Kind, Result};

/// One lock per managed table: held while a commit is decided and written,
/// so an engine's commit and one tarn writes itself are never interleaved.
#[derive(Clone, Default)]
pub(crate) struct CommitLocks(Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>);

impl CommitLocks {
    async fn lock(&self, table_id: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.0.lock().unwrap_or_else(|p| p.into_inner());
            locks.entry(table_id.to_string()).or_default().clone()
        };
        lock.lock_owned().await
    }
}

/// What `GET delta/preview/commits` answers.
#[derive(Debug, Clone)]
pub struct Commits {
    pub commits: Vec<DeltaCommit>,
    pub latest_table_version: i64,
}

#[derive(Debug, Clone)]
pub struct CommitRequest {
    pub table_id: String,
    pub table_uri: Option<String>,
    pub commit: DeltaCommit,
    pub latest_backfilled_version: Option<i64>,
    /// `metadata` of the commit when the schema or description changed.
    pub metadata: Option<Value>,
}

/// The highest `NNN.json` version in the table's `_delta_log`, for the
/// first commit made through the catalog (the writer made the earlier ones).
fn latest_logged_version(storage: &tarn_storage::Storage, location: &str) -> Option<i64> {
    if let Some(root) = storage.object()
        && let Some(rel) = root.rel_of_url(location)
    {
        let listed = root.list_dir(&format!("{rel}/_delta_log")).ok()?;
        let names = listed.objects.iter().map(|o| tarn_storage::ObjectRoot::name_of(&o.location));
        return names.filter_map(|name| delta_log_version(&name, "json")).max();
    }
    let log = crate::local_path(location)?.join("_delta_log");
    std::fs::read_dir(log).ok()?.filter_map(|e| delta_log_version(e.ok()?.file_name().to_str()?, "json")).max()
}

/// The version of a Delta log file name (`<20 digits>.<ext>`).
pub fn delta_log_version(file_name: &str, ext: &str) -> Option<i64> {
    let stem = file_name.strip_suffix(ext)?.strip_suffix('.')?;
    (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit())).then(|| stem.parse().ok())?
}

fn same_location(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

impl Catalog {
    fn table_by_id(&self, table_id: &str, table_uri: Option<&str>) -> Result<UcObject> {
        let table = self
            .store
            .get_uc_object_by_id(table_id)?
            .filter(|o| o.kind == Kind::Table.as_str())
            .ok_or_else(|| CatalogError::NotFound { kind: Kind::Table, name: table_id.to_string() })?;
        let location = table.info.get("storage_location").and_then(Value::as_str).unwrap_or("");
        if let Some(uri) = table_uri.filter(|u| !same_location(u, location)) {
            return Err(CatalogError::InvalidArgument(format!(
                "table_uri {uri} does not match the location of table {table_id}"
            )));
        }
        Ok(table)
    }

    pub fn delta_commits(
        &self,
        table_id: &str,
        table_uri: Option<&str>,
        start: i64,
        end: Option<i64>,
    ) -> Result<Commits> {
        self.table_by_id(table_id, table_uri)?;
        let (commits, latest_table_version) = self.store.delta_commits(table_id, start, end)?;
        Ok(Commits { commits, latest_table_version })
    }

    /// Holds the table's commit lock until the guard drops.
    pub async fn lock_commits(&self, table_id: &str) -> OwnedMutexGuard<()> {
        self.locks.lock(table_id).await
    }

    /// The latest version the catalog has accepted (-1 when none).
    pub fn latest_commit(&self, table_id: &str) -> Result<i64> {
        Ok(self.store.delta_commits(table_id, i64::MAX, None)?.1)
    }

    /// Records a commit tarn wrote itself (published to
    /// `_delta_log/<version>.json` and staged as `commit.file_name`). The
    /// caller holds the table's commit lock.
    pub fn record_published_commit(&self, table_id: &str, commit: DeltaCommit) -> Result<()> {
        let version = commit.version;
        match self.store.commit_delta(table_id, &commit, None, version - 1)? {
            CommitOutcome::Committed => Ok(()),
            CommitOutcome::Conflict { latest } => Err(CatalogError::CommitConflict { version, latest }),
        }
    }

    /// Accepts the commit if it is the table's next version, and takes the
    /// columns and description of `metadata` into the table's info.
    pub async fn commit(&self, req: CommitRequest) -> Result<()> {
        let _guard = self.locks.lock(&req.table_id).await;
        let mut table = self.table_by_id(&req.table_id, req.table_uri.as_deref())?;
        let location = table.info.get("storage_location").and_then(Value::as_str);
        let on_disk = location.and_then(|location| latest_logged_version(&self.storage, location));
        match self.store.commit_delta(
            &req.table_id,
            &req.commit,
            req.latest_backfilled_version,
            on_disk.unwrap_or(0),
        )? {
            CommitOutcome::Conflict { latest } => {
                return Err(CatalogError::CommitConflict { version: req.commit.version, latest });
            }
            CommitOutcome::Committed => {}
        }
        let Some(metadata) = req.metadata else { return Ok(()) };
        if let Some(info) = table.info.as_object_mut() {
            if let Some(columns) = metadata.pointer("/schema/columns").filter(|c| c.is_array()) {
                info.insert("columns".into(), columns.clone());
            }
            if let Some(description) = metadata.get("description").and_then(Value::as_str) {
                info.insert("comment".into(), json!(description));
            }
            info.insert("updated_at".into(), json!(now_ms()));
        }
        let full_name = table.full_name.clone();
        self.store.update_uc_object(Kind::Table.as_str(), &full_name, &table)?;
        Ok(())
    }
}
