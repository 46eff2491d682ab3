//! The audit log: one row per authenticated API call.

use crate::db::{Value, row_marks};

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
        self.record_audits(std::slice::from_ref(e))
    }

    /// Writes events in one statement per 500 (the audit writer batches
    /// under load): one round trip where a database is across the network.
    pub fn record_audits(&self, events: &[AuditEvent]) -> Result<()> {
        const COLUMNS: usize = 8;
        let conn = self.conn();
        for chunk in events.chunks(500) {
            let values: Vec<Value> = chunk
                .iter()
                .flat_map(|e| {
                    [
                        Value::Int(e.event_time),
                        Value::Text(e.user_name.clone()),
                        Value::Text(e.service_name.clone()),
                        Value::Text(e.action_name.clone()),
                        Value::Text(e.method.clone()),
                        Value::Text(e.request_path.clone()),
                        Value::Int(e.status_code),
                        Value::Int(e.duration_ms),
                    ]
                })
                .collect();
            conn.execute(
                &format!(
                    "INSERT INTO audit_events (event_time, user_name, service_name, action_name, method, request_path,
                                               status_code, duration_ms) VALUES {}",
                    row_marks(chunk.len(), COLUMNS)
                ),
                values,
            )?;
        }
        Ok(())
    }

    /// Events with an id above `after_id`, oldest first, with their ids.
    pub fn audit_events_after(&self, after_id: i64) -> Result<Vec<(i64, AuditEvent)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT event_id, event_time, user_name, service_name, action_name, method, request_path, status_code,
                    duration_ms
             FROM audit_events WHERE event_id > ?1 ORDER BY event_id",
        )?;
        let rows = stmt.query_map([after_id], |r| {
            let event = AuditEvent {
                event_time: r.get(1)?,
                user_name: r.get(2)?,
                service_name: r.get(3)?,
                action_name: r.get(4)?,
                method: r.get(5)?,
                request_path: r.get(6)?,
                status_code: r.get(7)?,
                duration_ms: r.get(8)?,
            };
            Ok((r.get(0)?, event))
        })?;
        Ok(rows.collect::<crate::db::Result<Vec<_>>>()?)
    }
}
