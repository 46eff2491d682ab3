//! MLflow 3 logged models, and the inputs and outputs runs record.

use crate::db::{OptionalExtension, Row, params};

use super::runs::MetricRow;
use crate::{Result, Store};

#[derive(Debug, Clone, PartialEq)]
pub struct LoggedModelRow {
    pub model_id: String,
    pub experiment_id: i64,
    pub name: String,
    pub artifact_location: String,
    pub creation_time: i64,
    pub last_updated_time: i64,
    pub status: String,
    pub status_message: Option<String>,
    pub model_type: Option<String>,
    pub source_run_id: Option<String>,
    pub lifecycle_stage: String,
    pub tags: Vec<(String, String)>,
    pub params: Vec<(String, String)>,
    pub metrics: Vec<ModelMetric>,
}

/// A metric logged against a model, with the run and dataset it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelMetric {
    pub metric: MetricRow,
    pub run_uuid: Option<String>,
    pub dataset_name: Option<String>,
    pub dataset_digest: Option<String>,
}

const COLUMNS: &str = "model_id, experiment_id, name, artifact_location, creation_time, last_updated_time, status, \
                       status_message, model_type, source_run_id, lifecycle_stage";

fn row(r: &Row<'_>) -> crate::db::Result<LoggedModelRow> {
    Ok(LoggedModelRow {
        model_id: r.get(0)?,
        experiment_id: r.get(1)?,
        name: r.get(2)?,
        artifact_location: r.get(3)?,
        creation_time: r.get(4)?,
        last_updated_time: r.get(5)?,
        status: r.get(6)?,
        status_message: r.get(7)?,
        model_type: r.get(8)?,
        source_run_id: r.get(9)?,
        lifecycle_stage: r.get(10)?,
        tags: Vec::new(),
        params: Vec::new(),
        metrics: Vec::new(),
    })
}

fn complete(conn: &crate::db::Conn, mut m: LoggedModelRow) -> Result<LoggedModelRow> {
    let pairs = |sql: &str| -> Result<Vec<(String, String)>> {
        let mut stmt = conn.prepare_cached(sql)?;
        Ok(stmt.query_map([&m.model_id], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<crate::db::Result<_>>()?)
    };
    m.tags = pairs("SELECT key, value FROM mlflow_logged_model_tags WHERE model_id = ?1 ORDER BY key")?;
    m.params = pairs("SELECT key, value FROM mlflow_logged_model_params WHERE model_id = ?1 ORDER BY key")?;
    let mut stmt = conn.prepare_cached(
        "SELECT key, value, is_nan, timestamp, step, run_uuid, dataset_name, dataset_digest
         FROM mlflow_logged_model_metrics WHERE model_id = ?1 ORDER BY key, step, timestamp",
    )?;
    m.metrics = stmt
        .query_map([&m.model_id], |r| {
            Ok(ModelMetric {
                metric: MetricRow {
                    key: r.get(0)?,
                    value: r.get(1)?,
                    is_nan: r.get(2)?,
                    timestamp: r.get(3)?,
                    step: r.get(4)?,
                },
                run_uuid: r.get(5)?,
                dataset_name: r.get(6)?,
                dataset_digest: r.get(7)?,
            })
        })?
        .collect::<crate::db::Result<_>>()?;
    Ok(m)
}

impl Store {
    pub fn create_logged_model(&self, m: &LoggedModelRow) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            &format!(
                "INSERT INTO mlflow_logged_models ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
            ),
            params![
                m.model_id,
                m.experiment_id,
                m.name,
                m.artifact_location,
                m.creation_time,
                m.last_updated_time,
                m.status,
                m.status_message,
                m.model_type,
                m.source_run_id,
                m.lifecycle_stage
            ],
        )?;
        for (key, value) in &m.tags {
            tx.execute(
                "INSERT INTO mlflow_logged_model_tags (model_id, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value",
                params![m.model_id, key, value],
            )?;
        }
        for (key, value) in &m.params {
            tx.execute(
                "INSERT INTO mlflow_logged_model_params (model_id, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value",
                params![m.model_id, key, value],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn get_logged_model(&self, model_id: &str) -> Result<Option<LoggedModelRow>> {
        let conn = self.conn();
        let sql = format!("SELECT {COLUMNS} FROM mlflow_logged_models WHERE model_id = ?1");
        match conn.query_row(&sql, [model_id], row).optional()? {
            Some(m) => Ok(Some(complete(&conn, m)?)),
            None => Ok(None),
        }
    }

    /// The logged models of these experiments, newest first.
    pub fn list_logged_models(&self, experiment_ids: &[i64]) -> Result<Vec<LoggedModelRow>> {
        let conn = self.conn();
        let marks = vec!["?"; experiment_ids.len()].join(", ");
        let sql = format!(
            "SELECT {COLUMNS} FROM mlflow_logged_models WHERE experiment_id IN ({marks})
             ORDER BY creation_time DESC, model_id"
        );
        let mut stmt = conn.prepare(&sql)?;
        let rows =
            stmt.query_map(crate::db::params_from_iter(experiment_ids), row)?.collect::<crate::db::Result<Vec<_>>>()?;
        rows.into_iter().map(|m| complete(&conn, m)).collect()
    }

    pub fn update_logged_model(&self, model_id: &str, status: &str, lifecycle_stage: &str, now: i64) -> Result<()> {
        self.conn().execute(
            "UPDATE mlflow_logged_models SET status = ?2, lifecycle_stage = ?3, last_updated_time = ?4 WHERE model_id = ?1",
            params![model_id, status, lifecycle_stage, now],
        )?;
        Ok(())
    }

    pub fn set_logged_model_tags(&self, model_id: &str, tags: &[(String, String)], now: i64) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for (key, value) in tags {
            tx.execute(
                "INSERT INTO mlflow_logged_model_tags (model_id, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value",
                params![model_id, key, value],
            )?;
        }
        tx.execute(
            "UPDATE mlflow_logged_models SET last_updated_time = ?2 WHERE model_id = ?1",
            params![model_id, now],
        )?;
        tx.commit()?;
        Ok(())
    }

    pub fn delete_logged_model_tag(&self, model_id: &str, key: &str) -> Result<bool> {
        let n = self
            .conn()
            .execute("DELETE FROM mlflow_logged_model_tags WHERE model_id = ?1 AND key = ?2", params![model_id, key])?;
        Ok(n > 0)
    }

    pub fn log_logged_model_params(&self, model_id: &str, model_params: &[(String, String)]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for (key, value) in model_params {
            tx.execute(
                "INSERT INTO mlflow_logged_model_params (model_id, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value",
                params![model_id, key, value],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn log_model_metrics(&self, model_id: &str, metrics: &[ModelMetric]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for m in metrics {
            tx.execute(
                "INSERT INTO mlflow_logged_model_metrics
                 (model_id, key, value, is_nan, timestamp, step, run_uuid, dataset_name, dataset_digest)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    model_id,
                    m.metric.key,
                    m.metric.value,
                    m.metric.is_nan,
                    m.metric.timestamp,
                    m.metric.step,
                    m.run_uuid,
                    m.dataset_name,
                    m.dataset_digest
                ],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Records what a run read or wrote (`kind`: `dataset`, `model_input`,
    /// `model_output`), as JSON bodies; one already recorded is not repeated.
    pub fn add_run_inputs(&self, run_uuid: &str, kind: &str, bodies: &[serde_json::Value]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for body in bodies {
            let text = crate::to_json_text(body);
            let exists: Option<i64> = tx
                .query_row(
                    "SELECT 1 FROM mlflow_run_inputs WHERE run_uuid = ?1 AND kind = ?2 AND body = ?3",
                    params![run_uuid, kind, text],
                    |r| r.get(0),
                )
                .optional()?;
            if exists.is_none() {
                tx.execute(
                    "INSERT INTO mlflow_run_inputs (run_uuid, kind, body, position)
                     VALUES (?1, ?2, ?3, (SELECT COUNT(*) FROM mlflow_run_inputs WHERE run_uuid = ?1))",
                    params![run_uuid, kind, text],
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}
