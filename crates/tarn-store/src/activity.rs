//! Read-only queries for the web UI's overview pages (home, compute,
//! costs): what is in flight, recent failures, and the usage records task
//! runs carry (the rows `system.billing.usage` is built from), each bounded
//! so a page reads only its window, not the whole history.
//!
//! Job runs get increasing ids as they are created, and a run's
//! `start_time` is its creation time, so the runs since a time are a tail of
//! the id range: found by a binary search on the primary key instead of a
//! scan of a column without an index.

use crate::db::{Conn as Connection, Dialect, OptionalExtension, Row, params};

use crate::{Result, Store};

/// One task attempt's compute, as `runs/get` and `system.billing.usage`
/// show it.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageRecord {
    pub task_run_id: i64,
    pub job_id: Option<i64>,
    pub job_run_id: Option<i64>,
    pub cluster_id: Option<String>,
    /// `JOBS` or `SQL`.
    pub product: String,
    pub cores: f64,
    pub start_time: i64,
    pub end_time: i64,
    pub core_seconds: f64,
    pub estimated_cost: f64,
}

/// A job run (not a task run) as the overview lists show it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    pub run_id: i64,
    pub job_id: Option<i64>,
    pub run_name: Option<String>,
    pub life_cycle_state: String,
    pub result_state: Option<String>,
    pub state_message: String,
    pub creator_user_name: String,
    pub start_time: i64,
    pub end_time: Option<i64>,
}

/// A pipeline update with its pipeline's name.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateSummary {
    pub update_id: String,
    pub pipeline_id: String,
    pub pipeline_name: Option<String>,
    pub state: String,
    pub creation_time: i64,
    pub end_time: Option<i64>,
    pub message: Option<String>,
}

/// The columns `run_summary` reads.
fn run_summary_columns(d: Dialect) -> String {
    format!(
        "run_id, job_id, {}, life_cycle_state, result_state, state_message, creator_user_name, start_time, end_time",
        d.json_field("doc", "run_name")
    )
}

fn run_summary(r: &Row<'_>) -> crate::db::Result<RunSummary> {
    Ok(RunSummary {
        run_id: r.get(0)?,
        job_id: r.get(1)?,
        run_name: r.get(2)?,
        life_cycle_state: r.get(3)?,
        result_state: r.get(4)?,
        state_message: r.get(5)?,
        creator_user_name: r.get(6)?,
        start_time: r.get(7)?,
        end_time: r.get(8)?,
    })
}

fn update_summary(r: &Row<'_>) -> crate::db::Result<UpdateSummary> {
    Ok(UpdateSummary {
        update_id: r.get(0)?,
        pipeline_id: r.get(1)?,
        pipeline_name: r.get(2)?,
        state: r.get(3)?,
        creation_time: r.get(4)?,
        end_time: r.get(5)?,
        message: r.get(6)?,
    })
}

/// A record from a task run's `usage` object (as `task_run.rs` writes it).
fn usage_record(task_run_id: i64, job_id: Option<i64>, job_run_id: Option<i64>, usage: &str) -> Option<UsageRecord> {
    let u: serde_json::Value = serde_json::from_str(usage).ok()?;
    let num = |k: &str| u.get(k).and_then(serde_json::Value::as_f64).unwrap_or(0.0);
    let int = |k: &str| u.get(k).and_then(serde_json::Value::as_i64).unwrap_or(0);
    let text = |k: &str| u.get(k).and_then(serde_json::Value::as_str).map(str::to_string);
    Some(UsageRecord {
        task_run_id,
        job_id,
        job_run_id,
        cluster_id: text("cluster_id"),
        product: text("product").unwrap_or_else(|| "JOBS".into()),
        cores: num("cores"),
        start_time: int("start_time"),
        end_time: int("end_time"),
        core_seconds: num("core_seconds"),
        estimated_cost: num("estimated_cost"),
    })
}

/// The first run id whose run was created at or after `since`; one past the
/// last when none was.
fn first_run_since(conn: &Connection, since: i64) -> Result<i64> {
    let bounds: (Option<i64>, Option<i64>) =
        conn.query_row("SELECT min(run_id), max(run_id) FROM job_runs", crate::db::params![], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let (Some(mut lo), Some(max)) = bounds else { return Ok(0) };
    let mut hi = max + 1;
    let mut stmt =
        conn.prepare_cached("SELECT run_id, start_time FROM job_runs WHERE run_id >= ?1 ORDER BY run_id LIMIT 1")?;
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let found: Option<(i64, i64)> = stmt.query_row([mid], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
        match found {
            Some((id, start)) if start < since => lo = id + 1,
            _ => hi = mid,
        }
    }
    Ok(lo)
}

impl Store {
    /// The first job run id created at or after `since` (one past the last
    /// when none was).
    pub fn first_job_run_since(&self, since: i64) -> Result<i64> {
        first_run_since(&self.conn(), since)
    }

    /// The newest job or task run's id (0 when there is none).
    pub fn last_job_run_id(&self) -> Result<i64> {
        Ok(self
            .conn()
            .query_row("SELECT coalesce(max(run_id), 0) FROM job_runs", crate::db::params![], |r| r.get(0))?)
    }

    /// The ids of the job and task runs not in a final state.
    pub fn unfinished_job_run_ids(&self) -> Result<Vec<i64>> {
        let conn = self.conn();
        // INDEXED BY: the planner would rather walk `job_runs_by_parent`.
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT run_id FROM job_runs{}
             WHERE life_cycle_state NOT IN ('TERMINATED', 'SKIPPED', 'INTERNAL_ERROR')",
            conn.dialect().indexed_by("job_runs_unfinished")
        ))?;
        let ids = stmt.query_map(crate::db::params![], |r| r.get(0))?;
        Ok(ids.collect::<crate::db::Result<Vec<i64>>>()?)
    }

    /// The usage records of the task runs `ids` that have one.
    pub fn usage_records_of(&self, ids: &[i64]) -> Result<Vec<UsageRecord>> {
        let ids = serde_json::to_string(ids).unwrap_or_else(|_| "[]".into());
        self.usage_records_where(|d| format!("run_id IN {}", d.json_integers("?1")), ids)
    }

    /// The usage records of the task runs with ids from `from_run_id`, by id.
    pub fn usage_records_from(&self, from_run_id: i64) -> Result<Vec<UsageRecord>> {
        self.usage_records_where(|_| "run_id >= ?1".into(), from_run_id)
    }

    fn usage_records_where(
        &self,
        condition: impl Fn(Dialect) -> String,
        param: impl crate::db::ToValue,
    ) -> Result<Vec<UsageRecord>> {
        let conn = self.conn();
        let (condition, usage) = (condition(conn.dialect()), conn.dialect().json_value("doc", "usage"));
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT run_id, job_id, parent_run_id, u FROM
                 (SELECT run_id, job_id, parent_run_id, {usage} AS u FROM job_runs
                  WHERE {condition} AND task_key IS NOT NULL)
             AS usage WHERE u IS NOT NULL ORDER BY run_id"
        ))?;
        let rows = stmt.query_map([param], |r| {
            Ok((r.get::<i64>(0)?, r.get::<Option<i64>>(1)?, r.get::<Option<i64>>(2)?, r.get::<String>(3)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, job, parent, usage) = row?;
            out.extend(usage_record(id, job, parent, &usage));
        }
        Ok(out)
    }

    /// Job runs not yet in a final state, newest first, at most `limit`.
    pub fn active_job_run_summaries(&self, limit: usize) -> Result<Vec<RunSummary>> {
        let conn = self.conn();
        // The condition is the partial index's; the planner would rather walk `job_runs_by_parent`.
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {} FROM job_runs{}
             WHERE life_cycle_state NOT IN ('TERMINATED', 'SKIPPED', 'INTERNAL_ERROR')
               AND task_key IS NULL AND parent_run_id IS NULL
             ORDER BY run_id DESC LIMIT ?1",
            run_summary_columns(conn.dialect()),
            conn.dialect().indexed_by("job_runs_unfinished")
        ))?;
        let rows = stmt.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], run_summary)?;
        Ok(rows.collect::<crate::db::Result<Vec<_>>>()?)
    }

    /// Job runs created since `since` (and among the last `window` runs)
    /// whose result is one of `results`, newest first, at most `limit`.
    pub fn job_run_summaries_with_result(
        &self,
        since: i64,
        window: i64,
        results: &[&str],
        limit: usize,
    ) -> Result<Vec<RunSummary>> {
        let conn = self.conn();
        let last: i64 =
            conn.query_row("SELECT coalesce(max(run_id), 0) FROM job_runs", crate::db::params![], |r| r.get(0))?;
        let from = first_run_since(&conn, since)?.max(last - window);
        let results = serde_json::to_string(results).unwrap_or_else(|_| "[]".into());
        let (columns, results_in) = (run_summary_columns(conn.dialect()), conn.dialect().json_strings("?2"));
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {columns} FROM job_runs
             WHERE run_id >= ?1 AND task_key IS NULL AND parent_run_id IS NULL
               AND result_state IN {results_in}
             ORDER BY run_id DESC LIMIT ?3"
        ))?;
        let rows = stmt.query_map(params![from, results, i64::try_from(limit).unwrap_or(i64::MAX)], run_summary)?;
        Ok(rows.collect::<crate::db::Result<Vec<_>>>()?)
    }

    /// Pipeline updates in none of `final_states`, or in one of `results`
    /// and created since `since`; newest first, at most `limit`.
    pub fn pipeline_update_summaries(
        &self,
        final_states: &[&str],
        results: &[&str],
        since: i64,
        limit: usize,
    ) -> Result<Vec<UpdateSummary>> {
        let conn = self.conn();
        let json = |v: &[&str]| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
        let d = conn.dialect();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT u.update_id, u.pipeline_id, p.name, u.state, u.creation_time, u.end_time, u.message
             FROM pipeline_updates u LEFT JOIN pipelines p ON p.pipeline_id = u.pipeline_id
             WHERE u.state NOT IN {} OR (u.state IN {} AND u.creation_time >= ?3)
             ORDER BY u.creation_time DESC LIMIT ?4",
            d.json_strings("?1"),
            d.json_strings("?2"),
        ))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![json(final_states), json(results), since, limit], update_summary)?;
        Ok(rows.collect::<crate::db::Result<Vec<_>>>()?)
    }
}

#[cfg(test)]
mod tests {
    use crate::JobRunRow;
    use serde_json::json;

    fn run(start: i64, task_key: Option<&str>, state: &str, result: Option<&str>, doc: serde_json::Value) -> JobRunRow {
        JobRunRow {
            run_id: 0,
            job_id: Some(7),
            parent_run_id: task_key.map(|_| 1),
            task_key: task_key.map(str::to_string),
            attempt_number: 0,
            run_type: "JOB_RUN".into(),
            life_cycle_state: state.into(),
            result_state: result.map(str::to_string),
            state_message: String::new(),
            termination_code: None,
            creator_user_name: "ann".into(),
            idempotency_token: None,
            start_time: start,
            execution_start: None,
            end_time: None,
            doc,
        }
    }

    fn usage(cluster: &str, start: i64) -> serde_json::Value {
        json!({"usage": {"cluster_id": cluster, "product": "JOBS", "cores": 4, "start_time": start,
                         "end_time": start + 10, "core_seconds": 0.04, "estimated_cost": 0.001}})
    }

    #[test]
    fn usage_records_from_a_run_id_or_of_some_runs() {
        let store = crate::test_store();
        assert!(store.usage_records_from(0).unwrap().is_empty());
        assert_eq!(store.last_job_run_id().unwrap(), 0);
        for start in (0..100).map(|i| i * 1000) {
            store
                .insert_job_run(&run(start, Some("t"), "TERMINATED", Some("SUCCESS"), usage("c1", start + 5)))
                .unwrap();
        }
        let from = store.first_job_run_since(90_000).unwrap();
        assert_eq!(from, 91);
        assert_eq!(store.first_job_run_since(1_000_000).unwrap(), 101);
        let running = store.insert_job_run(&run(100_500, Some("t"), "RUNNING", None, json!({}))).unwrap();
        let last = store
            .insert_job_run(&run(100_600, Some("t"), "TERMINATED", Some("SUCCESS"), usage("c2", 100_605)))
            .unwrap();
        assert_eq!(store.last_job_run_id().unwrap(), last);
        assert_eq!(store.unfinished_job_run_ids().unwrap(), vec![running]);
        assert_eq!(
            store.usage_records_of(&[running, last, 3]).unwrap().iter().map(|r| r.task_run_id).collect::<Vec<_>>(),
            vec![3, last]
        );
        let records = store.usage_records_from(from).unwrap();
        assert_eq!(records.len(), 11);
        assert_eq!((records[0].start_time, records[0].cores), (90_005, 4.0));
        assert_eq!(records[10].cluster_id.as_deref(), Some("c2"));
        assert_eq!(records[10].job_run_id, Some(1));
    }

    #[test]
    fn active_and_failed_runs_and_updates() {
        let store = crate::test_store();
        let named = json!({"run_name": "nightly"});
        let failed = store.insert_job_run(&run(10, None, "TERMINATED", Some("FAILED"), named.clone())).unwrap();
        store.insert_job_run(&run(20, None, "TERMINATED", Some("SUCCESS"), named.clone())).unwrap();
        let active = store.insert_job_run(&run(30, None, "RUNNING", None, named)).unwrap();
        let active_runs = store.active_job_run_summaries(10).unwrap();
        assert_eq!(active_runs.iter().map(|r| r.run_id).collect::<Vec<_>>(), vec![active]);
        assert_eq!(active_runs[0].run_name.as_deref(), Some("nightly"));
        let failures = store.job_run_summaries_with_result(0, 100, &["FAILED"], 10).unwrap();
        assert_eq!(failures.iter().map(|r| r.run_id).collect::<Vec<_>>(), vec![failed]);
        assert!(store.job_run_summaries_with_result(15, 100, &["FAILED"], 10).unwrap().is_empty());
        assert!(store.pipeline_update_summaries(&["COMPLETED"], &["FAILED"], 0, 10).unwrap().is_empty());
    }
}
