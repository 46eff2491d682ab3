//! Pipelines, their updates, their event log and what their streaming flows
//! have read. Which update states may follow which is `tarn-pipelines`'
//! rule; here an update's state is written fenced on the state read.

use crate::db::{OptionalExtension, Row, params};
use serde_json::Value;

use crate::{Result, Store, from_json_text, to_json_text};

#[derive(Debug, Clone, PartialEq)]
pub struct PipelineRow {
    pub pipeline_id: String,
    pub name: String,
    pub spec: Value,
    pub creator_user_name: String,
    pub created_time: i64,
    pub last_modified: i64,
    pub cluster_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UpdateRow {
    pub update_id: String,
    pub pipeline_id: String,
    /// The pipeline's count of updates when this one was made.
    pub seq: i64,
    pub state: String,
    pub cause: String,
    /// What `start_update` asked for (refresh selections, full refresh...).
    pub request: Value,
    pub cluster_id: Option<String>,
    pub creation_time: i64,
    pub end_time: Option<i64>,
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PipelineEventRow {
    pub seq: i64,
    pub id: String,
    pub pipeline_id: String,
    pub update_id: Option<String>,
    pub timestamp: i64,
    pub level: String,
    pub event_type: String,
    pub message: String,
    pub origin: Value,
    pub details: Value,
    pub error: Option<Value>,
}

/// Which events `list_pipeline_events` answers.
#[derive(Debug, Clone, Default)]
pub struct PipelineEventFilter {
    pub levels: Vec<String>,
    pub event_types: Vec<String>,
    pub update_id: Option<String>,
    /// Only events after this time (milliseconds).
    pub after: Option<i64>,
    /// Only events recorded after this one (its `seq`).
    pub after_seq: Option<i64>,
    pub ascending: bool,
}

const PIPELINE_COLUMNS: &str = "pipeline_id, name, spec, creator_user_name, created_time, last_modified, cluster_id";
const UPDATE_COLUMNS: &str =
    "update_id, pipeline_id, seq, state, cause, request, cluster_id, creation_time, end_time, message";
const EVENT_COLUMNS: &str =
    "seq, id, pipeline_id, update_id, timestamp, level, event_type, message, origin, details, error";

fn pipeline(r: &Row<'_>) -> crate::db::Result<(PipelineRow, String)> {
    let row = PipelineRow {
        pipeline_id: r.get(0)?,
        name: r.get(1)?,
        spec: Value::Null,
        creator_user_name: r.get(3)?,
        created_time: r.get(4)?,
        last_modified: r.get(5)?,
        cluster_id: r.get(6)?,
    };
    Ok((row, r.get(2)?))
}

fn with_spec((mut row, spec): (PipelineRow, String)) -> Result<PipelineRow> {
    row.spec = from_json_text("pipelines.spec", &spec)?;
    Ok(row)
}

fn update(r: &Row<'_>) -> crate::db::Result<(UpdateRow, String)> {
    let row = UpdateRow {
        update_id: r.get(0)?,
        pipeline_id: r.get(1)?,
        seq: r.get(2)?,
        state: r.get(3)?,
        cause: r.get(4)?,
        request: Value::Null,
        cluster_id: r.get(6)?,
        creation_time: r.get(7)?,
        end_time: r.get(8)?,
        message: r.get(9)?,
    };
    Ok((row, r.get(5)?))
}

fn with_request((mut row, request): (UpdateRow, String)) -> Result<UpdateRow> {
    row.request = from_json_text("pipeline_updates.request", &request)?;
    Ok(row)
}

type EventText = (PipelineEventRow, String, String, Option<String>);

fn event(r: &Row<'_>) -> crate::db::Result<EventText> {
    let row = PipelineEventRow {
        seq: r.get(0)?,
        id: r.get(1)?,
        pipeline_id: r.get(2)?,
        update_id: r.get(3)?,
        timestamp: r.get(4)?,
        level: r.get(5)?,
        event_type: r.get(6)?,
        message: r.get(7)?,
        origin: Value::Null,
        details: Value::Null,
        error: None,
    };
    Ok((row, r.get(8)?, r.get(9)?, r.get(10)?))
}

fn with_json((mut row, origin, details, error): EventText) -> Result<PipelineEventRow> {
    row.origin = from_json_text("pipeline_events.origin", &origin)?;
    row.details = from_json_text("pipeline_events.details", &details)?;
    row.error = error.map(|e| from_json_text("pipeline_events.error", &e)).transpose()?;
    Ok(row)
}

fn sql_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Store {
    pub fn create_pipeline(&self, row: &PipelineRow) -> Result<()> {
        self.conn().execute(
            &format!("INSERT INTO pipelines ({PIPELINE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
            params![
                row.pipeline_id,
                row.name,
                to_json_text(&row.spec),
                row.creator_user_name,
                row.created_time,
                row.last_modified,
                row.cluster_id
            ],
        )?;
        Ok(())
    }

    pub fn get_pipeline(&self, pipeline_id: &str) -> Result<Option<PipelineRow>> {
        let sql = format!("SELECT {PIPELINE_COLUMNS} FROM pipelines WHERE pipeline_id = ?1");
        self.conn().query_row(&sql, [pipeline_id], pipeline).optional()?.map(with_spec).transpose()
    }

    /// The pipeline of that name (names compared case-insensitively).
    pub fn pipeline_named(&self, name: &str) -> Result<Option<PipelineRow>> {
        let sql = format!("SELECT {PIPELINE_COLUMNS} FROM pipelines WHERE lower(name) = lower(?1) LIMIT 1");
        self.conn().query_row(&sql, [name], pipeline).optional()?.map(with_spec).transpose()
    }

    /// Pipelines by name, then id; `name_like` is a SQL LIKE pattern.
    pub fn list_pipelines(&self, name_like: Option<&str>, offset: usize, limit: usize) -> Result<Vec<PipelineRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {PIPELINE_COLUMNS} FROM pipelines WHERE name LIKE ?1 OR ?1 IS NULL
             ORDER BY lower(name), pipeline_id LIMIT ?2 OFFSET ?3"
        ))?;
        let rows = stmt
            .query_map(params![name_like, sql_i64(limit), sql_i64(offset)], pipeline)?
            .collect::<crate::db::Result<Vec<_>>>()?;
        rows.into_iter().map(with_spec).collect()
    }

    /// `false` when there is no such pipeline.
    pub fn set_pipeline_spec(&self, pipeline_id: &str, name: &str, spec: &Value, now: i64) -> Result<bool> {
        let n = self.conn().execute(
            "UPDATE pipelines SET name = ?2, spec = ?3, last_modified = ?4 WHERE pipeline_id = ?1",
            params![pipeline_id, name, to_json_text(spec), now],
        )?;
        Ok(n > 0)
    }

    pub fn set_pipeline_cluster(&self, pipeline_id: &str, cluster_id: Option<&str>) -> Result<()> {
        self.conn()
            .execute("UPDATE pipelines SET cluster_id = ?2 WHERE pipeline_id = ?1", params![pipeline_id, cluster_id])?;
        Ok(())
    }

    /// Deletes the pipeline with its updates, events and flow progress;
    /// `false` when there is no such pipeline.
    pub fn delete_pipeline(&self, pipeline_id: &str) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for table in ["pipeline_updates", "pipeline_events", "pipeline_flow_batches"] {
            tx.execute(&format!("DELETE FROM {table} WHERE pipeline_id = ?1"), [pipeline_id])?;
        }
        let n = tx.execute("DELETE FROM pipelines WHERE pipeline_id = ?1", [pipeline_id])?;
        tx.commit()?;
        Ok(n > 0)
    }

    /// Stores a new update, numbered after the pipeline's last one.
    pub fn insert_pipeline_update(&self, row: &UpdateRow) -> Result<i64> {
        let conn = self.conn();
        let seq: i64 = conn.query_row(
            "SELECT coalesce(max(seq), 0) + 1 FROM pipeline_updates WHERE pipeline_id = ?1",
            [&row.pipeline_id],
            |r| r.get(0),
        )?;
        conn.execute(
            &format!(
                "INSERT INTO pipeline_updates ({UPDATE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
            ),
            params![
                row.update_id,
                row.pipeline_id,
                seq,
                row.state,
                row.cause,
                to_json_text(&row.request),
                row.cluster_id,
                row.creation_time,
                row.end_time,
                row.message
            ],
        )?;
        Ok(seq)
    }

    pub fn get_pipeline_update(&self, update_id: &str) -> Result<Option<UpdateRow>> {
        let sql = format!("SELECT {UPDATE_COLUMNS} FROM pipeline_updates WHERE update_id = ?1");
        self.conn().query_row(&sql, [update_id], update).optional()?.map(with_request).transpose()
    }

    /// A pipeline's updates, newest first.
    pub fn list_pipeline_updates(&self, pipeline_id: &str, offset: usize, limit: usize) -> Result<Vec<UpdateRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {UPDATE_COLUMNS} FROM pipeline_updates WHERE pipeline_id = ?1
             ORDER BY seq DESC LIMIT ?2 OFFSET ?3"
        ))?;
        let rows = stmt
            .query_map(params![pipeline_id, sql_i64(limit), sql_i64(offset)], update)?
            .collect::<crate::db::Result<Vec<_>>>()?;
        rows.into_iter().map(with_request).collect()
    }

    /// Updates in none of `final_states`, oldest first.
    pub fn unfinished_pipeline_updates(&self, final_states: &[&str]) -> Result<Vec<UpdateRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!("SELECT {UPDATE_COLUMNS} FROM pipeline_updates ORDER BY seq"))?;
        let rows = stmt.query_map(crate::db::params![], update)?.collect::<crate::db::Result<Vec<_>>>()?;
        let rows = rows.into_iter().filter(|(r, _)| !final_states.contains(&r.state.as_str()));
        rows.map(with_request).collect()
    }

    /// Moves an update from `from` to `row.state`, writing `row`'s end time,
    /// message and cluster; `false` (nothing written) when its state is no
    /// longer `from`.
    pub fn transition_pipeline_update(&self, row: &UpdateRow, from: &str) -> Result<bool> {
        let n = self.conn().execute(
            "UPDATE pipeline_updates SET state = ?3, end_time = ?4, message = ?5, cluster_id = ?6
             WHERE update_id = ?1 AND state = ?2",
            params![row.update_id, from, row.state, row.end_time, row.message, row.cluster_id],
        )?;
        Ok(n > 0)
    }

    pub fn insert_pipeline_event(&self, row: &PipelineEventRow) -> Result<i64> {
        Ok(self.conn().query_row(
            "INSERT INTO pipeline_events (id, pipeline_id, update_id, timestamp, level, event_type, message,
             origin, details, error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) RETURNING seq",
            params![
                row.id,
                row.pipeline_id,
                row.update_id,
                row.timestamp,
                row.level,
                row.event_type,
                row.message,
                to_json_text(&row.origin),
                to_json_text(&row.details),
                row.error.as_ref().map(to_json_text)
            ],
            |r| r.get(0),
        )?)
    }

    /// A pipeline's events as `filter` selects them, newest first unless
    /// `filter.ascending`.
    pub fn list_pipeline_events(
        &self,
        pipeline_id: &str,
        filter: &PipelineEventFilter,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<PipelineEventRow>> {
        let conn = self.conn();
        let order = if filter.ascending { "ASC" } else { "DESC" };
        let levels = serde_json::to_string(&filter.levels).unwrap_or_default();
        let types = serde_json::to_string(&filter.event_types).unwrap_or_default();
        let (levels_in, types_in) = (conn.dialect().json_strings("?2"), conn.dialect().json_strings("?3"));
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM pipeline_events WHERE pipeline_id = ?1
             AND (?2 = '[]' OR level IN {levels_in})
             AND (?3 = '[]' OR event_type IN {types_in})
             AND (update_id = ?4 OR ?4 IS NULL) AND (timestamp > ?5 OR ?5 IS NULL)
             AND (seq > ?8 OR ?8 IS NULL)
             ORDER BY seq {order} LIMIT ?6 OFFSET ?7"
        ))?;
        let args = params![
            pipeline_id,
            levels,
            types,
            filter.update_id,
            filter.after,
            sql_i64(limit),
            sql_i64(offset),
            filter.after_seq
        ];
        let rows = stmt.query_map(args, event)?.collect::<crate::db::Result<Vec<_>>>()?;
        rows.into_iter().map(with_json).collect()
    }

    /// A flow's batches in order: (batch, state, progress).
    pub fn flow_batches(&self, pipeline_id: &str, flow: &str) -> Result<Vec<(i64, String, Value)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT batch, state, progress FROM pipeline_flow_batches WHERE pipeline_id = ?1 AND flow = ?2
             ORDER BY batch",
        )?;
        let rows = stmt
            .query_map(params![pipeline_id, flow], |r| Ok((r.get(0)?, r.get(1)?, r.get::<String>(2)?)))?
            .collect::<crate::db::Result<Vec<(i64, String, String)>>>()?;
        let parse = |(b, s, p): (i64, String, String)| Ok((b, s, from_json_text("pipeline_flow_batches", &p)?));
        rows.into_iter().map(parse).collect()
    }

    /// Writes a batch (replacing a pending one of the same number).
    pub fn put_flow_batch(
        &self,
        pipeline_id: &str,
        flow: &str,
        batch: i64,
        state: &str,
        progress: &Value,
    ) -> Result<()> {
        self.conn().execute(
            "INSERT INTO pipeline_flow_batches (pipeline_id, flow, batch, state, progress) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (pipeline_id, flow, batch) DO UPDATE SET state = excluded.state, progress = excluded.progress",
            params![pipeline_id, flow, batch, state, to_json_text(progress)],
        )?;
        Ok(())
    }

    /// Forgets a flow's batches, or only those in `state` when given.
    pub fn delete_flow_batches(&self, pipeline_id: &str, flow: &str, state: Option<&str>) -> Result<()> {
        self.conn().execute(
            "DELETE FROM pipeline_flow_batches WHERE pipeline_id = ?1 AND flow = ?2 AND (state = ?3 OR ?3 IS NULL)",
            params![pipeline_id, flow, state],
        )?;
        Ok(())
    }
}

/// One update's events, for tarn's pipeline page.
impl Store {
    /// An update's events of `event_types` (all without any), newest first
    /// unless `ascending`, read through the by-update index.
    pub fn list_update_events(
        &self,
        update_id: &str,
        event_types: &[&str],
        ascending: bool,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<PipelineEventRow>> {
        let conn = self.conn();
        let order = if ascending { "ASC" } else { "DESC" };
        let types = serde_json::to_string(event_types).unwrap_or_default();
        let (hint, types_in) =
            (conn.dialect().indexed_by("pipeline_events_by_update"), conn.dialect().json_strings("?2"));
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM pipeline_events{hint} WHERE update_id = ?1
             AND (?2 = '[]' OR event_type IN {types_in})
             ORDER BY seq {order} LIMIT ?3 OFFSET ?4"
        ))?;
        let args = params![update_id, types, sql_i64(limit), sql_i64(offset)];
        let rows = stmt.query_map(args, event)?.collect::<crate::db::Result<Vec<_>>>()?;
        rows.into_iter().map(with_json).collect()
    }
}

#[cfg(test)]
mod update_events_tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_updates_events_come_by_type_and_in_either_order() {
        let store = crate::test_store();
        for (i, (update, event_type)) in
            [("u1", "create_update"), ("u2", "create_update"), ("u1", "flow_progress"), ("u1", "flow_definition")]
                .into_iter()
                .enumerate()
        {
            let row = PipelineEventRow {
                seq: 0,
                id: format!("e{i}"),
                pipeline_id: "p".into(),
                update_id: Some(update.into()),
                timestamp: i as i64,
                level: "INFO".into(),
                event_type: event_type.into(),
                message: String::new(),
                origin: json!({}),
                details: json!({}),
                error: None,
            };
            store.insert_pipeline_event(&row).unwrap();
        }
        let ids = |rows: Vec<PipelineEventRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(ids(store.list_update_events("u1", &[], false, 0, 10).unwrap()), ["e3", "e2", "e0"]);
        assert_eq!(ids(store.list_update_events("u1", &[], true, 1, 1).unwrap()), ["e2"]);
        let types = ["flow_progress", "flow_definition"];
        assert_eq!(ids(store.list_update_events("u1", &types, true, 0, 10).unwrap()), ["e2", "e3"]);
        assert!(store.list_update_events("u3", &[], false, 0, 10).unwrap().is_empty());
    }
}
