//! Cluster rows and their event log. A state change and the event that
//! records it are written in one transaction.

use crate::db::{OptionalExtension, Row, params};
use serde_json::Value;

use crate::{Result, Store, from_json_text, to_json_text};

#[derive(Debug, Clone, PartialEq)]
pub struct ClusterRow {
    pub cluster_id: String,
    /// The user's cluster attributes, as created or last edited.
    pub spec: Value,
    pub state: String,
    pub state_message: String,
    pub creator: String,
    pub pinned: bool,
    pub start_time: i64,
    pub terminated_time: Option<i64>,
    pub last_restarted_time: Option<i64>,
    pub last_activity_time: Option<i64>,
    pub termination_reason: Option<Value>,
    pub engine_url: Option<String>,
    pub engine_pid: Option<i64>,
    pub engine_start_ticks: Option<i64>,
}

/// The custom tag naming the SQL warehouse a cluster belongs to.
pub const WAREHOUSE_TAG: &str = "SqlEndpointId";
/// The custom tag of the cluster behind serverless execution contexts.
pub const SERVERLESS_TAG: &str = "TarnServerless";
/// Marks the cluster a declarative pipeline's updates run on.
pub const PIPELINE_TAG: &str = "tarn_pipeline_id";

impl ClusterRow {
    /// A cluster as first recorded: its spec, state and creator, started
    /// `start_time`; no engine, no termination yet.
    pub fn new(cluster_id: impl Into<String>, spec: Value, state: &str, creator: &str, start_time: i64) -> Self {
        Self {
            cluster_id: cluster_id.into(),
            spec,
            state: state.to_string(),
            state_message: String::new(),
            creator: creator.to_string(),
            pinned: false,
            start_time,
            terminated_time: None,
            last_restarted_time: None,
            last_activity_time: None,
            termination_reason: None,
            engine_url: None,
            engine_pid: None,
            engine_start_ticks: None,
        }
    }

    /// Whether tarn runs this cluster for a service of its own (a SQL
    /// warehouse, serverless compute), as its custom tags say: such clusters
    /// stay out of the clusters API's lists and of `system.compute.clusters`,
    /// as on Databricks.
    pub fn is_managed(&self) -> bool {
        let tags = self.spec.get("custom_tags");
        [WAREHOUSE_TAG, SERVERLESS_TAG, PIPELINE_TAG].iter().any(|tag| tags.and_then(|t| t.get(*tag)).is_some())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    pub cluster_id: String,
    pub timestamp: i64,
    pub kind: String,
    pub details: Value,
}

/// Which events to list, oldest first unless `descending`.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    pub kinds: Vec<String>,
    pub descending: bool,
}

const CLUSTER_COLUMNS: &str = "cluster_id, spec, state, state_message, creator, pinned, start_time,
    terminated_time, last_restarted_time, last_activity_time, termination_reason, engine_url,
    engine_pid, engine_start_ticks";

fn cluster_from_row(r: &Row<'_>) -> crate::db::Result<(ClusterRow, String, Option<String>)> {
    Ok((
        ClusterRow {
            cluster_id: r.get(0)?,
            spec: Value::Null,
            state: r.get(2)?,
            state_message: r.get(3)?,
            creator: r.get(4)?,
            pinned: r.get(5)?,
            start_time: r.get(6)?,
            terminated_time: r.get(7)?,
            last_restarted_time: r.get(8)?,
            last_activity_time: r.get(9)?,
            termination_reason: None,
            engine_url: r.get(11)?,
            engine_pid: r.get(12)?,
            engine_start_ticks: r.get(13)?,
        },
        r.get(1)?,
        r.get(10)?,
    ))
}

fn decode_cluster((mut row, spec, reason): (ClusterRow, String, Option<String>)) -> Result<ClusterRow> {
    row.spec = from_json_text("clusters.spec", &spec)?;
    row.termination_reason = reason.map(|r| from_json_text("clusters.termination_reason", &r)).transpose()?;
    Ok(row)
}

fn insert_event(conn: &crate::db::Conn, event: &EventRow) -> crate::db::Result<()> {
    conn.execute(
        "INSERT INTO cluster_events (cluster_id, timestamp, type, details) VALUES (?1, ?2, ?3, ?4)",
        params![event.cluster_id, event.timestamp, event.kind, to_json_text(&event.details)],
    )?;
    Ok(())
}

/// `SET c = excluded.c` for each of `columns` but the key's: an upsert
/// that writes a whole row.
pub(crate) fn replace_all(columns: &str, key: &[&str]) -> String {
    let sets: Vec<String> =
        columns.split(',').map(str::trim).filter(|c| !key.contains(c)).map(|c| format!("{c} = excluded.{c}")).collect();
    sets.join(", ")
}

impl Store {
    /// Writes the cluster row (insert or replace) and the event that explains
    /// the change, atomically.
    pub fn save_cluster(&self, cluster: &ClusterRow, events: &[EventRow]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            &format!(
                "INSERT INTO clusters ({CLUSTER_COLUMNS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) 
                 ON CONFLICT (cluster_id) DO UPDATE SET {}",
                replace_all(CLUSTER_COLUMNS, &["cluster_id"])
            ),
            params![
                cluster.cluster_id,
                to_json_text(&cluster.spec),
                cluster.state,
                cluster.state_message,
                cluster.creator,
                cluster.pinned,
                cluster.start_time,
                cluster.terminated_time,
                cluster.last_restarted_time,
                cluster.last_activity_time,
                cluster.termination_reason.as_ref().map(to_json_text),
                cluster.engine_url,
                cluster.engine_pid,
                cluster.engine_start_ticks,
            ],
        )?;
        for event in events {
            insert_event(&tx, event)?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn get_cluster(&self, cluster_id: &str) -> Result<Option<ClusterRow>> {
        let raw = self
            .reader()
            .query_row(
                &format!("SELECT {CLUSTER_COLUMNS} FROM clusters WHERE cluster_id = ?1"),
                [cluster_id],
                cluster_from_row,
            )
            .optional()?;
        raw.map(decode_cluster).transpose()
    }

    /// All clusters, oldest first.
    pub fn list_clusters(&self) -> Result<Vec<ClusterRow>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare(&format!("SELECT {CLUSTER_COLUMNS} FROM clusters ORDER BY start_time, cluster_id"))?;
        let raw = stmt.query_map(crate::db::params![], cluster_from_row)?.collect::<crate::db::Result<Vec<_>>>()?;
        raw.into_iter().map(decode_cluster).collect()
    }

    /// Removes a cluster and its events; false when there was none.
    pub fn delete_cluster(&self, cluster_id: &str) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM cluster_events WHERE cluster_id = ?1", [cluster_id])?;
        tx.execute("DELETE FROM cluster_libraries WHERE cluster_id = ?1", [cluster_id])?;
        let n = tx.execute("DELETE FROM clusters WHERE cluster_id = ?1", [cluster_id])?;
        tx.commit()?;
        Ok(n > 0)
    }

    pub fn list_cluster_events(&self, cluster_id: &str, filter: &EventFilter) -> Result<Vec<EventRow>> {
        let conn = self.conn();
        let order = if filter.descending { "DESC" } else { "ASC" };
        let mut stmt = conn.prepare(&format!(
            "SELECT cluster_id, timestamp, type, details FROM cluster_events
             WHERE cluster_id = ?1 AND timestamp >= ?2 AND timestamp <= ?3
             ORDER BY timestamp {order}, id {order}"
        ))?;
        let raw = stmt
            .query_map(
                params![cluster_id, filter.start_time.unwrap_or(i64::MIN), filter.end_time.unwrap_or(i64::MAX)],
                |r| Ok((r.get::<String>(0)?, r.get::<i64>(1)?, r.get::<String>(2)?, r.get::<String>(3)?)),
            )?
            .collect::<crate::db::Result<Vec<_>>>()?;
        raw.into_iter()
            .filter(|(_, _, kind, _)| filter.kinds.is_empty() || filter.kinds.contains(kind))
            .map(|(cluster_id, timestamp, kind, details)| {
                Ok(EventRow {
                    cluster_id,
                    timestamp,
                    kind,
                    details: from_json_text("cluster_events.details", &details)?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(id: &str, state: &str) -> ClusterRow {
        let mut row = ClusterRow::new(id, json!({"cluster_name": id, "num_workers": 1}), state, "admin", 10);
        row.termination_reason = Some(json!({"code": "USER_REQUEST"}));
        row.engine_pid = Some(42);
        row.engine_start_ticks = Some(7);
        row
    }

    fn event(id: &str, ts: i64, kind: &str) -> EventRow {
        EventRow { cluster_id: id.into(), timestamp: ts, kind: kind.into(), details: json!({}) }
    }

    #[test]
    fn cluster_round_trips_with_its_events() {
        let store = crate::test_store();
        let c = row("c1", "PENDING");
        store.save_cluster(&c, &[event("c1", 1, "CREATING")]).unwrap();
        let mut running = c.clone();
        running.state = "RUNNING".into();
        store.save_cluster(&running, &[event("c1", 2, "RUNNING")]).unwrap();
        assert_eq!(store.get_cluster("c1").unwrap(), Some(running));

        let all = store.list_cluster_events("c1", &EventFilter::default()).unwrap();
        assert_eq!(all.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(), ["CREATING", "RUNNING"]);
        let filter = EventFilter { kinds: vec!["RUNNING".into()], descending: true, ..Default::default() };
        assert_eq!(store.list_cluster_events("c1", &filter).unwrap().len(), 1);

        assert!(store.delete_cluster("c1").unwrap());
        assert!(store.get_cluster("c1").unwrap().is_none());
        assert!(store.list_cluster_events("c1", &EventFilter::default()).unwrap().is_empty());
    }

    #[test]
    fn managed_clusters_are_known_by_their_tags() {
        let with_tags = |tags: Value| ClusterRow::new("c", json!({"custom_tags": tags}), "RUNNING", "admin", 0);
        assert!(with_tags(json!({WAREHOUSE_TAG: "w"})).is_managed());
        assert!(with_tags(json!({"team": "x", SERVERLESS_TAG: "1"})).is_managed());
        assert!(!with_tags(json!({"team": "x"})).is_managed());
        assert!(!ClusterRow::new("c", json!({}), "RUNNING", "admin", 0).is_managed());
    }
}
