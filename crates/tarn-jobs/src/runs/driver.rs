//! Drives one job run (or one repair of it) to its end: tasks start when
//! the graph allows, up to the shared parallelism; failed attempts are
//! retried as their settings say; task and job timeouts and cancels stop
//! what runs; job clusters are terminated at the end.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use serde_json::{Value, json};
use tarn_core::time::now_ms;
use tarn_store::JobRunRow;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::attempt;
use super::compute::JobClusters;
use super::dag::{self, Decision, Done, Node};
use super::document::RunDoc;
use super::state::{self, Event as RunEvent, LifeCycle, ResultState};
use super::task_run::{self, AttemptEnd, Finished, facts_of, task_row};
use super::{Runs, Stop, TaskFacts};
use crate::error::Result;
use crate::notify::Event;
use crate::settings::{JobSettings, TaskSettings};

pub(super) async fn drive(runs: Runs, run_id: i64, stop: watch::Receiver<Option<Stop>>) {
    let clusters = Arc::new(JobClusters::default());
    let outcome = match Driver::load(&runs, run_id, clusters.clone()) {
        Ok(driver) => driver.run(stop).await,
        Err(e) => Err(e),
    };
    for cluster_id in clusters.created() {
        runs.runner().stop_job_cluster(&cluster_id, run_id);
    }
    if let Err(e) = outcome {
        tracing::error!(run_id, error = %e, "a job run could not be driven");
        if let Ok(row) = runs.run_row(run_id) {
            // Refused (and counted) if the run already ended, e.g. after a recovery.
            let _ = runs.apply(row, RunEvent::Abandoned { message: format!("tarn could not drive this run: {e}") });
        }
    }
}

pub(super) struct Driver {
    runs: Runs,
    /// Shared with every attempt.
    run: Arc<JobRunRow>,
    /// The run's settings and document, read once.
    settings: Arc<JobSettings>,
    doc: RunDoc,
    nodes: Vec<Node>,
    graph: Graph,
    /// Tasks of this pass not yet finished, with their current attempt's row.
    rows: HashMap<String, JobRunRow>,
    done: HashMap<String, Done>,
    facts: HashMap<String, TaskFacts>,
    retries: Vec<(Instant, String)>,
    /// When a running attempt passes its task's duration threshold: (at, key, task run id).
    overdue: Vec<(Instant, String, i64)>,
    running: JoinSet<Finished>,
    in_flight: HashSet<String>,
    clusters: Arc<JobClusters>,
    repair_id: Option<i64>,
    /// The attempt number each task started this pass at (retries count from it).
    first: HashMap<String, i64>,
    /// The run's checkout of its job's `git_source`, if it has one.
    git: Option<crate::git::GitCheckout>,
    /// The run was in flight under an earlier driver (another replica, or
    /// this tarn before a restart): its ended tasks stay ended and its
    /// attempts still running are taken over.
    resumed: bool,
}

impl Driver {
    fn load(runs: &Runs, run_id: i64, clusters: Arc<JobClusters>) -> Result<Self> {
        let run = runs.run_row(run_id)?;
        let doc = RunDoc::read(&run.doc);
        let settings = Arc::new(JobSettings::parse(&run.doc["settings"])?);
        let nodes: Vec<Node> = settings.tasks.iter().map(Node::of).collect();
        let graph = Graph::new(&nodes);
        let repair_id = doc.repairs.last().map(|r| r.id);
        let resumed = run.life_cycle_state != LifeCycle::Pending.as_str();
        let mut driver = Driver {
            runs: runs.clone(),
            run: Arc::new(run),
            settings,
            doc,
            nodes,
            graph,
            rows: HashMap::new(),
            done: HashMap::new(),
            facts: HashMap::new(),
            retries: Vec::new(),
            overdue: Vec::new(),
            running: JoinSet::new(),
            in_flight: HashSet::new(),
            clusters,
            repair_id,
            first: HashMap::new(),
            git: None,
            resumed,
        };
        driver.plan()?;
        driver.graph.count_unmet(&driver.nodes, &driver.rows, &driver.done);
        if resumed {
            // Only tasks still waiting start anew; the others are taken over.
            let rows = &driver.rows;
            let blocked =
                |key: &String| rows.get(key).is_some_and(|r| r.life_cycle_state == LifeCycle::Blocked.as_str());
            driver.graph.ready.retain(blocked);
        }
        Ok(driver)
    }

    /// Rows for the tasks this pass runs (all of them, or a repair's); the
    /// others keep how their latest attempt ended. Rows the trigger wrote
    /// (BLOCKED) are taken over.
    fn plan(&mut self) -> Result<()> {
        let rerun: Option<HashSet<String>> = self.doc.repairs.last().map(|r| r.rerun_tasks.iter().cloned().collect());
        let mut latest: HashMap<String, JobRunRow> = HashMap::new();
        // Where each task's attempts of this pass began, for a resumed run's retries.
        let mut earliest: HashMap<String, i64> = HashMap::new();
        for row in self.runs.store().child_job_runs(self.run.run_id)? {
            if let Some(key) = row.task_key.clone() {
                if row.doc.get("repair_id").and_then(Value::as_i64) == self.repair_id {
                    let first = earliest.entry(key.clone()).or_insert(row.attempt_number);
                    *first = (*first).min(row.attempt_number);
                }
                latest.insert(key, row);
            }
        }
        for node in self.nodes.clone() {
            let key = node.task_key.clone();
            let kept = rerun.as_ref().is_some_and(|r| !r.contains(&key));
            let previous = latest.remove(&key);
            let this_pass =
                previous.as_ref().is_some_and(|p| p.doc.get("repair_id").and_then(Value::as_i64) == self.repair_id);
            let ended = previous
                .as_ref()
                .is_some_and(|p| LifeCycle::parse(&p.life_cycle_state).is_some_and(LifeCycle::is_final));
            let unfinished = this_pass && !ended;
            match (kept || (self.resumed && this_pass && ended), previous) {
                (true, Some(row)) => self.keep(row),
                (_, Some(row)) if unfinished => {
                    let first = if self.resumed { earliest.get(&key).copied() } else { None };
                    self.first.insert(key.clone(), first.unwrap_or(row.attempt_number));
                    self.rows.insert(key, row);
                }
                (_, previous) => {
                    let attempt = previous.map(|p| p.attempt_number + 1).unwrap_or(0);
                    let row = task_row(&self.run, &key, attempt, self.repair_id, LifeCycle::Blocked, WAITING);
                    let row = JobRunRow { run_id: self.runs.store().insert_job_run(&row)?, ..row };
                    self.first.insert(key.clone(), attempt);
                    self.rows.insert(key, row);
                }
            }
        }
        Ok(())
    }

    /// A finished task from before this repair, as its dependents see it.
    fn keep(&mut self, row: JobRunRow) {
        let Some(key) = row.task_key.clone() else { return };
        let result = row.result_state.as_deref().and_then(ResultState::parse).unwrap_or(ResultState::Failed);
        let outcome = row.doc.pointer("/output/condition_task/outcome").and_then(Value::as_str).map(|o| o == "true");
        self.done.insert(key.clone(), Done { result, outcome });
        self.facts.insert(key, facts_of(&row));
    }

    async fn run(mut self, mut stop: watch::Receiver<Option<Stop>>) -> Result<()> {
        if !self.resumed {
            let run = (*self.run).clone();
            self.run = Arc::new(self.runs.apply(run, RunEvent::Started)?);
            self.runs.notify(self.run.run_id, Event::Start);
        }
        self.git = crate::git::prepare(&self.runs, &self.run, &self.settings).await;
        if self.resumed {
            self.take_over();
        }
        let timeout = self.settings.timeout();
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut warning = self.settings.health.duration_threshold().map(|t| Instant::now() + t);
        loop {
            self.start_ready()?;
            if self.in_flight.is_empty() && self.retries.is_empty() {
                break;
            }
            let next_retry = self.retries.iter().map(|(at, _)| *at).min();
            let next_overdue = self.overdue.iter().map(|(at, ..)| *at).min();
            tokio::select! {
                Some(joined) = self.running.join_next() => {
                    match joined {
                        Ok(finished) => self.finish(finished)?,
                        Err(e) => tracing::error!(run_id = self.run.run_id, error = %e, "a task attempt panicked"),
                    }
                }
                () = sleep_until(next_retry), if next_retry.is_some() => self.start_retries()?,
                () = sleep_until(next_overdue), if next_overdue.is_some() => self.warn_overdue(),
                () = sleep_until(warning), if warning.is_some() => {
                    warning = None;
                    self.runs.notify(self.run.run_id, Event::DurationWarning);
                }
                () = sleep_until(deadline), if deadline.is_some() => {
                    return self.stop(Stop::TimedOut(timeout.unwrap_or_default().as_secs() as i64)).await;
                }
                changed = stop.changed() => {
                    let reason = stop.borrow().clone();
                    if let (Ok(()), Some(reason)) = (changed, reason) {
                        return self.stop(reason).await;
                    }
                }
            }
        }
        self.conclude()
    }

    /// Starts every task whose dependencies have all ended, if the graph
    /// allows it; skips those it rules out (which may ready others).
    fn start_ready(&mut self) -> Result<()> {
        while let Some(key) = self.graph.ready.pop_front() {
            let Some(node) = self.graph.index.get(&key).and_then(|i| self.nodes.get(*i)) else { continue };
            match dag::decide(node, &self.done) {
                Decision::Wait => {}
                Decision::Skip(result) => {
                    let message = format!("Skipped: {}", skip_reason(result));
                    self.end_task(&key, RunEvent::Skipped { result, message })?;
                }
                Decision::Run => self.launch(&key)?,
            }
        }
        Ok(())
    }

    fn launch(&mut self, key: &str) -> Result<()> {
        let (Some(row), Some(task)) = (self.rows.get(key).cloned(), self.settings.task(key)) else { return Ok(()) };
        let bindings = self.bindings(key, &row);
        let row = self.runs.apply(row, RunEvent::Launched)?;
        self.rows.insert(key.to_string(), row.clone());
        self.notify_task(task, &row, Event::Start, false);
        if let Some(threshold) = task.health.duration_threshold() {
            self.overdue.push((Instant::now() + threshold, key.to_string(), row.run_id));
        }
        let start = self.start_of(key, task, row, bindings);
        self.running.spawn(attempt::run(start));
        self.in_flight.insert(key.to_string());
        Ok(())
    }

    /// A resumed run's tasks that an earlier driver had started: an
    /// attempt not yet running (PENDING) runs now as itself; one running
    /// is taken over (`attempt::take_over`: its worker's result, or the
    /// run it awaits), never started twice; a retry that was waiting is
    /// due at once.
    fn take_over(&mut self) {
        let keys: Vec<String> = self.rows.keys().cloned().collect();
        for key in keys {
            let (Some(row), Some(task)) = (self.rows.get(&key).cloned(), self.settings.task(&key)) else { continue };
            let state = LifeCycle::parse(&row.life_cycle_state);
            match state {
                Some(LifeCycle::Blocked) => continue,
                Some(LifeCycle::WaitingForRetry) => {
                    self.retries.push((Instant::now(), key));
                    continue;
                }
                _ => {}
            }
            let bindings = self.bindings(&key, &row);
            let start = self.start_of(&key, task, row, bindings);
            match state {
                Some(LifeCycle::Pending) => self.running.spawn(attempt::run(start)),
                _ => self.running.spawn(attempt::take_over(start)),
            };
            self.in_flight.insert(key);
        }
    }

    fn start_of(&self, key: &str, task: &TaskSettings, row: JobRunRow, bindings: super::Bindings) -> task_run::Start {
        let upstream = self.upstream_facts(key).map(|(k, f)| (k.clone(), Value::Object(f.values.clone()))).collect();
        task_run::Start {
            runs: self.runs.clone(),
            run: self.run.clone(),
            settings: self.settings.clone(),
            overriding: self.doc.overriding_parameters.clone(),
            row,
            task: task.raw.clone(),
            bindings,
            upstream,
            clusters: self.clusters.clone(),
            git: self.git.clone(),
        }
    }

    fn bindings(&self, key: &str, row: &JobRunRow) -> super::Bindings {
        let doc = &self.doc;
        let task = self.settings.task(key);
        super::Bindings {
            job_id: self.run.job_id,
            job_name: doc.run_name.clone(),
            job_run_id: self.run.run_id,
            repair_count: doc.repair_count,
            start_time: self.run.start_time,
            trigger_type: doc.trigger.clone().unwrap_or_else(|| "ONE_TIME".into()),
            parameters: doc.job_parameters.clone(),
            task_key: key.to_string(),
            task_run_id: row.run_id,
            attempt: row.attempt_number,
            notebook_path: task
                .and_then(|t| t.notebook_task.as_ref())
                .map(|n| n.notebook_path.clone())
                .unwrap_or_default(),
            tasks: self.upstream_facts(key).map(|(k, f)| (k.clone(), f.clone())).collect(),
            workspace_id: self.runs.config().workspace_id.clone(),
            workspace_url: self.runs.config().workspace_url.clone(),
            input: None,
        }
    }

    /// What the tasks `key` depends on (directly or not) told: a task sees
    /// the values and references of its upstream tasks only, as on Databricks.
    fn upstream_facts<'a>(&'a self, key: &str) -> impl Iterator<Item = (&'a String, &'a TaskFacts)> + 'a {
        let keys = self.graph.upstream.get(key).into_iter().flatten();
        keys.filter_map(|k| self.facts.get_key_value(k))
    }

    /// A task of this pass ended for good: its dependents may be ready.
    fn mark_done(&mut self, key: &str, done: Done) {
        self.done.insert(key.to_string(), done);
        self.graph.release(key, &self.rows);
    }

    /// An attempt ended: record it, then retry it or mark the task done.
    fn finish(&mut self, finished: Finished) -> Result<()> {
        let key = finished.key.clone();
        self.in_flight.remove(&key);
        let row = self.runs.run_row(finished.task_run_id)?;
        let (saved, state, outcome) = task_run::record(&self.runs, row.clone(), &finished.end)?;
        let failed = state.result.is_some_and(ResultState::is_failure);
        let timed_out = state.result == Some(ResultState::TimedOut);
        let settings = self.settings.clone();
        let Some(task) = settings.task(&key) else { return Ok(()) };
        let first = self.first.get(&key).copied().unwrap_or(0);
        let may_retry = task.may_retry(row.attempt_number, first);
        if failed
            && may_retry
            && (!timed_out || task.retry_on_timeout)
            && !matches!(finished.end, AttemptEnd::Unresolved(_))
        {
            self.notify_task(task, &saved, Event::Failure, true);
            let message = format!("Retrying after attempt {} failed", row.attempt_number);
            let next =
                task_row(&self.run, &key, row.attempt_number + 1, self.repair_id, LifeCycle::WaitingForRetry, &message);
            let next = JobRunRow { run_id: self.runs.store().insert_job_run(&next)?, ..next };
            self.rows.insert(key.clone(), next);
            self.retries.push((Instant::now() + task.retry_interval(), key));
            return Ok(());
        }
        let event = if state.result.is_some_and(ResultState::is_success) { Event::Success } else { Event::Failure };
        self.notify_task(task, &saved, event, false);
        self.rows.remove(&key);
        self.facts.insert(key.clone(), facts_of(&saved));
        self.mark_done(&key, Done { result: state.result.unwrap_or(ResultState::Failed), outcome });
        Ok(())
    }

    /// A task's own notifications; with `alert_on_last_attempt`, a retried
    /// attempt's start and a failure that will be retried stay quiet.
    fn notify_task(&self, task: &TaskSettings, row: &JobRunRow, event: Event, retrying: bool) {
        let last_only = task.alerts.notification_settings.alert_on_last_attempt;
        let first = row.task_key.as_ref().and_then(|k| self.first.get(k)).copied().unwrap_or(0);
        let retried_start = event == Event::Start && row.attempt_number > first;
        if last_only && (retrying || retried_start) {
            return;
        }
        self.runs.notify_task(&self.run, task, row, event);
    }

    /// Attempts still running past their task's duration threshold notify
    /// whom the task names for it.
    fn warn_overdue(&mut self) {
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) = self.overdue.drain(..).partition(|(at, ..)| *at <= now);
        self.overdue = later;
        for (_, key, task_run_id) in due {
            let current = self.rows.get(&key).is_some_and(|r| r.run_id == task_run_id);
            if !current || !self.in_flight.contains(&key) {
                continue;
            }
            let settings = self.settings.clone();
            let (Some(task), Ok(row)) = (settings.task(&key), self.runs.run_row(task_run_id)) else { continue };
            self.notify_task(task, &row, Event::DurationWarning, false);
        }
    }

    fn start_retries(&mut self) -> Result<()> {
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) = self.retries.drain(..).partition(|(at, _)| *at <= now);
        self.retries = later;
        for (_, key) in due {
            self.launch(&key)?;
        }
        Ok(())
    }

    /// Ends a task of this pass without running it to its end (skipped,
    /// or stopped). Its row is read again: a started attempt moved it on.
    fn end_task(&mut self, key: &str, event: RunEvent) -> Result<()> {
        let Some(row) = self.rows.remove(key) else { return Ok(()) };
        let row = self.runs.run_row(row.run_id)?;
        task_run::end_children(&self.runs, row.run_id, &event)?;
        let row = self.runs.apply(row, event)?;
        let result = row.result_state.as_deref().and_then(ResultState::parse).unwrap_or(ResultState::Failed);
        self.facts.insert(key.to_string(), facts_of(&row));
        self.mark_done(key, Done { result, outcome: None });
        Ok(())
    }

    /// Cancel or job timeout: running attempts are dropped (their contexts
    /// with them), every unfinished task ends, and so does the run.
    async fn stop(mut self, reason: Stop) -> Result<()> {
        self.running.abort_all();
        while self.running.join_next().await.is_some() {}
        let (result, message, code) = match &reason {
            Stop::Cancelled(user) => (ResultState::Canceled, format!("Run cancelled by {user}"), "USER_CANCELED"),
            Stop::TimedOut(s) => (
                ResultState::TimedOut,
                format!("The run timed out after {s} seconds (the job's timeout_seconds)"),
                "RUN_EXECUTION_ERROR",
            ),
        };
        let keys: Vec<String> = self.rows.keys().cloned().collect();
        for key in keys {
            let event = match self.in_flight.contains(&key) {
                true => RunEvent::ended_with_code(result, message.clone(), code),
                false => RunEvent::Skipped { result: ResultState::UpstreamCanceled, message: message.clone() },
            };
            self.end_task(&key, event)?;
        }
        self.in_flight.clear();
        self.close(RunEvent::ended_with_code(result, message, code))
    }

    fn conclude(self) -> Result<()> {
        let (result, message) = dag::run_result(&self.nodes, &self.done);
        self.close(RunEvent::ended(result, message))
    }

    /// The run ends; a repair's record notes how, in the same write.
    fn close(self, event: RunEvent) -> Result<()> {
        let mut run = self.runs.run_row(self.run.run_id)?;
        let life_cycle = LifeCycle::parse(&run.life_cycle_state).unwrap_or(LifeCycle::InternalError);
        // `next` is pure: what it answers here is what `apply` will write.
        if let Ok(state) = state::next(life_cycle, &event)
            && let Some(Value::Array(repairs)) = run.doc.get_mut("repairs")
            && let Some(last) = repairs.last_mut()
        {
            last["end_time"] = json!(now_ms());
            last["state"] = state.state_json();
        }
        run.end_time = None;
        let ended = self.runs.apply(run, event)?;
        let notice = match ended.result_state.as_deref().and_then(ResultState::parse) {
            Some(r) if r.is_success() => Event::Success,
            _ => Event::Failure,
        };
        self.runs.notify(self.run.run_id, notice);
        Ok(())
    }
}

const WAITING: &str = "Waiting for upstream tasks";

/// The task graph as the driver walks it: which tasks wait on which, and
/// which are ready, so a finished task touches only its dependents.
#[derive(Default)]
struct Graph {
    index: HashMap<String, usize>,
    dependents: HashMap<String, Vec<String>>,
    /// Every task each task depends on, directly or through others.
    upstream: HashMap<String, HashSet<String>>,
    /// Dependencies of this pass's tasks not yet ended.
    unmet: HashMap<String, usize>,
    ready: VecDeque<String>,
}

impl Graph {
    fn new(nodes: &[Node]) -> Self {
        let mut graph = Graph::default();
        for (i, node) in nodes.iter().enumerate() {
            graph.index.insert(node.task_key.clone(), i);
            for edge in &node.depends_on {
                graph.dependents.entry(edge.task_key.clone()).or_default().push(node.task_key.clone());
            }
        }
        graph.upstream = dag::upstream(nodes);
        graph
    }

    /// Counts what each task of this pass waits on; those waiting on
    /// nothing are ready, in the job's task order.
    fn count_unmet(&mut self, nodes: &[Node], rows: &HashMap<String, JobRunRow>, done: &HashMap<String, Done>) {
        for node in nodes.iter().filter(|n| rows.contains_key(&n.task_key)) {
            let unmet = node.depends_on.iter().filter(|e| !done.contains_key(&e.task_key)).count();
            self.unmet.insert(node.task_key.clone(), unmet);
            if unmet == 0 {
                self.ready.push_back(node.task_key.clone());
            }
        }
    }

    /// `key` ended: its dependents in this pass wait on one task fewer.
    fn release(&mut self, key: &str, rows: &HashMap<String, JobRunRow>) {
        for dependent in self.dependents.get(key).into_iter().flatten() {
            if let Some(unmet) = self.unmet.get_mut(dependent) {
                *unmet = unmet.saturating_sub(1);
                if *unmet == 0 && rows.contains_key(dependent) {
                    self.ready.push_back(dependent.clone());
                }
            }
        }
    }
}

/// The BLOCKED rows of a new run's tasks, so it shows them from the start.
pub(super) fn blocked_rows(runs: &Runs, run: &JobRunRow, settings: &JobSettings) -> Result<()> {
    for task in &settings.tasks {
        runs.store().insert_job_run(&task_row(run, &task.task_key, 0, None, LifeCycle::Blocked, WAITING))?;
    }
    Ok(())
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn skip_reason(result: ResultState) -> &'static str {
    match result {
        ResultState::UpstreamFailed => "an upstream task failed",
        ResultState::UpstreamCanceled => "an upstream task was cancelled",
        ResultState::Disabled => "the task is disabled",
        _ => "its run_if condition or a condition branch ruled it out",
    }
}
