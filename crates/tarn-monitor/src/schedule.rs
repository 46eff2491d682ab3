//! A monitor's `schedule` (a quartz cron expression in a time zone, with
//! `pause_status`) and `notifications.on_failure`: the scheduler starts a
//! SCHEDULE refresh when the expression's next time after the last
//! scheduled refresh (or the monitor's creation) has come and no refresh of
//! the table is in flight; a FAILED refresh emails `on_failure`'s addresses.

use std::time::Duration;

use serde_json::{Value, json};
use tarn_core::time::now_ms;
use tarn_jobs::schedule::QuartzSchedule;
use tarn_store::MonitorRow;
use tokio::task::JoinHandle;

use crate::error::{Result, invalid};
use crate::{Inner, Monitors};

const TICK: Duration = Duration::from_secs(1);

fn parse(schedule: &Value) -> Result<QuartzSchedule> {
    let text = |key: &str| schedule.get(key).and_then(Value::as_str);
    QuartzSchedule::parse(text("quartz_cron_expression").unwrap_or_default(), text("timezone_id"), text("pause_status"))
        .map_err(|e| invalid(e.to_string()))
}

/// Checks a definition's `schedule` and `notifications`.
pub fn check(body: &Value) -> Result<()> {
    if let Some(schedule) = body.get("schedule").filter(|s| !s.is_null()) {
        parse(schedule)?;
    }
    let Some(notifications) = body.get("notifications").filter(|n| !n.is_null()) else { return Ok(()) };
    if notifications.get("on_new_classification_tag_detected").is_some_and(|v| !v.is_null()) {
        return Err(crate::MonitorError::NotImplemented(
            "on_new_classification_tag_detected is not implemented by tarn (no data classification)".into(),
        ));
    }
    let addresses = notifications.pointer("/on_failure/email_addresses");
    if addresses.is_some_and(|a| a.as_array().is_none_or(|a| a.iter().any(|e| !e.is_string()))) {
        return Err(invalid("notifications.on_failure.email_addresses must be a list of addresses"));
    }
    Ok(())
}

impl Monitors {
    /// Starts the refresh scheduler; abort the handle to stop it.
    pub fn spawn_scheduler(&self) -> JoinHandle<()> {
        let monitors = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(TICK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let due = match monitors.inner.store.list_monitors() {
                    Ok(all) => all.into_iter().filter(|m| monitors.due(m)).collect(),
                    Err(e) => {
                        tracing::warn!(error = %e, "checking monitor schedules");
                        Vec::new()
                    }
                };
                for monitor in due {
                    if let Err(e) = monitors.run_refresh(&monitor.table_name, "SCHEDULE") {
                        tracing::warn!(table = monitor.table_name, error = %e, "starting a scheduled refresh");
                    }
                }
            }
        })
    }

    /// Whether a scheduled refresh of the monitor should start now.
    fn due(&self, monitor: &MonitorRow) -> bool {
        let Some(Ok(schedule)) = monitor.info.get("schedule").filter(|s| !s.is_null()).map(parse) else {
            return false;
        };
        if schedule.paused {
            return false;
        }
        let Ok(refreshes) = self.inner.store.list_refreshes(&monitor.table_name, 25) else { return false };
        if refreshes.iter().any(|r| matches!(r.state.as_str(), "PENDING" | "RUNNING")) {
            return false;
        }
        let since =
            refreshes.iter().find(|r| r.trigger == "SCHEDULE").map_or(monitor.created_time, |r| r.start_time_ms);
        schedule.due(since, now_ms())
    }
}

impl Inner {
    /// Emails `notifications.on_failure` that refresh `id` failed.
    pub(crate) fn notify_failure(&self, table_name: &str, id: i64, message: &str) {
        let Some(notifier) = &self.notifier else { return };
        let Ok(Some(monitor)) = self.store.get_monitor(table_name) else { return };
        let addresses = monitor.info.pointer("/notifications/on_failure/email_addresses").and_then(Value::as_array);
        let emails: Vec<String> =
            addresses.into_iter().flatten().filter_map(|a| a.as_str().map(str::to_string)).collect();
        notifier.notice(tarn_jobs::Notice {
            subject: format!("[tarn] Monitor refresh failed: {table_name} (refresh {id})"),
            text: format!("Refresh {id} of the quality monitor on {table_name} failed:\n{message}\n"),
            payload: json!({"event_type": "monitor.refresh_failed", "table_name": table_name, "refresh_id": id,
                            "message": message}),
            destination_ids: Vec::new(),
            emails,
        });
    }
}
