//! Data quality monitors (Lakehouse Monitoring) on catalog tables, as
//! `databricks-sdk`'s `w.quality_monitors` drives them: a monitor profiles
//! its table per time window (or as a snapshot), compares each window with
//! the one before and with a baseline table, and writes
//! `<output schema>.<table>_profile_metrics` and `_drift_metrics`.
//!
//! [`spec`] reads a monitor's definition; [`scan`] reads a table (or the
//! files added since the last refresh) once, streaming, into per-window
//! sketches ([`profile`], [`window`]), sliced by [`slicing`]; [`drift`]
//! compares sketches; [`output`] turns them into the output tables' rows,
//! which [`tables`] writes. [`refresh`] decides what a refresh reads from
//! the Delta log ([`changes`]) and what the last one kept ([`state`],
//! bytes by [`codec`]). A refresh is a task; its state is written fenced,
//! so a cancel and a finish cannot both land.
//!
//! Invariants: a refresh is SUCCESS only once both output tables are
//! written; memory per refresh depends on windows and columns, never on
//! rows; a kept state is used only when the log since shows appends alone;
//! wire JSON is built here only as the stored `MonitorInfo`, which the API
//! answers as is.

pub mod changes;
pub mod codec;
pub mod custom;
pub mod custom_eval;
pub mod distinct;
pub mod drift;
pub mod error;
pub mod output;
pub mod profile;
mod refresh;
pub mod report;
pub mod scan;
pub mod schedule;
pub mod slicing;
pub mod spec;
pub mod state;
pub mod tables;
pub mod window;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};
use tarn_catalog::{Catalog, CatalogError, Kind};
use tarn_core::time::now_ms;
use tarn_store::{MonitorRow, RefreshRow, Store};

pub use error::{MonitorError, Result};
use spec::MonitorSpec;

/// How many refreshes `list_refreshes` answers, as Databricks does.
const LISTED_REFRESHES: usize = 25;

/// The definition fields a monitor keeps as sent.
const DEFINITION: &[&str] = &[
    "output_schema_name",
    "assets_dir",
    "baseline_table_name",
    "custom_metrics",
    "inference_log",
    "time_series",
    "snapshot",
    "slicing_exprs",
    "warehouse_id",
    "skip_builtin_dashboard",
    "schedule",
    "notifications",
];

#[derive(Clone)]
pub struct Monitors {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<Store>,
    catalog: Catalog,
    /// Reads monitored tables as engines committed them.
    lake: tarn_lake::Lake,
    /// `$TARN_HOME/monitors`: what each monitor's refreshes keep ([`state`]).
    state_root: PathBuf,
    /// Cancel flags of refreshes running in this process.
    running: Mutex<HashMap<(String, i64), Arc<AtomicBool>>>,
    /// Tells `notifications.on_failure` when a refresh fails.
    notifier: Option<tarn_jobs::Notifier>,
    /// One refresh computes per monitor at a time: each reads and replaces
    /// what the last one kept and wrote.
    computing: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

fn catalog_error(e: CatalogError) -> MonitorError {
    match e {
        CatalogError::NotFound { .. } => MonitorError::NotFound(e.to_string()),
        other => MonitorError::InvalidParameter(other.to_string()),
    }
}

/// A table's columns.
fn table_of(catalog: &Catalog, full_name: &str) -> Result<Vec<String>> {
    let info = catalog.get(Kind::Table, full_name).map_err(|e| match e {
        CatalogError::NotFound { .. } => MonitorError::NotFound(format!("Table '{full_name}' does not exist.")),
        other => catalog_error(other),
    })?;
    let columns = info["columns"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| c["name"].as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    Ok(columns)
}

fn short_name(full_name: &str) -> &str {
    full_name.rsplit('.').next().unwrap_or(full_name)
}

impl Monitors {
    /// `state_root` holds what refreshes keep for the next one
    /// (`$TARN_HOME/monitors`); `notifier` sends failure notifications
    /// (without one none are sent).
    pub fn new(
        store: Arc<Store>,
        catalog: Catalog,
        state_root: PathBuf,
        notifier: Option<tarn_jobs::Notifier>,
    ) -> Self {
        let lake = tarn_lake::Lake::new(catalog.clone(), "tarn");
        let (running, computing) = (Mutex::new(HashMap::new()), Mutex::new(HashMap::new()));
        Self { inner: Arc::new(Inner { store, catalog, lake, state_root, running, notifier, computing }) }
    }

    /// Refreshes a stopped tarn left unfinished end FAILED.
    pub fn recover(&self) -> Result<usize> {
        Ok(self.inner.store.fail_unfinished_refreshes(now_ms())?)
    }

    /// Checks a definition against the table, the output schema and the
    /// baseline; slicing expressions are planned against the table's schema.
    async fn checked(&self, table_name: &str, body: &Value) -> Result<MonitorSpec> {
        let columns = table_of(&self.inner.catalog, table_name)?;
        let spec = MonitorSpec::parse(body, &columns)?;
        self.inner.catalog.get(Kind::Schema, &spec.output_schema_name).map_err(|e| match e {
            CatalogError::NotFound { .. } => {
                MonitorError::NotFound(format!("Output schema '{}' does not exist.", spec.output_schema_name))
            }
            other => catalog_error(other),
        })?;
        if let Some(baseline) = &spec.baseline_table_name {
            table_of(&self.inner.catalog, baseline)?;
        }
        if !spec.slicing_exprs.is_empty() || !spec.custom_metrics.is_empty() {
            let table = self.inner.lake.open_table(table_name).await.map_err(|e| {
                MonitorError::InvalidParameter(format!("slicing_exprs and custom_metrics need the table's schema: {e}"))
            })?;
            let source = scan::Source::open(&table, None).await?;
            for expr in &spec.slicing_exprs {
                slicing::check(&source, expr)?;
            }
            custom::check(&source, &spec.custom_metrics)?;
        }
        Ok(spec)
    }

    fn info(table_name: &str, spec: &MonitorSpec, body: &Value, status: &str) -> Value {
        let mut info: Map<String, Value> = DEFINITION
            .iter()
            .filter_map(|f| body.get(*f).filter(|v| !v.is_null()).map(|v| (f.to_string(), v.clone())))
            .collect();
        let output = |suffix: &str| format!("{}.{}_{suffix}", spec.output_schema_name, short_name(table_name));
        info.insert("table_name".into(), json!(table_name));
        info.insert("status".into(), json!(status));
        info.insert("monitor_version".into(), json!("1"));
        info.insert("profile_metrics_table_name".into(), json!(output("profile_metrics")));
        info.insert("drift_metrics_table_name".into(), json!(output("drift_metrics")));
        Value::Object(info)
    }

    /// Creates the monitor and queues its first refresh.
    pub async fn create(&self, table_name: &str, body: &Value) -> Result<Value> {
        let spec = self.checked(table_name, body).await?;
        let info = Self::info(table_name, &spec, body, "MONITOR_STATUS_PENDING");
        let row = MonitorRow { table_name: table_name.to_string(), info: info.clone(), created_time: now_ms() };
        if !self.inner.store.insert_monitor(&row)? {
            return Err(MonitorError::AlreadyExists(format!("Monitor for table '{table_name}' already exists.")));
        }
        self.run_refresh(table_name, "MANUAL")?;
        Ok(info)
    }

    pub fn get(&self, table_name: &str) -> Result<Value> {
        self.inner
            .store
            .get_monitor(table_name)?
            .map(|m| m.info)
            .ok_or_else(|| MonitorError::NotFound(format!("Monitor for table '{table_name}' does not exist.")))
    }

    /// Replaces the definition (the next refresh uses it).
    pub async fn update(&self, table_name: &str, body: &Value) -> Result<Value> {
        let current = self.get(table_name)?;
        let spec = self.checked(table_name, body).await?;
        let status = current["status"].as_str().unwrap_or("MONITOR_STATUS_PENDING");
        let info = Self::info(table_name, &spec, body, status);
        self.inner.store.update_monitor(table_name, &info)?;
        Ok(info)
    }

    /// Deletes the monitor; its output tables stay, as on Databricks.
    pub fn delete(&self, table_name: &str) -> Result<()> {
        if let Ok(mut running) = self.inner.running.lock() {
            running.retain(|(t, _), flag| t != table_name || !flag.swap(true, Ordering::Relaxed));
        }
        if !self.inner.store.delete_monitor(table_name)? {
            return Err(MonitorError::NotFound(format!("Monitor for table '{table_name}' does not exist.")));
        }
        // What its refreshes kept goes too; a table no longer in the catalog keeps nothing usable.
        if let Ok(info) = self.inner.catalog.get(Kind::Table, table_name)
            && let Some(id) = info["table_id"].as_str()
        {
            state::StateDir::remove(&self.inner.state_root, id);
        }
        Ok(())
    }

    pub fn run_refresh(&self, table_name: &str, trigger: &str) -> Result<RefreshRow> {
        self.get(table_name)?;
        let refresh = self.inner.store.insert_refresh(table_name, trigger, now_ms())?;
        let cancel = Arc::new(AtomicBool::new(false));
        if let Ok(mut running) = self.inner.running.lock() {
            running.insert((table_name.to_string(), refresh.refresh_id), cancel.clone());
        }
        let (inner, table, id) = (self.inner.clone(), table_name.to_string(), refresh.refresh_id);
        tokio::spawn(async move { inner.refresh(&table, id, &cancel).await });
        Ok(refresh)
    }

    pub fn refreshes(&self, table_name: &str) -> Result<Vec<RefreshRow>> {
        self.get(table_name)?;
        Ok(self.inner.store.list_refreshes(table_name, LISTED_REFRESHES)?)
    }

    pub fn refresh(&self, table_name: &str, refresh_id: i64) -> Result<RefreshRow> {
        self.inner.store.get_refresh(table_name, refresh_id)?.ok_or_else(|| {
            MonitorError::NotFound(format!("Refresh {refresh_id} of the monitor on '{table_name}' does not exist."))
        })
    }

    /// The drift report (an HTML page) drawn from the output tables of the
    /// latest successful refresh.
    pub async fn report_html(&self, table_name: &str) -> Result<String> {
        let info = self.get(table_name)?;
        let refreshes = self.inner.store.list_refreshes(table_name, LISTED_REFRESHES)?;
        report::html(&self.inner.lake, table_name, &info, &refreshes).await
    }

    pub fn cancel_refresh(&self, table_name: &str, refresh_id: i64) -> Result<()> {
        let refresh = self.refresh(table_name, refresh_id)?;
        let flag = self.inner.running.lock().ok().and_then(|r| r.get(&(table_name.to_string(), refresh_id)).cloned());
        if let Some(flag) = flag {
            flag.store(true, Ordering::Relaxed);
        }
        let store = &self.inner.store;
        let canceled =
            store.transition_refresh(table_name, refresh_id, &refresh.state, "CANCELED", Some(now_ms()), None)?;
        if !canceled || !matches!(refresh.state.as_str(), "PENDING" | "RUNNING") {
            return Err(MonitorError::InvalidState(format!(
                "Refresh {refresh_id} is {} and cannot be canceled",
                refresh.state
            )));
        }
        Ok(())
    }
}

impl Inner {
    fn computing_lock(&self, table_name: &str) -> Arc<tokio::sync::Mutex<()>> {
        match self.computing.lock() {
            Ok(mut locks) => locks.entry(table_name.to_string()).or_default().clone(),
            // A panic elsewhere poisoned the map: refreshes still run, unserialized.
            Err(_) => Arc::default(),
        }
    }

    async fn refresh(&self, table_name: &str, id: i64, cancel: &AtomicBool) {
        if !self.store.transition_refresh(table_name, id, "PENDING", "RUNNING", None, None).unwrap_or(false) {
            return;
        }
        let lock = self.computing_lock(table_name);
        let _computing = lock.lock().await;
        let began = std::time::Instant::now();
        let outcome = match self.store.get_monitor(table_name) {
            Ok(Some(monitor)) => refresh::compute(self, &monitor, cancel).await,
            Ok(None) => Err(MonitorError::NotFound(format!("Monitor for table '{table_name}' does not exist."))),
            Err(e) => Err(e.into()),
        };
        let (state, message) = match &outcome {
            Ok(summary) => {
                tracing::info!(
                    table = %table_name,
                    refresh = id,
                    incremental = summary.full.is_none(),
                    files_read = summary.files,
                    rows_scanned = summary.rows,
                    windows = summary.windows,
                    baseline_reused = summary.baseline.is_some_and(|b| b.1),
                    table_ms = summary.table_ms,
                    baseline_ms = summary.baseline_ms,
                    total_ms = began.elapsed().as_millis() as u64,
                    "monitor refresh computed"
                );
                ("SUCCESS", summary.message())
            }
            Err(e) => ("FAILED", e.to_string()),
        };
        let failed = outcome.is_err().then_some(message.clone());
        let ended = self.store.transition_refresh(table_name, id, "RUNNING", state, Some(now_ms()), Some(&message));
        if let Ok(mut running) = self.running.lock() {
            running.remove(&(table_name.to_string(), id));
        }
        if !ended.unwrap_or(false) {
            return;
        }
        if let Ok(Some(mut monitor)) = self.store.get_monitor(table_name) {
            let status = if outcome.is_ok() { "MONITOR_STATUS_ACTIVE" } else { "MONITOR_STATUS_ERROR" };
            monitor.info["status"] = json!(status);
            match &failed {
                Some(m) => monitor.info["latest_monitor_failure_msg"] = json!(m),
                None => _ = monitor.info.as_object_mut().map(|o| o.remove("latest_monitor_failure_msg")),
            }
            if let Err(e) = self.store.update_monitor(table_name, &monitor.info) {
                tracing::warn!(table = %table_name, error = %e, "recording a monitor's status");
            }
        }
        if let Some(m) = failed {
            tracing::warn!(table = %table_name, refresh = id, message = %m, "monitor refresh failed");
            self.notify_failure(table_name, id, &m);
        }
    }
}
