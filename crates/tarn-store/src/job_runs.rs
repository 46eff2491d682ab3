//! Job runs and task runs (one row per attempt). States are strings here;
//! what they mean and which transitions are allowed is `tarn-jobs`' rule.
//! Every transition the scheduler makes is one fenced `transition_job_run`,
//! written before it acts on it.

use crate::db::{OptionalExtension, Row, params};

use crate::{Fence, Result, Store, from_json_text, to_json_text};

/// Life cycle states a run does not leave.
pub const FINAL_STATES: &[&str] = &["TERMINATED", "SKIPPED", "INTERNAL_ERROR"];

#[derive(Debug, Clone, PartialEq)]
pub struct JobRunRow {
    pub run_id: i64,
    pub job_id: Option<i64>,
    /// A task run's job run; a for-each iteration's for-each task run.
    pub parent_run_id: Option<i64>,
    /// `None` for job runs.
    pub task_key: Option<String>,
    pub attempt_number: i64,
    pub run_type: String,
    pub life_cycle_state: String,
    pub result_state: Option<String>,
    pub state_message: String,
    pub termination_code: Option<String>,
    pub creator_user_name: String,
    pub idempotency_token: Option<String>,
    pub start_time: i64,
    pub execution_start: Option<i64>,
    pub end_time: Option<i64>,
    pub doc: serde_json::Value,
}

/// Which job runs `list_job_runs` answers.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub job_id: Option<i64>,
    pub active_only: bool,
    pub completed_only: bool,
    pub run_type: Option<String>,
    pub start_time_from: Option<i64>,
    pub start_time_to: Option<i64>,
}

const COLUMNS: &str = "run_id, job_id, parent_run_id, task_key, attempt_number, run_type, life_cycle_state, \
     result_state, state_message, termination_code, creator_user_name, idempotency_token, start_time, \
     execution_start, end_time, doc";

const FINAL_SQL: &str = "('TERMINATED', 'SKIPPED', 'INTERNAL_ERROR')";

type Raw = (JobRunRow, String);

fn raw(r: &Row<'_>) -> crate::db::Result<Raw> {
    Ok((
        JobRunRow {
            run_id: r.get(0)?,
            job_id: r.get(1)?,
            parent_run_id: r.get(2)?,
            task_key: r.get(3)?,
            attempt_number: r.get(4)?,
            run_type: r.get(5)?,
            life_cycle_state: r.get(6)?,
            result_state: r.get(7)?,
            state_message: r.get(8)?,
            termination_code: r.get(9)?,
            creator_user_name: r.get(10)?,
            idempotency_token: r.get(11)?,
            start_time: r.get(12)?,
            execution_start: r.get(13)?,
            end_time: r.get(14)?,
            doc: serde_json::Value::Null,
        },
        r.get(15)?,
    ))
}

fn into_row((mut row, doc): Raw) -> Result<JobRunRow> {
    row.doc = from_json_text("job_runs.doc", &doc)?;
    Ok(row)
}

impl Store {
    /// Stores a new run; answers its id. With an idempotency token already
    /// used, nothing is stored and the earlier run's id is answered.
    pub fn insert_job_run(&self, row: &JobRunRow) -> Result<i64> {
        let doc = to_json_text(&row.doc);
        let conn = self.conn();
        if let Some(token) = &row.idempotency_token {
            let earlier: Option<i64> = conn
                .query_row("SELECT run_id FROM job_runs WHERE idempotency_token = ?1", [token], |r| r.get(0))
                .optional()?;
            if let Some(run_id) = earlier {
                return Ok(run_id);
            }
        }
        Ok(conn.query_row(
            "INSERT INTO job_runs (job_id, parent_run_id, task_key, attempt_number, run_type, life_cycle_state,
                 result_state, state_message, termination_code, creator_user_name, idempotency_token, start_time,
                 execution_start, end_time, doc)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) RETURNING run_id",
            params![
                row.job_id,
                row.parent_run_id,
                row.task_key,
                row.attempt_number,
                row.run_type,
                row.life_cycle_state,
                row.result_state,
                row.state_message,
                row.termination_code,
                row.creator_user_name,
                row.idempotency_token,
                row.start_time,
                row.execution_start,
                row.end_time,
                doc,
            ],
            |r| r.get(0),
        )?)
    }

    /// Writes a run's state, times and document if its stored life cycle
    /// is still `from` and, with a `fence`, its lease still has that epoch
    /// (a writer that lost the lease writes nothing); `false` when it is
    /// not, or the run is gone, and then nothing is written. Transitions go
    /// through here.
    pub fn transition_job_run(&self, row: &JobRunRow, from: &str, fence: Option<Fence<'_>>) -> Result<bool> {
        let doc = to_json_text(&row.doc);
        let n = self
            .conn()
            .prepare_cached(
                "UPDATE job_runs SET life_cycle_state = ?2, result_state = ?3, state_message = ?4,
                 termination_code = ?5, execution_start = ?6, end_time = ?7, doc = ?8, attempt_number = ?9
             WHERE run_id = ?1 AND life_cycle_state = ?10
               AND (EXISTS (SELECT 1 FROM leases WHERE name = ?12 AND epoch = ?11) OR ?11 IS NULL)",
            )?
            .execute(params![
                row.run_id,
                row.life_cycle_state,
                row.result_state,
                row.state_message,
                row.termination_code,
                row.execution_start,
                row.end_time,
                doc,
                row.attempt_number,
                from,
                fence.map(|f| f.epoch),
                fence.map(|f| f.lease),
            ])?;
        Ok(n > 0)
    }

    /// Changes a run's document alone (what a task reported while it runs);
    /// its state is the transitions' to write. `false` when it is gone.
    pub fn update_job_run_doc(&self, run_id: i64, doc: &serde_json::Value) -> Result<bool> {
        let n = self
            .conn()
            .prepare_cached("UPDATE job_runs SET doc = ?2 WHERE run_id = ?1")?
            .execute(params![run_id, to_json_text(doc)])?;
        Ok(n > 0)
    }

    pub fn get_job_run(&self, run_id: i64) -> Result<Option<JobRunRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM job_runs WHERE run_id = ?1"))?;
        let found = stmt.query_row([run_id], raw).optional()?;
        found.map(into_row).transpose()
    }

    /// A run's task runs (or a for-each task's iterations), oldest first.
    pub fn child_job_runs(&self, parent_run_id: i64) -> Result<Vec<JobRunRow>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached(&format!("SELECT {COLUMNS} FROM job_runs WHERE parent_run_id = ?1 ORDER BY run_id"))?;
        let rows = stmt.query_map([parent_run_id], raw)?.collect::<crate::db::Result<Vec<_>>>()?;
        rows.into_iter().map(into_row).collect()
    }

    /// Job runs newest first.
    pub fn list_job_runs(&self, filter: &RunFilter, offset: usize, limit: usize) -> Result<Vec<JobRunRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM job_runs
             WHERE task_key IS NULL AND parent_run_id IS NULL
               AND (job_id = ?1 OR ?1 IS NULL)
               AND (?2 = 0 OR life_cycle_state NOT IN {FINAL_SQL})
               AND (?3 = 0 OR life_cycle_state IN {FINAL_SQL})
               AND (run_type = ?4 OR ?4 IS NULL)
               AND (start_time >= ?5 OR ?5 IS NULL)
               AND (start_time <= ?6 OR ?6 IS NULL)
             ORDER BY run_id DESC LIMIT ?7 OFFSET ?8"
        ))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(
                params![
                    filter.job_id,
                    filter.active_only,
                    filter.completed_only,
                    filter.run_type,
                    filter.start_time_from,
                    filter.start_time_to,
                    limit,
                    offset
                ],
                raw,
            )?
            .collect::<crate::db::Result<Vec<_>>>()?;
        rows.into_iter().map(into_row).collect()
    }

    /// Runs and task runs not in a final state, oldest first (for recovery
    /// after a restart and for the queue).
    pub fn unfinished_job_runs(&self) -> Result<Vec<JobRunRow>> {
        self.job_runs_where(&format!("life_cycle_state NOT IN {FINAL_SQL}"))
    }

    /// Runs and task runs in a final state, oldest first (for the system
    /// tables of usage and run timelines).
    pub fn finished_job_runs(&self) -> Result<Vec<JobRunRow>> {
        self.job_runs_where(&format!("life_cycle_state IN {FINAL_SQL}"))
    }

    fn job_runs_where(&self, condition: &str) -> Result<Vec<JobRunRow>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached(&format!("SELECT {COLUMNS} FROM job_runs WHERE {condition} ORDER BY run_id"))?;
        let rows = stmt.query_map(crate::db::params![], raw)?.collect::<crate::db::Result<Vec<_>>>()?;
        rows.into_iter().map(into_row).collect()
    }

    /// Deletes a run with its task runs and their iterations; `false` when
    /// there is no such run.
    pub fn delete_job_run(&self, run_id: i64) -> Result<bool> {
        let conn = self.conn();
        let n = conn.execute(
            "WITH RECURSIVE doomed(id) AS (
                 SELECT CAST(?1 AS BIGINT)
                 UNION ALL SELECT r.run_id FROM job_runs r JOIN doomed d ON r.parent_run_id = d.id)
             DELETE FROM job_runs WHERE run_id IN (SELECT id FROM doomed)",
            [run_id],
        )?;
        Ok(n > 0)
    }
}

impl Store {
    /// A job's runs newest first, read through `job_runs_by_job` alone:
    /// `list_job_runs`' optional filters keep SQLite from that index, so a
    /// page of an old job's runs would scan every newer run of the store.
    pub fn job_runs_of_job(&self, job_id: i64, offset: usize, limit: usize) -> Result<Vec<JobRunRow>> {
        let conn = self.conn();
        let hint = conn.dialect().indexed_by("job_runs_by_job");
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM job_runs{hint}
             WHERE job_id = ?1 AND task_key IS NULL AND +parent_run_id IS NULL
             ORDER BY run_id DESC LIMIT ?2 OFFSET ?3"
        ))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![job_id, limit, offset], raw)?.collect::<crate::db::Result<Vec<_>>>()?;
        rows.into_iter().map(into_row).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(job_id: Option<i64>, parent: Option<i64>, task_key: Option<&str>, state: &str) -> JobRunRow {
        JobRunRow {
            run_id: 0,
            job_id,
            parent_run_id: parent,
            task_key: task_key.map(str::to_string),
            attempt_number: 0,
            run_type: "JOB_RUN".into(),
            life_cycle_state: state.into(),
            result_state: None,
            state_message: String::new(),
            termination_code: None,
            creator_user_name: "ann".into(),
            idempotency_token: None,
            start_time: 1,
            execution_start: None,
            end_time: None,
            doc: json!({"k": 1}),
        }
    }

    #[test]
    fn runs_round_trip_list_and_delete_with_their_tasks() {
        let store = crate::test_store();
        let a = store.insert_job_run(&run(Some(7), None, None, "TERMINATED")).unwrap();
        let b = store.insert_job_run(&run(Some(7), None, None, "RUNNING")).unwrap();
        let t = store.insert_job_run(&run(Some(7), Some(b), Some("x"), "RUNNING")).unwrap();
        let i = store.insert_job_run(&run(Some(7), Some(t), Some("x"), "PENDING")).unwrap();
        let ids = |rows: Vec<JobRunRow>| rows.into_iter().map(|r| r.run_id).collect::<Vec<_>>();
        let all = RunFilter { job_id: Some(7), ..RunFilter::default() };
        assert_eq!(ids(store.list_job_runs(&all, 0, 10).unwrap()), vec![b, a]);
        let active = RunFilter { active_only: true, ..all.clone() };
        assert_eq!(ids(store.list_job_runs(&active, 0, 10).unwrap()), vec![b]);
        assert_eq!(ids(store.unfinished_job_runs().unwrap()), vec![b, t, i]);
        let mut row = store.get_job_run(t).unwrap().unwrap();
        row.life_cycle_state = "TERMINATED".into();
        row.result_state = Some("SUCCESS".into());
        row.doc = json!({"values": {"acc": 0.9}});
        assert!(store.transition_job_run(&row, "RUNNING", None).unwrap());
        assert_eq!(store.get_job_run(t).unwrap().unwrap(), row);
        // A writer that read RUNNING is now stale: its write is refused and the newer state stays.
        let stale = JobRunRow { result_state: Some("FAILED".into()), ..row.clone() };
        assert!(!store.transition_job_run(&stale, "RUNNING", None).unwrap());
        assert_eq!(store.get_job_run(t).unwrap().unwrap(), row);
        assert!(store.update_job_run_doc(t, &json!({"values": {"acc": 1.0}})).unwrap());
        assert_eq!(store.get_job_run(t).unwrap().unwrap().life_cycle_state, "TERMINATED");
        assert!(store.delete_job_run(b).unwrap());
        assert_eq!((store.get_job_run(t).unwrap(), store.get_job_run(i).unwrap()), (None, None));
        assert!(store.get_job_run(a).unwrap().is_some());
    }

    #[test]
    fn a_writer_fenced_by_a_lease_it_lost_writes_nothing() {
        use crate::{Fence, LeaseClaim};
        let store = crate::test_store();
        let id = store.insert_job_run(&run(Some(7), None, None, "RUNNING")).unwrap();
        let claim = |holder| LeaseClaim { name: "s", holder, address: None, stale: None, now: 1_000, ttl_ms: 100 };
        let first = store.acquire_lease(&claim("a")).unwrap().unwrap();
        let ended = JobRunRow { life_cycle_state: "TERMINATED".into(), ..store.get_job_run(id).unwrap().unwrap() };
        let mut taken = claim("b");
        taken.stale = Some("a");
        let second = store.acquire_lease(&taken).unwrap().unwrap();
        assert!(!store.transition_job_run(&ended, "RUNNING", Some(Fence { lease: "s", epoch: first })).unwrap());
        assert_eq!(store.get_job_run(id).unwrap().unwrap().life_cycle_state, "RUNNING");
        assert!(store.transition_job_run(&ended, "RUNNING", Some(Fence { lease: "s", epoch: second })).unwrap());
    }

    #[test]
    fn an_idempotency_token_answers_the_first_run() {
        let store = crate::test_store();
        let mut row = run(Some(1), None, None, "PENDING");
        row.idempotency_token = Some("tok".into());
        let first = store.insert_job_run(&row).unwrap();
        assert_eq!(store.insert_job_run(&row).unwrap(), first);
        assert_eq!(store.list_job_runs(&RunFilter::default(), 0, 10).unwrap().len(), 1);
    }

    #[test]
    fn a_jobs_runs_are_read_by_its_index() {
        let store = crate::test_store();
        let a = store.insert_job_run(&run(Some(1), None, None, "TERMINATED")).unwrap();
        let other = store.insert_job_run(&run(Some(2), None, None, "TERMINATED")).unwrap();
        store.insert_job_run(&run(Some(1), Some(a), Some("t"), "TERMINATED")).unwrap();
        let b = store.insert_job_run(&run(Some(1), None, None, "RUNNING")).unwrap();
        let ids = |rows: Vec<JobRunRow>| rows.into_iter().map(|r| r.run_id).collect::<Vec<_>>();
        assert_eq!(ids(store.job_runs_of_job(1, 0, 10).unwrap()), vec![b, a]);
        assert_eq!(ids(store.job_runs_of_job(1, 1, 10).unwrap()), vec![a]);
        assert_eq!(ids(store.job_runs_of_job(2, 0, 10).unwrap()), vec![other]);
    }
}
