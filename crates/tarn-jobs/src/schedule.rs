//! A job's `schedule` and `trigger` settings as Databricks checks them at
//! create: Quartz cron expressions in a time zone, pause states, and
//! file-arrival URLs on volumes. `triggers` fires them.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use serde_json::Value;

use crate::error::{JobsError, Result, invalid};

/// A Quartz expression (`sec min hour day-of-month month day-of-week
/// [year]`) parsed; the year field may only be `*`.
pub fn parse_quartz(expression: &str) -> Result<Cron> {
    let mut fields: Vec<&str> = expression.split_whitespace().collect();
    if fields.len() == 7 {
        if fields[6] != "*" {
            return Err(invalid(format!(
                "Invalid quartz_cron_expression '{expression}': tarn takes only '*' in the year field"
            )));
        }
        fields.pop();
    }
    if fields.len() != 6 {
        return Err(invalid(format!(
            "Invalid quartz_cron_expression '{expression}': expected 6 or 7 fields (seconds first)"
        )));
    }
    Cron::new(&fields.join(" "))
        .with_seconds_required()
        .with_alternative_weekdays()
        .parse()
        .map_err(|e| invalid(format!("Invalid quartz_cron_expression '{expression}': {e}")))
}

pub(crate) fn time_zone(settings: &Value) -> Result<Tz> {
    let name = settings.pointer("/schedule/timezone_id").and_then(Value::as_str).unwrap_or("UTC");
    Tz::from_str(name).map_err(|_| invalid(format!("Invalid timezone_id '{name}'")))
}

/// Checks a job's `schedule` and `trigger` at create.
pub fn check(settings: &Value) -> Result<()> {
    if let Some(schedule) = settings.get("schedule").filter(|s| !s.is_null()) {
        let expression = schedule.get("quartz_cron_expression").and_then(Value::as_str).unwrap_or_default();
        parse_quartz(expression)?;
        time_zone(settings)?;
        check_pause(schedule)?;
    }
    if let Some(trigger) = settings.get("trigger").filter(|t| !t.is_null()) {
        check_pause(trigger)?;
        match trigger.pointer("/file_arrival/url").and_then(Value::as_str) {
            Some(url) if url.starts_with("/Volumes/") => {}
            Some(url) => return Err(invalid(format!("file_arrival.url must be a /Volumes path, got '{url}'"))),
            None => {
                return Err(JobsError::NotImplemented(
                    "tarn triggers jobs on schedules and file arrival; other triggers are not supported".into(),
                ));
            }
        }
    }
    Ok(())
}

fn check_pause(spec: &Value) -> Result<()> {
    match spec.get("pause_status").and_then(Value::as_str) {
        None | Some("PAUSED" | "UNPAUSED") => Ok(()),
        Some(other) => Err(invalid(format!("pause_status must be PAUSED or UNPAUSED, got '{other}'"))),
    }
}

pub(crate) fn paused(spec: &Value) -> bool {
    spec.get("pause_status").and_then(Value::as_str) == Some("PAUSED")
}

/// A quartz schedule as alerts and monitors carry it: the expression, its
/// time zone (UTC if none), and whether it is paused.
pub struct QuartzSchedule {
    pub cron: Cron,
    pub zone: Tz,
    pub paused: bool,
}

impl QuartzSchedule {
    pub fn parse(expression: &str, timezone_id: Option<&str>, pause_status: Option<&str>) -> Result<Self> {
        let cron = parse_quartz(expression)?;
        let name = timezone_id.unwrap_or("UTC");
        let zone = Tz::from_str(name).map_err(|_| invalid(format!("Invalid timezone_id '{name}'")))?;
        let paused = match pause_status {
            None | Some("UNPAUSED") => false,
            Some("PAUSED") => true,
            Some(other) => return Err(invalid(format!("pause_status must be PAUSED or UNPAUSED, got '{other}'"))),
        };
        Ok(Self { cron, zone, paused })
    }

    /// Whether its next time after `since_ms` has come by `now_ms`.
    pub fn due(&self, since_ms: i64, now_ms: i64) -> bool {
        let Some(since) = DateTime::<Utc>::from_timestamp_millis(since_ms) else { return false };
        next_after(&self.cron, self.zone, since).is_some_and(|due| due.timestamp_millis() <= now_ms)
    }
}

/// The schedule's next time after `after`.
pub fn next_after(cron: &Cron, tz: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    cron.find_next_occurrence(&after.with_timezone(&tz), false).ok().map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    #[test]
    fn quartz_schedules_fire_at_their_times_in_their_zone() {
        let every_second = parse_quartz("* * * * * ?").unwrap();
        let t = Utc.with_ymd_and_hms(2026, 11, 21, 10, 0, 0).unwrap();
        assert_eq!(next_after(&every_second, Tz::UTC, t), Some(t + chrono::Duration::seconds(1)));
        // 09:30 in Oslo on weekdays (Quartz: 2-6 is Monday to Friday); 2026-11-21 is a Saturday.
        let weekdays = parse_quartz("0 30 9 ? * 2-6").unwrap();
        let oslo = Tz::from_str("Europe/Oslo").unwrap();
        let next = next_after(&weekdays, oslo, t).unwrap();
        assert_eq!(next, Utc.with_ymd_and_hms(2026, 11, 23, 8, 30, 0).unwrap());
        assert!(parse_quartz("0 0 12 * * ? *").is_ok());
        assert!(parse_quartz("0 0 12 * * ? 2030").is_err());
        assert!(parse_quartz("0 12 * * ?").is_err(), "five fields: seconds are required");
        let bad_zone = json!({"schedule": {"quartz_cron_expression": "* * * * * ?", "timezone_id": "Mars/Base"}});
        assert!(check(&bad_zone).unwrap_err().to_string().contains("Mars/Base"));
    }
}
