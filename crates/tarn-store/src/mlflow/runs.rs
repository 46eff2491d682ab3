//! Runs, and the params, tags and metrics they log.

use crate::db::{OptionalExtension, Row, params};

use crate::{Result, Store};

#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    pub run_uuid: String,
    pub experiment_id: i64,
    pub name: String,
    pub user_id: String,
    pub status: String,
    pub start_time: i64,
    pub end_time: Option<i64>,
    pub artifact_uri: String,
    pub lifecycle_stage: String,
}

/// One metric value as stored (NaN is `value` 0 with `is_nan`).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRow {
    pub key: String,
    pub value: f64,
    pub is_nan: bool,
    pub timestamp: i64,
    pub step: i64,
}

/// What a run has logged: latest metrics, params and tags, each by key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunData {
    pub metrics: Vec<MetricRow>,
    pub params: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
    /// Datasets and models the run read, models it wrote: (`kind`, JSON).
    pub inputs: Vec<(String, serde_json::Value)>,
}

/// How a batch went: params are write-once, so a different value for a
/// logged key refuses the whole batch.
#[derive(Debug, Clone, PartialEq)]
pub enum LoggedBatch {
    Logged,
    ParamConflict { key: String, old: String, new: String },
}

const COLUMNS: &str =
    "run_uuid, experiment_id, name, user_id, status, start_time, end_time, artifact_uri, lifecycle_stage";

fn row(r: &Row<'_>) -> crate::db::Result<RunRow> {
    Ok(RunRow {
        run_uuid: r.get(0)?,
        experiment_id: r.get(1)?,
        name: r.get(2)?,
        user_id: r.get(3)?,
        status: r.get(4)?,
        start_time: r.get(5)?,
        end_time: r.get(6)?,
        artifact_uri: r.get(7)?,
        lifecycle_stage: r.get(8)?,
    })
}

fn metric(r: &Row<'_>) -> crate::db::Result<MetricRow> {
    Ok(MetricRow { key: r.get(0)?, value: r.get(1)?, is_nan: r.get(2)?, timestamp: r.get(3)?, step: r.get(4)? })
}

fn pairs(conn: &crate::db::Conn, sql: &str, run_uuid: &str) -> Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare_cached(sql)?;
    Ok(stmt.query_map([run_uuid], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<crate::db::Result<_>>()?)
}

impl Store {
    pub fn create_run(&self, run: &RunRow, tags: &[(String, String)]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            &format!("INSERT INTO mlflow_runs ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
            params![
                run.run_uuid,
                run.experiment_id,
                run.name,
                run.user_id,
                run.status,
                run.start_time,
                run.end_time,
                run.artifact_uri,
                run.lifecycle_stage
            ],
        )?;
        for (key, value) in tags {
            tx.execute(
                "INSERT INTO mlflow_tags (run_uuid, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (run_uuid, key) DO UPDATE SET value = excluded.value",
                params![run.run_uuid, key, value],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn get_run(&self, run_uuid: &str) -> Result<Option<RunRow>> {
        let sql = format!("SELECT {COLUMNS} FROM mlflow_runs WHERE run_uuid = ?1");
        Ok(self.reader().query_row(&sql, [run_uuid], row).optional()?)
    }

    /// The runs with these ids, in that order (missing ones left out).
    pub fn get_runs(&self, run_uuids: &[String]) -> Result<Vec<(RunRow, RunData)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM mlflow_runs WHERE run_uuid = ?1"))?;
        let mut out = Vec::with_capacity(run_uuids.len());
        for id in run_uuids {
            if let Some(run) = stmt.query_row([id], row).optional()? {
                let data = run_data(&conn, id)?;
                out.push((run, data));
            }
        }
        Ok(out)
    }

    pub fn run_data(&self, run_uuid: &str) -> Result<RunData> {
        run_data(&self.conn(), run_uuid)
    }

    pub fn update_run(&self, run_uuid: &str, status: &str, end_time: Option<i64>, name: &str) -> Result<()> {
        self.conn().execute(
            "UPDATE mlflow_runs SET status = ?2, end_time = ?3, name = ?4 WHERE run_uuid = ?1",
            params![run_uuid, status, end_time, name],
        )?;
        Ok(())
    }

    pub fn rename_run(&self, run_uuid: &str, name: &str) -> Result<()> {
        self.conn().execute("UPDATE mlflow_runs SET name = ?2 WHERE run_uuid = ?1", params![run_uuid, name])?;
        Ok(())
    }

    pub fn set_run_lifecycle(&self, run_uuid: &str, stage: &str, now: i64) -> Result<()> {
        let deleted_time = (stage == "deleted").then_some(now);
        self.conn().execute(
            "UPDATE mlflow_runs SET lifecycle_stage = ?2, deleted_time = ?3 WHERE run_uuid = ?1",
            params![run_uuid, stage, deleted_time],
        )?;
        Ok(())
    }

    /// `false` when the run had no such tag.
    pub fn delete_run_tag(&self, run_uuid: &str, key: &str) -> Result<bool> {
        let n =
            self.conn().execute("DELETE FROM mlflow_tags WHERE run_uuid = ?1 AND key = ?2", params![run_uuid, key])?;
        Ok(n > 0)
    }

    /// Every value logged for `key`, by step then timestamp.
    pub fn metric_history(&self, run_uuid: &str, key: &str) -> Result<Vec<MetricRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT key, value, is_nan, timestamp, step FROM mlflow_metrics
             WHERE run_uuid = ?1 AND key = ?2 ORDER BY step, timestamp, value",
        )?;
        Ok(stmt.query_map(params![run_uuid, key], metric)?.collect::<crate::db::Result<_>>()?)
    }
}

fn run_data(conn: &crate::db::Conn, run_uuid: &str) -> Result<RunData> {
    let mut stmt = conn.prepare_cached(
        "SELECT key, value, is_nan, timestamp, step FROM mlflow_latest_metrics WHERE run_uuid = ?1 ORDER BY key",
    )?;
    let metrics = stmt.query_map([run_uuid], metric)?.collect::<crate::db::Result<_>>()?;
    let inputs =
        pairs(conn, "SELECT kind, body FROM mlflow_run_inputs WHERE run_uuid = ?1 ORDER BY position", run_uuid)?
            .into_iter()
            .map(|(kind, body)| Ok((kind, crate::from_json_text("mlflow_run_inputs.body", &body)?)))
            .collect::<Result<_>>()?;
    Ok(RunData {
        metrics,
        params: pairs(conn, "SELECT key, value FROM mlflow_params WHERE run_uuid = ?1 ORDER BY key", run_uuid)?,
        tags: pairs(conn, "SELECT key, value FROM mlflow_tags WHERE run_uuid = ?1 ORDER BY key", run_uuid)?,
        inputs,
    })
}

impl Store {
    /// How many active runs experiment `experiment_id` holds, counting no
    /// further than `cap` (a list shows "1000+" rather than scan a large one).
    pub fn count_active_runs(&self, experiment_id: i64, cap: u64) -> Result<u64> {
        let sql = "SELECT COUNT(*) FROM (SELECT 1 FROM mlflow_runs
                   WHERE experiment_id = ?1 AND lifecycle_stage = 'active' LIMIT ?2) AS active";
        let cap = i64::try_from(cap).unwrap_or(i64::MAX);
        let count: i64 = self.conn().query_row(sql, params![experiment_id, cap], |r| r.get(0))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}
