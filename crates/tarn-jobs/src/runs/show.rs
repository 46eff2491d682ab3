//! `runs/get`, `runs/list` and `runs/get-output` read: the stored rows of
//! a run and its task runs made into [`record`](super::record)s (tarn-api
//! turns those into the Jobs API's JSON).

use std::collections::HashSet;

use serde_json::Value;
use tarn_store::{JobRunRow, RunFilter};

use super::Runs;
use super::record::{
    OutputRecord, RunOrTask, RunRecord, TaskRunRecord, job_parameters, repair_history, settings_by_key, total_usage,
};
use super::state::RunState;
use crate::error::{Result, invalid};

impl Runs {
    /// Where the run's page is on this server: `/jobs/{job}/runs/{run}`
    /// (a task run's is its job run's page with that task selected), and
    /// `/jobs/runs/{run}` for a one-time run of no job.
    fn page_url(&self, row: &JobRunRow) -> String {
        let base = &self.config().workspace_url;
        match row.job_id {
            Some(job_id) => format!("{base}/jobs/{job_id}/runs/{}", row.run_id),
            None => format!("{base}/jobs/runs/{}", row.run_id),
        }
    }

    /// A job run with its task runs (every attempt, oldest first), or a
    /// task run with its iterations; `resolved` adds what each task ran with.
    pub fn get(&self, run_id: i64, resolved: bool) -> Result<RunOrTask> {
        let row = self.run_row(run_id)?;
        if row.task_key.is_none() {
            return Ok(RunOrTask::Run(self.run_record(row, true, resolved)?));
        }
        let mut task = self.task_alone(row, resolved);
        let iterations = self.store().child_job_runs(run_id)?;
        task.iterations = iterations.into_iter().map(|i| self.task_record(i, None, resolved)).collect();
        Ok(RunOrTask::Task(task))
    }

    /// A job run; `with_tasks` adds its task runs.
    pub(super) fn run_record(&self, row: JobRunRow, with_tasks: bool, resolved: bool) -> Result<RunRecord> {
        let tasks = self.store().child_job_runs(row.run_id)?;
        let (usage, history) = (total_usage(&tasks), repair_history(&row, &tasks));
        let task_records = with_tasks.then(|| {
            let settings = settings_by_key(&row);
            let own = |t: &JobRunRow| t.task_key.as_deref().and_then(|k| settings.get(k)).map(|s| (*s).clone());
            tasks
                .into_iter()
                .map(|t| {
                    let own = own(&t);
                    self.task_record(t, own, resolved)
                })
                .collect()
        });
        let doc = &row.doc;
        let text = |field: &str, default: &str| doc.get(field).and_then(Value::as_str).unwrap_or(default).to_string();
        let overriding = doc.get("overriding_parameters").and_then(Value::as_object).filter(|o| !o.is_empty());
        Ok(RunRecord {
            state: RunState::of(&row),
            page_url: self.page_url(&row),
            run_name: text("run_name", "Untitled"),
            trigger: text("trigger", "ONE_TIME"),
            job_parameters: job_parameters(doc),
            overriding_parameters: overriding.cloned(),
            job_clusters: doc.pointer("/settings/job_clusters").cloned(),
            git_source: doc.get("git_source").or_else(|| doc.pointer("/settings/git_source")).cloned(),
            description: doc.pointer("/settings/description").cloned(),
            usage,
            tasks: task_records,
            repair_history: history,
            row,
        })
    }

    /// A task run; `settings` are its task's as the job run started with
    /// them.
    pub(super) fn task_record(&self, row: JobRunRow, settings: Option<Value>, resolved: bool) -> TaskRunRecord {
        let field = |pointer: &str| row.doc.pointer(pointer).cloned();
        TaskRunRecord {
            state: RunState::of(&row),
            page_url: self.page_url(&row),
            settings,
            condition: field("/output/condition_task"),
            cluster_instance: field("/cluster_instance"),
            usage: field("/usage"),
            for_each_stats: field("/for_each_stats"),
            resolved_task: if resolved { field("/task") } else { None },
            iterations: Vec::new(),
            row,
        }
    }

    /// A task run on its own, its settings read from its job run.
    fn task_alone(&self, row: JobRunRow, resolved: bool) -> TaskRunRecord {
        let parent = row.parent_run_id.and_then(|p| self.store().get_job_run(p).ok().flatten());
        let own = parent.as_ref().and_then(|parent| {
            let key = row.task_key.as_deref()?;
            settings_by_key(parent).get(key).map(|s| (*s).clone())
        });
        self.task_record(row, own, resolved)
    }

    /// `runs/get-output` of a task run (or of a job run with one task).
    pub fn get_output(&self, run_id: i64) -> Result<OutputRecord> {
        let mut row = self.run_row(run_id)?;
        if row.task_key.is_none() {
            let mut tasks = self.store().child_job_runs(run_id)?;
            let keys: HashSet<_> = tasks.iter().filter_map(|t| t.task_key.clone()).collect();
            if keys.len() != 1 {
                return Err(invalid(
                    "Retrieving the output of runs with multiple tasks is not supported. \
                     Please retrieve the output of each individual task run instead.",
                ));
            }
            row = tasks.pop().ok_or_else(|| invalid("The run has no task runs"))?;
        }
        let output = row.doc.get("output").and_then(Value::as_object).cloned().unwrap_or_default();
        let run_job_output = row.doc.get("run_job_output").cloned();
        let logs = self.task_log(row.run_id);
        Ok(OutputRecord { task: self.task_alone(row, false), output, run_job_output, logs })
    }

    /// `runs/list`: job runs newest first, `limit` 1 to 25 (default 20);
    /// `expand_tasks` adds each run's task runs.
    pub fn list(
        &self,
        filter: &RunFilter,
        offset: usize,
        limit: Option<i64>,
        expand_tasks: bool,
    ) -> Result<(Vec<RunRecord>, bool)> {
        let limit = match limit {
            None | Some(0) => 20,
            Some(n @ 1..=25) => n as usize,
            Some(n) => return Err(invalid(format!("limit must be between 1 and 25, got {n}"))),
        };
        let mut rows = self.store().list_job_runs(filter, offset, limit + 1)?;
        let has_more = rows.len() > limit;
        rows.truncate(limit);
        let runs = rows.into_iter().map(|r| self.run_record(r, expand_tasks, false)).collect::<Result<Vec<_>>>()?;
        Ok((runs, has_more))
    }
}
