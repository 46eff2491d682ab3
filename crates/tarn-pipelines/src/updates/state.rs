//! An update's life: the states Databricks reports and the one function
//! that says which event moves an update from which state to which.
//!
//! ```text
//! QUEUED ─▶ WAITING_FOR_RESOURCES ─▶ INITIALIZING ─▶ SETTING_UP_TABLES ─▶ RUNNING ─▶ COMPLETED
//!    └──────────────┴──────────────────────┴─────────────────┴──────────────┴─▶ FAILED | CANCELED
//! (any active state) ─▶ STOPPING ─▶ CANCELED
//! ```

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateState {
    Queued,
    WaitingForResources,
    Initializing,
    SettingUpTables,
    Running,
    Stopping,
    Completed,
    Failed,
    Canceled,
}

const ALL: [UpdateState; 9] = [
    UpdateState::Queued,
    UpdateState::WaitingForResources,
    UpdateState::Initializing,
    UpdateState::SettingUpTables,
    UpdateState::Running,
    UpdateState::Stopping,
    UpdateState::Completed,
    UpdateState::Failed,
    UpdateState::Canceled,
];

pub const FINAL_STATES: [&str; 3] = ["COMPLETED", "FAILED", "CANCELED"];

impl UpdateState {
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateState::Queued => "QUEUED",
            UpdateState::WaitingForResources => "WAITING_FOR_RESOURCES",
            UpdateState::Initializing => "INITIALIZING",
            UpdateState::SettingUpTables => "SETTING_UP_TABLES",
            UpdateState::Running => "RUNNING",
            UpdateState::Stopping => "STOPPING",
            UpdateState::Completed => "COMPLETED",
            UpdateState::Failed => "FAILED",
            UpdateState::Canceled => "CANCELED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        ALL.into_iter().find(|state| state.as_str() == s)
    }

    pub fn is_final(self) -> bool {
        matches!(self, UpdateState::Completed | UpdateState::Failed | UpdateState::Canceled)
    }
}

/// What happens to an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The driver took it and moved to the next phase.
    Advanced,
    /// Every flow it selected ended well.
    Succeeded,
    Failed,
    /// `stop` asked for it to end.
    StopRequested,
    /// The driver saw the stop and ended its work.
    Stopped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an update in {from:?} cannot take {event:?}")]
pub struct Refusal {
    pub from: UpdateState,
    pub event: Event,
}

/// The state `event` moves an update in `from` to.
pub fn next(from: UpdateState, event: Event) -> Result<UpdateState, Refusal> {
    use UpdateState::*;
    let refused = Refusal { from, event };
    if from.is_final() {
        return Err(refused);
    }
    match (from, event) {
        (Queued, Event::Advanced) => Ok(WaitingForResources),
        (WaitingForResources, Event::Advanced) => Ok(Initializing),
        (Initializing, Event::Advanced) => Ok(SettingUpTables),
        (SettingUpTables, Event::Advanced) => Ok(Running),
        (SettingUpTables | Running, Event::Succeeded) => Ok(Completed),
        (Stopping, Event::Succeeded | Event::Failed | Event::Stopped) => Ok(Canceled),
        (_, Event::Failed) => Ok(Failed),
        (Stopping, Event::StopRequested | Event::Advanced) => Err(refused),
        (_, Event::StopRequested) => Ok(Stopping),
        (Queued, Event::Stopped) => Ok(Canceled),
        _ => Err(refused),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_move_forward_and_end_once() {
        use UpdateState::*;
        let mut state = Queued;
        for expected in [WaitingForResources, Initializing, SettingUpTables, Running] {
            state = next(state, Event::Advanced).unwrap();
            assert_eq!(state, expected);
        }
        assert_eq!(next(state, Event::Succeeded), Ok(Completed));
        assert_eq!(next(Running, Event::StopRequested), Ok(Stopping));
        assert_eq!(next(Stopping, Event::Advanced).unwrap_err().from, Stopping);
        assert_eq!(next(Stopping, Event::Succeeded), Ok(Canceled));
        assert!(next(Completed, Event::Failed).is_err());
        assert!(next(Failed, Event::StopRequested).is_err());
        assert!(ALL.iter().all(|s| UpdateState::parse(s.as_str()) == Some(*s)));
    }
}
