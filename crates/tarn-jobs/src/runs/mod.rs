//! Job runs: triggered (run-now, submit, a `run_job_task`), queued past a
//! job's `max_concurrent_runs`, driven task by task (`driver`), cancelled,
//! repaired, listed and shown. Every transition is written to the store
//! before it is acted on, fenced by the schedulers lease when one is held;
//! `recover` resumes what an earlier holder left in flight.

mod attempt;
mod bindings;
mod compute;
pub(crate) mod dag;
mod document;
mod driver;
mod for_each;
mod pipeline_task;
mod record;
mod repair;
mod show;
pub(crate) mod state;
mod task_run;

pub(crate) use task_run::update_doc;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use serde_json::{Map, Value, json};
use tarn_core::time::now_ms;
use tarn_store::{JobRunRow, RunFilter, Store};
use tokio::sync::{Semaphore, watch};

pub use bindings::{Bindings, TaskFacts};
pub use dag::{Decision, Done, Node};
pub use record::{
    Logs, OutputRecord, ParameterValue, RepairEntry, RepairKind, RunOrTask, RunRecord, TaskRunRecord, Usage,
};
pub use repair::RepairRequest;
pub use state::{Event as RunEvent, LifeCycle, Refusal, ResultState, RunState, Termination};

use crate::error::{JobsError, Result, invalid};
use crate::jobs::Jobs;
use crate::notify::{About, Event, Notifier};
use crate::settings::{Alerts, JobSettings, TaskSettings};
use crate::tasks::{PipelineUpdates, TaskRunner};

#[derive(Debug, Clone)]
pub struct RunsConfig {
    /// Task logs go to `<home>/jobs/runs/`, or to `jobs/runs/` under
    /// `storage`'s object-store root when it has one.
    pub home: PathBuf,
    pub storage: tarn_storage::Storage,
    /// Task attempts running at once, over all runs.
    pub max_parallel_tasks: usize,
    pub workspace_id: String,
    pub workspace_url: String,
    /// What a core-hour of compute is estimated to cost (`TARN_COST_PER_CORE_HOUR`).
    pub cost_per_core_hour: f64,
}

/// Whether a job's or task's alert settings keep a failure of `row` quiet.
fn quiet_failure(alerts: &Alerts, row: &JobRunRow) -> bool {
    let skipped = row.life_cycle_state == LifeCycle::Skipped.as_str();
    let cancelled = row.result_state.as_deref() == Some(ResultState::Canceled.as_str());
    alerts.quiet(skipped, cancelled)
}

/// Why a run is being stopped.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Stop {
    Cancelled(String),
    TimedOut(i64),
}

struct Active {
    stop: watch::Sender<Option<Stop>>,
    finished: watch::Receiver<bool>,
}

/// A run to start.
#[derive(Debug, Clone, Default)]
pub struct Trigger {
    pub job_id: Option<i64>,
    /// The run's settings, as its caller read them.
    pub settings: JobSettings,
    pub run_name: String,
    pub job_parameters: Map<String, Value>,
    /// `notebook_params`, `python_params`... of run-now.
    pub overriding_parameters: Map<String, Value>,
    pub idempotency_token: Option<String>,
    /// JOB_RUN, SUBMIT_RUN or WORKFLOW_RUN.
    pub run_type: &'static str,
    /// ONE_TIME, PERIODIC, FILE_ARRIVAL, RUN_JOB_TASK...
    pub trigger: &'static str,
    pub user: String,
    /// Who the run's tasks run as; the caller (`user`) when empty.
    pub run_as: String,
    pub parent_task_run_id: Option<i64>,
}

/// Who a job's runs run as: the principal its `run_as` names, else its
/// owner.
pub(crate) fn job_run_as(job: &tarn_store::JobRow, settings: &JobSettings) -> String {
    settings.run_as_name().unwrap_or(&job.run_as_user_name).to_string()
}

/// Who a run's tasks run as, with its grants and permissions: as recorded
/// when it started (a run from before `run_as`: its creator).
pub fn run_as(run: &JobRunRow) -> &str {
    run.doc.get("run_as_user_name").and_then(Value::as_str).filter(|n| !n.is_empty()).unwrap_or(&run.creator_user_name)
}

/// `run-now`'s request.
#[derive(Debug, Clone, Default)]
pub struct RunNow {
    pub job_parameters: Option<Value>,
    /// `notebook_params`, `python_params`... as sent.
    pub overriding_parameters: Map<String, Value>,
    pub idempotency_token: Option<String>,
}

/// `runs/submit`'s request: the run's settings (its tasks and clusters),
/// read, their JSON kept as sent.
#[derive(Debug, Clone, Default)]
pub struct Submit {
    pub settings: JobSettings,
    pub run_name: Option<String>,
    pub idempotency_token: Option<String>,
}

/// The runs service. Cheap to clone.
#[derive(Clone)]
pub struct Runs {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<Store>,
    jobs: Jobs,
    runner: Arc<dyn TaskRunner>,
    /// What pipeline tasks start updates through, once plugged in.
    pipelines: OnceLock<Arc<dyn PipelineUpdates>>,
    /// What runs of jobs with a `git_source` check out through, once plugged in.
    git: OnceLock<Arc<dyn crate::git::GitSources>>,
    notifier: Notifier,
    config: RunsConfig,
    active: Mutex<HashMap<i64, Active>>,
    /// Held while deciding whether a run may start, so two triggers of one
    /// job cannot both take its last slot.
    admission: Mutex<()>,
    slots: Arc<Semaphore>,
    /// Transitions refused (not allowed, or stale), since this tarn started.
    refused: AtomicU64,
    /// The lease and epoch every transition is fenced with, once held.
    fence: OnceLock<(&'static str, i64)>,
    /// Set when this tarn stops: no transition is written any more.
    stopping: AtomicBool,
}

fn not_found(run_id: i64) -> JobsError {
    JobsError::NotFound(format!("Run {run_id} does not exist."))
}

impl Runs {
    pub fn new(
        store: Arc<Store>,
        jobs: Jobs,
        runner: Arc<dyn TaskRunner>,
        notifier: Notifier,
        config: RunsConfig,
    ) -> Self {
        let slots = Arc::new(Semaphore::new(config.max_parallel_tasks.max(1)));
        let inner = Inner {
            store,
            jobs,
            runner,
            pipelines: OnceLock::new(),
            git: OnceLock::new(),
            notifier,
            config,
            active: Mutex::new(HashMap::new()),
            admission: Mutex::new(()),
            slots,
            refused: AtomicU64::new(0),
            fence: OnceLock::new(),
            stopping: AtomicBool::new(false),
        };
        Self { inner: Arc::new(inner) }
    }

    /// Pipeline tasks start their updates through `updates` (without it,
    /// they fail saying so).
    pub fn with_pipelines(self, updates: Arc<dyn PipelineUpdates>) -> Self {
        if self.inner.pipelines.set(updates).is_err() {
            tracing::warn!("pipeline updates were plugged in twice; the first stays");
        }
        self
    }

    /// Runs of jobs with a `git_source` check out through `sources`
    /// (without it, their git tasks fail saying so).
    pub fn with_git_sources(self, sources: Arc<dyn crate::git::GitSources>) -> Self {
        if self.inner.git.set(sources).is_err() {
            tracing::warn!("git sources were plugged in twice; the first stays");
        }
        self
    }

    /// From now on every transition is written only while `lease` still
    /// has `epoch`: once another process took the lease, this one's
    /// drivers write nothing more.
    pub fn fence_with(&self, lease: &'static str, epoch: i64) {
        if self.inner.fence.set((lease, epoch)).is_err() {
            tracing::warn!("run transitions were fenced twice; the first fence stays");
        }
    }

    /// Before a stopping tarn stops its workers and engines: from now on no
    /// transition is written, so the runs in flight stay as they are for
    /// the next holder of the lease (or the next start) to resume, rather
    /// than failing as their workers go.
    pub fn stop_writing(&self) {
        self.inner.stopping.store(true, Ordering::SeqCst);
    }

    pub(crate) fn git_sources(&self) -> Option<&dyn crate::git::GitSources> {
        self.inner.git.get().map(|g| &**g)
    }

    pub(crate) fn pipelines(&self) -> Option<&dyn PipelineUpdates> {
        self.inner.pipelines.get().map(|p| &**p)
    }

    fn active(&self) -> MutexGuard<'_, HashMap<i64, Active>> {
        self.inner.active.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    pub(crate) fn runner(&self) -> &dyn TaskRunner {
        &*self.inner.runner
    }

    pub(crate) fn config(&self) -> &RunsConfig {
        &self.inner.config
    }

    pub(crate) fn slots(&self) -> Arc<Semaphore> {
        self.inner.slots.clone()
    }

    pub fn jobs(&self) -> &Jobs {
        &self.inner.jobs
    }

    pub(crate) fn run_row(&self, run_id: i64) -> Result<JobRunRow> {
        self.inner.store.get_job_run(run_id)?.ok_or_else(|| not_found(run_id))
    }

    /// `run-now`: the job's settings with its parameters' defaults, the
    /// request's `job_parameters` over them.
    pub fn run_now(&self, job_id: i64, user: &str, request: RunNow) -> Result<i64> {
        let job = self.inner.jobs.get(job_id)?;
        let settings = JobSettings::from_value(job.settings.clone())?;
        let job_parameters = effective_parameters(&settings, request.job_parameters.as_ref())?;
        let trigger = Trigger {
            run_as: job_run_as(&job, &settings),
            job_id: Some(job_id),
            run_name: settings.name().to_string(),
            settings,
            job_parameters,
            overriding_parameters: request.overriding_parameters,
            idempotency_token: request.idempotency_token.filter(|t| !t.is_empty()),
            run_type: "JOB_RUN",
            trigger: "ONE_TIME",
            user: user.to_string(),
            parent_task_run_id: None,
        };
        self.trigger(trigger)
    }

    /// A run started by a schedule or a file arrival, as the job's owner.
    pub fn run_triggered(&self, job_id: i64, trigger: &'static str) -> Result<i64> {
        let job = self.inner.jobs.get(job_id)?;
        let settings = JobSettings::from_value(job.settings.clone())?;
        let run = Trigger {
            run_as: job_run_as(&job, &settings),
            job_id: Some(job_id),
            run_name: settings.name().to_string(),
            job_parameters: effective_parameters(&settings, None)?,
            settings,
            run_type: "JOB_RUN",
            trigger,
            user: job.run_as_user_name,
            ..Trigger::default()
        };
        self.trigger(run)
    }

    /// `runs/submit`: a one-time run of the settings sent, no job stored.
    pub fn submit(&self, user: &str, request: Submit) -> Result<i64> {
        self.inner.jobs.check(&request.settings)?;
        let trigger = Trigger {
            run_as: request.settings.run_as_name().unwrap_or(user).to_string(),
            run_name: request.run_name.unwrap_or_else(|| "Untitled".into()),
            job_parameters: effective_parameters(&request.settings, None)?,
            settings: request.settings,
            idempotency_token: request.idempotency_token.filter(|t| !t.is_empty()),
            run_type: "SUBMIT_RUN",
            trigger: "ONE_TIME",
            user: user.to_string(),
            ..Trigger::default()
        };
        self.trigger(trigger)
    }

    /// Stores the run (QUEUED, SKIPPED or PENDING by the job's concurrency)
    /// and starts driving it when it may start.
    pub(crate) fn trigger(&self, trigger: Trigger) -> Result<i64> {
        let typed = &trigger.settings;
        let (max, queue) = (typed.max_concurrent_runs(), typed.queues());
        let _admission = self.inner.admission.lock().unwrap_or_else(|p| p.into_inner());
        let running = match trigger.job_id {
            Some(job_id) => self.running_runs(job_id)?,
            None => 0,
        };
        let state = match (running < max, queue) {
            (true, _) => RunState::new(LifeCycle::Pending, "Waiting for the run to start"),
            (false, true) => RunState::new(
                LifeCycle::Queued,
                format!("Queued: the job already has {running} active run(s) (max_concurrent_runs is {max})"),
            ),
            (false, false) => RunState {
                life_cycle: LifeCycle::Skipped,
                ..RunState::ended(
                    ResultState::MaximumConcurrentRunsReached,
                    format!("Skipped: the job already has {running} active run(s) (max_concurrent_runs is {max})"),
                )
            },
        };
        let now = now_ms();
        let doc = json!({
            "settings": typed.raw,
            "run_name": trigger.run_name,
            "job_parameters": trigger.job_parameters,
            "overriding_parameters": trigger.overriding_parameters,
            "trigger": trigger.trigger,
            "parent_task_run_id": trigger.parent_task_run_id,
            "run_as_user_name": if trigger.run_as.is_empty() { &trigger.user } else { &trigger.run_as },
            "repair_count": 0,
            "repairs": [],
        });
        let mut row = JobRunRow {
            run_id: 0,
            job_id: trigger.job_id,
            parent_run_id: None,
            task_key: None,
            attempt_number: 0,
            run_type: trigger.run_type.to_string(),
            life_cycle_state: state.life_cycle.as_str().to_string(),
            result_state: state.result.map(|r| r.as_str().to_string()),
            state_message: state.message,
            termination_code: None,
            creator_user_name: trigger.user,
            idempotency_token: trigger.idempotency_token,
            start_time: now,
            execution_start: None,
            end_time: state.life_cycle.is_final().then_some(now),
            doc,
        };
        let run_id = self.inner.store.insert_job_run(&row)?;
        row.run_id = run_id;
        let fresh = self.inner.store.child_job_runs(run_id)?.is_empty() && !self.active().contains_key(&run_id);
        if fresh && !state.life_cycle.is_final() {
            driver::blocked_rows(self, &row, typed)?;
        }
        if fresh && state.life_cycle == LifeCycle::Pending {
            self.spawn(run_id);
        }
        if fresh && state.life_cycle == LifeCycle::Skipped {
            self.notify(run_id, Event::Failure);
        }
        Ok(run_id)
    }

    /// Active runs of the job that hold a slot (not queued).
    fn running_runs(&self, job_id: i64) -> Result<i64> {
        let filter = RunFilter { job_id: Some(job_id), active_only: true, ..RunFilter::default() };
        let rows = self.inner.store.list_job_runs(&filter, 0, usize::MAX)?;
        Ok(rows.iter().filter(|r| r.life_cycle_state != LifeCycle::Queued.as_str()).count() as i64)
    }

    /// Tells whom the run's settings name about `event`, unless they asked
    /// not to hear of skipped or cancelled runs.
    pub(crate) fn notify(&self, run_id: i64, event: Event) {
        let Ok(row) = self.run_row(run_id) else { return };
        let settings = &row.doc["settings"];
        let typed = JobSettings::parse(settings).unwrap_or_default();
        if event == Event::Failure && quiet_failure(&typed.alerts, &row) {
            return;
        }
        let about = About { job_id: row.job_id, job_name: typed.name().to_string(), task_key: None };
        let record = || match self.run_record(row.clone(), true, false) {
            Ok(record) => Some(RunOrTask::Run(record)),
            Err(e) => {
                tracing::warn!(run_id, error = %e, "reading a run for its notification");
                None
            }
        };
        self.inner.notifier.run_event(settings, about, event, record);
    }

    /// Tells whom a task's own settings name that an attempt of it started
    /// or ended (`row` as recorded).
    pub(super) fn notify_task(&self, run: &JobRunRow, task: &TaskSettings, row: &JobRunRow, event: Event) {
        if event == Event::Failure && quiet_failure(&task.alerts, row) {
            return;
        }
        let about = About {
            job_id: run.job_id,
            job_name: run.doc.get("run_name").and_then(Value::as_str).unwrap_or("Untitled").to_string(),
            task_key: row.task_key.clone(),
        };
        let record = || Some(RunOrTask::Task(self.task_record(row.clone(), Some(task.raw.clone()), false)));
        self.inner.notifier.run_event(&task.raw, about, event, record);
    }

    pub(crate) fn spawn(&self, run_id: i64) {
        let (stop, stop_rx) = watch::channel(None);
        let (done_tx, finished) = watch::channel(false);
        self.active().insert(run_id, Active { stop, finished });
        let runs = self.clone();
        tokio::spawn(async move {
            driver::drive(runs.clone(), run_id, stop_rx).await;
            runs.active().remove(&run_id);
            let _ = done_tx.send(true);
            runs.promote_after(run_id);
        });
    }

    /// Starts the oldest queued run of the job whose run just ended.
    fn promote_after(&self, run_id: i64) {
        let Ok(row) = self.run_row(run_id) else { return };
        let Some(job_id) = row.job_id else { return };
        if let Err(e) = self.promote(job_id) {
            tracing::warn!(job_id, error = %e, "starting a queued run");
        }
    }

    fn promote(&self, job_id: i64) -> Result<()> {
        let _admission = self.inner.admission.lock().unwrap_or_else(|p| p.into_inner());
        let filter = RunFilter { job_id: Some(job_id), active_only: true, ..RunFilter::default() };
        let mut rows = self.inner.store.list_job_runs(&filter, 0, usize::MAX)?;
        rows.reverse();
        let running = rows.iter().filter(|r| r.life_cycle_state != LifeCycle::Queued.as_str()).count() as i64;
        let Some(next) = rows.into_iter().find(|r| r.life_cycle_state == LifeCycle::Queued.as_str()) else {
            return Ok(());
        };
        let max = JobSettings::parse(&next.doc["settings"]).map(|s| s.max_concurrent_runs()).unwrap_or(1);
        if running >= max {
            return Ok(());
        }
        let next = self.apply(next, RunEvent::Admitted)?;
        self.spawn(next.run_id);
        Ok(())
    }

    /// Resolves when the run has ended.
    pub async fn wait(&self, run_id: i64) {
        loop {
            let receiver = self.active().get(&run_id).map(|a| a.finished.clone());
            match receiver {
                Some(mut finished) => {
                    let _ = finished.wait_for(|done| *done).await;
                }
                // Queued, or about to be resumed by `recover`.
                None => {
                    let unfinished = self
                        .run_row(run_id)
                        .is_ok_and(|r| !LifeCycle::parse(&r.life_cycle_state).is_some_and(LifeCycle::is_final));
                    if !unfinished {
                        return;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// `runs/cancel`: a driven run stops its tasks; a queued one ends at
    /// once, unless it was admitted meanwhile (the fence refuses the end),
    /// and then its driver stops it.
    pub fn cancel(&self, run_id: i64, user: &str) -> Result<()> {
        for _ in 0..2 {
            let row = self.run_row(run_id)?;
            let sender = self.active().get(&run_id).map(|a| a.stop.clone());
            if let Some(stop) = sender {
                stop.send_replace(Some(Stop::Cancelled(user.to_string())));
                return Ok(());
            }
            if row.life_cycle_state != LifeCycle::Queued.as_str() {
                return Ok(());
            }
            let message = format!("Cancelled by {user} while queued");
            match self.apply(row, RunEvent::ended_with_code(ResultState::Canceled, message, "USER_CANCELED")) {
                Err(JobsError::Refused(Refusal::Stale { .. })) => continue,
                other => return other.map(|_| ()),
            }
        }
        Ok(())
    }

    /// `runs/cancel-all`: the job's active runs, or every queued run.
    pub fn cancel_all(&self, job_id: Option<i64>, all_queued: bool, user: &str) -> Result<()> {
        if job_id.is_none() && !all_queued {
            return Err(invalid("Either job_id or all_queued_runs must be given"));
        }
        let filter = RunFilter { job_id, active_only: true, ..RunFilter::default() };
        for row in self.inner.store.list_job_runs(&filter, 0, usize::MAX)? {
            if job_id.is_some() || row.life_cycle_state == LifeCycle::Queued.as_str() {
                self.cancel(row.run_id, user)?;
            }
        }
        Ok(())
    }

    /// `runs/delete`: a finished run with its task runs and their logs.
    pub fn delete(&self, run_id: i64) -> Result<()> {
        let row = self.run_row(run_id)?;
        if row.task_key.is_some() {
            return Err(invalid(format!("Run {run_id} is a task run; delete its job run instead")));
        }
        if !LifeCycle::parse(&row.life_cycle_state).is_some_and(LifeCycle::is_final) {
            return Err(invalid(format!("Run {run_id} is still active; cancel it before deleting it")));
        }
        for task in self.inner.store.child_job_runs(run_id)? {
            self.delete_task_log(task.run_id);
        }
        self.inner.store.delete_job_run(run_id)?;
        Ok(())
    }

    fn log_path(&self, task_run_id: i64) -> PathBuf {
        self.inner.config.home.join("jobs").join("runs").join(format!("{task_run_id}.log"))
    }

    fn log_key(task_run_id: i64) -> String {
        format!("jobs/runs/{task_run_id}.log")
    }

    /// Keeps what a task attempt printed, for `runs/get-output`.
    pub(crate) fn write_task_log(&self, task_run_id: i64, logs: &str) -> std::result::Result<(), String> {
        if let Some(root) = self.inner.config.storage.object() {
            let bytes = bytes::Bytes::from(logs.as_bytes().to_vec());
            return root.put(&Self::log_key(task_run_id), bytes, false).map_err(|e| e.to_string());
        }
        let path = self.log_path(task_run_id);
        let written = path.parent().map(std::fs::create_dir_all).transpose().and_then(|_| std::fs::write(&path, logs));
        written.map_err(|e| format!("{}: {e}", path.display()))
    }

    /// What a task attempt printed (none kept: empty).
    pub(crate) fn task_log(&self, task_run_id: i64) -> record::Logs {
        match self.inner.config.storage.object() {
            Some(root) => root.get(&Self::log_key(task_run_id)).map(|b| record::logs(&b)).unwrap_or_default(),
            None => record::read_logs(&self.log_path(task_run_id)),
        }
    }

    fn delete_task_log(&self, task_run_id: i64) {
        match self.inner.config.storage.object() {
            Some(root) => drop(root.delete(&Self::log_key(task_run_id))),
            None => drop(std::fs::remove_file(self.log_path(task_run_id))),
        }
    }

    /// The one writer of run and task run states: `event` taken from the
    /// state `row` was read in, written only if the stored state is still
    /// that one (so a stale driver, a repair racing a cancel or a recovery
    /// cannot overwrite a newer state). The row's other changes (its
    /// document, times) are written with it. A refusal is logged, counted
    /// and answered as [`JobsError::Refused`]; nothing is written.
    pub(crate) fn apply(&self, mut row: JobRunRow, event: RunEvent) -> Result<JobRunRow> {
        let from = row.life_cycle_state.clone();
        if self.inner.stopping.load(Ordering::SeqCst) {
            return Err(self.refuse(row.run_id, Refusal::Stopping { event: event.name() }));
        }
        let allowed = match LifeCycle::parse(&from) {
            Some(life_cycle) => state::next(life_cycle, &event),
            None => Err(Refusal::NotAllowed { from: from.clone(), event: event.name() }),
        };
        let state = allowed.map_err(|refusal| self.refuse(row.run_id, refusal))?;
        row.life_cycle_state = state.life_cycle.as_str().to_string();
        row.result_state = state.result.map(|r| r.as_str().to_string());
        row.state_message = state.message;
        row.termination_code = state.code;
        match event {
            RunEvent::Started => {
                row.execution_start.get_or_insert(now_ms());
            }
            RunEvent::Repaired => row.end_time = None,
            _ if state.life_cycle.is_final() => {
                row.end_time.get_or_insert(now_ms());
            }
            _ => {}
        }
        let fence = self.inner.fence.get().map(|&(lease, epoch)| tarn_store::Fence { lease, epoch });
        if !self.inner.store.transition_job_run(&row, &from, fence)? {
            return Err(self.refuse(row.run_id, Refusal::Stale { expected: from, event: event.name() }));
        }
        Ok(row)
    }

    fn refuse(&self, run_id: i64, refusal: Refusal) -> JobsError {
        self.inner.refused.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(run_id, %refusal, "a run transition was refused");
        JobsError::Refused(refusal)
    }

    /// How many transitions were refused since this tarn started.
    pub fn refused_transitions(&self) -> u64 {
        self.inner.refused.load(Ordering::Relaxed)
    }

    /// When this process starts driving runs (at a start, or when it takes
    /// the schedulers lease from a replica that died): runs left in flight
    /// are driven on from where their tasks are (ended tasks stay ended,
    /// attempts still running are taken over, see `driver`); queued runs
    /// start. Answers how many runs were resumed.
    pub fn recover(&self) -> Result<usize> {
        let mut resumed = 0;
        let mut queued_jobs = Vec::new();
        for row in self.inner.store.unfinished_job_runs()? {
            if row.task_key.is_some() {
                continue;
            }
            let state = LifeCycle::parse(&row.life_cycle_state);
            if state == Some(LifeCycle::Queued) {
                queued_jobs.extend(row.job_id);
                continue;
            }
            if self.active().contains_key(&row.run_id) {
                continue;
            }
            tracing::info!(run_id = row.run_id, state = row.life_cycle_state, "resuming a run left in flight");
            self.spawn(row.run_id);
            resumed += 1;
        }
        queued_jobs.dedup();
        for job_id in queued_jobs {
            self.promote(job_id)?;
        }
        Ok(resumed)
    }
}

/// The job's parameter defaults with the run's values over them; a name the
/// job does not define is refused.
fn effective_parameters(settings: &JobSettings, given: Option<&Value>) -> Result<Map<String, Value>> {
    let mut parameters = Map::new();
    for p in &settings.parameters {
        parameters.insert(p.name.clone(), p.default.clone().unwrap_or(json!("")));
    }
    match given {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (name, value) in map {
                if !parameters.contains_key(name) {
                    return Err(invalid(format!("Job parameter '{name}' is not defined by the job")));
                }
                let text = value.as_str().map(str::to_string).unwrap_or_else(|| value.to_string());
                parameters.insert(name.clone(), Value::String(text));
            }
        }
        Some(_) => return Err(invalid("job_parameters must be an object of names to values")),
    }
    Ok(parameters)
}
