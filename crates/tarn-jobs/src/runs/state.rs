//! Run states in the Jobs API's words: the life cycle and result of a run
//! or task run, its `state` object (stored in a run's document for its
//! repair history, and shown), and the termination details tarn-api's
//! newer `status` shows. Both are derived from one stored pair, so they
//! never disagree.
//!
//! Runs and task runs move by [`Event`]s through [`next`], the one
//! transition function: an event not allowed from the current life cycle
//! is refused, never applied. `Runs::apply` is the one writer that stores
//! what `next` answers.

use serde_json::{Value, json};
use tarn_store::JobRunRow;

/// `life_cycle_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifeCycle {
    Queued,
    Pending,
    Running,
    Terminating,
    Terminated,
    Skipped,
    InternalError,
    WaitingForRetry,
    Blocked,
}

const LIFE_CYCLES: &[(LifeCycle, &str, &str)] = &[
    (LifeCycle::Queued, "QUEUED", "QUEUED"),
    (LifeCycle::Pending, "PENDING", "PENDING"),
    (LifeCycle::Running, "RUNNING", "RUNNING"),
    (LifeCycle::Terminating, "TERMINATING", "TERMINATING"),
    (LifeCycle::Terminated, "TERMINATED", "TERMINATED"),
    (LifeCycle::Skipped, "SKIPPED", "TERMINATED"),
    (LifeCycle::InternalError, "INTERNAL_ERROR", "TERMINATED"),
    (LifeCycle::WaitingForRetry, "WAITING_FOR_RETRY", "WAITING"),
    (LifeCycle::Blocked, "BLOCKED", "BLOCKED"),
];

impl LifeCycle {
    fn entry(self) -> &'static (LifeCycle, &'static str, &'static str) {
        LIFE_CYCLES.iter().find(|(l, ..)| *l == self).unwrap_or(&LIFE_CYCLES[0])
    }

    pub fn as_str(self) -> &'static str {
        self.entry().1
    }

    /// The `status.state` (RunLifecycleStateV2State) it shows as.
    pub fn v2(self) -> &'static str {
        self.entry().2
    }

    pub fn parse(s: &str) -> Option<Self> {
        LIFE_CYCLES.iter().find(|(_, name, _)| *name == s).map(|(l, ..)| *l)
    }

    pub fn is_final(self) -> bool {
        matches!(self, Self::Terminated | Self::Skipped | Self::InternalError)
    }
}

/// `result_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultState {
    Success,
    Failed,
    TimedOut,
    Canceled,
    Excluded,
    SuccessWithFailures,
    UpstreamFailed,
    UpstreamCanceled,
    MaximumConcurrentRunsReached,
    Disabled,
}

/// Each result with its name and the termination code and type it reports.
const RESULTS: &[(ResultState, &str, &str, &str)] = &[
    (ResultState::Success, "SUCCESS", "SUCCESS", "SUCCESS"),
    (ResultState::Failed, "FAILED", "RUN_EXECUTION_ERROR", "CLIENT_ERROR"),
    (ResultState::TimedOut, "TIMEDOUT", "RUN_EXECUTION_ERROR", "CLIENT_ERROR"),
    (ResultState::Canceled, "CANCELED", "CANCELED", "SUCCESS"),
    (ResultState::Excluded, "EXCLUDED", "SKIPPED", "SUCCESS"),
    (ResultState::SuccessWithFailures, "SUCCESS_WITH_FAILURES", "SUCCESS_WITH_FAILURES", "SUCCESS"),
    (ResultState::UpstreamFailed, "UPSTREAM_FAILED", "SKIPPED", "CLIENT_ERROR"),
    (ResultState::UpstreamCanceled, "UPSTREAM_CANCELED", "SKIPPED", "SUCCESS"),
    (
        ResultState::MaximumConcurrentRunsReached,
        "MAXIMUM_CONCURRENT_RUNS_REACHED",
        "MAX_CONCURRENT_RUNS_EXCEEDED",
        "CLIENT_ERROR",
    ),
    (ResultState::Disabled, "DISABLED", "DISABLED", "SUCCESS"),
];

impl ResultState {
    fn entry(self) -> &'static (ResultState, &'static str, &'static str, &'static str) {
        RESULTS.iter().find(|(r, ..)| *r == self).unwrap_or(&RESULTS[0])
    }

    pub fn as_str(self) -> &'static str {
        self.entry().1
    }

    pub fn parse(s: &str) -> Option<Self> {
        RESULTS.iter().find(|(_, name, ..)| *name == s).map(|(r, ..)| *r)
    }

    /// The termination code a run ending this way reports by default.
    pub fn termination_code(self) -> &'static str {
        self.entry().2
    }

    /// Whether dependents count it as a success (disabled tasks are passed over).
    pub fn is_success(self) -> bool {
        matches!(self, Self::Success | Self::SuccessWithFailures | Self::Disabled)
    }

    pub fn is_failure(self) -> bool {
        matches!(self, Self::Failed | Self::TimedOut | Self::UpstreamFailed | Self::MaximumConcurrentRunsReached)
    }

    pub fn is_cancellation(self) -> bool {
        matches!(self, Self::Canceled | Self::UpstreamCanceled)
    }
}

/// The termination type of a termination code.
fn termination_type(code: &str) -> &'static str {
    match code {
        "INTERNAL_ERROR" => "INTERNAL_ERROR",
        "CLUSTER_ERROR" | "CLOUD_FAILURE" | "DRIVER_ERROR" => "CLOUD_FAILURE",
        "SUCCESS" | "CANCELED" | "USER_CANCELED" | "SKIPPED" | "SUCCESS_WITH_FAILURES" | "DISABLED" => "SUCCESS",
        _ => "CLIENT_ERROR",
    }
}

/// A run's state as stored: what `state` and `status` are built from.
#[derive(Debug, Clone, PartialEq)]
pub struct RunState {
    pub life_cycle: LifeCycle,
    pub result: Option<ResultState>,
    pub message: String,
    /// Overrides the result's default termination code (USER_CANCELED,
    /// INTERNAL_ERROR, CLUSTER_ERROR...).
    pub code: Option<String>,
}

impl RunState {
    pub fn new(life_cycle: LifeCycle, message: impl Into<String>) -> Self {
        Self { life_cycle, result: None, message: message.into(), code: None }
    }

    pub fn ended(result: ResultState, message: impl Into<String>) -> Self {
        Self { life_cycle: LifeCycle::Terminated, result: Some(result), message: message.into(), code: None }
    }

    pub fn with_code(mut self, code: &str) -> Self {
        self.code = Some(code.to_string());
        self
    }

    /// The run's `state` object.
    pub fn state_json(&self) -> Value {
        let mut state = json!({
            "life_cycle_state": self.life_cycle.as_str(),
            "state_message": self.message,
            "user_cancelled_or_timedout": matches!(self.result, Some(ResultState::Canceled | ResultState::TimedOut)),
        });
        if let Some(result) = self.result {
            state["result_state"] = json!(result.as_str());
        }
        if self.life_cycle == LifeCycle::Queued {
            state["queue_reason"] = json!(self.message);
        }
        state
    }

    /// The state a run or task run row holds (an unknown life cycle reads
    /// as INTERNAL_ERROR).
    pub fn of(row: &JobRunRow) -> Self {
        RunState {
            life_cycle: LifeCycle::parse(&row.life_cycle_state).unwrap_or(LifeCycle::InternalError),
            result: row.result_state.as_deref().and_then(ResultState::parse),
            message: row.state_message.clone(),
            code: row.termination_code.clone(),
        }
    }

    /// Its result's name if it has one, else its life cycle's.
    pub fn name(&self) -> &'static str {
        self.result.map_or(self.life_cycle.as_str(), ResultState::as_str)
    }

    /// How a final run terminated (its code, or its result's, and the
    /// code's type); `None` while it is not final.
    pub fn termination(&self) -> Option<Termination<'_>> {
        if !self.life_cycle.is_final() {
            return None;
        }
        let code = match (&self.code, self.result) {
            (Some(code), _) => code.as_str(),
            (None, Some(result)) => result.termination_code(),
            (None, None) => "INTERNAL_ERROR",
        };
        Some(Termination { code, kind: termination_type(code) })
    }
}

/// A final run's termination code and its type (SUCCESS, CLIENT_ERROR...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Termination<'a> {
    pub code: &'a str,
    pub kind: &'static str,
}

/// What happens to a run or a task run.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A queued run got a slot: QUEUED to PENDING.
    Admitted,
    /// A task attempt starts (its dependencies allow it, or its retry
    /// interval passed): BLOCKED or WAITING_FOR_RETRY to PENDING.
    Launched,
    /// Its work began: PENDING to RUNNING.
    Started,
    /// It ended with a result: QUEUED (a cancel), PENDING or RUNNING to TERMINATED.
    Ended { result: ResultState, message: String, code: Option<&'static str> },
    /// It was ruled out before running (run_if, an upstream failure, a
    /// cancel): BLOCKED or WAITING_FOR_RETRY to SKIPPED.
    Skipped { result: ResultState, message: String },
    /// tarn could not carry it on (a restart, a driving error): any state
    /// not final to INTERNAL_ERROR.
    Abandoned { message: String },
    /// A finished run starts again for a repair: a final state to PENDING.
    Repaired,
}

impl Event {
    pub fn ended(result: ResultState, message: impl Into<String>) -> Self {
        Self::Ended { result, message: message.into(), code: None }
    }

    pub fn ended_with_code(result: ResultState, message: impl Into<String>, code: &'static str) -> Self {
        Self::Ended { result, message: message.into(), code: Some(code) }
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Admitted => "Admitted",
            Self::Launched => "Launched",
            Self::Started => "Started",
            Self::Ended { .. } => "Ended",
            Self::Skipped { .. } => "Skipped",
            Self::Abandoned { .. } => "Abandoned",
            Self::Repaired => "Repaired",
        }
    }
}

/// A transition that was not made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    /// The event is not allowed from the state the run is in.
    #[error("{event} is not allowed from {from}")]
    NotAllowed { from: String, event: &'static str },
    /// The run's stored state is no longer the one the writer read (a stale
    /// driver, a repair racing a cancel, a recovery): its newer state stays.
    #[error("the run left {expected} before {event} was written")]
    Stale { expected: String, event: &'static str },
    /// This tarn is stopping: what is in flight stays for the next holder
    /// of the schedulers lease to resume.
    #[error("tarn is stopping; {event} was left for the next start to resume")]
    Stopping { event: &'static str },
}

/// The one transition function: where `event` takes a run in `from`.
pub fn next(from: LifeCycle, event: &Event) -> Result<RunState, Refusal> {
    use LifeCycle::*;
    let allowed = match event {
        Event::Admitted => from == Queued,
        Event::Launched => matches!(from, Blocked | WaitingForRetry),
        Event::Started => from == Pending,
        Event::Ended { .. } => matches!(from, Queued | Pending | Running),
        Event::Skipped { .. } => matches!(from, Blocked | WaitingForRetry),
        Event::Abandoned { .. } => !from.is_final(),
        Event::Repaired => from.is_final(),
    };
    if !allowed {
        return Err(Refusal::NotAllowed { from: from.as_str().to_string(), event: event.name() });
    }
    Ok(match event {
        Event::Admitted => RunState::new(Pending, "Waiting for the run to start"),
        Event::Launched => RunState::new(Pending, "Starting the task"),
        Event::Started => RunState::new(Running, ""),
        Event::Ended { result, message, code } => {
            RunState { code: code.map(str::to_string), ..RunState::ended(*result, message.clone()) }
        }
        Event::Skipped { result, message } => {
            RunState { life_cycle: Skipped, ..RunState::ended(*result, message.clone()) }
        }
        Event::Abandoned { message } => RunState {
            life_cycle: InternalError,
            ..RunState::ended(ResultState::Failed, message.clone()).with_code("INTERNAL_ERROR")
        },
        Event::Repaired => RunState::new(Pending, "Repairing the run"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_follow_the_table_and_refuse_the_rest() {
        use LifeCycle::*;
        assert_eq!(next(Queued, &Event::Admitted).unwrap().life_cycle, Pending);
        assert_eq!(next(Blocked, &Event::Launched).unwrap().life_cycle, Pending);
        assert_eq!(next(WaitingForRetry, &Event::Launched).unwrap().life_cycle, Pending);
        assert_eq!(next(Pending, &Event::Started).unwrap().life_cycle, Running);
        let ended = next(Running, &Event::ended_with_code(ResultState::Canceled, "by ann", "USER_CANCELED")).unwrap();
        assert_eq!(
            (ended.life_cycle, ended.result, ended.code.as_deref()),
            (Terminated, Some(ResultState::Canceled), Some("USER_CANCELED"))
        );
        let skipped = Event::Skipped { result: ResultState::UpstreamFailed, message: "x".into() };
        assert_eq!(next(Blocked, &skipped).unwrap().life_cycle, Skipped);
        let abandoned = Event::Abandoned { message: "restart".into() };
        assert_eq!(next(Running, &abandoned).unwrap().life_cycle, InternalError);
        assert_eq!(next(Terminated, &Event::Repaired).unwrap().life_cycle, Pending);
        // Nothing leaves a final state but a repair; nothing runs twice.
        for event in [
            Event::Admitted,
            Event::Launched,
            Event::Started,
            Event::ended(ResultState::Success, ""),
            skipped,
            abandoned,
        ] {
            for from in [Terminated, Skipped, InternalError] {
                assert!(matches!(next(from, &event), Err(Refusal::NotAllowed { .. })), "{event:?} from {from:?}");
            }
        }
        assert!(next(Running, &Event::Started).is_err());
        assert!(next(Running, &Event::Repaired).is_err());
        assert!(
            next(Running, &Event::Skipped { result: ResultState::UpstreamCanceled, message: String::new() }).is_err()
        );
        assert!(next(Pending, &Event::Launched).is_err());
    }

    #[test]
    fn names_parse_back_and_termination_follows_state() {
        for (l, name, _) in LIFE_CYCLES {
            assert_eq!(LifeCycle::parse(name), Some(*l));
        }
        for (r, name, ..) in RESULTS {
            assert_eq!(ResultState::parse(name), Some(*r));
        }
        let failed = RunState::ended(ResultState::Failed, "Task train failed");
        assert_eq!(failed.state_json()["result_state"], "FAILED");
        assert_eq!(failed.name(), "FAILED");
        assert_eq!(failed.termination(), Some(Termination { code: "RUN_EXECUTION_ERROR", kind: "CLIENT_ERROR" }));
        let cancelled = RunState::ended(ResultState::Canceled, "cancelled").with_code("USER_CANCELED");
        assert_eq!(cancelled.termination().map(|t| t.kind), Some("SUCCESS"));
        assert_eq!(cancelled.state_json()["user_cancelled_or_timedout"], true);
        let waiting = RunState::new(LifeCycle::WaitingForRetry, "");
        assert_eq!((waiting.termination(), waiting.name()), (None, "WAITING_FOR_RETRY"));
    }
}
