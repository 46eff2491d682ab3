//! Experiments and their tags.

use crate::db::{OptionalExtension, Row, params};

use crate::{Result, Store};

#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentRow {
    pub experiment_id: i64,
    pub name: String,
    pub artifact_location: String,
    pub lifecycle_stage: String,
    pub creation_time: i64,
    pub last_update_time: i64,
    /// Who created it (empty for the default experiment): its owner.
    pub creator: String,
    pub tags: Vec<(String, String)>,
}

const COLUMNS: &str =
    "experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time, creator";

fn row(r: &Row<'_>) -> crate::db::Result<ExperimentRow> {
    Ok(ExperimentRow {
        experiment_id: r.get(0)?,
        name: r.get(1)?,
        artifact_location: r.get(2)?,
        lifecycle_stage: r.get(3)?,
        creation_time: r.get(4)?,
        last_update_time: r.get(5)?,
        creator: r.get(6)?,
        tags: Vec::new(),
    })
}

fn with_tags(conn: &crate::db::Conn, mut e: ExperimentRow) -> Result<ExperimentRow> {
    let mut stmt =
        conn.prepare_cached("SELECT key, value FROM mlflow_experiment_tags WHERE experiment_id = ?1 ORDER BY key")?;
    e.tags = stmt.query_map([e.experiment_id], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<crate::db::Result<_>>()?;
    Ok(e)
}

impl Store {
    /// Inserts an experiment; `artifact_location` is given the new id. Returns
    /// `None` when the name is taken.
    pub fn create_experiment(
        &self,
        name: &str,
        creator: &str,
        artifact_location: &dyn Fn(i64) -> String,
        tags: &[(String, String)],
        now: i64,
    ) -> Result<Option<i64>> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let taken: Option<i64> = tx
            .query_row("SELECT experiment_id FROM mlflow_experiments WHERE name = ?1", [name], |r| r.get(0))
            .optional()?;
        if taken.is_some() {
            return Ok(None);
        }
        let next: i64 = tx.query_row(
            "SELECT COALESCE(MAX(experiment_id) + 1, 0) FROM mlflow_experiments",
            crate::db::params![],
            |r| r.get(0),
        )?;
        tx.execute(
            "INSERT INTO mlflow_experiments (experiment_id, name, artifact_location, creation_time, last_update_time,
                 creator)
             VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
            params![next, name, artifact_location(next), now, creator],
        )?;
        for (key, value) in tags {
            tx.execute(
                "INSERT INTO mlflow_experiment_tags (experiment_id, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value",
                params![next, key, value],
            )?;
        }
        tx.commit()?;
        Ok(Some(next))
    }

    pub fn get_experiment(&self, experiment_id: i64) -> Result<Option<ExperimentRow>> {
        let conn = self.conn();
        let sql = format!("SELECT {COLUMNS} FROM mlflow_experiments WHERE experiment_id = ?1");
        match conn.query_row(&sql, [experiment_id], row).optional()? {
            Some(e) => Ok(Some(with_tags(&conn, e)?)),
            None => Ok(None),
        }
    }

    pub fn get_experiment_by_name(&self, name: &str) -> Result<Option<ExperimentRow>> {
        let conn = self.conn();
        let sql = format!("SELECT {COLUMNS} FROM mlflow_experiments WHERE name = ?1");
        match conn.query_row(&sql, [name], row).optional()? {
            Some(e) => Ok(Some(with_tags(&conn, e)?)),
            None => Ok(None),
        }
    }

    /// Every experiment with its tags, by id; the caller filters and pages
    /// (a workspace holds thousands of experiments, not millions).
    pub fn list_experiments(&self) -> Result<Vec<ExperimentRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM mlflow_experiments ORDER BY experiment_id"))?;
        let rows = stmt.query_map(crate::db::params![], row)?.collect::<crate::db::Result<Vec<_>>>()?;
        rows.into_iter().map(|e| with_tags(&conn, e)).collect()
    }

    /// Renames; `false` when the new name is taken.
    pub fn rename_experiment(&self, experiment_id: i64, name: &str, now: i64) -> Result<bool> {
        let conn = self.conn();
        let taken: Option<i64> = conn
            .query_row("SELECT experiment_id FROM mlflow_experiments WHERE name = ?1", [name], |r| r.get(0))
            .optional()?;
        if taken.is_some_and(|id| id != experiment_id) {
            return Ok(false);
        }
        conn.execute(
            "UPDATE mlflow_experiments SET name = ?2, last_update_time = ?3 WHERE experiment_id = ?1",
            params![experiment_id, name, now],
        )?;
        Ok(true)
    }

    /// Soft-deletes or restores an experiment, and its runs with it (as MLflow does).
    pub fn set_experiment_lifecycle(&self, experiment_id: i64, stage: &str, now: i64) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE mlflow_experiments SET lifecycle_stage = ?2, last_update_time = ?3 WHERE experiment_id = ?1",
            params![experiment_id, stage, now],
        )?;
        let deleted_time = (stage == "deleted").then_some(now);
        tx.execute(
            "UPDATE mlflow_runs SET lifecycle_stage = ?2, deleted_time = ?3 WHERE experiment_id = ?1",
            params![experiment_id, stage, deleted_time],
        )?;
        tx.commit()?;
        Ok(())
    }

    pub fn set_experiment_tag(&self, experiment_id: i64, key: &str, value: &str) -> Result<()> {
        self.conn().execute(
            "INSERT INTO mlflow_experiment_tags (experiment_id, key, value) VALUES (?1, ?2, ?3)
             ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value",
            params![experiment_id, key, value],
        )?;
        Ok(())
    }

    /// `false` when there was no such tag.
    pub fn delete_experiment_tag(&self, experiment_id: i64, key: &str) -> Result<bool> {
        let n = self.conn().execute(
            "DELETE FROM mlflow_experiment_tags WHERE experiment_id = ?1 AND key = ?2",
            params![experiment_id, key],
        )?;
        Ok(n > 0)
    }
}
