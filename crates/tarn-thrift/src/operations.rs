//! Operations: a statement or metadata call of a Thrift session, from its
//! start to its close. A statement runs in a task on its SQL session; its
//! whole result is kept until the client closes the operation, its session,
//! or fetched it all through direct results. Fetches walk a cursor.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tarn_lake::arrow::record_batch::RecordBatch;
use tarn_sql::Session;
use tarn_sql::sessions::Output;
use tarn_sql::statements::StatementError;
use tokio::sync::watch;
use tokio::task::AbortHandle;
use uuid::Uuid;

use crate::tcli::{TOperationState, TOperationType};

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub type Phase = tarn_sql::Phase<Output>;

/// The operation state a phase is on the wire.
pub fn state(phase: &Phase) -> TOperationState {
    match phase {
        Phase::Pending => TOperationState::PENDING_STATE,
        Phase::Running => TOperationState::RUNNING_STATE,
        Phase::Succeeded(_) => TOperationState::FINISHED_STATE,
        Phase::Failed(_) => TOperationState::ERROR_STATE,
        Phase::Canceled => TOperationState::CANCELED_STATE,
    }
}

/// One operation.
pub struct Operation {
    pub id: Uuid,
    pub kind: TOperationType,
    pub session: Arc<Session>,
    /// The client reads Arrow batches (else the column-based set).
    pub arrow: bool,
    phase: watch::Sender<Phase>,
    task: Mutex<Option<AbortHandle>>,
    /// Rows handed to the client so far.
    fetched: Mutex<usize>,
    pub started_ms: i64,
    completed_ms: Mutex<Option<i64>>,
}

fn now_ms() -> i64 {
    tarn_core::time::now_ms()
}

impl Operation {
    fn new(kind: TOperationType, session: Arc<Session>, arrow: bool, phase: Phase) -> Self {
        let done = phase.is_final().then(now_ms);
        Self {
            id: Uuid::new_v4(),
            kind,
            session,
            arrow,
            phase: watch::Sender::new(phase),
            task: Mutex::new(None),
            fetched: Mutex::new(0),
            started_ms: now_ms(),
            completed_ms: Mutex::new(done),
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase.borrow().clone()
    }

    pub fn completed_ms(&self) -> Option<i64> {
        *locked(&self.completed_ms)
    }

    /// Moves to `phase` unless the operation already ended.
    fn advance(&self, phase: Phase) -> bool {
        let finishing = phase.is_final();
        let moved = tarn_sql::phase::advance(&self.phase, phase);
        if moved && finishing {
            *locked(&self.completed_ms) = Some(now_ms());
        }
        moved
    }

    /// Waits up to `wait` for the operation to end; its phase then.
    pub async fn settle(&self, wait: Duration) -> Phase {
        let mut phase = self.phase.subscribe();
        // A timeout leaves the phase as it is; it is read below either way.
        let _ = tokio::time::timeout(wait, phase.wait_for(Phase::is_final)).await;
        self.phase()
    }

    /// Cancels the operation if it still runs: the engine is interrupted.
    pub async fn cancel(&self) {
        if !self.advance(Phase::Canceled) {
            return;
        }
        if let Some(task) = locked(&self.task).take() {
            task.abort();
        }
        self.session.interrupt().await;
    }

    /// Rows handed to the client so far.
    pub fn fetched_rows(&self) -> usize {
        *locked(&self.fetched)
    }

    /// The next at most `max_rows` rows of a finished operation's result,
    /// and whether more follow.
    pub fn fetch(&self, output: &Output, max_rows: usize) -> (Vec<RecordBatch>, bool) {
        let mut fetched = locked(&self.fetched);
        let (mut skip, mut want) = (*fetched, max_rows.max(1));
        let mut out = Vec::new();
        for batch in &output.batches {
            if want == 0 {
                break;
            }
            let rows = batch.num_rows();
            if skip >= rows {
                skip -= rows;
                continue;
            }
            let take = (rows - skip).min(want);
            out.push(batch.slice(skip, take));
            skip = 0;
            want -= take;
            *fetched += take;
        }
        (out, *fetched < output.num_rows())
    }
}

/// The operations of every Thrift session. Cheap to clone.
#[derive(Clone, Default)]
pub struct Operations {
    open: Arc<Mutex<HashMap<Uuid, Arc<Operation>>>>,
}

impl Operations {
    /// Starts `statement` on `session` in a task.
    pub fn execute(
        &self,
        session: Arc<Session>,
        statement: String,
        parameters: Vec<tarn_sql::statements::SqlParameter>,
        limit: Option<usize>,
        arrow: bool,
    ) -> Arc<Operation> {
        let op = Arc::new(Operation::new(TOperationType::EXECUTE_STATEMENT, session, arrow, Phase::Pending));
        let task_op = op.clone();
        let task = tokio::spawn(async move {
            let running = || {
                task_op.advance(Phase::Running);
            };
            let outcome = task_op.session.run(&statement, &parameters, limit, &running).await;
            task_op.advance(match outcome {
                Ok(output) => Phase::Succeeded(Arc::new(output)),
                Err(e) => Phase::Failed(e),
            });
        });
        *locked(&op.task) = Some(task.abort_handle());
        self.keep(op)
    }

    /// An operation whose result is already known (a metadata call).
    pub fn finished(
        &self,
        kind: TOperationType,
        session: Arc<Session>,
        result: Result<Output, StatementError>,
    ) -> Arc<Operation> {
        let phase = match result {
            Ok(output) => Phase::Succeeded(Arc::new(output)),
            Err(e) => Phase::Failed(e),
        };
        self.keep(Arc::new(Operation::new(kind, session, false, phase)))
    }

    fn keep(&self, op: Arc<Operation>) -> Arc<Operation> {
        locked(&self.open).insert(op.id, op.clone());
        op
    }

    /// The operation `guid` of a session `user` opened, still open.
    pub fn get(&self, guid: &[u8], user: &str) -> Option<Arc<Operation>> {
        let id = Uuid::from_slice(guid).ok()?;
        locked(&self.open).get(&id).filter(|op| op.session.user() == user && !op.session.is_closed()).cloned()
    }

    /// Closes an operation: it stops if it runs, its result is dropped.
    pub async fn close(&self, id: Uuid) {
        let op = locked(&self.open).remove(&id);
        if let Some(op) = op {
            op.cancel().await;
        }
    }

    /// Closes every operation of session `session_id`.
    pub async fn close_session(&self, session_id: &str) {
        let ids: Vec<Uuid> =
            locked(&self.open).values().filter(|op| op.session.id() == session_id).map(|op| op.id).collect();
        for id in ids {
            self.close(id).await;
        }
    }

    /// Drops operations of sessions closed since (idle ones included).
    pub fn forget_closed(&self) {
        locked(&self.open).retain(|_, op| !op.session.is_closed());
    }
}
