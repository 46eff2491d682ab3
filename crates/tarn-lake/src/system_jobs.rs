//! The job system tables' rows: `system.billing.usage` (the compute each
//! task attempt used, in core-hours, with tarn's estimated cost) and
//! `system.lakeflow.job_run_timeline` (each finished job run), built from
//! the store's finished runs.

use deltalake::arrow::record_batch::RecordBatch;
use serde_json::Value;
use tarn_store::JobRunRow;

use crate::Result;
use crate::table::{Column, batch};

pub(crate) const USAGE: (&str, &str) = ("billing", "usage");
pub(crate) const TIMELINE: (&str, &str) = ("lakeflow", "job_run_timeline");
const MS_PER_DAY: i64 = 86_400_000;

fn day(ms: i64) -> i32 {
    i32::try_from(ms.div_euclid(MS_PER_DAY)).unwrap_or(i32::MAX)
}

fn text(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).map(str::to_string)
}

/// One row per task attempt that ran on compute.
pub(crate) fn usage_batch(runs: &[JobRunRow], workspace_id: &str) -> Result<RecordBatch> {
    let rows: Vec<(&JobRunRow, &Value)> =
        runs.iter().filter(|r| r.task_key.is_some()).filter_map(|r| r.doc.get("usage").map(|u| (r, u))).collect();
    let num = |f: &str| Column::Double(rows.iter().map(|(_, u)| u.get(f).and_then(Value::as_f64)).collect());
    let time = |f: &str| Column::Timestamp(rows.iter().map(|(_, u)| u.get(f).and_then(Value::as_i64)).collect());
    let all =
        |f: &dyn Fn(&JobRunRow, &Value) -> Option<String>| Column::Str(rows.iter().map(|(r, u)| f(r, u)).collect());
    let hours = rows.iter().map(|(_, u)| u.get("core_seconds").and_then(Value::as_f64).map(|s| s / 3600.0)).collect();
    batch(vec![
        ("record_id", all(&|r, _| Some(format!("task-run-{}", r.run_id)))),
        ("workspace_id", all(&|_, _| Some(workspace_id.to_string()))),
        (
            "sku_name",
            all(&|_, u| Some(format!("TARN_{}_COMPUTE", text(u.get("product")).as_deref().unwrap_or("JOBS")))),
        ),
        ("cloud", all(&|_, _| Some("LOCAL".into()))),
        ("usage_start_time", time("start_time")),
        ("usage_end_time", time("end_time")),
        (
            "usage_date",
            Column::Date(rows.iter().map(|(_, u)| u.get("start_time").and_then(Value::as_i64).map(day)).collect()),
        ),
        ("usage_unit", all(&|_, _| Some("CORE_HOUR".into()))),
        ("usage_quantity", Column::Double(hours)),
        ("usage_type", all(&|_, _| Some("COMPUTE_TIME".into()))),
        ("billing_origin_product", all(&|_, u| Some(text(u.get("product")).unwrap_or_else(|| "JOBS".into())))),
        (
            "usage_metadata",
            Column::Struct(vec![
                ("cluster_id", all(&|_, u| text(u.get("cluster_id")))),
                ("job_id", all(&|r, _| r.job_id.map(|j| j.to_string()))),
                ("job_run_id", all(&|r, _| r.parent_run_id.map(|p| p.to_string()))),
                ("task_run_id", all(&|r, _| Some(r.run_id.to_string()))),
                ("task_key", all(&|r, _| r.task_key.clone())),
            ]),
        ),
        ("cores", num("cores")),
        ("estimated_cost", num("estimated_cost")),
    ])
}

/// One row per finished job run.
pub(crate) fn timeline_batch(
    runs: &[JobRunRow],
    tasks_by_run: &dyn Fn(i64) -> Vec<String>,
    workspace_id: &str,
) -> Result<RecordBatch> {
    let rows: Vec<&JobRunRow> = runs.iter().filter(|r| r.task_key.is_none()).collect();
    let all = |f: &dyn Fn(&JobRunRow) -> Option<String>| Column::Str(rows.iter().map(|r| f(r)).collect());
    let parameters = rows
        .iter()
        .map(|r| {
            let map = r.doc.get("job_parameters").and_then(Value::as_object);
            Some(
                map.into_iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))
                    .collect(),
            )
        })
        .collect();
    batch(vec![
        ("workspace_id", all(&|_| Some(workspace_id.to_string()))),
        ("job_id", all(&|r| r.job_id.map(|j| j.to_string()))),
        ("run_id", all(&|r| Some(r.run_id.to_string()))),
        ("period_start_time", Column::Timestamp(rows.iter().map(|r| Some(r.start_time)).collect())),
        ("period_end_time", Column::Timestamp(rows.iter().map(|r| r.end_time).collect())),
        ("trigger_type", all(&|r| text(r.doc.get("trigger")))),
        ("run_type", all(&|r| Some(r.run_type.clone()))),
        ("run_name", all(&|r| text(r.doc.get("run_name")))),
        ("compute_ids", Column::List(rows.iter().map(|r| Some(tasks_by_run(r.run_id))).collect())),
        ("result_state", all(&|r| r.result_state.clone())),
        ("termination_code", all(&|r| r.termination_code.clone())),
        ("job_parameters", Column::Map(parameters)),
    ])
}
