//! A task attempt's execution context on the task's compute, with its
//! widgets, upstream task values and argv. Contexts are kept warm between
//! tasks: one whose attempt ended is reset (fresh globals and Spark
//! session) and taken by the next task on the same compute, environment
//! and user; one dropped mid-command (a timeout, a cancel) is destroyed,
//! its worker killed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value, json};
use tarn_compute::context::{CommandStatus, Compute, ContextStatus, Contexts, Language, TaskSetup};
use tarn_compute::process;
use tarn_core::secret_ref::SecretRef;

use super::{Attempt, Ending, Engines, Outcome, TaskCompute, WorkerNotes};

/// How often a taken-over attempt looks for its worker's result.
const TAKE_OVER_POLL: Duration = Duration::from_millis(250);

/// Idle task contexts by what they run on.
#[derive(Clone, Default)]
pub struct ContextPool {
    idle: Arc<Mutex<HashMap<String, Vec<String>>>>,
    /// Idle contexts kept per key; 0 turns reuse off.
    pub keep: usize,
}

impl ContextPool {
    pub fn new(keep: usize) -> Self {
        Self { idle: Arc::default(), keep }
    }

    fn take(&self, key: &str) -> Option<String> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).get_mut(key)?.pop()
    }

    /// Keeps the context for the next task; false when the pool is full.
    fn put(&self, key: &str, id: &str) -> bool {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = idle.entry(key.to_string()).or_default();
        if list.len() >= self.keep {
            return false;
        }
        list.push(id.to_string());
        true
    }
}

pub(super) struct TaskContext {
    contexts: Contexts,
    pool: ContextPool,
    key: String,
    id: String,
    /// False while a command runs: dropped then, the context is destroyed.
    finished: bool,
    notes: WorkerNotes,
    /// Where the worker writes the attempt's last result.
    reply_file: PathBuf,
}

/// What one command of the task ended with.
pub(super) enum Step {
    Output(String),
    Exit { value: String, stdout: String },
    Error { summary: String, cause: String, stdout: String },
}

/// A command's result, with the task values the context holds after it.
pub(super) struct StepResult {
    pub step: Step,
    pub values: Option<Map<String, Value>>,
}

impl StepResult {
    /// The outcome of a task that is this one command (a file or a wheel).
    pub fn into_outcome(self, cluster_id: Option<String>) -> Outcome {
        let mut outcome = Outcome::succeeded(String::new());
        outcome.cluster_id = cluster_id;
        if let Some(values) = self.values {
            outcome.values = values;
        }
        match self.step {
            Step::Output(text) => outcome.logs = text,
            Step::Exit { value, stdout } => {
                outcome.logs = stdout;
                outcome.notebook_result = Some(value);
            }
            Step::Error { summary, cause, stdout } => {
                outcome.logs = stdout;
                outcome.ending = Ending::Failed { error: summary, trace: Some(cause) };
            }
        }
        outcome
    }
}

fn text(results: &Value, field: &str) -> String {
    results.get(field).and_then(Value::as_str).unwrap_or_default().to_string()
}

/// Replaces `{{secrets/…}}` parameters (widgets and argv) with their values,
/// read with `user`'s permissions; the values, for the kernel to redact.
async fn resolve_secrets(
    engines: &Engines,
    user: &str,
    widgets: &mut Map<String, Value>,
    argv: Option<&mut Vec<String>>,
) -> Result<Vec<String>, String> {
    let texts = widgets
        .values_mut()
        .filter_map(|v| match v {
            Value::String(text) => Some(text),
            _ => None,
        })
        .chain(argv.into_iter().flatten());
    let mut values = Vec::new();
    for text in texts {
        let Some(reference) = SecretRef::parse(text) else { continue };
        let reference = reference?;
        let source = engines.secrets.as_ref().ok_or_else(|| format!("{reference}: secrets are not available here"))?;
        let value = source.secret(user, &reference).await?;
        values.push(value.clone());
        *text = value;
    }
    Ok(values)
}

impl TaskContext {
    pub async fn open(engines: &Engines, attempt: &Attempt, argv: Option<Vec<String>>) -> Result<Self, String> {
        let compute = match &attempt.compute {
            TaskCompute::Cluster(id) => {
                engines.ensure_running(id, &attempt.user).await?;
                Compute::Cluster(id.clone())
            }
            TaskCompute::Serverless => Compute::Serverless,
        };
        let mut widgets = attempt.widgets.clone();
        let mut argv = argv;
        let secret_values = resolve_secrets(engines, &attempt.user, &mut widgets, argv.as_mut()).await?;
        let mut attach = Map::new();
        attach.insert("widgets".into(), Value::Object(widgets));
        attach.insert("task_values".into(), Value::Object(attempt.upstream_values.clone()));
        attach.insert("secret_values".into(), json!(secret_values));
        if let Some(argv) = argv {
            attach.insert("argv".into(), json!(argv));
        }
        let dependencies =
            attempt.dependencies.iter().map(|d| engines.local_dependency(d)).collect::<Result<Vec<_>, _>>()?;
        let key = format!("{compute:?}|{}|{}", dependencies.join(" "), attempt.user);
        let pool = engines.pool.clone();
        let contexts = engines.contexts.clone();
        let reply_file = engines.replies.join(format!("{}.json", attempt.task_run_id));
        let context = |id| Self {
            contexts: contexts.clone(),
            pool: pool.clone(),
            key: key.clone(),
            id,
            finished: true,
            notes: attempt.notes.clone(),
            reply_file: reply_file.clone(),
        };
        while let Some(id) = pool.take(&key) {
            let alive = contexts.status(None, &id).is_ok_and(|s| s.status == ContextStatus::Running);
            if alive {
                match contexts.reset(&id, attach.clone()).await {
                    Ok(()) => return Ok(context(id)),
                    Err(e) => tracing::warn!(context_id = id, error = %e, "a kept task context could not be reset"),
                }
            }
            let _ = contexts.destroy(None, &id);
        }
        let setup = TaskSetup { dependencies, attach };
        let id = contexts
            .create_with(compute, Language::Python, &attempt.user, setup)
            .await
            .map_err(|e| format!("The task's execution context could not start: {e}"))?;
        Ok(context(id))
    }

    /// The cluster whose engine the context uses (the serverless one included).
    pub fn cluster_id(&self) -> Option<String> {
        self.contexts.status(None, &self.id).ok().map(|s| s.cluster_id)
    }

    /// Runs a command to its end. Only between commands may the context
    /// serve another task once this one is dropped.
    pub async fn run(&mut self, language: Language, code: String, filename: Option<String>) -> StepResult {
        self.note_worker(None);
        self.execute(language, code, filename, None).await
    }

    /// Runs the attempt's last command: its result also goes to the reply
    /// file, so a tarn that takes the run over after this one died gets it.
    pub async fn run_last(&mut self, language: Language, code: String, filename: Option<String>) -> StepResult {
        let reply_file = self.reply_file.clone();
        let _ = std::fs::remove_file(&reply_file);
        self.note_worker(Some(&reply_file));
        let result = self.execute(language, code, filename, Some(reply_file.clone())).await;
        let _ = std::fs::remove_file(&reply_file);
        result
    }

    async fn execute(
        &mut self,
        language: Language,
        code: String,
        filename: Option<String>,
        reply_file: Option<PathBuf>,
    ) -> StepResult {
        self.finished = false;
        let ran = self.contexts.run(&self.id, language, code, filename, reply_file).await;
        self.finished = true;
        match ran {
            Ok(snapshot) => step_of(snapshot.status, snapshot.results.unwrap_or(Value::Null)),
            Err(e) => StepResult { step: error(e.to_string(), String::new()), values: None },
        }
    }

    /// Records which process runs the attempt now, on its task run.
    fn note_worker(&self, reply_file: Option<&PathBuf>) {
        let Ok(status) = self.contexts.status(None, &self.id) else { return };
        let ticks = process::start_ticks(status.pid);
        self.notes.record(&json!({
            "host": process::host_name(),
            "pid": status.pid,
            "ticks": ticks,
            "reply_file": reply_file,
        }));
    }
}

/// A command's result as a task sees it, with the task values it holds.
fn step_of(status: CommandStatus, results: Value) -> StepResult {
    let values = results.get("taskValues").and_then(Value::as_object).cloned();
    let cancelled = results.get("cancelled").and_then(Value::as_bool) == Some(true);
    let step = match (status, results.get("resultType").and_then(Value::as_str)) {
        (CommandStatus::Finished, Some("error")) | (CommandStatus::Error | CommandStatus::Cancelled, _) => {
            Step::Error {
                summary: text(&results, "summary"),
                cause: text(&results, "cause"),
                stdout: text(&results, "stdout"),
            }
        }
        _ if cancelled => error("The command was interrupted".into(), String::new()),
        _ if results.get("notebookExit").and_then(Value::as_bool) == Some(true) => {
            Step::Exit { value: text(&results, "data"), stdout: text(&results, "stdout") }
        }
        (_, Some("table")) => Step::Output(results.get("data").map(Value::to_string).unwrap_or_default()),
        _ => Step::Output(text(&results, "data")),
    };
    StepResult { step, values }
}

/// The outcome of an attempt an earlier tarn left running, from the worker
/// it recorded: the result the worker wrote to its reply file, waited for
/// while the worker (a process of this host) still runs. A worker that was
/// between commands, or ended without a result, cannot give one: it is
/// stopped and the attempt fails. Dropped (a cancel, a timeout), it stops
/// the worker.
pub(super) async fn take_over(worker: &Value) -> Outcome {
    let here = worker.get("host").and_then(Value::as_str) == Some(process::host_name().as_str());
    let pid = worker.get("pid").and_then(Value::as_u64).and_then(|p| u32::try_from(p).ok());
    let ticks = worker.get("ticks").and_then(Value::as_i64);
    let mut process = match (here, pid, ticks) {
        (true, Some(pid), Some(ticks)) => Some(WorkerProcess { pid, ticks, armed: true }),
        _ => None,
    };
    let Some(reply_file) = worker.get("reply_file").and_then(Value::as_str).map(PathBuf::from) else {
        drop(process);
        return Outcome::failed(
            "tarn stopped while this attempt ran a command before its last one; the attempt cannot be resumed there",
        );
    };
    loop {
        let alive = process.as_ref().is_some_and(WorkerProcess::alive);
        // Read after the liveness check: a worker writes its result before it ends.
        if let Ok(text) = std::fs::read_to_string(&reply_file) {
            let _ = std::fs::remove_file(&reply_file);
            // Its result is in: it ends by itself.
            if let Some(p) = process.as_mut() {
                p.armed = false;
            }
            let results: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let mut outcome = step_of(CommandStatus::Finished, results).into_outcome(None);
            outcome.logs.insert_str(0, "(resumed: this attempt's worker outlived the tarn that started it)\n");
            return outcome;
        }
        if !alive {
            return Outcome::failed("tarn stopped while this attempt ran, and its worker ended without a result");
        }
        tokio::time::sleep(TAKE_OVER_POLL).await;
    }
}

/// A taken-over worker: killed if the attempt is dropped before its result.
struct WorkerProcess {
    pid: u32,
    ticks: i64,
    armed: bool,
}

impl WorkerProcess {
    fn alive(&self) -> bool {
        process::start_ticks(self.pid) == Some(self.ticks)
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        if self.armed {
            process::kill_if_same(self.pid, self.ticks);
        }
    }
}

fn error(summary: String, stdout: String) -> Step {
    Step::Error { cause: summary.clone(), summary, stdout }
}

impl Drop for TaskContext {
    fn drop(&mut self) {
        if self.finished && self.pool.put(&self.key, &self.id) {
            return;
        }
        if let Err(e) = self.contexts.destroy(None, &self.id) {
            tracing::debug!(context_id = self.id, error = %e, "destroying a task's context");
        }
    }
}
