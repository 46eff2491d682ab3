//! The SQL Statement Execution API's statements: each runs in its own task
//! (lake statements in tarn, the rest on the warehouse's engine in a fresh
//! Spark session), callers wait for it up to their `wait_timeout`, and the
//! result is kept in memory for [`KEEP_FINISHED`] after it finished.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tarn_gateway::access::{grant_statement, of_sql};
pub use tarn_gateway::connect::SqlParameter;
use tarn_gateway::connect::{EngineError, EngineSession};
use tarn_gateway::{AccessControl, PathResolver, rewrite_sql_text};
use tarn_lake::Lake;
use tarn_lake::arrow::datatypes::Schema;
use tokio::sync::watch;
use tokio::task::AbortHandle;

use crate::error::{Result, SqlError};
use crate::result::{Limits, ResultError, ResultSet};
use crate::warehouse::{Warehouse, WarehouseEngine};

/// How long a finished statement's status and result stay readable.
pub const KEEP_FINISHED: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnWaitTimeout {
    Continue,
    Cancel,
}

#[derive(Debug, Clone)]
pub struct StatementRequest {
    pub statement: String,
    pub warehouse_id: String,
    pub catalog: Option<String>,
    pub schema: Option<String>,
    pub parameters: Vec<SqlParameter>,
    pub row_limit: Option<usize>,
    pub byte_limit: Option<usize>,
    pub wait_timeout: Duration,
    pub on_wait_timeout: OnWaitTimeout,
    pub user: String,
}

/// `wait_timeout` as the API takes it: `0s` (do not wait) or 5 to 50 seconds.
pub fn parse_wait_timeout(text: &str) -> Result<Duration> {
    let seconds = text.strip_suffix('s').and_then(|n| n.parse::<u64>().ok());
    match seconds {
        Some(s) if s == 0 || (5..=50).contains(&s) => Ok(Duration::from_secs(s)),
        _ => Err(SqlError::InvalidParameter(format!("wait_timeout must be 0s or between 5s and 50s, got '{text}'"))),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementState {
    Pending,
    Running,
    Succeeded,
    Failed,
    Canceled,
}

impl StatementState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Running => "RUNNING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::Canceled => "CANCELED",
        }
    }
}

/// Why a statement failed, in the API's `status.error` terms.
#[derive(Debug, Clone, PartialEq)]
pub struct StatementError {
    /// A `ServiceErrorCode`: BAD_REQUEST for the user's SQL.
    pub code: &'static str,
    pub message: String,
    pub sql_state: Option<String>,
}

impl StatementError {
    fn bad_request(message: String, sql_state: Option<String>) -> Self {
        Self { code: "BAD_REQUEST", message, sql_state }
    }

    fn from_engine(e: EngineError) -> Self {
        if e.unreachable {
            return Self { code: "TEMPORARILY_UNAVAILABLE", message: e.message, sql_state: None };
        }
        Self::bad_request(e.message, e.sql_state)
    }

    fn from_lake(e: tarn_lake::LakeError) -> Self {
        let sql_state = match &e {
            tarn_lake::LakeError::Parse(_) => Some("42601".to_string()),
            tarn_lake::LakeError::TableNotFound(_) => Some("42P01".to_string()),
            _ => None,
        };
        Self::bad_request(e.to_string(), sql_state)
    }

    fn from_result(e: ResultError) -> Self {
        match e {
            ResultError::TooLarge => Self::bad_request(e.to_string(), None),
            ResultError::Arrow(e) => Self { code: "INTERNAL_ERROR", message: e.to_string(), sql_state: None },
        }
    }
}

/// A statement as the API shows it.
#[derive(Debug, Clone)]
pub struct StatementSnapshot {
    pub id: String,
    pub state: StatementState,
    pub error: Option<StatementError>,
    pub result: Option<Arc<ResultSet>>,
}

#[derive(Debug, Clone)]
enum Phase {
    Pending,
    Running,
    Succeeded(Arc<ResultSet>),
    Failed(StatementError),
    Canceled,
}

impl Phase {
    fn is_final(&self) -> bool {
        matches!(self, Phase::Succeeded(_) | Phase::Failed(_) | Phase::Canceled)
    }
}

struct Entry {
    phase: watch::Sender<Phase>,
    task: Mutex<Option<AbortHandle>>,
    /// The engine port and Spark session the statement runs in, to interrupt.
    session: Mutex<Option<(u16, String)>>,
    finished_at: Mutex<Option<Instant>>,
    user: String,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Entry {
    /// Moves to `phase` unless the statement already ended; true if it moved.
    fn advance(&self, phase: Phase) -> bool {
        let finishing = phase.is_final();
        let moved = self.phase.send_if_modified(|current| {
            if current.is_final() {
                return false;
            }
            *current = phase;
            true
        });
        if moved && finishing {
            *locked(&self.finished_at) = Some(Instant::now());
        }
        moved
    }

    fn snapshot(&self, id: &str) -> StatementSnapshot {
        let (state, error, result) = match &*self.phase.borrow() {
            Phase::Pending => (StatementState::Pending, None, None),
            Phase::Running => (StatementState::Running, None, None),
            Phase::Succeeded(r) => (StatementState::Succeeded, None, Some(r.clone())),
            Phase::Failed(e) => (StatementState::Failed, Some(e.clone()), None),
            Phase::Canceled => (StatementState::Canceled, None, None),
        };
        StatementSnapshot { id: id.to_string(), state, error, result }
    }
}

/// The statement service. Cheap to clone.
#[derive(Clone)]
pub struct Statements {
    inner: Arc<Inner>,
}

struct Inner {
    warehouse: Warehouse,
    lake: Lake,
    paths: Option<Arc<dyn PathResolver>>,
    access: Option<Arc<dyn AccessControl>>,
    entries: Mutex<HashMap<String, Arc<Entry>>>,
}

impl Statements {
    /// `paths` resolves `/Volumes/...` paths in statements sent to the
    /// engine; `access` checks the caller's grants (and answers grant
    /// statements) before anything runs.
    pub fn new(
        warehouse: Warehouse,
        lake: Lake,
        paths: Option<Arc<dyn PathResolver>>,
        access: Option<Arc<dyn AccessControl>>,
    ) -> Self {
        Self { inner: Arc::new(Inner { warehouse, lake, paths, access, entries: Mutex::new(HashMap::new()) }) }
    }

    pub fn warehouse(&self) -> &Warehouse {
        &self.inner.warehouse
    }

    /// Starts the statement and waits for it as the request asks.
    pub async fn execute(&self, request: StatementRequest) -> Result<StatementSnapshot> {
        if request.statement.trim().is_empty() {
            return Err(SqlError::InvalidParameter("statement must not be empty".into()));
        }
        self.inner.warehouse.status(&request.warehouse_id)?;
        self.forget_expired();
        let id = uuid::Uuid::new_v4().to_string();
        let (wait, on_timeout) = (request.wait_timeout, request.on_wait_timeout);
        let entry = Arc::new(Entry {
            phase: watch::Sender::new(Phase::Pending),
            task: Mutex::new(None),
            session: Mutex::new(None),
            finished_at: Mutex::new(None),
            user: request.user.clone(),
        });
        locked(&self.inner.entries).insert(id.clone(), entry.clone());
        let task = tokio::spawn(run(self.inner.clone(), entry.clone(), request));
        *locked(&entry.task) = Some(task.abort_handle());
        let mut phase = entry.phase.subscribe();
        let finished = tokio::time::timeout(wait, phase.wait_for(Phase::is_final)).await.is_ok();
        if !finished && on_timeout == OnWaitTimeout::Cancel {
            self.cancel_entry(&entry).await;
        }
        Ok(entry.snapshot(&id))
    }

    /// Runs the statement to its end (a task's, an alert's): its result,
    /// or why it failed in words.
    pub async fn run_to_end(&self, request: StatementRequest) -> std::result::Result<Arc<ResultSet>, String> {
        let mut snapshot = self.execute(request).await.map_err(|e| e.to_string())?;
        loop {
            match snapshot.state {
                StatementState::Succeeded => {
                    return snapshot.result.ok_or_else(|| "the statement kept no result".into());
                }
                StatementState::Failed => return Err(snapshot.error.map(|e| e.message).unwrap_or_default()),
                StatementState::Canceled => return Err("the statement was cancelled".into()),
                StatementState::Pending | StatementState::Running => {}
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            snapshot = self.get(&snapshot.id).map_err(|e| e.to_string())?;
        }
    }

    pub fn get(&self, id: &str) -> Result<StatementSnapshot> {
        Ok(self.entry(id)?.snapshot(id))
    }

    /// Cancels a statement still pending or running; a finished one is left as it is.
    pub async fn cancel(&self, id: &str) -> Result<()> {
        let entry = self.entry(id)?;
        self.cancel_entry(&entry).await;
        Ok(())
    }

    async fn cancel_entry(&self, entry: &Entry) {
        if !entry.advance(Phase::Canceled) {
            return;
        }
        if let Some(task) = locked(&entry.task).take() {
            task.abort();
        }
        let session = locked(&entry.session).take();
        if let Some((port, session_id)) = session
            && let Err(e) = tarn_gateway::connect::interrupt(port, &session_id, &entry.user).await
        {
            tracing::debug!(error = %e, "interrupting a canceled statement");
        }
    }

    fn entry(&self, id: &str) -> Result<Arc<Entry>> {
        locked(&self.inner.entries).get(id).cloned().ok_or_else(|| SqlError::StatementNotFound(id.to_string()))
    }

    fn forget_expired(&self) {
        locked(&self.inner.entries).retain(|_, e| locked(&e.finished_at).is_none_or(|at| at.elapsed() < KEEP_FINISHED));
    }
}

async fn run(inner: Arc<Inner>, entry: Arc<Entry>, request: StatementRequest) {
    let phase = match execute(&inner, &entry, &request).await {
        Ok(result) => Phase::Succeeded(Arc::new(result)),
        Err(e) => Phase::Failed(e),
    };
    entry.advance(phase);
}

/// Refuses a statement its user may not run; answers a grant statement
/// (its result as an Arrow IPC stream).
fn check_access(
    control: &dyn AccessControl,
    request: &StatementRequest,
) -> std::result::Result<Option<Vec<u8>>, StatementError> {
    let namespace = [
        request.catalog.clone().unwrap_or_else(|| "main".into()),
        request.schema.clone().unwrap_or_else(|| "default".into()),
    ];
    if let Some(statement) = grant_statement(&request.statement) {
        let statement = statement.map_err(|e| StatementError::bad_request(e, Some("42601".into())))?;
        let answer = control.grant(&request.user, &statement, &namespace).map_err(|f| StatementError {
            code: if f.message.contains("INSUFFICIENT_PERMISSIONS") { "PERMISSION_DENIED" } else { "BAD_REQUEST" },
            message: f.message,
            sql_state: None,
        })?;
        return Ok(Some(answer));
    }
    let access = of_sql(&request.statement);
    control.check(&request.user, &access, &namespace).map_err(|message| StatementError {
        code: "PERMISSION_DENIED",
        message,
        sql_state: Some("42501".into()),
    })?;
    Ok(None)
}

async fn execute(
    inner: &Inner,
    entry: &Entry,
    request: &StatementRequest,
) -> std::result::Result<ResultSet, StatementError> {
    let limits = Limits { rows: request.row_limit, bytes: request.byte_limit };
    if let Some(control) = inner.access.as_deref()
        && let Some(answer) = check_access(control, request)?
    {
        entry.advance(Phase::Running);
        let batches = crate::decode_stream(&answer).map_err(|e| StatementError::from_result(e.into()))?;
        let schema = batches.first().map_or_else(Schema::empty, |b| b.schema().as_ref().clone());
        return ResultSet::from_batches(&schema, &batches, limits).map_err(StatementError::from_result);
    }
    let lake = inner.lake.in_namespace(request.catalog.as_deref(), request.schema.as_deref());
    if let Some(outcome) = lake.execute_sql(&request.statement).await {
        entry.advance(Phase::Running);
        let batch = outcome.map_err(StatementError::from_lake)?;
        return ResultSet::from_batches(&batch.schema(), &[batch], limits).map_err(StatementError::from_result);
    }
    let engine = inner.warehouse.engine(&request.warehouse_id, &request.user).await.map_err(|e| StatementError {
        code: "TEMPORARILY_UNAVAILABLE",
        message: e.to_string(),
        sql_state: None,
    })?;
    entry.advance(Phase::Running);
    let _keepalive = KeepAlive::start(inner.warehouse.clone(), engine.clone());
    let mut session = EngineSession::open(engine.port, &request.user).await.map_err(StatementError::from_engine)?;
    *locked(&entry.session) = Some((engine.port, session.session_id().to_string()));
    session
        .use_namespace(request.catalog.as_deref(), request.schema.as_deref())
        .await
        .map_err(StatementError::from_engine)?;
    let text = match inner.paths.as_deref() {
        Some(paths) => rewrite_sql_text(&request.statement, paths).map_err(|e| StatementError::bad_request(e, None))?,
        None => Cow::Borrowed(request.statement.as_str()),
    };
    // One row more than the limit tells whether the result was truncated.
    let fetch = request.row_limit.map(|n| n.saturating_add(1));
    let streams = session.sql(&text, &request.parameters, fetch).await.map_err(StatementError::from_engine)?;
    locked(&entry.session).take();
    let mut batches = Vec::new();
    for stream in &streams {
        batches.extend(crate::decode_stream(stream).map_err(|e| StatementError::from_result(e.into()))?);
    }
    let schema = batches.first().map_or_else(Schema::empty, |b| b.schema().as_ref().clone());
    ResultSet::from_batches(&schema, &batches, limits).map_err(StatementError::from_result)
}

/// Counts a running statement as warehouse activity, so a statement longer
/// than the auto-stop does not see its engine stopped under it. Stops with
/// the statement, however it ends (a canceled statement's task is dropped),
/// and marks that end: the auto-stop counts from there.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_timeouts() {
        assert_eq!(parse_wait_timeout("0s").unwrap(), Duration::ZERO);
        assert_eq!(parse_wait_timeout("50s").unwrap(), Duration::from_secs(50));
        for bad in ["3s", "51s", "10", "ten seconds", "-5s"] {
            assert!(parse_wait_timeout(bad).is_err(), "{bad}");
        }
    }
}
