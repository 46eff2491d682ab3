//! Run states in the Jobs API's words: the life cycle and result of a run
//! or task run (`state`), and the newer `status` with termination details.
//! Both are derived from one stored pair, so they never disagree.

use serde_json::{Value, json};

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

    /// The run's `status` object.
    pub fn status_json(&self) -> Value {
        let mut status = json!({"state": self.life_cycle.v2()});
        if self.life_cycle == LifeCycle::Queued {
            status["queue_details"] = json!({"code": "ACTIVE_RUNS_LIMIT_REACHED", "message": self.message});
        }
        if self.life_cycle.is_final() {
            let code = match (&self.code, self.result) {
                (Some(code), _) => code.as_str(),
                (None, Some(result)) => result.termination_code(),
                (None, None) => "INTERNAL_ERROR",
            };
            status["termination_details"] =
                json!({"code": code, "type": termination_type(code), "message": self.message});
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_status_follows_state() {
        for (l, name, _) in LIFE_CYCLES {
            assert_eq!(LifeCycle::parse(name), Some(*l));
        }
        for (r, name, ..) in RESULTS {
            assert_eq!(ResultState::parse(name), Some(*r));
        }
        let failed = RunState::ended(ResultState::Failed, "Task train failed");
        assert_eq!(failed.state_json()["result_state"], "FAILED");
        assert_eq!(
            failed.status_json(),
            json!({"state": "TERMINATED", "termination_details":
                {"code": "RUN_EXECUTION_ERROR", "type": "CLIENT_ERROR", "message": "Task train failed"}})
        );
        let cancelled = RunState::ended(ResultState::Canceled, "cancelled").with_code("USER_CANCELED");
        assert_eq!(cancelled.status_json()["termination_details"]["type"], "SUCCESS");
        assert_eq!(cancelled.state_json()["user_cancelled_or_timedout"], true);
        assert_eq!(RunState::new(LifeCycle::WaitingForRetry, "").status_json(), json!({"state": "WAITING"}));
    }
}
