//! Quality monitors and their refreshes. A refresh's state is written
//! fenced on the state read, so a cancel and a finish cannot both land.

use crate::db::{OptionalExtension, Row, params};
use serde_json::Value;

use crate::{Result, Store, from_json_text, to_json_text};

#[derive(Debug, Clone, PartialEq)]
pub struct MonitorRow {
    pub table_name: String,
    pub info: Value,
    pub created_time: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RefreshRow {
    pub table_name: String,
    pub refresh_id: i64,
    pub state: String,
    pub trigger: String,
    pub start_time_ms: i64,
    pub end_time_ms: Option<i64>,
    pub message: Option<String>,
}

const REFRESH_COLUMNS: &str = "table_name, refresh_id, state, trigger, start_time_ms, end_time_ms, message";

fn refresh(r: &Row<'_>) -> crate::db::Result<RefreshRow> {
    Ok(RefreshRow {
        table_name: r.get(0)?,
        refresh_id: r.get(1)?,
        state: r.get(2)?,
        trigger: r.get(3)?,
        start_time_ms: r.get(4)?,
        end_time_ms: r.get(5)?,
        message: r.get(6)?,
    })
}

impl Store {
    /// Inserts a monitor; false if the table has one.
    pub fn insert_monitor(&self, row: &MonitorRow) -> Result<bool> {
        let n = self.conn().execute(
            "INSERT INTO quality_monitors (table_name, info, created_time) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            params![row.table_name, to_json_text(&row.info), row.created_time],
        )?;
        Ok(n == 1)
    }

    pub fn update_monitor(&self, table_name: &str, info: &Value) -> Result<bool> {
        let n = self.conn().execute(
            "UPDATE quality_monitors SET info = ?2 WHERE table_name = ?1",
            params![table_name, to_json_text(info)],
        )?;
        Ok(n == 1)
    }

    pub fn get_monitor(&self, table_name: &str) -> Result<Option<MonitorRow>> {
        let conn = self.conn();
        let found = conn
            .query_row(
                "SELECT table_name, info, created_time FROM quality_monitors WHERE table_name = ?1",
                [table_name],
                |r| Ok((r.get::<String>(0)?, r.get::<String>(1)?, r.get::<i64>(2)?)),
            )
            .optional()?;
        found
            .map(|(table_name, info, created_time)| {
                Ok(MonitorRow { table_name, info: from_json_text("quality_monitors.info", &info)?, created_time })
            })
            .transpose()
    }

    /// Every monitor's table and definition, for the refresh scheduler.
    pub fn list_monitors(&self) -> Result<Vec<MonitorRow>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached("SELECT table_name, info, created_time FROM quality_monitors ORDER BY table_name")?;
        let rows = stmt
            .query_map(crate::db::params![], |r| Ok((r.get::<String>(0)?, r.get::<String>(1)?, r.get::<i64>(2)?)))?
            .collect::<crate::db::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(table_name, info, created_time)| {
                Ok(MonitorRow { table_name, info: from_json_text("quality_monitors.info", &info)?, created_time })
            })
            .collect()
    }

    /// Deletes a monitor and its refreshes; false if there was none.
    pub fn delete_monitor(&self, table_name: &str) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM monitor_refreshes WHERE table_name = ?1", [table_name])?;
        let n = tx.execute("DELETE FROM quality_monitors WHERE table_name = ?1", [table_name])?;
        tx.commit()?;
        Ok(n == 1)
    }

    /// A new PENDING refresh numbered after the table's last one.
    pub fn insert_refresh(&self, table_name: &str, trigger: &str, now: i64) -> Result<RefreshRow> {
        let conn = self.conn();
        let id: i64 = conn.query_row(
            "SELECT COALESCE(MAX(refresh_id), 0) + 1 FROM monitor_refreshes WHERE table_name = ?1",
            [table_name],
            |r| r.get(0),
        )?;
        conn.execute(
            "INSERT INTO monitor_refreshes (table_name, refresh_id, state, trigger, start_time_ms) VALUES (?1, ?2, 'PENDING', ?3, ?4)",
            params![table_name, id, trigger, now],
        )?;
        Ok(RefreshRow {
            table_name: table_name.to_string(),
            refresh_id: id,
            state: "PENDING".into(),
            trigger: trigger.to_string(),
            start_time_ms: now,
            end_time_ms: None,
            message: None,
        })
    }

    /// Moves a refresh from `from` to `to`; false if it was no longer in `from`.
    pub fn transition_refresh(
        &self,
        table_name: &str,
        refresh_id: i64,
        from: &str,
        to: &str,
        end_time_ms: Option<i64>,
        message: Option<&str>,
    ) -> Result<bool> {
        let n = self.conn().execute(
            "UPDATE monitor_refreshes SET state = ?4, end_time_ms = ?5, message = ?6
             WHERE table_name = ?1 AND refresh_id = ?2 AND state = ?3",
            params![table_name, refresh_id, from, to, end_time_ms, message],
        )?;
        Ok(n == 1)
    }

    pub fn get_refresh(&self, table_name: &str, refresh_id: i64) -> Result<Option<RefreshRow>> {
        let conn = self.conn();
        Ok(conn
            .query_row(
                &format!("SELECT {REFRESH_COLUMNS} FROM monitor_refreshes WHERE table_name = ?1 AND refresh_id = ?2"),
                params![table_name, refresh_id],
                refresh,
            )
            .optional()?)
    }

    /// The latest `limit` refreshes, newest first.
    pub fn list_refreshes(&self, table_name: &str, limit: usize) -> Result<Vec<RefreshRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {REFRESH_COLUMNS} FROM monitor_refreshes WHERE table_name = ?1 ORDER BY refresh_id DESC LIMIT ?2"
        ))?;
        let rows =
            stmt.query_map(params![table_name, limit as i64], refresh)?.collect::<crate::db::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Refreshes left PENDING or RUNNING by a stopped tarn end FAILED; returns how many.
    pub fn fail_unfinished_refreshes(&self, now: i64) -> Result<usize> {
        Ok(self.conn().execute(
            "UPDATE monitor_refreshes SET state = 'FAILED', end_time_ms = ?1,
                 message = 'tarn stopped while the refresh ran' WHERE state IN ('PENDING', 'RUNNING')",
            [now],
        )?)
    }
}

/// Pages of monitors and refreshes, for tarn's pages.
impl Store {
    /// `limit` monitors from `offset`, by table name.
    pub fn list_monitors_page(&self, offset: usize, limit: usize) -> Result<Vec<MonitorRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT table_name, info, created_time FROM quality_monitors ORDER BY table_name LIMIT ?1 OFFSET ?2",
        )?;
        let rows = stmt
            .query_map(params![limit as i64, offset as i64], |r| {
                Ok((r.get::<String>(0)?, r.get::<String>(1)?, r.get::<i64>(2)?))
            })?
            .collect::<crate::db::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(table_name, info, created_time)| {
                Ok(MonitorRow { table_name, info: from_json_text("quality_monitors.info", &info)?, created_time })
            })
            .collect()
    }

    /// `limit` refreshes from `offset`, newest first.
    pub fn list_refreshes_page(&self, table_name: &str, offset: usize, limit: usize) -> Result<Vec<RefreshRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {REFRESH_COLUMNS} FROM monitor_refreshes WHERE table_name = ?1
             ORDER BY refresh_id DESC LIMIT ?2 OFFSET ?3"
        ))?;
        let args = params![table_name, limit as i64, offset as i64];
        Ok(stmt.query_map(args, refresh)?.collect::<crate::db::Result<Vec<_>>>()?)
    }
}
