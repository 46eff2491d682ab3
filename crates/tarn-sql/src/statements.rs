//! The SQL Statement Execution API's statements: each runs in its own task
//! (lake statements in tarn, the rest on the warehouse's engine, in the
//! statement's SQL session or a fresh one), callers wait for it up to their
//! `wait_timeout`, and the result is kept in memory for [`KEEP_FINISHED`]
//! after it finished.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use crate::parameters::SqlParameter;
use tarn_gateway::connect::EngineError;
use tarn_gateway::{AccessControl, PathResolver, ViewCatalog};
use tarn_lake::Lake;
use tarn_lake::arrow::error::ArrowError;
use tokio::sync::watch;
use tokio::task::AbortHandle;

use crate::error::{Result, SqlError};
use crate::result::{Limits, ResultError, ResultSet};
use crate::sessions::{Backends, Session, SessionSpec, Sessions};
use crate::warehouse::Warehouse;

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
    /// Run in this open SQL session (its namespace, not `catalog`/`schema`).
    pub session_id: Option<String>,
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
    pub(crate) fn bad_request(message: String, sql_state: Option<String>) -> Self {
        Self { code: "BAD_REQUEST", message, sql_state }
    }

    pub(crate) fn unavailable(message: String) -> Self {
        Self { code: "TEMPORARILY_UNAVAILABLE", message, sql_state: None }
    }

    pub(crate) fn closed(session_id: &str) -> Self {
        Self { code: "BAD_REQUEST", message: format!("Session {session_id} was closed."), sql_state: None }
    }

    pub(crate) fn from_arrow(e: ArrowError) -> Self {
        Self::from_result(e.into())
    }

    pub(crate) fn from_engine(e: EngineError) -> Self {
        if e.unreachable {
            return Self { code: "TEMPORARILY_UNAVAILABLE", message: e.message, sql_state: None };
        }
        let sql_state = e.sql_state.clone().or_else(|| {
            let class = e.error_class.as_deref().or_else(|| bracketed_class(&e.message))?;
            sql_state_of(class).map(str::to_string)
        });
        Self::bad_request(e.message, sql_state)
    }

    pub(crate) fn from_lake(e: tarn_lake::LakeError) -> Self {
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

/// The first `[ERROR_CLASS]` in an engine's message.
fn bracketed_class(message: &str) -> Option<&str> {
    let start = message.find('[')? + 1;
    let len = message[start..].find(']')?;
    let class = &message[start..start + len];
    let valid = !class.is_empty() && class.chars().all(|c| c.is_ascii_uppercase() || c == '_' || c == '.');
    valid.then(|| class.split('.').next().unwrap_or(class))
}

/// The SQLSTATE Spark gives an error class, for engines that send the class
/// without it (the common classes a SQL user meets).
fn sql_state_of(class: &str) -> Option<&'static str> {
    const STATES: &[(&str, &str)] = &[
        ("TABLE_OR_VIEW_NOT_FOUND", "42P01"),
        ("TABLE_OR_VIEW_ALREADY_EXISTS", "42P07"),
        ("SCHEMA_NOT_FOUND", "42704"),
        ("SCHEMA_ALREADY_EXISTS", "42P06"),
        ("CATALOG_NOT_FOUND", "42P08"),
        ("UNRESOLVED_COLUMN", "42703"),
        ("UNRESOLVED_ROUTINE", "42883"),
        ("PARSE_SYNTAX_ERROR", "42601"),
        ("DATATYPE_MISMATCH", "42K09"),
        ("INSUFFICIENT_PERMISSIONS", "42501"),
        ("DIVIDE_BY_ZERO", "22012"),
        ("CAST_INVALID_INPUT", "22018"),
        ("ARITHMETIC_OVERFLOW", "22003"),
        ("UNSUPPORTED_FEATURE", "0A000"),
    ];
    STATES.iter().find(|(c, _)| *c == class).map(|(_, state)| *state)
}

/// A statement as the API shows it.
#[derive(Debug, Clone)]
pub struct StatementSnapshot {
    pub id: String,
    pub state: StatementState,
    pub error: Option<StatementError>,
    pub result: Option<Arc<ResultSet>>,
}

type Phase = crate::phase::Phase<ResultSet>;

struct Entry {
    phase: watch::Sender<Phase>,
    task: Mutex<Option<AbortHandle>>,
    /// The SQL session the statement runs in, to interrupt.
    session: Mutex<Option<Arc<Session>>>,
    finished_at: Mutex<Option<Instant>>,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Entry {
    /// Moves to `phase` unless the statement already ended; true if it moved.
    fn advance(&self, phase: Phase) -> bool {
        let finishing = phase.is_final();
        let moved = crate::phase::advance(&self.phase, phase);
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
    backends: Arc<Backends>,
    sessions: Sessions,
    entries: Mutex<HashMap<String, Arc<Entry>>>,
}

impl Statements {
    /// `paths` resolves `/Volumes/...` paths in statements sent to the
    /// engine; `access` checks the caller's grants (and answers grant
    /// statements) before anything runs; `views` keeps views.
    pub fn new(
        warehouse: Warehouse,
        lake: Lake,
        paths: Option<Arc<dyn PathResolver>>,
        access: Option<Arc<dyn AccessControl>>,
        views: Option<Arc<dyn ViewCatalog>>,
    ) -> Self {
        let backends = Arc::new(Backends { warehouse, lake, paths, access, views });
        let sessions = Sessions::new(backends.clone());
        Self { inner: Arc::new(Inner { backends, sessions, entries: Mutex::new(HashMap::new()) }) }
    }

    pub fn warehouse(&self) -> &Warehouse {
        &self.inner.backends.warehouse
    }

    /// The open SQL sessions (the Thrift endpoint's and the statement API's).
    pub fn sessions(&self) -> &Sessions {
        &self.inner.sessions
    }

    /// Starts the statement and waits for it as the request asks.
    pub async fn execute(&self, request: StatementRequest) -> Result<StatementSnapshot> {
        if request.statement.trim().is_empty() {
            return Err(SqlError::InvalidParameter("statement must not be empty".into()));
        }
        self.inner.backends.warehouse.status(&request.warehouse_id)?;
        let session = match &request.session_id {
            Some(id) => {
                let session = self.inner.sessions.get(id, &request.user)?;
                if session.warehouse_id() != request.warehouse_id {
                    return Err(SqlError::InvalidParameter(format!(
                        "Session {id} is on warehouse {}, not {}",
                        session.warehouse_id(),
                        request.warehouse_id
                    )));
                }
                session
            }
            None => Arc::new(self.inner.sessions.ephemeral(SessionSpec {
                warehouse_id: request.warehouse_id.clone(),
                cluster_id: None,
                user: request.user.clone(),
                catalog: request.catalog.clone(),
                schema: request.schema.clone(),
                conf: BTreeMap::new(),
            })?),
        };
        self.forget_expired();
        let id = uuid::Uuid::new_v4().to_string();
        let (wait, on_timeout) = (request.wait_timeout, request.on_wait_timeout);
        let entry = Arc::new(Entry {
            phase: watch::Sender::new(Phase::Pending),
            task: Mutex::new(None),
            session: Mutex::new(Some(session.clone())),
            finished_at: Mutex::new(None),
        });
        locked(&self.inner.entries).insert(id.clone(), entry.clone());
        let task = tokio::spawn(run(session, entry.clone(), request));
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

    /// Closes the statement: cancelled if it still runs, its result let go;
    /// later calls do not find it.
    pub async fn close(&self, id: &str) -> Result<()> {
        let entry = self.entry(id)?;
        self.cancel_entry(&entry).await;
        locked(&self.inner.entries).remove(id);
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
        if let Some(session) = session {
            session.interrupt().await;
        }
    }

    fn entry(&self, id: &str) -> Result<Arc<Entry>> {
        locked(&self.inner.entries).get(id).cloned().ok_or_else(|| SqlError::StatementNotFound(id.to_string()))
    }

    fn forget_expired(&self) {
        locked(&self.inner.entries).retain(|_, e| locked(&e.finished_at).is_none_or(|at| at.elapsed() < KEEP_FINISHED));
    }
}

async fn run(session: Arc<Session>, entry: Arc<Entry>, request: StatementRequest) {
    let limits = Limits { rows: request.row_limit, bytes: request.byte_limit };
    // One row more than the limit tells whether the result was truncated.
    let fetch = request.row_limit.map(|n| n.saturating_add(1));
    let running = || {
        entry.advance(Phase::Running);
    };
    let outcome = session.run(&request.statement, &request.parameters, fetch, &running).await;
    locked(&entry.session).take();
    let phase = match outcome.and_then(|output| {
        ResultSet::from_batches(&output.schema, &output.batches, limits).map_err(StatementError::from_result)
    }) {
        Ok(result) => Phase::Succeeded(Arc::new(result)),
        Err(e) => Phase::Failed(e),
    };
    entry.advance(phase);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_states_from_error_classes() {
        let engine = |message: &str| EngineError {
            message: message.into(),
            error_class: None,
            sql_state: None,
            unreachable: false,
        };
        let e = StatementError::from_engine(engine(
            "Table not found: [TABLE_OR_VIEW_NOT_FOUND] Table or view not found: t",
        ));
        assert_eq!(e.sql_state.as_deref(), Some("42P01"));
        let e = StatementError::from_engine(engine("[UNRESOLVED_COLUMN.WITH_SUGGESTION] A column cannot be resolved"));
        assert_eq!(e.sql_state.as_deref(), Some("42703"));
        assert_eq!(StatementError::from_engine(engine("something [odd]")).sql_state, None);
    }

    #[test]
    fn wait_timeouts() {
        assert_eq!(parse_wait_timeout("0s").unwrap(), Duration::ZERO);
        assert_eq!(parse_wait_timeout("50s").unwrap(), Duration::from_secs(50));
        for bad in ["3s", "51s", "10", "ten seconds", "-5s"] {
            assert!(parse_wait_timeout(bad).is_err(), "{bad}");
        }
    }
}
