//! Serving endpoints: their rows, the deployment of each config, and
//! routing requests to served entities.
//!
//! A config deploys blue/green: its entities are built and started beside
//! the live ones (an unchanged entity is kept running), and only when every
//! one has answered does the endpoint switch to them; requests in flight on
//! the old entities finish there, and the old workers stop when the last
//! one has. A config that cannot deploy leaves the live one serving and the
//! endpoint UPDATE_FAILED. Deployments are not persisted: after a restart
//! each endpoint's config deploys again, NOT_READY until it has.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use serde_json::{Value, json};
use tarn_core::time::now_ms;
use tarn_store::{EndpointRow, Store};

use crate::config::{EndpointConfig, Route, check_name};
use crate::entity::{EntityContext, EntityState, LiveEntity};
use crate::error::{Result, ServingError, invalid};
use crate::inference::{InferenceTable, Record, Shape, TableConfig, split_client_request_id};
use crate::worker::Reply;

pub const NOT_UPDATING: &str = "NOT_UPDATING";
pub const IN_PROGRESS: &str = "IN_PROGRESS";
pub const UPDATE_FAILED: &str = "UPDATE_FAILED";

/// A config that is serving requests.
struct Deployment {
    entities: Vec<Arc<LiveEntity>>,
    routes: Vec<Route>,
}

impl Deployment {
    fn entity(&self, name: &str) -> Option<&Arc<LiveEntity>> {
        self.entities.iter().find(|e| e.spec.name == name)
    }

    /// A served entity drawn by the routes' traffic percentages.
    fn route(&self) -> Option<&Arc<LiveEntity>> {
        let draw = rand::rng().random_range(0..100u32);
        let mut upto = 0;
        for route in &self.routes {
            upto += route.traffic_percentage;
            if draw < upto {
                return self.entity(&route.served_entity_name);
            }
        }
        None
    }
}

type States = Arc<Mutex<HashMap<String, EntityState>>>;

/// An endpoint's running side.
#[derive(Default)]
struct Live {
    /// Bumped by each config update; a deployment that finds it moved on
    /// is discarded.
    generation: u64,
    current: Option<Arc<Deployment>>,
    /// States of the live config's entities while it (re)deploys after a restart.
    current_states: States,
    pending_states: States,
    /// Where answered requests are logged, when the endpoint has a table.
    table: Option<Arc<InferenceTable>>,
}

/// An endpoint as `get` shows it: its row and each entity's state.
#[derive(Debug, Clone)]
pub struct EndpointView {
    pub row: EndpointRow,
    pub ready: bool,
    pub config_states: HashMap<String, EntityState>,
    pub pending_states: HashMap<String, EntityState>,
}

/// What a new endpoint is made of besides its config.
#[derive(Debug, Clone, Default)]
pub struct NewEndpoint {
    pub name: String,
    pub config: Value,
    /// Description, AI Gateway and the other fields as sent.
    pub settings: Value,
    pub tags: Value,
}

#[derive(Clone)]
pub struct Endpoints {
    inner: Arc<Inner>,
}

/// How long things wait.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// A scale-to-zero entity idle this long stops its workers.
    pub idle_timeout: Duration,
    /// The longest an inference record waits to be committed.
    pub inference_flush: Duration,
}

struct Inner {
    store: Arc<Store>,
    catalog: tarn_catalog::Catalog,
    ctx: Arc<EntityContext>,
    timing: Timing,
    live: Mutex<HashMap<String, Live>>,
    /// Serializes read-modify-write of endpoint rows.
    writes: tokio::sync::Mutex<()>,
}

fn not_found(name: &str) -> ServingError {
    ServingError::NotFound(format!("Endpoint with name '{name}' does not exist."))
}

impl Endpoints {
    pub fn new(store: Arc<Store>, catalog: tarn_catalog::Catalog, ctx: EntityContext, timing: Timing) -> Result<Self> {
        std::fs::create_dir_all(&ctx.dir).and_then(|()| std::fs::write(&ctx.script, crate::worker::SCRIPT)).map_err(
            |e| ServingError::Unavailable(format!("writing the serving worker under {}: {e}", ctx.dir.display())),
        )?;
        let inner = Inner {
            store,
            catalog,
            ctx: Arc::new(ctx),
            timing,
            live: Mutex::new(HashMap::new()),
            writes: tokio::sync::Mutex::new(()),
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// Deploys every stored endpoint again (after a restart), and stops the
    /// workers of idle scale-to-zero entities from then on.
    pub async fn start(&self) -> Result<()> {
        for row in self.inner.store.list_endpoints()? {
            self.inner.live_mut(|live| live.insert(row.name.clone(), Live::default()));
            if let Err(e) = self.inner.attach_table(&row, table_config(&row)?).await {
                tracing::warn!(endpoint = %row.name, error = %e, "the endpoint's inference table cannot be written");
            }
            if let Some(config) = row.config.as_ref().and_then(|c| EndpointConfig::parse(c).ok()) {
                self.inner.clone().spawn_deploy(row.name.clone(), config, 0, true);
            }
            let pending = row.pending_config.as_ref().filter(|_| row.config_update == IN_PROGRESS);
            if let Some(config) = pending.and_then(|c| EndpointConfig::parse(c).ok()) {
                self.inner.clone().spawn_deploy(row.name.clone(), config, 0, false);
            }
        }
        let inner = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            while let Some(inner) = inner.upgrade() {
                inner.scale_idle_to_zero();
                drop(inner);
                tick.tick().await;
            }
        });
        Ok(())
    }

    pub async fn create(&self, creator: &str, new: NewEndpoint) -> Result<EndpointView> {
        check_name("endpoint", &new.name)?;
        let config = self.checked(&new.config, creator, None)?;
        let now = now_ms();
        let row = EndpointRow {
            name: new.name.clone(),
            id: tarn_core::id::random_hex(16),
            creator: creator.to_string(),
            creation_timestamp: now,
            last_updated_timestamp: now,
            config: None,
            pending_config: Some(pending_json(&config, now)),
            config_update: IN_PROGRESS.into(),
            update_message: None,
            settings: new.settings,
            tags: new.tags,
        };
        let _writes = self.inner.writes.lock().await;
        if !self.inner.store.insert_endpoint(&row)? {
            return Err(ServingError::AlreadyExists(format!("Endpoint with name '{}' already exists.", new.name)));
        }
        self.inner.live_mut(|live| live.insert(new.name.clone(), Live::default()));
        if let Err(e) = self.inner.attach_table(&row, table_config(&row)?).await {
            self.inner.store.delete_endpoint(&row.name)?;
            self.inner.live_mut(|live| live.remove(&row.name));
            return Err(e);
        }
        self.inner.clone().spawn_deploy(new.name.clone(), config, 0, false);
        drop(_writes);
        self.get(&new.name)
    }

    /// Starts deploying a new config; the live one serves until it is ready.
    pub async fn update_config(&self, name: &str, creator: &str, config: &Value) -> Result<EndpointView> {
        let _writes = self.inner.writes.lock().await;
        let mut row = self.inner.store.get_endpoint(name)?.ok_or_else(|| not_found(name))?;
        if row.config_update == IN_PROGRESS {
            return Err(ServingError::Conflict(format!(
                "Endpoint '{name}' is already updating its config; wait until it is done"
            )));
        }
        let live_config = row.config.as_ref().and_then(|c| EndpointConfig::parse(c).ok());
        let config = self.checked(config, creator, live_config.as_ref())?;
        let now = now_ms();
        row.pending_config = Some(pending_json(&config, now));
        if config.auto_capture_config.is_some() {
            let capture = TableConfig::parse(config.auto_capture_config.as_ref(), name, Shape::AutoCapture)?;
            self.inner.attach_table(&row, capture).await?;
        }
        row.config_update = IN_PROGRESS.into();
        row.update_message = None;
        row.last_updated_timestamp = now;
        self.inner.store.update_endpoint(&row)?;
        let generation = self.inner.live_mut(|live| {
            let entry = live.entry(name.to_string()).or_default();
            entry.generation += 1;
            entry.pending_states = States::default();
            entry.generation
        });
        self.inner.clone().spawn_deploy(name.to_string(), config, generation, false);
        drop(_writes);
        self.get(name)
    }

    /// Reads a config and refuses one naming a model version the registry lacks.
    fn checked(&self, config: &Value, creator: &str, live: Option<&EndpointConfig>) -> Result<EndpointConfig> {
        let mut config = EndpointConfig::parse(config)?;
        let now = now_ms();
        for entity in &mut config.served_entities {
            self.inner.ctx.models.check(&entity.entity_name, &entity.entity_version)?;
            match live.and_then(|l| l.entity(&entity.name)).filter(|old| old.same_deployment(entity)) {
                Some(old) => {
                    (entity.creator, entity.creation_timestamp) = (old.creator.clone(), old.creation_timestamp)
                }
                None => (entity.creator, entity.creation_timestamp) = (creator.to_string(), now),
            }
        }
        Ok(config)
    }

    pub fn get(&self, name: &str) -> Result<EndpointView> {
        let row = self.inner.store.get_endpoint(name)?.ok_or_else(|| not_found(name))?;
        Ok(self.inner.view(row))
    }

    pub fn list(&self) -> Result<Vec<EndpointView>> {
        Ok(self.inner.store.list_endpoints()?.into_iter().map(|row| self.inner.view(row)).collect())
    }

    /// Deletes the endpoint; its workers stop once requests in flight end.
    pub async fn delete(&self, name: &str) -> Result<()> {
        let _writes = self.inner.writes.lock().await;
        if !self.inner.store.delete_endpoint(name)? {
            return Err(not_found(name));
        }
        self.inner.live_mut(|live| live.remove(name));
        Ok(())
    }

    /// Sets the endpoint's AI Gateway, opening (or closing) its inference
    /// table first: a table that cannot be written is refused.
    pub async fn put_ai_gateway(&self, name: &str, gateway: Value) -> Result<()> {
        let _writes = self.inner.writes.lock().await;
        let mut row = self.inner.store.get_endpoint(name)?.ok_or_else(|| not_found(name))?;
        row.settings["ai_gateway"] = gateway;
        self.inner.attach_table(&row, table_config(&row)?).await?;
        row.last_updated_timestamp = now_ms();
        self.inner.store.update_endpoint(&row)?;
        Ok(())
    }

    /// Records logged and dropped by the endpoint's inference table.
    pub fn inference_dropped(&self, name: &str) -> u64 {
        self.inner.live_ref(name, |live| {
            live.and_then(|l| l.table.as_ref()).map_or(0, |t| t.dropped.load(std::sync::atomic::Ordering::Relaxed))
        })
    }

    /// Changes the row's settings or tags through `change`, under the write lock.
    pub async fn modify(&self, name: &str, change: impl FnOnce(&mut EndpointRow) -> Result<()>) -> Result<EndpointRow> {
        let _writes = self.inner.writes.lock().await;
        let mut row = self.inner.store.get_endpoint(name)?.ok_or_else(|| not_found(name))?;
        change(&mut row)?;
        row.last_updated_timestamp = now_ms();
        self.inner.store.update_endpoint(&row)?;
        Ok(row)
    }

    /// Answers a request with one served entity: the one named, or one the
    /// traffic routes draw. Returns the entity's name and its reply.
    pub async fn invoke(&self, name: &str, request: Invocation<'_>) -> Result<(String, Reply)> {
        let began = std::time::Instant::now();
        let live = self.inner.live_ref(name, |live| live.map(|l| (l.current.clone(), l.table.clone())));
        let (deployment, table) = match live {
            None => return Err(not_found(name)),
            Some((current, table)) => (current, table),
        };
        let deployment = match deployment {
            None => {
                return Err(ServingError::Unavailable(format!(
                    "Endpoint '{name}' is not ready: its config is still deploying"
                )));
            }
            Some(deployment) => deployment,
        };
        let entity = match request.served {
            Some(served) => deployment.entity(served).ok_or_else(|| {
                ServingError::NotFound(format!("Served entity '{served}' does not exist in endpoint '{name}'"))
            })?,
            None => deployment
                .route()
                .ok_or_else(|| ServingError::Unavailable(format!("Endpoint '{name}' routes no traffic")))?,
        };
        let (client_request_id, body) = match split_client_request_id(&request.body) {
            Some((id, rest)) => (Some(id), Bytes::from(rest)),
            None => (None, request.body),
        };
        let reply = entity.invoke(request.content_type, &body).await?;
        if let Some(table) = table {
            table.log(Record {
                databricks_request_id: uuid::Uuid::new_v4().to_string(),
                client_request_id,
                time_ms: now_ms(),
                status_code: reply.status,
                execution_duration_ms: began.elapsed().as_millis() as i64,
                request: String::from_utf8_lossy(&body).into_owned(),
                response: String::from_utf8_lossy(&reply.body).into_owned(),
                served_entity_name: entity.spec.name.clone(),
                model_name: entity.spec.entity_name.clone(),
                model_version: entity.spec.entity_version.clone(),
                requester: request.requester.to_string(),
            });
        }
        Ok((entity.spec.name.clone(), reply))
    }

    /// A served entity's build log, or a worker's log.
    pub fn log(&self, name: &str, served: &str, build: bool) -> Result<String> {
        let row = self.inner.store.get_endpoint(name)?.ok_or_else(|| not_found(name))?;
        let known = [&row.config, &row.pending_config]
            .into_iter()
            .flatten()
            .filter_map(|c| EndpointConfig::parse(c).ok())
            .any(|c| c.entity(served).is_some());
        if !known {
            return Err(ServingError::NotFound(format!("Served model '{served}' does not exist in endpoint '{name}'")));
        }
        let dir = crate::entity::entity_dir(&self.inner.ctx.dir, name, served);
        if build {
            return Ok(std::fs::read_to_string(dir.join("build.log")).unwrap_or_default());
        }
        let mut logs: Vec<_> =
            std::fs::read_dir(&dir).map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect()).unwrap_or_default();
        logs.retain(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("worker-")));
        logs.sort();
        let tail = |p: &std::path::PathBuf| {
            let text = std::fs::read_to_string(p).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(200)..].join("\n")
        };
        Ok(logs.iter().map(|p| format!("==> {} <==\n{}", p.display(), tail(p))).collect::<Vec<_>>().join("\n"))
    }

    /// The live entities of an endpoint, for metrics and the OpenAPI document.
    pub fn live_entities(&self, name: &str) -> Result<Vec<Arc<LiveEntity>>> {
        self.inner
            .live_ref(name, |live| live.map(|l| l.current.as_ref().map(|d| d.entities.clone()).unwrap_or_default()))
            .ok_or_else(|| not_found(name))
    }
}

/// One request to an endpoint.
pub struct Invocation<'a> {
    /// The served entity asked for by name, or `None` to follow the routes.
    pub served: Option<&'a str>,
    pub content_type: &'a str,
    pub body: Bytes,
    /// Who sent it, for the inference table.
    pub requester: &'a str,
}

/// The inference table an endpoint row asks for: AI Gateway's, or the
/// live (else the pending) config's auto capture.
pub(crate) fn table_config(row: &EndpointRow) -> Result<Option<TableConfig>> {
    let gateway = row.settings.get("ai_gateway").and_then(|g| g.get("inference_table_config"));
    if let Some(table) = TableConfig::parse(gateway, &row.name, Shape::Gateway)? {
        return Ok(Some(table));
    }
    let capture = row.config.as_ref().or(row.pending_config.as_ref()).and_then(|c| c.get("auto_capture_config"));
    TableConfig::parse(capture, &row.name, Shape::AutoCapture)
}

/// A config as `pending_config` keeps it: with when its update started.
fn pending_json(config: &EndpointConfig, start_time: i64) -> Value {
    let mut out = config.to_json();
    out["start_time"] = json!(start_time);
    out
}

impl Inner {
    fn live_mut<T>(&self, f: impl FnOnce(&mut HashMap<String, Live>) -> T) -> T {
        let mut live = self.live.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut live)
    }

    fn live_ref<T>(&self, name: &str, f: impl FnOnce(Option<&Live>) -> T) -> T {
        self.live_mut(|live| f(live.get(name)))
    }

    fn view(&self, row: EndpointRow) -> EndpointView {
        let (current, config_states, pending_states) = self.live_ref(&row.name, |live| match live {
            Some(l) => (l.current.clone(), snapshot(&l.current_states), snapshot(&l.pending_states)),
            None => (None, HashMap::new(), HashMap::new()),
        });
        let mut config_states = config_states;
        if let Some(deployment) = &current {
            for entity in &deployment.entities {
                config_states.insert(entity.spec.name.clone(), EntityState::Ready);
            }
        }
        EndpointView { ready: current.is_some(), row, config_states, pending_states }
    }

    fn spawn_deploy(self: Arc<Self>, name: String, config: EndpointConfig, generation: u64, restore: bool) {
        tokio::spawn(async move {
            let states = self.live_ref(&name, |live| {
                live.map(|l| if restore { l.current_states.clone() } else { l.pending_states.clone() })
            });
            let Some(states) = states else { return };
            let outcome = self.deploy(&name, &config, &states).await;
            if restore {
                self.restored(&name, config, outcome);
            } else if let Err(e) = self.finish(&name, generation, config, outcome).await {
                tracing::error!(endpoint = %name, error = %e, "recording a serving endpoint's deployment");
            }
        });
    }

    /// Deploys every entity of `config` at once, keeping the live ones it
    /// serves unchanged; the error names the first entity that failed.
    async fn deploy(
        &self,
        name: &str,
        config: &EndpointConfig,
        states: &States,
    ) -> std::result::Result<Deployment, String> {
        let current = self.live_ref(name, |live| live.and_then(|l| l.current.clone()));
        let set = |entity: &str, state: EntityState| {
            if let Ok(mut states) = states.lock() {
                states.insert(entity.to_string(), state);
            }
        };
        let deploys = config.served_entities.iter().map(|spec| {
            let kept =
                current.as_ref().and_then(|d| d.entity(&spec.name)).filter(|e| e.spec.same_deployment(spec)).cloned();
            set(&spec.name, EntityState::Creating);
            let ctx = self.ctx.clone();
            async move {
                let outcome = match kept {
                    Some(entity) => Ok(entity),
                    None => LiveEntity::deploy(spec.clone(), name, ctx).await,
                };
                set(
                    &spec.name,
                    outcome.as_ref().map_or_else(|e| EntityState::Failed(e.clone()), |_| EntityState::Ready),
                );
                outcome.map_err(|e| format!("Served entity '{}' failed to deploy: {e}", spec.name))
            }
        });
        let entities =
            futures_util::future::join_all(deploys).await.into_iter().collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(Deployment { entities, routes: config.routes.clone() })
    }

    /// Makes a deployed config live, or records why it failed; the live
    /// config keeps serving in that case.
    async fn finish(
        &self,
        name: &str,
        generation: u64,
        config: EndpointConfig,
        outcome: std::result::Result<Deployment, String>,
    ) -> Result<()> {
        let _writes = self.writes.lock().await;
        let current = self.live_ref(name, |live| live.map(|l| l.generation));
        let Some(mut row) = self.store.get_endpoint(name)?.filter(|_| current == Some(generation)) else {
            return Ok(());
        };
        row.last_updated_timestamp = now_ms();
        match outcome {
            Ok(deployment) => {
                let version = row.config.as_ref().and_then(|c| c["config_version"].as_i64()).unwrap_or(0) + 1;
                let mut live_config = config.to_json();
                live_config["config_version"] = json!(version);
                row.config = Some(live_config);
                row.pending_config = None;
                row.config_update = NOT_UPDATING.into();
                row.update_message = None;
                self.store.update_endpoint(&row)?;
                self.live_mut(|live| {
                    if let Some(l) = live.get_mut(name) {
                        l.current = Some(Arc::new(deployment));
                        l.current_states = States::default();
                        l.pending_states = States::default();
                    }
                });
            }
            Err(message) => {
                tracing::warn!(endpoint = %name, %message, "serving endpoint config update failed");
                row.config_update = UPDATE_FAILED.into();
                row.update_message = Some(message);
                self.store.update_endpoint(&row)?;
            }
        }
        Ok(())
    }

    /// The live config deployed again after a restart.
    fn restored(&self, name: &str, config: EndpointConfig, outcome: std::result::Result<Deployment, String>) {
        match outcome {
            Ok(deployment) => self.live_mut(|live| {
                if let Some(l) = live.get_mut(name).filter(|l| l.current.is_none()) {
                    l.current = Some(Arc::new(deployment));
                }
            }),
            Err(message) => {
                tracing::warn!(endpoint = %name, entities = config.served_entities.len(), %message, "serving endpoint did not deploy again after a restart")
            }
        }
    }

    /// Opens the inference table `wanted` for the endpoint, or closes the
    /// one it has when `None`. A table is changed only by disabling it
    /// first, as on Databricks.
    async fn attach_table(&self, row: &EndpointRow, wanted: Option<TableConfig>) -> Result<()> {
        let attached = self.live_ref(&row.name, |live| live.and_then(|l| l.table.as_ref().map(|t| t.config.clone())));
        let table = match (&attached, wanted) {
            (Some(now), Some(wanted)) if *now == wanted => return Ok(()),
            (Some(now), Some(_)) => {
                return Err(invalid(format!(
                    "The inference table of endpoint '{}' is {}; disable it before changing its catalog, schema or prefix",
                    row.name,
                    now.full_name()
                )));
            }
            (_, None) => None,
            (None, Some(wanted)) => {
                let spool = self.ctx.dir.join(&row.name).join("inference-spool");
                let endpoint = (row.id.as_str(), row.name.as_str());
                let flush = self.timing.inference_flush;
                Some(InferenceTable::open(&self.catalog, wanted, endpoint, spool, &row.creator, flush).await?)
            }
        };
        self.live_mut(|live| {
            if let Some(l) = live.get_mut(&row.name) {
                l.table = table;
            }
        });
        Ok(())
    }

    fn scale_idle_to_zero(&self) {
        let entities: Vec<Arc<LiveEntity>> = self.live_mut(|live| {
            live.values().filter_map(|l| l.current.clone()).flat_map(|d| d.entities.clone()).collect()
        });
        for entity in entities {
            entity.scale_to_zero_if_idle(self.timing.idle_timeout);
        }
    }
}

fn snapshot(states: &States) -> HashMap<String, EntityState> {
    states.lock().map(|s| s.clone()).unwrap_or_default()
}

/// Refuses AI Gateway features tarn does not enforce, so none is stored
/// and silently ignored.
pub fn check_ai_gateway(gateway: &Value) -> Result<()> {
    if !gateway.is_object() {
        return Err(invalid("ai_gateway must be an object"));
    }
    let enabled =
        |field: &str| gateway.get(field).and_then(|v| v.get("enabled")).and_then(Value::as_bool) == Some(true);
    for field in ["usage_tracking_config", "fallback_config"] {
        if enabled(field) {
            return Err(ServingError::NotImplemented(format!("AI Gateway '{field}' is not implemented by tarn yet")));
        }
    }
    if gateway.get("guardrails").is_some_and(|g| !g.is_null() && g != &json!({})) {
        return Err(ServingError::NotImplemented("AI Gateway guardrails are not implemented by tarn yet".into()));
    }
    if gateway.get("rate_limits").and_then(Value::as_array).is_some_and(|r| !r.is_empty()) {
        return Err(ServingError::NotImplemented("AI Gateway rate limits are not implemented by tarn yet".into()));
    }
    Ok(())
}
