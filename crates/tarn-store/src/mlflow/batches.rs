//! What runs log (params, tags, metrics), written by group commit: a call
//! queues its batch, and whichever call holds the connection writes every
//! queued batch in one transaction, each under its own savepoint, so
//! concurrent loggers share one commit and one refused batch leaves the
//! others whole.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use crate::db::{OptionalExtension, Value, params, row_marks};

use super::runs::{LoggedBatch, MetricRow};
use crate::{Result, Store, StoreError};

/// One run's batch, waiting for a writer.
pub(crate) struct PendingBatch {
    run_uuid: String,
    metrics: Vec<MetricRow>,
    params: Vec<(String, String)>,
    tags: Vec<(String, String)>,
    outcome: Mutex<Option<Result<LoggedBatch>>>,
}

/// Batches not yet written.
#[derive(Default)]
pub(crate) struct BatchQueue(Mutex<Vec<Arc<PendingBatch>>>);

impl BatchQueue {
    fn push(&self, batch: Arc<PendingBatch>) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(batch);
    }

    fn take(&self) -> Vec<Arc<PendingBatch>> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl PendingBatch {
    fn settle(&self, outcome: Result<LoggedBatch>) {
        *self.outcome.lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome);
    }

    fn outcome(&self) -> Option<Result<LoggedBatch>> {
        self.outcome.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

impl Store {
    /// Logs params, tags and metrics of one run atomically, keeping each
    /// key's latest metric (highest step, then timestamp, then value).
    pub fn log_batch(
        &self,
        run_uuid: &str,
        metrics: &[MetricRow],
        run_params: &[(String, String)],
        tags: &[(String, String)],
    ) -> Result<LoggedBatch> {
        let batch = Arc::new(PendingBatch {
            run_uuid: run_uuid.to_string(),
            metrics: metrics.to_vec(),
            params: run_params.to_vec(),
            tags: tags.to_vec(),
            outcome: Mutex::new(None),
        });
        self.batches.push(batch.clone());
        let mut conn = self.conn();
        // A writer that held the connection before us may have written ours.
        if let Some(outcome) = batch.outcome() {
            return outcome;
        }
        let group = self.batches.take();
        match write_group(&mut conn, &group) {
            Ok(()) => {}
            Err(e) => {
                let message = e.to_string();
                for b in &group {
                    b.settle(Err(StoreError::Write(message.clone())));
                }
            }
        }
        drop(conn);
        batch.outcome().unwrap_or_else(|| Err(StoreError::Write("the batch's writer stopped before it".into())))
    }
}

/// Writes `group` in one transaction; each batch's outcome is settled
/// unless the commit itself fails (then the caller settles them all).
fn write_group(conn: &mut crate::db::Conn, group: &[Arc<PendingBatch>]) -> Result<()> {
    if let [batch] = group {
        // Alone, a batch needs no savepoint: its transaction is its own.
        let tx = conn.transaction()?;
        let outcome = write_batch(&tx, batch);
        if matches!(outcome, Ok(LoggedBatch::Logged)) {
            tx.commit()?;
        }
        batch.settle(outcome);
        return Ok(());
    }
    let mut tx = conn.transaction()?;
    let mut outcomes = Vec::with_capacity(group.len());
    for batch in group {
        let savepoint = tx.savepoint()?;
        let outcome = write_batch(&savepoint, batch);
        if matches!(outcome, Ok(LoggedBatch::Logged)) {
            savepoint.commit()?;
        }
        // Dropped uncommitted, the savepoint rolls the batch back.
        outcomes.push(outcome);
    }
    tx.commit()?;
    for (batch, outcome) in group.iter().zip(outcomes) {
        batch.settle(outcome);
    }
    Ok(())
}

/// Metrics written per statement.
const METRIC_ROWS: usize = 100;

/// A multi-row statement around its VALUES; the text of a full chunk is
/// built once.
struct MultiRow {
    head: &'static str,
    tail: &'static str,
    full: OnceLock<String>,
}

impl MultiRow {
    const fn new(head: &'static str, tail: &'static str) -> Self {
        Self { head, tail, full: OnceLock::new() }
    }

    fn text(&self, rows: usize) -> Cow<'_, str> {
        let build = || format!("{} {} {}", self.head, row_marks(rows, 6), self.tail);
        match rows == METRIC_ROWS {
            true => Cow::Borrowed(self.full.get_or_init(build)),
            false => Cow::Owned(build()),
        }
    }
}

static INSERT_METRICS: MultiRow = MultiRow::new(
    "INSERT INTO mlflow_metrics (run_uuid, key, value, is_nan, timestamp, step) VALUES",
    "ON CONFLICT DO NOTHING",
);

static UPSERT_LATEST: MultiRow = MultiRow::new(
    "INSERT INTO mlflow_latest_metrics (run_uuid, key, value, is_nan, timestamp, step) VALUES",
    "ON CONFLICT (run_uuid, key) DO UPDATE SET
       value = excluded.value, is_nan = excluded.is_nan, timestamp = excluded.timestamp, step = excluded.step
     WHERE (excluded.step, excluded.timestamp, excluded.value)
         > (mlflow_latest_metrics.step, mlflow_latest_metrics.timestamp, mlflow_latest_metrics.value)",
);

fn metric_values<'a>(run_uuid: &str, metrics: impl Iterator<Item = &'a MetricRow>) -> Vec<Value> {
    metrics
        .flat_map(|m| {
            [
                Value::Text(run_uuid.to_string()),
                Value::Text(m.key.clone()),
                Value::Real(m.value),
                Value::Int(i64::from(m.is_nan)),
                Value::Int(m.timestamp),
                Value::Int(m.step),
            ]
        })
        .collect()
}

/// Each key's latest metric of the batch: highest step, then timestamp,
/// then value, as the stored latest is chosen.
fn latest_per_key(metrics: &[MetricRow]) -> Vec<&MetricRow> {
    let mut latest: HashMap<&str, &MetricRow> = HashMap::new();
    for m in metrics {
        let newer = |old: &&MetricRow| {
            (m.step, m.timestamp).cmp(&(old.step, old.timestamp)).then(m.value.total_cmp(&old.value)).is_gt()
        };
        match latest.get(m.key.as_str()) {
            Some(old) if !newer(old) => {}
            _ => {
                latest.insert(&m.key, m);
            }
        }
    }
    latest.into_values().collect()
}

fn write_batch(tx: &crate::db::Conn, batch: &PendingBatch) -> Result<LoggedBatch> {
    let run_uuid = &batch.run_uuid;
    for (key, value) in &batch.params {
        let old: Option<String> = tx
            .prepare_cached("SELECT value FROM mlflow_params WHERE run_uuid = ?1 AND key = ?2")?
            .query_row(params![run_uuid, key], |r| r.get(0))
            .optional()?;
        match old {
            Some(old) if &old != value => {
                return Ok(LoggedBatch::ParamConflict { key: key.clone(), old, new: value.clone() });
            }
            Some(_) => {}
            None => {
                tx.prepare_cached("INSERT INTO mlflow_params (run_uuid, key, value) VALUES (?1, ?2, ?3)")?
                    .execute(params![run_uuid, key, value])?;
            }
        }
    }
    let mut set_tag = tx.prepare_cached(
        "INSERT INTO mlflow_tags (run_uuid, key, value) VALUES (?1, ?2, ?3)
                           ON CONFLICT (run_uuid, key) DO UPDATE SET value = excluded.value",
    )?;
    for (key, value) in &batch.tags {
        set_tag.execute(params![run_uuid, key, value])?;
    }
    // A few statements per batch, not two per metric: on PostgreSQL each
    // statement is a round trip.
    for chunk in batch.metrics.chunks(METRIC_ROWS) {
        tx.execute(&INSERT_METRICS.text(chunk.len()), metric_values(run_uuid, chunk.iter()))?;
    }
    // One row per key (an upsert may not touch a row twice): the batch's latest.
    let latest = latest_per_key(&batch.metrics);
    for chunk in latest.chunks(METRIC_ROWS) {
        tx.execute(&UPSERT_LATEST.text(chunk.len()), metric_values(run_uuid, chunk.iter().copied()))?;
    }
    Ok(LoggedBatch::Logged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mlflow::{RunData, RunRow};

    fn run(store: &Store) -> RunData {
        store.get_runs(&["r".to_string()]).unwrap().remove(0).1
    }

    /// Run `r` of a new experiment.
    fn create_run(store: &Store) {
        let exp = store.create_experiment("e", "", &|id| format!("x/{id}"), &[], 0).unwrap().unwrap();
        let row = RunRow {
            run_uuid: "r".into(),
            experiment_id: exp,
            name: "r".into(),
            user_id: "u".into(),
            status: "RUNNING".into(),
            start_time: 0,
            end_time: None,
            artifact_uri: "x".into(),
            lifecycle_stage: "active".into(),
        };
        store.create_run(&row, &[]).unwrap();
    }

    #[test]
    fn concurrent_batches_all_land_and_a_refused_one_leaves_nothing() {
        let home = std::env::temp_dir().join(format!("tarn-batches-{}", std::process::id()));
        std::fs::create_dir_all(&home).unwrap();
        let store = Arc::new(Store::open(&home.join("metadata.db")).unwrap());
        create_run(&store);
        store.log_batch("r", &[], &[("p".into(), "1".into())], &[]).unwrap();
        let metric =
            |key: &str, step: i64| MetricRow { key: key.into(), value: 1.0, is_nan: false, timestamp: 0, step };
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for step in 0..100 {
                        let key = format!("m{t}");
                        assert_eq!(store.log_batch("r", &[metric(&key, step)], &[], &[]).unwrap(), LoggedBatch::Logged);
                        let refused =
                            store.log_batch("r", &[metric("refused", step)], &[("p".into(), "2".into())], &[]).unwrap();
                        assert!(matches!(refused, LoggedBatch::ParamConflict { .. }));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let data = run(&store);
        assert_eq!(data.metrics.iter().filter(|m| m.key.starts_with('m')).count(), 8);
        assert!(data.metrics.iter().all(|m| m.key != "refused"));
        assert_eq!(store.metric_history("r", "m3").unwrap().len(), 100);
        std::fs::remove_dir_all(home).unwrap();
    }

    #[test]
    fn a_batch_keeps_each_keys_latest_metric_and_all_its_steps() {
        let store = crate::test_store();
        create_run(&store);
        let m = |key: &str, step, value| MetricRow { key: key.into(), value, is_nan: false, timestamp: 5, step };
        // 250 metrics: more than one statement's worth, one key at many steps.
        let mut batch: Vec<MetricRow> = (0..240).map(|i| m("loss", i, 1.0 / (i + 1) as f64)).collect();
        batch.extend((0..10).map(|i| m(&format!("k{i}"), 0, i as f64)));
        batch.push(m("loss", 7, 9.0));
        assert_eq!(store.log_batch("r", &batch, &[], &[]).unwrap(), LoggedBatch::Logged);
        let latest = |key: &str| run(&store).metrics.into_iter().find(|x| x.key == key).unwrap();
        assert_eq!((latest("loss").step, latest("loss").value), (239, 1.0 / 240.0));
        assert_eq!(latest("k9").value, 9.0);
        // 240 steps, one of them logged with two values.
        assert_eq!(store.metric_history("r", "loss").unwrap().len(), 241);
        // An older step later does not move the latest.
        store.log_batch("r", &[m("loss", 3, 0.0)], &[], &[]).unwrap();
        assert_eq!(latest("loss").step, 239);
    }
}
