//! Notification destinations, and the trigger state of jobs (when each
//! schedule last fired, what each file-arrival trigger last saw).

use crate::db::{OptionalExtension, Row, params};

use crate::{Result, Store, from_json_text, to_json_text};

/// A file-arrival trigger's memory: its path and the listing it compares
/// the next one with.
#[derive(Debug, Clone, PartialEq)]
pub struct FileArrivalState {
    pub url: String,
    pub seen: serde_json::Value,
    pub last_run: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DestinationRow {
    pub id: String,
    pub display_name: String,
    /// `WEBHOOK` or `EMAIL`.
    pub destination_type: String,
    /// The API's `config` object (secrets included; callers redact).
    pub config: serde_json::Value,
    pub created_by: String,
    pub created_time: i64,
}

const COLUMNS: &str = "id, display_name, destination_type, config, created_by, created_time";

fn raw(r: &Row<'_>) -> crate::db::Result<(DestinationRow, String)> {
    Ok((
        DestinationRow {
            id: r.get(0)?,
            display_name: r.get(1)?,
            destination_type: r.get(2)?,
            config: serde_json::Value::Null,
            created_by: r.get(4)?,
            created_time: r.get(5)?,
        },
        r.get(3)?,
    ))
}

fn into_row((mut row, config): (DestinationRow, String)) -> Result<DestinationRow> {
    row.config = from_json_text("notification_destinations.config", &config)?;
    Ok(row)
}

impl Store {
    /// Inserts or replaces a destination.
    pub fn put_destination(&self, row: &DestinationRow) -> Result<()> {
        self.conn().execute(
            "INSERT INTO notification_destinations (id, display_name, destination_type, config,
                 created_by, created_time) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (id) DO UPDATE SET
                     display_name = excluded.display_name, destination_type = excluded.destination_type,
                     config = excluded.config, created_by = excluded.created_by,
                     created_time = excluded.created_time",
            params![
                row.id,
                row.display_name,
                row.destination_type,
                to_json_text(&row.config),
                row.created_by,
                row.created_time
            ],
        )?;
        Ok(())
    }

    pub fn get_destination(&self, id: &str) -> Result<Option<DestinationRow>> {
        let conn = self.conn();
        let found = conn
            .query_row(&format!("SELECT {COLUMNS} FROM notification_destinations WHERE id = ?1"), [id], raw)
            .optional()?;
        found.map(into_row).transpose()
    }

    /// Destinations in creation order.
    pub fn list_destinations(&self) -> Result<Vec<DestinationRow>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached(&format!("SELECT {COLUMNS} FROM notification_destinations ORDER BY created_time, id"))?;
        let rows = stmt.query_map(crate::db::params![], raw)?.collect::<crate::db::Result<Vec<_>>>()?;
        rows.into_iter().map(into_row).collect()
    }

    /// `false` when there is no such destination.
    pub fn delete_destination(&self, id: &str) -> Result<bool> {
        Ok(self.conn().execute("DELETE FROM notification_destinations WHERE id = ?1", [id])? > 0)
    }

    /// When the job's schedule last fired (epoch ms).
    pub fn schedule_last_fired(&self, job_id: i64) -> Result<Option<i64>> {
        let conn = self.conn();
        Ok(conn
            .query_row("SELECT last_fired FROM job_schedule_state WHERE job_id = ?1", [job_id], |r| r.get(0))
            .optional()?)
    }

    pub fn set_schedule_fired(&self, job_id: i64, at: i64) -> Result<()> {
        self.conn().execute(
            "INSERT INTO job_schedule_state (job_id, last_fired) VALUES (?1, ?2)
             ON CONFLICT (job_id) DO UPDATE SET last_fired = excluded.last_fired",
            params![job_id, at],
        )?;
        Ok(())
    }

    /// What the job's file-arrival trigger last saw: its path, the listing
    /// (JSON) and when it last started a run (epoch ms).
    pub fn file_arrival_state(&self, job_id: i64) -> Result<Option<FileArrivalState>> {
        let conn = self.conn();
        let found: Option<(String, String, Option<i64>)> = conn
            .query_row("SELECT url, seen, last_run FROM job_file_arrival_state WHERE job_id = ?1", [job_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        found
            .map(|(url, seen, last_run)| {
                Ok(FileArrivalState { url, seen: from_json_text("file arrival listing", &seen)?, last_run })
            })
            .transpose()
    }

    pub fn set_file_arrival_state(&self, job_id: i64, state: &FileArrivalState) -> Result<()> {
        let seen = to_json_text(&state.seen);
        self.conn().execute(
            "INSERT INTO job_file_arrival_state (job_id, url, seen, last_run) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (job_id) DO UPDATE SET url = excluded.url, seen = excluded.seen, last_run = excluded.last_run",
            params![job_id, state.url, seen, state.last_run],
        )?;
        Ok(())
    }

    /// Jobs whose settings have a `schedule` or a `trigger`, as (id, settings).
    pub fn triggered_jobs(&self) -> Result<Vec<(i64, serde_json::Value)>> {
        let conn = self.conn();
        let d = conn.dialect();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT job_id, settings FROM jobs WHERE {} IS NOT NULL OR {} IS NOT NULL",
            d.json_field("settings", "schedule"),
            d.json_field("settings", "trigger"),
        ))?;
        let rows = stmt
            .query_map(crate::db::params![], |r| Ok((r.get::<i64>(0)?, r.get::<String>(1)?)))?
            .collect::<crate::db::Result<Vec<_>>>()?;
        rows.into_iter().map(|(id, s)| Ok((id, from_json_text("jobs.settings", &s)?))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn destinations_and_schedule_state_round_trip() {
        let store = crate::test_store();
        let row = DestinationRow {
            id: "d1".into(),
            display_name: "hook".into(),
            destination_type: "WEBHOOK".into(),
            config: json!({"generic_webhook": {"url": "http://127.0.0.1:1/x"}}),
            created_by: "ann".into(),
            created_time: 1,
        };
        store.put_destination(&row).unwrap();
        assert_eq!(store.get_destination("d1").unwrap(), Some(row.clone()));
        assert_eq!(store.list_destinations().unwrap(), vec![row]);
        assert!(store.delete_destination("d1").unwrap() && !store.delete_destination("d1").unwrap());
        assert_eq!(store.schedule_last_fired(5).unwrap(), None);
        store.set_schedule_fired(5, 10).unwrap();
        store.set_schedule_fired(5, 20).unwrap();
        assert_eq!(store.schedule_last_fired(5).unwrap(), Some(20));
        assert_eq!(store.file_arrival_state(5).unwrap(), None);
        let seen = FileArrivalState { url: "/Volumes/m/d/v".into(), seen: json!({"a.csv": [2, 9]}), last_run: None };
        store.set_file_arrival_state(5, &seen).unwrap();
        let later = FileArrivalState { last_run: Some(30), ..seen };
        store.set_file_arrival_state(5, &later).unwrap();
        assert_eq!(store.file_arrival_state(5).unwrap(), Some(later));
        let id = store
            .create_job("ann", &json!({"name": "s", "schedule": {"quartz_cron_expression": "* * * * * ?"}}), 1)
            .unwrap();
        store.create_job("ann", &json!({"name": "plain"}), 2).unwrap();
        assert_eq!(store.triggered_jobs().unwrap().iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![id]);
    }
}
