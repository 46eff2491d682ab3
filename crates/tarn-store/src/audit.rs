//! The audit log: one row per authenticated API call.

use rusqlite::params;

use crate::{Result, Store};

#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub event_time: i64,
    pub user_name: String,
    pub service_name: String,
    pub action_name: String,
    pub method: String,
    pub request_path: String,
    pub status_code: i64,
    pub duration_ms: i64,
}

impl Store {
    pub fn record_audit(&self, e: &AuditEvent) -> Result<()> {
        self.conn().execute(
            "INSERT INTO audit_events (event_time, user_name, service_name, action_name, method, request_path,
                                       status_code, duration_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                e.event_time,
                e.user_name,
                e.service_name,
                e.action_name,
                e.method,
                e.request_path,
                e.status_code,
                e.duration_ms
            ],
        )?;
        Ok(())
    }

    /// Events from `since` (epoch ms) on, oldest first.
    pub fn audit_events(&self, since: i64) -> Result<Vec<AuditEvent>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT event_time, user_name, service_name, action_name, method, request_path, status_code, duration_ms
             FROM audit_events WHERE event_time >= ?1 ORDER BY event_id",
        )?;
        let rows = stmt.query_map([since], |r| {
            Ok(AuditEvent {
                event_time: r.get(0)?,
                user_name: r.get(1)?,
                service_name: r.get(2)?,
                action_name: r.get(3)?,
                method: r.get(4)?,
                request_path: r.get(5)?,
                status_code: r.get(6)?,
                duration_ms: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}
