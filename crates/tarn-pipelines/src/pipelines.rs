//! `Pipelines`: pipeline definitions created, read, edited and deleted, and
//! what a pipeline's state is (read from its updates, never stored apart).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tarn_catalog::{Catalog, Kind};
use tarn_compute::ClusterManager;
use tarn_compute::context::Contexts;
use tarn_compute::managed::{ManagedCluster, ManagedSpec};
use tarn_core::time::now_ms;
use tarn_files::Files;
use tarn_store::{PipelineRow, Store, UpdateRow};
use tokio::sync::watch;

use crate::error::{PipelinesError, Result};
use crate::flows::write::OWNER_PROPERTY;
use crate::settings::PipelineSettings;
use crate::updates::state::UpdateState;

pub use tarn_store::PIPELINE_TAG;

#[derive(Clone)]
pub struct PipelinesConfig {
    /// Where pipeline tables live (`$TARN_HOME/lake/pipelines`).
    pub tables_dir: crate::table_dir::TableDir,
    pub cluster_start_timeout: Duration,
    /// Minutes a development pipeline's cluster stays up after an update.
    pub development_keep_mins: i64,
    /// Checks what each flow reads against its run-as principal's grants.
    pub access: Option<Arc<dyn tarn_gateway::AccessControl>>,
}

#[derive(Clone)]
pub struct Pipelines {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub store: Arc<Store>,
    pub catalog: Catalog,
    pub files: Files,
    pub clusters: ClusterManager,
    pub contexts: Contexts,
    pub config: PipelinesConfig,
    /// Stop signals of the updates this process drives, by update id.
    pub active: Mutex<HashMap<String, watch::Sender<bool>>>,
}

/// A pipeline with its state as `GET /pipelines/{id}` shows it.
#[derive(Debug, Clone)]
pub struct PipelineView {
    pub row: PipelineRow,
    pub state: &'static str,
    pub health: &'static str,
    pub latest_updates: Vec<UpdateRow>,
    /// Who its updates run as.
    pub run_as: String,
}

pub(crate) fn not_found(pipeline_id: &str) -> PipelinesError {
    PipelinesError::NotFound(format!("The specified pipeline {pipeline_id} was not found."))
}

impl Pipelines {
    /// Appends the pipeline's new events to its event log table (see
    /// [`crate::event_table`]); a failure is logged, the update unaffected.
    pub(crate) async fn publish_event_log(&self, pipeline: &PipelineRow, owner: &str) {
        let Some(dir) = self.event_log_dir(&pipeline.pipeline_id) else { return };
        let published = crate::event_table::published_name(&pipeline.spec);
        let inner = &self.inner;
        let result = crate::event_table::publish(
            &inner.store,
            &inner.catalog,
            &dir,
            &pipeline.pipeline_id,
            published.as_deref(),
            owner,
        )
        .await;
        if let Err(e) = result {
            tracing::warn!(pipeline_id = pipeline.pipeline_id, error = %e, "publishing a pipeline's event log");
        }
    }

    /// Where `event_log('<pipeline_id>')` reads, when it has been written.
    pub fn event_log_dir(&self, pipeline_id: &str) -> Option<crate::table_dir::TableDir> {
        crate::event_table::event_log_dir(&self.inner.config.tables_dir, pipeline_id)
    }

    pub fn new(
        store: Arc<Store>,
        catalog: Catalog,
        files: Files,
        clusters: ClusterManager,
        contexts: Contexts,
        config: PipelinesConfig,
    ) -> Self {
        let inner = Inner { store, catalog, files, clusters, contexts, config, active: Mutex::default() };
        Self { inner: Arc::new(inner) }
    }

    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn create(&self, user: &str, settings: PipelineSettings) -> Result<String> {
        if let Some(existing) = self.store().pipeline_named(&settings.name)? {
            let allow = settings.raw.get("allow_duplicate_names").and_then(Value::as_bool).unwrap_or(false);
            if !allow {
                return Err(PipelinesError::InvalidParameter(format!(
                    "Pipeline name '{}' already exists (pipeline {})",
                    settings.name, existing.pipeline_id
                )));
            }
        }
        let now = now_ms();
        let pipeline_id = uuid::Uuid::new_v4().to_string();
        let mut spec = settings.raw.clone();
        spec["id"] = Value::String(pipeline_id.clone());
        let row = PipelineRow {
            pipeline_id: pipeline_id.clone(),
            name: settings.name,
            spec,
            creator_user_name: user.to_string(),
            created_time: now,
            last_modified: now,
            cluster_id: None,
        };
        self.store().create_pipeline(&row)?;
        Ok(pipeline_id)
    }

    /// Who the pipeline's updates run as: its `run_as` principal, else its owner.
    pub fn run_as(&self, row: &PipelineRow) -> String {
        let named = PipelineSettings::parse(&row.spec).ok().and_then(|s| s.run_as);
        named.unwrap_or_else(|| row.creator_user_name.clone())
    }

    pub fn row(&self, pipeline_id: &str) -> Result<PipelineRow> {
        self.store().get_pipeline(pipeline_id)?.ok_or_else(|| not_found(pipeline_id))
    }

    pub fn get(&self, pipeline_id: &str) -> Result<PipelineView> {
        let row = self.row(pipeline_id)?;
        let latest_updates = self.store().list_pipeline_updates(pipeline_id, 0, 5)?;
        let latest = latest_updates.first().and_then(|u| UpdateState::parse(&u.state));
        let state = match latest {
            Some(UpdateState::Stopping) => "STOPPING",
            Some(s) if !s.is_final() => "RUNNING",
            Some(UpdateState::Failed) => "FAILED",
            _ => "IDLE",
        };
        let health = if latest == Some(UpdateState::Failed) { "UNHEALTHY" } else { "HEALTHY" };
        let run_as = self.run_as(&row);
        Ok(PipelineView { row, state, health, latest_updates, run_as })
    }

    /// `PUT /pipelines/{id}`: the settings replaced whole.
    pub fn edit(&self, pipeline_id: &str, settings: PipelineSettings) -> Result<()> {
        let row = self.row(pipeline_id)?;
        let mut spec = settings.raw.clone();
        spec["id"] = Value::String(row.pipeline_id.clone());
        self.store().set_pipeline_spec(pipeline_id, &settings.name, &spec, now_ms())?;
        Ok(())
    }

    pub fn list(&self, name_like: Option<&str>, offset: usize, limit: usize) -> Result<Vec<PipelineView>> {
        let rows = self.store().list_pipelines(name_like, offset, limit)?;
        rows.iter().map(|r| self.get(&r.pipeline_id)).collect()
    }

    /// Deletes the pipeline, stopping its update and its cluster; its tables
    /// leave the catalog too (`cascade`, the default).
    pub async fn delete(&self, pipeline_id: &str, cascade: bool) -> Result<()> {
        let row = self.row(pipeline_id)?;
        if let Some(update) = self.active_update(pipeline_id)? {
            self.stop(pipeline_id)?;
            self.wait_update(&update.update_id).await;
        }
        if let Err(e) = self.cluster(pipeline_id, false).stop(&row.creator_user_name) {
            tracing::warn!(pipeline_id, error = %e, "stopping a deleted pipeline's cluster");
        }
        if cascade {
            self.drop_tables(&row)?;
        }
        self.store().delete_pipeline(pipeline_id)?;
        Ok(())
    }

    fn drop_tables(&self, row: &PipelineRow) -> Result<()> {
        let settings = PipelineSettings::parse(&row.spec).unwrap_or_default();
        let schema = [settings.catalog.as_str(), settings.schema.as_str()];
        let tables = self.inner.catalog.list(Kind::Table, &schema).unwrap_or_default();
        for table in tables {
            let owner = table.get("properties").and_then(|p| p.get(OWNER_PROPERTY)).and_then(Value::as_str);
            let Some(full) = table.get("full_name").and_then(Value::as_str) else { continue };
            if owner == Some(row.pipeline_id.as_str())
                && let Err(e) = self.inner.catalog.delete(Kind::Table, full, true)
            {
                tracing::warn!(table = full, error = %e, "dropping a deleted pipeline's table");
            }
        }
        let dir = self.inner.config.tables_dir.join(&row.pipeline_id);
        if let Err(e) = dir.remove_all() {
            tracing::warn!(error = %e, "removing a deleted pipeline's tables");
        }
        Ok(())
    }

    /// The pipeline's cluster, created on first use.
    pub(crate) fn cluster(&self, pipeline_id: &str, development: bool) -> ManagedCluster {
        let keep = if development { self.inner.config.development_keep_mins } else { 10 };
        let spec = ManagedSpec {
            name: format!("dlt-execution-{pipeline_id}"),
            tag: PIPELINE_TAG,
            tag_value: pipeline_id.to_string(),
            auto_stop_mins: keep,
            start_timeout: self.inner.config.cluster_start_timeout,
        };
        ManagedCluster::new(self.inner.clusters.clone(), spec)
    }
}
