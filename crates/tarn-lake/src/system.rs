//! System tables: `system.compute.clusters`, `system.access.audit`,
//! `system.billing.usage` and `system.lakeflow.job_run_timeline`,
//! Delta tables tarn writes from its own store so any engine reads them
//! with SQL like any other table.
//!
//! They live under `$TARN_HOME/lake/system/` and are registered in the
//! catalog as EXTERNAL tables of the `system` catalog. They are refreshed
//! when a statement names `system.` (see [`mentions_system_tables`]): the
//! clusters table is rewritten whole when its rows changed, the audit table
//! gets the events recorded since its last refresh appended.

use std::path::PathBuf;
use std::sync::Arc;

use deltalake::DeltaTable;
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::operations::write::SchemaMode;
use deltalake::protocol::SaveMode;
use serde_json::{Map, Value, json};
use tarn_catalog::{Catalog, CatalogError, CreateRequest, Kind};
use tarn_store::{AuditEvent, ClusterRow, Store};
use tokio::sync::Mutex;

use crate::system_jobs::{TIMELINE, USAGE, timeline_batch, usage_batch};
use crate::table::{Column, batch, uc_columns};
use crate::{LakeError, Result};

pub const SYSTEM_CATALOG: &str = "system";
const CLUSTERS: (&str, &str) = ("compute", "clusters");
const AUDIT: (&str, &str) = ("access", "audit");
const MS_PER_DAY: i64 = 86_400_000;

/// True when `sql` may read a system table.
pub fn mentions_system_tables(sql: &str) -> bool {
    sql.to_ascii_lowercase().contains("system.")
}

/// The system tables service. Cheap to clone.
#[derive(Clone)]
pub struct SystemTables {
    inner: Arc<Inner>,
}

struct Inner {
    catalog: Catalog,
    store: Arc<Store>,
    dir: PathBuf,
    workspace_id: String,
    owner: String,
    written: Mutex<Written>,
}

/// What this process last wrote to the tables.
#[derive(Default)]
struct Written {
    /// The last audit event id in the table; `None` until the first refresh
    /// since start, which rewrites the table whole.
    audit_until: Option<i64>,
    /// The clusters table's rows, rewritten only when they change.
    clusters: Option<RecordBatch>,
    /// How many runs were finished (and the last end) when the job tables
    /// were last rewritten.
    job_runs: Option<(usize, i64)>,
}

impl SystemTables {
    /// `lake` is `$TARN_HOME/lake`; `owner` owns the catalog objects.
    pub fn new(catalog: Catalog, store: Arc<Store>, lake: PathBuf, workspace_id: &str, owner: &str) -> Self {
        Self {
            inner: Arc::new(Inner {
                catalog,
                store,
                dir: lake.join(SYSTEM_CATALOG),
                workspace_id: workspace_id.to_string(),
                owner: owner.to_string(),
                written: Mutex::new(Written::default()),
            }),
        }
    }

    /// Brings both tables up to date, creating them (and their catalog
    /// entries) the first time.
    pub async fn refresh(&self) -> Result<()> {
        let mut written = self.inner.written.lock().await;
        let clusters = self.clusters_batch()?;
        if written.clusters.as_ref() != Some(&clusters) {
            self.write(CLUSTERS, clusters.clone(), SaveMode::Overwrite).await?;
            written.clusters = Some(clusters);
        }
        let after = written.audit_until.unwrap_or(0);
        let events = self.inner.store.audit_events_after(after)?;
        let last = events.last().map_or(after, |(id, _)| *id);
        if written.audit_until.is_none() || !events.is_empty() {
            let mode = if written.audit_until.is_none() { SaveMode::Overwrite } else { SaveMode::Append };
            self.write(AUDIT, self.audit_batch(&events)?, mode).await?;
        }
        written.audit_until = Some(last);
        let finished = self.inner.store.finished_job_runs()?;
        let signature = (finished.len(), finished.iter().filter_map(|r| r.end_time).max().unwrap_or(0));
        if written.job_runs != Some(signature) {
            let id = &self.inner.workspace_id;
            self.write(USAGE, usage_batch(&finished, id)?, SaveMode::Overwrite).await?;
            let compute = |run_id: i64| -> Vec<String> {
                let mut ids: Vec<String> = finished
                    .iter()
                    .filter(|t| t.parent_run_id == Some(run_id))
                    .filter_map(|t| t.doc.pointer("/usage/cluster_id").and_then(Value::as_str).map(str::to_string))
                    .collect();
                ids.sort();
                ids.dedup();
                ids
            };
            self.write(TIMELINE, timeline_batch(&finished, &compute, id)?, SaveMode::Overwrite).await?;
            written.job_runs = Some(signature);
        }
        Ok(())
    }

    async fn write(&self, (schema, name): (&str, &str), rows: RecordBatch, mode: SaveMode) -> Result<()> {
        let dir = self.inner.dir.join(schema).join(name);
        std::fs::create_dir_all(&dir)
            .map_err(|source| LakeError::Io { context: format!("creating {}", dir.display()), source })?;
        let url = deltalake::ensure_table_uri(dir.to_string_lossy())?;
        // A newer tarn may add columns: overwrites take the new schema, appends merge it.
        let schema_mode = if mode == SaveMode::Overwrite { SchemaMode::Overwrite } else { SchemaMode::Merge };
        // A table not yet written is built unloaded: loading it would log an error.
        let table = if dir.join("_delta_log").exists() {
            DeltaTable::try_from_url(url.clone()).await?
        } else {
            deltalake::DeltaTableBuilder::from_url(url.clone())?.build()?
        };
        let table = table.write(vec![rows]).with_save_mode(mode).with_schema_mode(schema_mode).await?;
        if mode == SaveMode::Append {
            return Ok(());
        }
        let fields: Vec<Value> = table.snapshot()?.schema().fields().map(|f| json!(f)).collect();
        self.register(schema, name, url.as_str(), uc_columns(&fields, &[]))
    }

    /// The catalog entries, created once; the columns follow each whole
    /// rewrite (appends keep the schema the first write of this process set).
    fn register(&self, schema: &str, name: &str, location: &str, columns: Vec<Value>) -> Result<()> {
        let catalog = &self.inner.catalog;
        let owner = &self.inner.owner;
        let ensure = |kind: Kind, full: &str, req: CreateRequest| -> Result<()> {
            match catalog.get(kind, full) {
                Ok(_) => Ok(()),
                Err(CatalogError::NotFound { .. }) => catalog.create(kind, &req, owner).map(drop).map_err(Into::into),
                Err(e) => Err(e.into()),
            }
        };
        let text = |s: &str| Some(s.to_string());
        let catalog_req = CreateRequest {
            name: text(SYSTEM_CATALOG),
            comment: text("System tables written by tarn"),
            ..Default::default()
        };
        ensure(Kind::Catalog, SYSTEM_CATALOG, catalog_req)?;
        let schema_req = CreateRequest { catalog_name: text(SYSTEM_CATALOG), name: text(schema), ..Default::default() };
        ensure(Kind::Schema, &format!("{SYSTEM_CATALOG}.{schema}"), schema_req)?;
        let full = format!("{SYSTEM_CATALOG}.{schema}.{name}");
        let table_req = CreateRequest {
            catalog_name: text(SYSTEM_CATALOG),
            schema_name: text(schema),
            name: text(name),
            table_type: text("EXTERNAL"),
            data_source_format: text("DELTA"),
            storage_location: text(location),
            columns: columns.clone(),
            ..Default::default()
        };
        ensure(Kind::Table, &full, table_req)?;
        catalog.amend_table(&full, owner, |info: &mut Map<String, Value>| {
            info.insert("columns".into(), Value::Array(columns));
        })?;
        Ok(())
    }

    fn clusters_batch(&self) -> Result<RecordBatch> {
        let rows: Vec<ClusterRow> = self.inner.store.list_clusters()?.into_iter().filter(|c| !c.is_managed()).collect();
        let spec_str = |c: &ClusterRow, key: &str| c.spec.get(key).and_then(Value::as_str).map(str::to_string);
        let spec_int = |c: &ClusterRow, pointer: &str| c.spec.pointer(pointer).and_then(Value::as_i64);
        let changed =
            |c: &ClusterRow| [Some(c.start_time), c.last_restarted_time, c.terminated_time].into_iter().flatten().max();
        let all = |f: &dyn Fn(&ClusterRow) -> Option<String>| Column::Str(rows.iter().map(f).collect());
        let ints = |f: &dyn Fn(&ClusterRow) -> Option<i64>| Column::Long(rows.iter().map(f).collect());
        batch(vec![
            ("workspace_id", all(&|_| Some(self.inner.workspace_id.clone()))),
            ("cluster_id", all(&|c| Some(c.cluster_id.clone()))),
            ("cluster_name", all(&|c| spec_str(c, "cluster_name"))),
            ("owned_by", all(&|c| Some(c.creator.clone()))),
            ("create_time", Column::Timestamp(rows.iter().map(|c| Some(c.start_time)).collect())),
            ("delete_time", Column::Timestamp(rows.iter().map(|_| None).collect())),
            ("driver_node_type", all(&|c| spec_str(c, "driver_node_type_id").or_else(|| spec_str(c, "node_type_id")))),
            ("worker_node_type", all(&|c| spec_str(c, "node_type_id"))),
            ("worker_count", ints(&|c| spec_int(c, "/num_workers"))),
            ("min_autoscale_workers", ints(&|c| spec_int(c, "/autoscale/min_workers"))),
            ("max_autoscale_workers", ints(&|c| spec_int(c, "/autoscale/max_workers"))),
            ("auto_termination_minutes", ints(&|c| spec_int(c, "/autotermination_minutes"))),
            ("tags", Column::Map(rows.iter().map(|c| Some(tags(&c.spec))).collect())),
            ("cluster_source", all(&|_| Some("API".into()))),
            ("dbr_version", all(&|c| spec_str(c, "spark_version"))),
            ("state", all(&|c| Some(c.state.clone()))),
            ("change_time", Column::Timestamp(rows.iter().map(changed).collect())),
            ("change_date", Column::Date(rows.iter().map(|c| changed(c).map(day)).collect())),
        ])
    }

    fn audit_batch(&self, events: &[(i64, AuditEvent)]) -> Result<RecordBatch> {
        let all = |f: &dyn Fn(i64, &AuditEvent) -> Option<String>| {
            Column::Str(events.iter().map(|(id, e)| f(*id, e)).collect())
        };
        let request_params = events
            .iter()
            .map(|(_, e)| {
                Some(vec![
                    ("method".to_string(), e.method.clone()),
                    ("path".to_string(), e.request_path.clone()),
                    ("duration_ms".to_string(), e.duration_ms.to_string()),
                ])
            })
            .collect();
        batch(vec![
            ("workspace_id", all(&|_, _| Some(self.inner.workspace_id.clone()))),
            ("version", all(&|_, _| Some("2.0".into()))),
            ("event_time", Column::Timestamp(events.iter().map(|(_, e)| Some(e.event_time)).collect())),
            ("event_date", Column::Date(events.iter().map(|(_, e)| Some(day(e.event_time))).collect())),
            ("event_id", all(&|id, _| Some(id.to_string()))),
            ("user_identity", Column::Struct(vec![("email", all(&|_, e| Some(e.user_name.clone())))])),
            ("service_name", all(&|_, e| Some(e.service_name.clone()))),
            ("action_name", all(&|_, e| Some(e.action_name.clone()))),
            ("request_params", Column::Map(request_params)),
            (
                "response",
                Column::Struct(vec![(
                    "status_code",
                    Column::Long(events.iter().map(|(_, e)| Some(e.status_code)).collect()),
                )]),
            ),
            ("audit_level", all(&|_, _| Some("WORKSPACE_LEVEL".into()))),
        ])
    }
}

fn tags(spec: &Value) -> Vec<(String, String)> {
    spec.get("custom_tags")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
        .unwrap_or_default()
}

fn day(ms: i64) -> i32 {
    i32::try_from(ms.div_euclid(MS_PER_DAY)).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_naming_system_tables_are_noticed() {
        assert!(mentions_system_tables("SELECT * FROM System.access.audit"));
        assert!(!mentions_system_tables("SELECT * FROM main.default.t"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tables_are_written_registered_and_appended() {
        let dir = std::env::temp_dir().join(format!("tarn-system-{}", std::process::id()));
        let store = Arc::new(Store::open_in_memory().unwrap());
        let catalog = Catalog::new(store.clone(), dir.join("lake"));
        let system = SystemTables::new(catalog.clone(), store.clone(), dir.join("lake"), "42", "admin");
        let event = |path: &str| AuditEvent {
            event_time: 1_700_000_000_000,
            user_name: "admin".into(),
            service_name: "clusters".into(),
            action_name: "list".into(),
            method: "GET".into(),
            request_path: path.into(),
            status_code: 200,
            duration_ms: 3,
        };
        store.record_audit(&event("/a")).unwrap();
        system.refresh().await.unwrap();
        let spec = json!({"cluster_name": "etl", "spark_version": "16.4.x-scala2.13", "custom_tags": {"team": "x"}});
        let cluster = ClusterRow::new("c1", spec, "RUNNING", "admin", 1_700_000_000_000);
        store.save_cluster(&cluster, &[]).unwrap();
        store.record_audit(&event("/b")).unwrap();
        system.refresh().await.unwrap();
        system.refresh().await.unwrap();
        let info = catalog.get(Kind::Table, "system.access.audit").unwrap();
        assert_eq!(info["table_type"], "EXTERNAL");
        let names: Vec<_> = info["columns"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert!(names.contains(&"user_identity") && names.contains(&"event_time"), "{names:?}");
        let location = info["storage_location"].as_str().unwrap();
        let table = deltalake::open_table(url::Url::parse(location).unwrap()).await.unwrap();
        // Version 0 wrote the first event, version 1 appended the second; the
        // third refresh had nothing new.
        assert_eq!(table.version(), Some(1));
        // The clusters table: empty at version 0, the cluster at version 1, and
        // no rewrite while nothing changed.
        let clusters = catalog.get(Kind::Table, "system.compute.clusters").unwrap();
        let location = url::Url::parse(clusters["storage_location"].as_str().unwrap()).unwrap();
        assert_eq!(deltalake::open_table(location).await.unwrap().version(), Some(1));
        let _ = std::fs::remove_dir_all(dir);
    }
}
