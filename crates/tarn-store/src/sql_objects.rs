//! Databricks SQL's saved queries and alerts, kept as JSON by kind, and
//! each alert's last evaluation. Trashing keeps the row (a trashed object
//! is gone from lists and gets, as in Databricks); deleting removes it.

use crate::db::{OptionalExtension, Row, params};
use serde_json::Value;

use crate::{Result, Store, from_json_text, to_json_text};

#[derive(Debug, Clone, PartialEq)]
pub struct SqlObjectRow {
    pub id: String,
    pub kind: String,
    pub info: Value,
    pub owner: String,
    pub lifecycle_state: String,
    pub create_time_ms: i64,
    pub update_time_ms: i64,
}

/// An alert's last evaluation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AlertStateRow {
    pub state: String,
    pub trigger_time_ms: Option<i64>,
    pub last_evaluated_ms: Option<i64>,
    pub error: Option<String>,
}

const COLUMNS: &str = "id, kind, info, owner, lifecycle_state, create_time_ms, update_time_ms";

fn object(r: &Row<'_>) -> crate::db::Result<(SqlObjectRow, String)> {
    let info: String = r.get(2)?;
    let row = SqlObjectRow {
        id: r.get(0)?,
        kind: r.get(1)?,
        info: Value::Null,
        owner: r.get(3)?,
        lifecycle_state: r.get(4)?,
        create_time_ms: r.get(5)?,
        update_time_ms: r.get(6)?,
    };
    Ok((row, info))
}

fn parsed((mut row, info): (SqlObjectRow, String)) -> Result<SqlObjectRow> {
    row.info = from_json_text("sql_objects.info", &info)?;
    Ok(row)
}

impl Store {
    pub fn insert_sql_object(&self, row: &SqlObjectRow) -> Result<()> {
        self.conn().execute(
            &format!("INSERT INTO sql_objects ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
            params![
                row.id,
                row.kind,
                to_json_text(&row.info),
                row.owner,
                row.lifecycle_state,
                row.create_time_ms,
                row.update_time_ms
            ],
        )?;
        Ok(())
    }

    /// The object of `kind` with `id`, trashed ones included.
    pub fn get_sql_object(&self, kind: &str, id: &str) -> Result<Option<SqlObjectRow>> {
        let conn = self.conn();
        let found = conn
            .query_row(&format!("SELECT {COLUMNS} FROM sql_objects WHERE kind = ?1 AND id = ?2"), [kind, id], object)
            .optional()?;
        found.map(parsed).transpose()
    }

    /// Active objects of `kind` with ids after `after`, in id order.
    pub fn list_sql_objects(&self, kind: &str, after: &str, limit: usize) -> Result<Vec<SqlObjectRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM sql_objects WHERE kind = ?1 AND lifecycle_state = 'ACTIVE' AND id > ?2
             ORDER BY id LIMIT ?3"
        ))?;
        let rows =
            stmt.query_map(params![kind, after, limit as i64], object)?.collect::<crate::db::Result<Vec<_>>>()?;
        rows.into_iter().map(parsed).collect()
    }

    /// Replaces an active object's info; false if there is none.
    pub fn update_sql_object(&self, kind: &str, id: &str, info: &Value, owner: &str, now: i64) -> Result<bool> {
        let n = self.conn().execute(
            "UPDATE sql_objects SET info = ?3, owner = ?4, update_time_ms = ?5
             WHERE kind = ?1 AND id = ?2 AND lifecycle_state = 'ACTIVE'",
            params![kind, id, to_json_text(info), owner, now],
        )?;
        Ok(n == 1)
    }

    /// Moves an active object to `state` (TRASHED, DELETED); false if there is none.
    pub fn retire_sql_object(&self, kind: &str, id: &str, state: &str, now: i64) -> Result<bool> {
        let n = self.conn().execute(
            "UPDATE sql_objects SET lifecycle_state = ?3, update_time_ms = ?4
             WHERE kind = ?1 AND id = ?2 AND lifecycle_state = 'ACTIVE'",
            params![kind, id, state, now],
        )?;
        Ok(n == 1)
    }

    /// Removes an object for good; false if there was none.
    pub fn purge_sql_object(&self, kind: &str, id: &str) -> Result<bool> {
        let n = self.conn().execute("DELETE FROM sql_objects WHERE kind = ?1 AND id = ?2", [kind, id])?;
        Ok(n == 1)
    }

    /// An alert's last evaluation; UNKNOWN if it has not been evaluated.
    pub fn alert_state(&self, alert_id: &str) -> Result<AlertStateRow> {
        let conn = self.conn();
        let found = conn
            .query_row(
                "SELECT state, trigger_time_ms, last_evaluated_ms, error FROM alert_states WHERE alert_id = ?1",
                [alert_id],
                |r| {
                    Ok(AlertStateRow {
                        state: r.get(0)?,
                        trigger_time_ms: r.get(1)?,
                        last_evaluated_ms: r.get(2)?,
                        error: r.get(3)?,
                    })
                },
            )
            .optional()?;
        Ok(found.unwrap_or_else(|| AlertStateRow { state: "UNKNOWN".into(), ..Default::default() }))
    }

    /// Records an evaluation, fenced on the one it followed (`seen`, as
    /// `alert_state` read it): false if another evaluation landed first.
    pub fn record_alert_evaluation(&self, alert_id: &str, seen: &AlertStateRow, row: &AlertStateRow) -> Result<bool> {
        let values =
            params![alert_id, row.state, row.trigger_time_ms, row.last_evaluated_ms, row.error, seen.last_evaluated_ms];
        // Every stored evaluation has its time, so none seen means no row yet.
        let sql = match seen.last_evaluated_ms {
            None => {
                "INSERT INTO alert_states (alert_id, state, trigger_time_ms, last_evaluated_ms, error)
                 SELECT ?1, ?2, CAST(?3 AS BIGINT), CAST(?4 AS BIGINT), ?5 WHERE ?6 IS NULL
                 ON CONFLICT (alert_id) DO NOTHING"
            }
            Some(_) => {
                "UPDATE alert_states SET state = ?2, trigger_time_ms = ?3, last_evaluated_ms = ?4, error = ?5
                 WHERE alert_id = ?1 AND last_evaluated_ms = ?6"
            }
        };
        Ok(self.conn().execute(sql, values)? == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(id: &str) -> SqlObjectRow {
        SqlObjectRow {
            id: id.into(),
            kind: "alert".into(),
            info: json!({"display_name": id}),
            owner: "admin".into(),
            lifecycle_state: "ACTIVE".into(),
            create_time_ms: 1,
            update_time_ms: 1,
        }
    }

    #[test]
    fn trashed_objects_leave_lists_and_states_follow_deletes() {
        let store = crate::test_store();
        for id in ["a", "b", "c"] {
            store.insert_sql_object(&row(id)).unwrap();
        }
        assert!(store.retire_sql_object("alert", "b", "TRASHED", 2).unwrap());
        assert!(!store.retire_sql_object("alert", "b", "TRASHED", 3).unwrap());
        let listed: Vec<String> = store.list_sql_objects("alert", "", 10).unwrap().into_iter().map(|r| r.id).collect();
        assert_eq!(listed, ["a", "c"]);
        assert_eq!(store.list_sql_objects("alert", "a", 10).unwrap()[0].id, "c");
        assert_eq!(store.get_sql_object("alert", "b").unwrap().unwrap().lifecycle_state, "TRASHED");
        assert!(store.get_sql_object("query", "a").unwrap().is_none());

        assert_eq!(store.alert_state("a").unwrap().state, "UNKNOWN");
        let unknown = store.alert_state("a").unwrap();
        let fired = AlertStateRow {
            state: "TRIGGERED".into(),
            trigger_time_ms: Some(5),
            last_evaluated_ms: Some(5),
            error: None,
        };
        assert!(store.record_alert_evaluation("a", &unknown, &fired).unwrap());
        assert_eq!(store.alert_state("a").unwrap(), fired);
        // A second evaluation that read the same state as the first loses.
        let ok = AlertStateRow { state: "OK".into(), last_evaluated_ms: Some(6), ..Default::default() };
        assert!(!store.record_alert_evaluation("a", &unknown, &ok).unwrap());
        assert!(store.record_alert_evaluation("a", &fired, &ok).unwrap());
        assert!(!store.record_alert_evaluation("a", &fired, &ok).unwrap());
        assert_eq!(store.alert_state("a").unwrap().state, "OK");
        assert!(store.purge_sql_object("alert", "a").unwrap());
        assert_eq!(store.alert_state("a").unwrap().state, "UNKNOWN");
    }
}
