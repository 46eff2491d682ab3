//! Where a statement is, for whoever follows it (the Statement Execution
//! API's statements and the Thrift endpoint's operations alike): a phase
//! in a `watch` channel that moves forward and ends once.

use std::sync::Arc;

use tokio::sync::watch;

use crate::statements::StatementError;

/// A statement's phase; `T` is its result as its API keeps it.
#[derive(Debug)]
pub enum Phase<T> {
    Pending,
    Running,
    Succeeded(Arc<T>),
    Failed(StatementError),
    Canceled,
}

// Derived Clone would ask `T: Clone`; the result is shared, not copied.
impl<T> Clone for Phase<T> {
    fn clone(&self) -> Self {
        match self {
            Self::Pending => Self::Pending,
            Self::Running => Self::Running,
            Self::Succeeded(result) => Self::Succeeded(result.clone()),
            Self::Failed(e) => Self::Failed(e.clone()),
            Self::Canceled => Self::Canceled,
        }
    }
}

impl<T> Phase<T> {
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Succeeded(_) | Self::Failed(_) | Self::Canceled)
    }
}

/// Moves `current` to `phase` unless it already ended; true if it moved.
pub fn advance<T>(current: &watch::Sender<Phase<T>>, phase: Phase<T>) -> bool {
    current.send_if_modified(|now| {
        if now.is_final() {
            return false;
        }
        *now = phase;
        true
    })
}
