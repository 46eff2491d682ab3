//! Metadata persistence: one SQLite database (WAL) under `$TARN_HOME`, its
//! migrations embedded in the binary, and a typed operation per query.
//!
//! Rows here are plain structs; JSON columns travel as `serde_json::Value`.
//! `Store::authenticate` is the one token check both edges make (tarn-api
//! and tarn-gateway); `transition_job_run` is the fenced write job runs move
//! by. This crate knows nothing of HTTP or of the state machines that decide
//! which writes are allowed.

mod activity;
mod audit;
mod catalog;
mod clusters;
mod copy;
mod db;
mod grants;
mod job_runs;
mod jobs;
mod leases;
mod libraries;
mod migrations;
pub mod mlflow;
mod monitors;
mod notifications;
mod object_acls;
mod pipelines;
mod principals;
mod repos;
mod secrets;
mod serving;
mod settings;
mod sql_objects;
mod tokens;
mod workspace;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, TryLockError};

use crate::db::Conn;

pub use activity::{RunSummary, UpdateSummary, UsageRecord};
pub use audit::AuditEvent;
pub use catalog::{CommitOutcome, DeltaCommit, UcObject};
pub use clusters::{ClusterRow, EventFilter, EventRow, PIPELINE_TAG, SERVERLESS_TAG, WAREHOUSE_TAG};
pub use copy::CopyReport;
pub use job_runs::{FINAL_STATES, JobRunRow, RunFilter};
pub use jobs::JobRow;
pub use leases::{Fence, LeaseClaim, LeaseRow};
pub use libraries::LibraryRow;
pub use monitors::{MonitorRow, RefreshRow};
pub use notifications::{DestinationRow, FileArrivalState};
pub use object_acls::ObjectAclRow;
pub use pipelines::{PipelineEventFilter, PipelineEventRow, PipelineRow, UpdateRow};
pub use principals::{ADMINS_GROUP, GroupRow, PrincipalKind, PrincipalRow, PrincipalWriteError, USERS_GROUP};
pub use repos::{GitCredentialRow, RepoRow};
pub use secrets::{SecretAclRow, SecretScopeRow};
pub use serving::EndpointRow;
pub use sql_objects::{AlertStateRow, SqlObjectRow};
pub use tokens::{ADMIN_USER, AuthError, TokenRow, User};
pub use workspace::WorkspaceObject;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("metadata store: {0}")]
    Db(#[from] db::DbError),
    #[error("metadata store holds malformed JSON in {what}: {source}")]
    Json { what: &'static str, source: serde_json::Error },
    /// A write that failed for every caller sharing its commit.
    #[error("metadata store: {0}")]
    Write(String),
    #[error("metadata store schema version {found} is newer than this tarn ({known})")]
    TooNew { found: i64, known: i64 },
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// The metadata store. Cheap to share behind an `Arc`; every operation takes
/// the one connection for its duration, so writes are serialized; what
/// runs log is group-committed (see `mlflow::batches`).
pub struct Store {
    conn: Mutex<Conn>,
    /// PostgreSQL connections for the hot reads (the token check, groups,
    /// permissions, single objects), beside the one that writes; none on
    /// SQLite, whose one connection serves both.
    readers: Vec<Mutex<Conn>>,
    next_reader: AtomicUsize,
    batches: mlflow::BatchQueue,
}

impl Store {
    /// The SQLite database at `path`, created if missing.
    pub fn open(path: &Path) -> Result<Self> {
        Self::init_sqlite(rusqlite::Connection::open(path).map_err(db::DbError::from)?)
    }

    pub fn open_in_memory() -> Result<Self> {
        Self::init_sqlite(rusqlite::Connection::open_in_memory().map_err(db::DbError::from)?)
    }

    /// The PostgreSQL database at `url` (`postgres://user:password@host/db`),
    /// with `readers` more connections for reads.
    pub fn connect(url: &str, readers: usize) -> Result<Self> {
        let mut store = Self::init(Conn::Postgres(db::PgConn::connect(url)?))?;
        for _ in 0..readers {
            store.readers.push(Mutex::new(Conn::Postgres(db::PgConn::connect(url)?)));
        }
        Ok(store)
    }

    fn init_sqlite(conn: rusqlite::Connection) -> Result<Self> {
        let setup = || -> rusqlite::Result<()> {
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            conn.pragma_update(None, "foreign_keys", "ON")?;
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            conn.set_prepared_statement_cache_capacity(256);
            Ok(())
        };
        setup().map_err(db::DbError::from)?;
        Self::init(Conn::Sqlite(conn))
    }

    fn init(mut conn: Conn) -> Result<Self> {
        migrations::apply(&mut conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
            readers: Vec::new(),
            next_reader: AtomicUsize::new(0),
            batches: mlflow::BatchQueue::default(),
        })
    }

    /// A connection for a read that needs no transaction with writes: a
    /// free reader, else the next in turn; on SQLite, the one connection.
    fn reader(&self) -> MutexGuard<'_, Conn> {
        if self.readers.is_empty() {
            return self.conn();
        }
        for reader in &self.readers {
            match reader.try_lock() {
                Ok(guard) => return guard,
                Err(TryLockError::Poisoned(p)) => return p.into_inner(),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        let next = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        self.readers[next].lock().unwrap_or_else(|p| p.into_inner())
    }

    fn conn(&self) -> MutexGuard<'_, Conn> {
        // A panic while holding the lock cannot leave a half-written
        // transaction behind (SQLite rolls it back), so the poison is moot.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn to_json_text(value: &serde_json::Value) -> String {
    value.to_string()
}

fn from_json_text(what: &'static str, text: &str) -> Result<serde_json::Value> {
    serde_json::from_str(text).map_err(|source| StoreError::Json { what, source })
}

/// A fresh store for a unit test: in memory, or, when
/// `TARN_TEST_DATABASE_URL` names a PostgreSQL server, a new database there.
#[cfg(test)]
pub(crate) fn test_store() -> Store {
    let Ok(url) = std::env::var("TARN_TEST_DATABASE_URL") else {
        return Store::open_in_memory().unwrap();
    };
    let name = format!("tarn_test_{}", tarn_core::id::random_hex(8));
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
    let (base, _) = url.rsplit_once('/').unwrap();
    Store::connect(&format!("{base}/{name}"), 2).unwrap()
}
