//! Job definitions. What a job's settings may hold is `tarn-jobs`' rule;
//! here they are JSON.

use crate::db::{OptionalExtension, Row, params};

use crate::{Result, Store, from_json_text, to_json_text};

#[derive(Debug, Clone, PartialEq)]
pub struct JobRow {
    pub job_id: i64,
    pub creator_user_name: String,
    pub run_as_user_name: String,
    pub settings: serde_json::Value,
    pub created_time: i64,
}

const COLUMNS: &str = "job_id, creator_user_name, run_as_user_name, settings, created_time";

fn job(r: &Row<'_>) -> crate::db::Result<(i64, String, String, String, i64)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn into_row(
    (job_id, creator_user_name, run_as_user_name, settings, created_time): (i64, String, String, String, i64),
) -> Result<JobRow> {
    Ok(JobRow {
        job_id,
        creator_user_name,
        run_as_user_name,
        settings: from_json_text("jobs.settings", &settings)?,
        created_time,
    })
}

impl Store {
    /// Stores a new job; answers its id.
    pub fn create_job(&self, creator: &str, settings: &serde_json::Value, now: i64) -> Result<i64> {
        Ok(self.conn().query_row(
            "INSERT INTO jobs (creator_user_name, run_as_user_name, settings, created_time) VALUES (?1, ?1, ?2, ?3)
             RETURNING job_id",
            params![creator, to_json_text(settings), now],
            |r| r.get(0),
        )?)
    }

    pub fn get_job(&self, job_id: i64) -> Result<Option<JobRow>> {
        let found = self
            .reader()
            .query_row(&format!("SELECT {COLUMNS} FROM jobs WHERE job_id = ?1"), [job_id], job)
            .optional()?;
        found.map(into_row).transpose()
    }

    /// Jobs newest first, `name` matched case-insensitively when given.
    pub fn list_jobs(&self, name: Option<&str>, offset: usize, limit: usize) -> Result<Vec<JobRow>> {
        let conn = self.conn();
        let name_field = conn.dialect().json_field("settings", "name");
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM jobs
             WHERE lower({name_field}) = lower(?1) OR ?1 IS NULL
             ORDER BY job_id DESC LIMIT ?2 OFFSET ?3"
        ))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![name, limit, offset], job)?.collect::<crate::db::Result<Vec<_>>>()?;
        rows.into_iter().map(into_row).collect()
    }

    /// `false` when there is no such job.
    pub fn set_job_settings(&self, job_id: i64, settings: &serde_json::Value) -> Result<bool> {
        let n = self
            .conn()
            .execute("UPDATE jobs SET settings = ?2 WHERE job_id = ?1", params![job_id, to_json_text(settings)])?;
        Ok(n > 0)
    }

    /// `false` when there is no such job.
    pub fn delete_job(&self, job_id: i64) -> Result<bool> {
        Ok(self.conn().execute("DELETE FROM jobs WHERE job_id = ?1", [job_id])? > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn jobs_round_trip_and_list_newest_first_by_name() {
        let store = crate::test_store();
        let a = store.create_job("ann", &json!({"name": "Nightly", "tasks": []}), 1).unwrap();
        let b = store.create_job("ann", &json!({"name": "other"}), 2).unwrap();
        assert_eq!(store.get_job(a).unwrap().unwrap().settings["name"], "Nightly");
        let ids = |rows: Vec<JobRow>| rows.into_iter().map(|j| j.job_id).collect::<Vec<_>>();
        assert_eq!(ids(store.list_jobs(None, 0, 10).unwrap()), vec![b, a]);
        assert_eq!(ids(store.list_jobs(Some("nightly"), 0, 10).unwrap()), vec![a]);
        assert!(store.set_job_settings(a, &json!({"name": "renamed"})).unwrap());
        assert!(store.delete_job(b).unwrap() && !store.delete_job(b).unwrap());
        assert_eq!(store.get_job(b).unwrap(), None);
    }
}
