//! SQL sessions on the warehouse: one Spark session on the warehouse's
//! engine each, so `USE`, `SET` and temporary views persist between a
//! session's statements. The Thrift endpoint opens one per client session,
//! the statement API one per `/api/2.0/sql/sessions` session, and a statement
//! sent without a session runs in a session of its own.
//!
//! A session's statements run one at a time (its engine session is held for
//! the length of a statement). When the warehouse restarted under a session,
//! the next statement opens a new engine session in the same namespace.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tarn_gateway::access::{grant_statement, of_sql};
use tarn_gateway::connect::EngineSession;
use tarn_gateway::{AccessControl, PathResolver, Prepared, ViewCatalog, rewrite_sql_text};
use tarn_lake::Lake;
use tarn_lake::arrow::datatypes::{Schema, SchemaRef};
use tarn_lake::arrow::record_batch::RecordBatch;

use crate::error::{Result, SqlError};
use crate::parameters::SqlParameter;
use crate::statements::StatementError;
use crate::warehouse::{Warehouse, WarehouseEngine};

/// A session nobody used for this long is closed (as Databricks closes idle
/// sessions); its engine session goes with it.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(8 * 3600);

/// What runs a session's statements: shared by every session and statement.
pub(crate) struct Backends {
    pub warehouse: Warehouse,
    pub lake: Lake,
    pub paths: Option<Arc<dyn PathResolver>>,
    pub access: Option<Arc<dyn AccessControl>>,
    pub views: Option<Arc<dyn ViewCatalog>>,
}

/// What a session is opened with.
#[derive(Debug, Clone, Default)]
pub struct SessionSpec {
    pub warehouse_id: String,
    /// An all-purpose cluster to run on instead of the warehouse.
    pub cluster_id: Option<String>,
    pub user: String,
    pub catalog: Option<String>,
    pub schema: Option<String>,
    /// Spark configuration set in the engine session (`SET key = value`).
    pub conf: BTreeMap<String, String>,
}

/// A statement's whole result, as the engine (or tarn-lake) sent it.
#[derive(Debug, Clone)]
pub struct Output {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

impl Output {
    pub fn from_batches(batches: Vec<RecordBatch>) -> Self {
        let schema = batches.first().map_or_else(|| Arc::new(Schema::empty()), RecordBatch::schema);
        Self { schema, batches }
    }

    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

struct Namespace {
    catalog: Option<String>,
    schema: Option<String>,
}

/// The engine session a session holds, with the engine it is on.
struct Engine {
    session: EngineSession,
    port: u16,
    /// The session's schema is the engine's current one. A session may be
    /// opened on a schema that does not exist yet (dbt creates its target
    /// schema with its first statements); until it does, names resolve in
    /// the catalog's default schema and each statement tries again.
    in_schema: bool,
}

/// One SQL session.
pub struct Session {
    id: String,
    warehouse_id: String,
    cluster_id: Option<String>,
    user: String,
    conf: BTreeMap<String, String>,
    backends: Arc<Backends>,
    namespace: Mutex<Namespace>,
    engine: tokio::sync::Mutex<Option<Engine>>,
    /// The engine port and Spark session id of the statement running now.
    running: Mutex<Option<(u16, String)>>,
    closed: AtomicBool,
    last_used: Mutex<Instant>,
    /// Statements may run before the session's schema exists (an open
    /// session, which may create it); a one-statement session fails instead.
    schema_may_follow: bool,
    /// Names are tarn's catalog's (grants checked, Delta statements and views
    /// answered by tarn); not on an Apache Spark cluster, which keeps its own.
    tarn_catalog: bool,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Session {
    fn new(backends: Arc<Backends>, spec: SessionSpec, tarn_catalog: bool) -> Self {
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            warehouse_id: spec.warehouse_id,
            cluster_id: spec.cluster_id,
            user: spec.user,
            conf: spec.conf,
            backends,
            namespace: Mutex::new(Namespace { catalog: spec.catalog, schema: spec.schema }),
            engine: tokio::sync::Mutex::new(None),
            running: Mutex::new(None),
            closed: AtomicBool::new(false),
            last_used: Mutex::new(Instant::now()),
            schema_may_follow: true,
            tarn_catalog,
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn warehouse_id(&self) -> &str {
        &self.warehouse_id
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The current catalog and schema (`main`/`default` unless set).
    pub fn namespace(&self) -> (String, String) {
        let ns = locked(&self.namespace);
        (
            ns.catalog.clone().unwrap_or_else(|| tarn_catalog::DEFAULT_CATALOG.into()),
            ns.schema.clone().unwrap_or_else(|| tarn_catalog::DEFAULT_SCHEMA.into()),
        )
    }

    /// Runs one statement to its end. `running` is called once the statement
    /// reached tarn-lake or the engine; `limit` caps the rows collected.
    pub async fn run(
        &self,
        text: &str,
        parameters: &[SqlParameter],
        limit: Option<usize>,
        running: &(dyn Fn() + Sync),
    ) -> std::result::Result<Output, StatementError> {
        if self.is_closed() {
            return Err(StatementError::closed(&self.id));
        }
        *locked(&self.last_used) = Instant::now();
        let text = crate::parameters::inline(text, parameters)?;
        let text = text.as_ref();
        if self.tarn_catalog {
            if let Some(answer) = self.check_access(text)? {
                running();
                return Ok(Output::from_batches(answer));
            }
            let (catalog, schema) = self.namespace();
            let lake = self.backends.lake.in_namespace(Some(&catalog), Some(&schema));
            if let Some(outcome) = lake.execute_sql(text).await {
                running();
                return Ok(Output::from_batches(vec![outcome.map_err(StatementError::from_lake)?]));
            }
        }
        let target = use_target(text);
        let output = self.run_on_engine(text, target.as_ref(), limit, running).await?;
        if let Some(target) = target {
            let mut ns = locked(&self.namespace);
            if let Some(catalog) = target.catalog {
                ns.catalog = Some(catalog);
                ns.schema = None;
            }
            if let Some(schema) = target.schema {
                ns.schema = Some(schema);
            }
        }
        Ok(output)
    }

    /// Runs `text` on the engine; a `USE` (`target`) as the engine's own
    /// namespace change, since not every form of it parses there.
    async fn run_on_engine(
        &self,
        text: &str,
        target: Option<&UseTarget>,
        limit: Option<usize>,
        running: &(dyn Fn() + Sync),
    ) -> std::result::Result<Output, StatementError> {
        let backends = &self.backends;
        let engine = match &self.cluster_id {
            Some(cluster_id) => backends.warehouse.cluster_engine(cluster_id, &self.user).await,
            None => backends.warehouse.engine(&self.warehouse_id, &self.user).await,
        };
        let engine = engine.map_err(|e| StatementError::unavailable(e.to_string()))?;
        running();
        let _keepalive = KeepAlive::start(backends.warehouse.clone(), engine.clone());
        let mut held = self.engine.lock().await;
        let current = self.attach(&mut held, engine.port).await?;
        *locked(&self.running) = Some((engine.port, current.session_id().to_string()));
        let rewrite = |text: &str| match backends.paths.as_deref() {
            Some(paths) => rewrite_sql_text(text, paths).map(Cow::into_owned),
            None => Ok(text.to_string()),
        };
        let text = rewrite(text).map_err(|e| StatementError::bad_request(e, None))?;
        let views = backends.views.as_deref().filter(|_| self.tarn_catalog);
        let streams = match (target, views) {
            (Some(t), _) => current.use_namespace(t.catalog.as_deref(), t.schema.as_deref()).await.map(|()| Vec::new()),
            (None, None) => current.sql(&text, limit).await,
            (None, Some(views)) => {
                let (catalog, schema) = self.namespace();
                match current.views(views, &text, &[catalog, schema], &rewrite).await {
                    Ok(Prepared::Answered(answer)) => Ok(vec![answer.into()]),
                    Ok(Prepared::Expanded(expanded)) => current.sql(&expanded, limit).await,
                    Ok(Prepared::Unchanged) => current.sql(&text, limit).await,
                    Err(e) => Err(e),
                }
            }
        };
        locked(&self.running).take();
        let streams = streams.map_err(StatementError::from_engine)?;
        let mut batches = Vec::new();
        for stream in &streams {
            batches.extend(crate::decode_stream(stream).map_err(StatementError::from_arrow)?);
        }
        Ok(Output::from_batches(batches))
    }

    /// The engine session on the engine at `port`: the one held, or a new one
    /// in the session's namespace and configuration (first statement, or the
    /// warehouse restarted since).
    async fn attach<'a>(
        &self,
        held: &'a mut Option<Engine>,
        port: u16,
    ) -> std::result::Result<&'a mut EngineSession, StatementError> {
        if held.as_ref().is_none_or(|e| e.port != port) {
            let mut session = EngineSession::open(port, &self.user).await.map_err(StatementError::from_engine)?;
            let catalog = locked(&self.namespace).catalog.clone();
            session.use_namespace(catalog.as_deref(), None).await.map_err(StatementError::from_engine)?;
            for (key, value) in &self.conf {
                // Configuration the engine does not know is not a reason to
                // refuse the session; Databricks ignores most of it as well.
                if let Err(e) = session.sql(&format!("SET `{key}` = {}", quote(value)), Some(0)).await {
                    tracing::debug!(key, error = %e, "session configuration not taken by the engine");
                }
            }
            *held = Some(Engine { session, port, in_schema: false });
        }
        let Some(engine) = held.as_mut() else {
            return Err(StatementError::unavailable("no engine session".into()));
        };
        if !engine.in_schema {
            let schema = locked(&self.namespace).schema.clone();
            match schema {
                Some(schema) => match engine.session.use_namespace(None, Some(&schema)).await {
                    Ok(()) => engine.in_schema = true,
                    Err(e) if !self.schema_may_follow => return Err(StatementError::from_engine(e)),
                    Err(_) => {}
                },
                None => engine.in_schema = true,
            }
        }
        Ok(&mut engine.session)
    }

    /// Refuses a statement its user may not run; answers a grant statement.
    fn check_access(&self, text: &str) -> std::result::Result<Option<Vec<RecordBatch>>, StatementError> {
        let Some(control) = self.backends.access.as_deref() else { return Ok(None) };
        let (catalog, schema) = self.namespace();
        let namespace = [catalog, schema];
        if let Some(statement) = grant_statement(text) {
            let statement = statement.map_err(|e| StatementError::bad_request(e, Some("42601".into())))?;
            let answer = control.grant(&self.user, &statement, &namespace).map_err(|f| {
                let denied = f.message.contains("INSUFFICIENT_PERMISSIONS");
                StatementError {
                    code: if denied { "PERMISSION_DENIED" } else { "BAD_REQUEST" },
                    message: f.message,
                    sql_state: denied.then(|| "42501".to_string()),
                }
            })?;
            return crate::decode_stream(&answer).map(Some).map_err(StatementError::from_arrow);
        }
        let access = of_sql(text);
        control.check(&self.user, &access, &namespace).map_err(|message| StatementError {
            code: "PERMISSION_DENIED",
            message,
            sql_state: Some("42501".into()),
        })?;
        Ok(None)
    }

    /// Stops the statement running now, if any.
    pub async fn interrupt(&self) {
        let running = locked(&self.running).take();
        if let Some((port, session_id)) = running
            && let Err(e) = tarn_gateway::connect::interrupt(port, &session_id, &self.user).await
        {
            tracing::debug!(error = %e, "interrupting a statement");
        }
    }

    /// Closes the session: what runs is interrupted, later statements fail.
    pub async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.interrupt().await;
        self.release_engine();
    }

    /// Ends the engine's session behind this one, in the background.
    fn release_engine(&self) {
        let Ok(mut held) = self.engine.try_lock() else { return };
        let (Some(engine), Ok(runtime)) = (held.take(), tokio::runtime::Handle::try_current()) else { return };
        runtime.spawn(async move {
            if let Err(e) = engine.session.release().await {
                tracing::debug!(error = %e, "releasing an engine session");
            }
        });
    }

    fn idle_for(&self) -> Duration {
        locked(&self.last_used).elapsed()
    }
}

/// A string literal for `SET`.
fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

impl Drop for Session {
    /// A statement's own session (and one closed for idleness) ends here.
    fn drop(&mut self) {
        self.release_engine();
    }
}

/// The open sessions. Cheap to clone.
#[derive(Clone)]
pub struct Sessions {
    backends: Arc<Backends>,
    open: Arc<Mutex<HashMap<String, Arc<Session>>>>,
}

impl Sessions {
    pub(crate) fn new(backends: Arc<Backends>) -> Self {
        Self { backends, open: Arc::default() }
    }

    /// Opens a session on an existing warehouse or cluster (its engine
    /// starts with the first statement that needs it).
    pub fn open(&self, spec: SessionSpec) -> Result<Arc<Session>> {
        let tarn_catalog = match &spec.cluster_id {
            Some(cluster_id) => self.backends.warehouse.cluster_backend(cluster_id)?.is_sail(),
            None => {
                self.backends.warehouse.status(&spec.warehouse_id)?;
                true
            }
        };
        self.close_idle();
        let session = Arc::new(Session::new(self.backends.clone(), spec, tarn_catalog));
        locked(&self.open).insert(session.id.clone(), session.clone());
        Ok(session)
    }

    /// A session of its own for one statement, not listed among the open ones.
    pub fn ephemeral(&self, spec: SessionSpec) -> Result<Session> {
        self.backends.warehouse.status(&spec.warehouse_id)?;
        let mut session = Session::new(self.backends.clone(), spec, true);
        session.schema_may_follow = false;
        Ok(session)
    }

    /// The open session `id`, if `user` opened it.
    pub fn get(&self, id: &str, user: &str) -> Result<Arc<Session>> {
        let session = locked(&self.open).get(id).cloned();
        match session {
            Some(s) if s.user == user && !s.is_closed() => {
                *locked(&s.last_used) = Instant::now();
                Ok(s)
            }
            _ => Err(SqlError::SessionNotFound(id.to_string())),
        }
    }

    /// Closes the session `id` if `user` opened it.
    pub async fn close(&self, id: &str, user: &str) -> Result<()> {
        let session = self.get(id, user)?;
        locked(&self.open).remove(id);
        session.close().await;
        Ok(())
    }

    fn close_idle(&self) {
        let idle: Vec<Arc<Session>> = {
            let mut open = locked(&self.open);
            let ids: Vec<String> =
                open.iter().filter(|(_, s)| s.idle_for() > IDLE_TIMEOUT).map(|(id, _)| id.clone()).collect();
            ids.iter().filter_map(|id| open.remove(id)).collect()
        };
        for session in idle {
            session.closed.store(true, Ordering::Release);
        }
    }
}

/// Counts a running statement as warehouse activity, so a statement longer
/// than the auto-stop does not see its engine stopped under it. Stops with
/// the statement, however it ends, and marks that end: the auto-stop counts
/// from there.
struct KeepAlive {
    ticker: tokio::task::JoinHandle<()>,
    warehouse: Warehouse,
    engine: WarehouseEngine,
}

impl KeepAlive {
    const EVERY: Duration = Duration::from_secs(30);

    fn start(warehouse: Warehouse, engine: WarehouseEngine) -> Self {
        let (w, e) = (warehouse.clone(), engine.clone());
        let ticker = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Self::EVERY);
            loop {
                tick.tick().await;
                w.record_activity(&e);
            }
        });
        Self { ticker, warehouse, engine }
    }
}

impl Drop for KeepAlive {
    fn drop(&mut self) {
        self.ticker.abort();
        self.warehouse.record_activity(&self.engine);
    }
}

/// Where a `USE` statement moves the session.
#[derive(Debug, PartialEq)]
struct UseTarget {
    catalog: Option<String>,
    schema: Option<String>,
}

/// `USE CATALOG c`, `USE [SCHEMA|DATABASE|NAMESPACE] [c.]s`; `None` for any
/// other statement.
fn use_target(sql: &str) -> Option<UseTarget> {
    let tokens: Vec<_> = tarn_sqltext::tokens(sql).filter(|t| !t.is_trivia() && !t.is_punct(';')).collect();
    let (first, rest) = tokens.split_first()?;
    if !first.is_word("use") {
        return None;
    }
    let (kind, name) = match rest.split_first() {
        Some((k, name)) if ["catalog", "schema", "database", "namespace"].iter().any(|w| k.is_word(w)) => {
            (k.text.to_ascii_lowercase(), name)
        }
        _ => ("schema".to_string(), rest),
    };
    let parts: Vec<String> = name
        .iter()
        .enumerate()
        .map(|(i, t)| match (i % 2, t.kind) {
            (0, tarn_sqltext::Kind::Word | tarn_sqltext::Kind::QuotedIdentifier) => Some(t.value().into_owned()),
            (1, _) if t.is_punct('.') => Some(String::new()),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect();
    match (kind.as_str(), parts.as_slice()) {
        ("catalog", [catalog]) => Some(UseTarget { catalog: Some(catalog.clone()), schema: None }),
        (_, [schema]) => Some(UseTarget { catalog: None, schema: Some(schema.clone()) }),
        (_, [catalog, schema]) => Some(UseTarget { catalog: Some(catalog.clone()), schema: Some(schema.clone()) }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(c: Option<&str>, s: Option<&str>) -> Option<UseTarget> {
        Some(UseTarget { catalog: c.map(Into::into), schema: s.map(Into::into) })
    }

    #[test]
    fn use_statements_move_the_namespace() {
        assert_eq!(use_target("USE CATALOG sales"), target(Some("sales"), None));
        assert_eq!(use_target("use schema `my schema`;"), target(None, Some("my schema")));
        assert_eq!(use_target("USE DATABASE staging"), target(None, Some("staging")));
        assert_eq!(use_target("use main.reports"), target(Some("main"), Some("reports")));
        assert_eq!(use_target("/* c */ USE reports"), target(None, Some("reports")));
        assert_eq!(use_target("SELECT 1"), None);
        assert_eq!(use_target("USE"), None);
        assert_eq!(use_target("USE a.b.c"), None);
    }
}
