//! Fires v2 alerts on their quartz schedules. Once a second it looks for
//! active, unpaused alerts whose next time after their last evaluation (or
//! their creation) has come, and evaluates each in its own task; an alert
//! still being evaluated is skipped, so a slow query never piles up runs.
//! Times missed while tarn was stopped are caught up with one evaluation.

use std::time::Duration;

use tarn_core::time::now_ms;
use tokio::task::JoinHandle;

use crate::objects::{self, Kind};
use crate::{Alerts, Result};

const TICK: Duration = Duration::from_secs(1);

/// Whom scheduled evaluations run as when an alert names no one.
const SCHEDULER_USER: &str = "admin";

impl Alerts {
    /// Starts the scheduler; abort the handle to stop it.
    pub fn spawn_scheduler(&self) -> JoinHandle<()> {
        let alerts = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(TICK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = alerts.fire_due() {
                    tracing::warn!(error = %e, "checking alert schedules");
                }
            }
        })
    }

    /// Starts an evaluation of every alert whose time has come.
    fn fire_due(&self) -> Result<()> {
        let now = now_ms();
        let mut after = String::new();
        loop {
            let rows = self.inner.store.list_sql_objects(Kind::AlertV2.key(), &after, 500)?;
            let Some(last) = rows.last() else { return Ok(()) };
            after = last.id.clone();
            for row in rows {
                let fields = objects::settable(Kind::AlertV2, &row.info);
                let Ok(schedule) = objects::schedule(&fields) else { continue };
                if schedule.paused {
                    continue;
                }
                let since = self.inner.store.alert_state(&row.id)?.last_evaluated_ms.unwrap_or(row.create_time_ms);
                if schedule.due(since, now) {
                    let user = row.info.get("run_as_user_name").and_then(|v| v.as_str()).unwrap_or(SCHEDULER_USER);
                    self.start(row.id.clone(), user.to_string());
                }
            }
        }
    }

    fn start(&self, id: String, user: String) {
        if !self.inner.evaluating.lock().unwrap_or_else(|e| e.into_inner()).insert(id.clone()) {
            return;
        }
        let alerts = self.clone();
        tokio::spawn(async move {
            if let Err(e) = alerts.evaluate(Kind::AlertV2, &id, Vec::new(), &user).await {
                tracing::warn!(alert = id, error = %e, "a scheduled alert could not be evaluated");
            }
            alerts.inner.evaluating.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        });
    }
}
