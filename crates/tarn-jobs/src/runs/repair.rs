//! `runs/repair`: a finished run runs again for the tasks asked (all failed
//! ones, or the named ones, with their dependents if asked); the tasks that
//! succeeded keep their results and are not run again.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use serde_json::{Value, json};
use tarn_core::time::now_ms;

use super::dag::Node;
use super::state::{LifeCycle, ResultState, RunState};
use super::{Runs, effective_parameters};
use crate::error::{Result, invalid};
use crate::settings::JobSettings;

#[derive(Debug, Default, Deserialize)]
pub struct RepairRequest {
    #[serde(default)]
    pub rerun_tasks: Vec<String>,
    #[serde(default)]
    pub rerun_all_failed_tasks: bool,
    #[serde(default)]
    pub rerun_dependent_tasks: bool,
    #[serde(default)]
    pub latest_repair_id: Option<i64>,
    #[serde(default)]
    pub job_parameters: Option<Value>,
}

impl Runs {
    /// Starts a repair of run `run_id`; answers the repair's id.
    pub fn repair(&self, run_id: i64, request: &RepairRequest) -> Result<i64> {
        let _admission = self.inner.admission.lock().unwrap_or_else(|p| p.into_inner());
        let mut row = self.run_row(run_id)?;
        if row.task_key.is_some() {
            return Err(invalid(format!("Run {run_id} is a task run; repair its job run")));
        }
        if !LifeCycle::parse(&row.life_cycle_state).is_some_and(LifeCycle::is_final)
            || self.active().contains_key(&run_id)
        {
            return Err(invalid(format!("Run {run_id} is still active; only a finished run can be repaired")));
        }
        let repairs = row.doc.get("repairs").and_then(Value::as_array).cloned().unwrap_or_default();
        let latest = repairs.last().and_then(|r| r.get("id")).and_then(Value::as_i64);
        if let (Some(given), Some(latest)) = (request.latest_repair_id, latest)
            && given != latest
        {
            return Err(invalid(format!("latest_repair_id {given} is not the run's latest repair ({latest})")));
        }
        if !repairs.is_empty() && request.latest_repair_id.is_none() {
            return Err(invalid("The run was repaired before; give latest_repair_id"));
        }
        let settings = JobSettings::parse(&row.doc["settings"])?;
        let nodes: Vec<Node> = settings.tasks.iter().map(Node::of).collect();
        let rerun = self.tasks_to_rerun(run_id, &nodes, request)?;
        if repairs.is_empty() {
            row.doc["original"] = json!({"end_time": row.end_time, "state": RunState::of(&row).state_json()});
        }
        if let Some(given) = &request.job_parameters {
            let parameters = effective_parameters(&settings, Some(given))?;
            row.doc["job_parameters"] = Value::Object(parameters);
        }
        let repair_id = now_ms();
        let count = row.doc.get("repair_count").and_then(Value::as_i64).unwrap_or(0) + 1;
        row.doc["repair_count"] = json!(count);
        let mut repairs = repairs;
        repairs.push(json!({"type": "REPAIR", "id": repair_id, "start_time": now_ms(), "rerun_tasks": rerun}));
        row.doc["repairs"] = Value::Array(repairs);
        self.apply(row, super::RunEvent::Repaired)?;
        self.spawn(run_id);
        Ok(repair_id)
    }

    fn tasks_to_rerun(&self, run_id: i64, nodes: &[Node], request: &RepairRequest) -> Result<Vec<String>> {
        let mut latest: HashMap<String, Option<ResultState>> = HashMap::new();
        for task in self.store().child_job_runs(run_id)? {
            if let Some(key) = task.task_key {
                latest.insert(key, task.result_state.as_deref().and_then(ResultState::parse));
            }
        }
        let mut rerun: HashSet<String> = HashSet::new();
        for key in &request.rerun_tasks {
            if !nodes.iter().any(|n| &n.task_key == key) {
                return Err(invalid(format!("Task '{key}' is not a task of run {run_id}")));
            }
            rerun.insert(key.clone());
        }
        if request.rerun_all_failed_tasks {
            for node in nodes {
                let ended = latest.get(&node.task_key).copied().flatten();
                if ended.is_none_or(|r| r.is_failure() || r.is_cancellation()) {
                    rerun.insert(node.task_key.clone());
                }
            }
        }
        if request.rerun_dependent_tasks {
            loop {
                let more: Vec<String> = nodes
                    .iter()
                    .filter(|n| {
                        !rerun.contains(&n.task_key) && n.depends_on.iter().any(|e| rerun.contains(&e.task_key))
                    })
                    .map(|n| n.task_key.clone())
                    .collect();
                if more.is_empty() {
                    break;
                }
                rerun.extend(more);
            }
        }
        if rerun.is_empty() {
            return Err(invalid(format!("Run {run_id} has no failed tasks to repair; name rerun_tasks")));
        }
        Ok(nodes.iter().map(|n| n.task_key.clone()).filter(|k| rerun.contains(k)).collect())
    }
}
