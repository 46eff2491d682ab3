//! Commands of one context: their states, and the task that feeds them to
//! the context's worker one at a time (as Databricks runs a context's
//! commands in order), enforcing the timeout and keeping the cluster awake.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::worker::{Worker, WorkerExit};
use super::{Context, WorkerPool, magic};
use crate::ClusterManager;
use crate::env::PythonEnv;
use crate::libraries::LibraryFiles;
use crate::process;

/// Commands kept per context for `commands/status`; older ones are forgotten.
const KEPT_COMMANDS: usize = 200;
/// How long an interrupted command may take to stop before its worker is killed.
const INTERRUPT_GRACE: Duration = Duration::from_secs(10);
const KEEPALIVE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandStatus {
    Queued,
    Running,
    Cancelling,
    Finished,
    Cancelled,
    Error,
}

impl CommandStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "Queued",
            Self::Running => "Running",
            Self::Cancelling => "Cancelling",
            Self::Finished => "Finished",
            Self::Cancelled => "Cancelled",
            Self::Error => "Error",
        }
    }

    pub fn is_done(self) -> bool {
        matches!(self, Self::Finished | Self::Cancelled | Self::Error)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Python,
    Sql,
}

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Python => "python",
            Self::Sql => "sql",
        }
    }
}

/// A command as `commands/status` shows it.
#[derive(Debug, Clone)]
pub struct CommandSnapshot {
    pub id: String,
    pub status: CommandStatus,
    pub results: Option<Value>,
}

#[derive(Debug)]
struct Entry {
    status: CommandStatus,
    results: Option<Value>,
}

/// The commands of one context, newest last.
#[derive(Debug, Default)]
pub struct Commands {
    entries: HashMap<String, Entry>,
    order: VecDeque<String>,
}

impl Commands {
    pub fn add(&mut self, id: &str) {
        self.entries.insert(id.to_string(), Entry { status: CommandStatus::Queued, results: None });
        self.order.push_back(id.to_string());
        while self.order.len() > KEPT_COMMANDS {
            if let Some(old) = self.order.pop_front() {
                self.entries.remove(&old);
            }
        }
    }

    pub fn get(&self, id: &str) -> Option<CommandSnapshot> {
        self.entries.get(id).map(|e| CommandSnapshot {
            id: id.to_string(),
            status: e.status,
            results: e.results.clone(),
        })
    }

    pub fn status(&self, id: &str) -> Option<CommandStatus> {
        self.entries.get(id).map(|e| e.status)
    }

    pub fn set(&mut self, id: &str, status: CommandStatus, results: Option<Value>) {
        if let Some(entry) = self.entries.get_mut(id) {
            entry.status = status;
            entry.results = results;
        }
    }

    /// Whether a command is queued or running.
    pub fn any_active(&self) -> bool {
        self.entries.values().any(|e| !e.status.is_done())
    }

    /// Ends every command not yet done with `results` (the worker is gone).
    pub fn fail_pending(&mut self, results: &Value) {
        for entry in self.entries.values_mut().filter(|e| !e.status.is_done()) {
            entry.status = CommandStatus::Error;
            entry.results = Some(results.clone());
        }
    }
}

/// One command for the worker.
pub struct Job {
    pub id: String,
    pub language: Language,
    pub code: String,
    /// The file the code came from, for tracebacks and `__file__`.
    pub filename: Option<String>,
    /// A request other than `execute` for the worker (a job task's `reset`).
    pub request: Option<Value>,
    pub timeout: Duration,
    /// Where the worker also writes the result (a job task's command).
    pub reply_file: Option<std::path::PathBuf>,
}

pub fn error_results(summary: &str, cause: &str) -> Value {
    json!({"resultType": "error", "summary": summary, "cause": cause})
}

/// What gives a context a new Python process: in a new environment after
/// `%pip install`, or in the same one after `dbutils.library.restartPython()`.
pub struct Interpreter {
    pub pool: WorkerPool,
    pub files: Arc<dyn LibraryFiles>,
    /// The worker's `attach` request, sent again to a new process.
    pub attach: Value,
    /// The environment the context started in, and the `%pip` steps over it.
    pub base: PythonEnv,
    pub steps: Vec<Vec<String>>,
    pub env: PythonEnv,
}

/// Runs the context's commands until its job channel closes or the worker
/// ends; then the context is failed (unless it was destroyed).
pub async fn run(
    context: Arc<Context>,
    mut worker: Worker,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    clusters: ClusterManager,
    mut interpreter: Interpreter,
) {
    while let Some(job) = jobs.recv().await {
        if context.commands().status(&job.id) != Some(CommandStatus::Queued) {
            continue; // cancelled while queued
        }
        context.commands().set(&job.id, CommandStatus::Running, None);
        clusters.record_activity(&context.cluster_id);
        let pip = match (&job.request, job.language) {
            (None, Language::Python) => magic::pip_steps(&job.code, interpreter.files.as_ref()),
            _ => None,
        };
        let outcome = match pip {
            Some(steps) => pip_install(&context, &mut worker, &mut interpreter, steps).await,
            None => match execute(&context, &mut worker, &job, &clusters).await {
                Ok((status, results)) if results.get("restartPython").and_then(Value::as_bool) == Some(true) => {
                    let env = interpreter.env.clone();
                    restart(&context, &mut worker, &interpreter, &env).await.map(|()| (status, results))
                }
                other => other,
            },
        };
        clusters.record_activity(&context.cluster_id);
        context.touch();
        match outcome {
            Ok((status, results)) => {
                context.commands().set(&job.id, status, Some(results));
                context.done.notify_waiters();
            }
            Err(exit) => {
                let summary = format!("The Python worker of this context stopped: {}", exit.0);
                let results = error_results(
                    &summary,
                    &format!(
                        "{summary}.\nThe context's state is lost; create a new context (log: {}).",
                        worker.log_file.display()
                    ),
                );
                context.commands().fail_pending(&results);
                context.fail(summary);
                context.done.notify_waiters();
                return;
            }
        }
    }
}

/// `%pip install`: the context's steps plus these, as an overlay over the
/// environment it started in; when every step installs, its Python restarts
/// there (globals are lost, as on Databricks). A failed step changes nothing.
async fn pip_install(
    context: &Context,
    worker: &mut Worker,
    interpreter: &mut Interpreter,
    steps: Result<Vec<Vec<String>>, String>,
) -> Result<(CommandStatus, Value), WorkerExit> {
    let failed = |why: &str| Ok((CommandStatus::Finished, error_results(why, why)));
    let steps = match steps {
        Ok(steps) => steps,
        Err(why) => return failed(&why),
    };
    let mut all = interpreter.steps.clone();
    all.extend(steps.iter().cloned());
    let overlay = match interpreter.pool.overlay(&interpreter.base, all.clone()).await {
        Ok(overlay) => overlay,
        Err(e) => return failed(&format!("%pip install failed: {e}")),
    };
    if let Some(step) = overlay.failure() {
        return failed(&format!("%pip install failed:\n{}", step.error.as_deref().unwrap_or_default()));
    }
    let new = &overlay.outcomes[overlay.outcomes.len().saturating_sub(steps.len())..];
    let mut report: String = new.iter().map(|o| o.log.as_str()).collect();
    restart(context, worker, interpreter, &overlay.env).await?;
    interpreter.steps = all;
    interpreter.env = overlay.env;
    report.push_str("Python interpreter restarted with the new libraries.\n");
    Ok((CommandStatus::Finished, json!({"resultType": "text", "data": report})))
}

/// Replaces the context's worker with a new one in `env`, attached as the
/// old one was; the context keeps its id.
async fn restart(
    context: &Context,
    worker: &mut Worker,
    interpreter: &Interpreter,
    env: &PythonEnv,
) -> Result<(), WorkerExit> {
    let mut fresh = interpreter.pool.spawn_at(env).await.map_err(|e| WorkerExit(e.to_string()))?;
    super::attach(&mut fresh, &interpreter.attach).await.map_err(WorkerExit)?;
    context.pid.store(fresh.pid, std::sync::atomic::Ordering::SeqCst);
    // The old process ends when its handle is dropped (kill on drop).
    *worker = fresh;
    Ok(())
}

/// Runs one command: interrupts it past its timeout, kills the worker when an
/// interrupt does not stop it.
async fn execute(
    context: &Context,
    worker: &mut Worker,
    job: &Job,
    clusters: &ClusterManager,
) -> Result<(CommandStatus, Value), WorkerExit> {
    let pid = worker.pid;
    let request = job.request.clone().unwrap_or_else(|| {
        json!({
            "op": "execute",
            "language": job.language.as_str(),
            "code": job.code,
            "filename": job.filename,
            "reply_file": job.reply_file,
        })
    });
    let reply = worker.request(&request);
    tokio::pin!(reply);
    let deadline = tokio::time::sleep(job.timeout);
    tokio::pin!(deadline);
    let mut keepalive = tokio::time::interval(KEEPALIVE);
    let mut timed_out = false;
    let mut stop = Stop::Running;
    let reply = loop {
        let kill = async {
            match stop {
                Stop::Interrupted(at) => tokio::time::sleep_until(at).await,
                Stop::Running | Stop::Killed => std::future::pending().await,
            }
        };
        tokio::select! {
            reply = &mut reply => break reply?,
            _ = keepalive.tick() => clusters.record_activity(&context.cluster_id),
            () = &mut deadline, if !timed_out => {
                timed_out = true;
                stop = stop.interrupt(pid);
            }
            () = context.cancel_requested(&job.id), if stop == Stop::Running => stop = stop.interrupt(pid),
            () = kill => {
                process::signal(pid, libc::SIGKILL);
                stop = Stop::Killed;
            }
        }
    };
    Ok(outcome(context, job, reply, timed_out))
}

/// How far stopping a running command has gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Running,
    /// SIGINT sent; the worker is killed if the command still runs at this instant.
    Interrupted(tokio::time::Instant),
    Killed,
}

impl Stop {
    fn interrupt(self, pid: u32) -> Self {
        match self {
            Stop::Running => {
                process::signal(pid, libc::SIGINT);
                Stop::Interrupted(tokio::time::Instant::now() + INTERRUPT_GRACE)
            }
            other => other,
        }
    }
}

fn outcome(context: &Context, job: &Job, reply: Value, timed_out: bool) -> (CommandStatus, Value) {
    let cancelled = reply.get("cancelled").and_then(Value::as_bool) == Some(true);
    if timed_out {
        let summary = format!("Command timed out after {} seconds and was interrupted", job.timeout.as_secs());
        return (CommandStatus::Finished, error_results(&summary, &format!("TimeoutError: {summary}.")));
    }
    if cancelled || context.commands().status(&job.id) == Some(CommandStatus::Cancelling) {
        return (CommandStatus::Cancelled, error_results("Command cancelled", "The command was cancelled by a user."));
    }
    if reply.get("ok").and_then(Value::as_bool) == Some(false) {
        let error = reply.get("error").and_then(Value::as_str).unwrap_or("unknown error");
        return (CommandStatus::Error, error_results(error, error));
    }
    (CommandStatus::Finished, reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_kept_up_to_a_limit_and_fail_together() {
        let mut commands = Commands::default();
        for i in 0..=KEPT_COMMANDS {
            commands.add(&format!("c{i}"));
        }
        assert!(commands.get("c0").is_none(), "the oldest is forgotten");
        assert_eq!(commands.status("c1"), Some(CommandStatus::Queued));
        for i in 1..KEPT_COMMANDS {
            commands.set(&format!("c{i}"), CommandStatus::Finished, Some(json!({"resultType": "text"})));
        }
        assert!(commands.any_active());
        let gone = error_results("worker gone", "it was killed");
        commands.fail_pending(&gone);
        assert!(!commands.any_active());
        let last = commands.get(&format!("c{KEPT_COMMANDS}")).unwrap();
        assert_eq!((last.status, last.results), (CommandStatus::Error, Some(gone)));
        assert_eq!(commands.status("c1"), Some(CommandStatus::Finished), "finished commands keep their results");
    }

    #[test]
    fn only_finished_cancelled_and_error_are_done() {
        let done: Vec<_> = [
            CommandStatus::Queued,
            CommandStatus::Running,
            CommandStatus::Cancelling,
            CommandStatus::Finished,
            CommandStatus::Cancelled,
            CommandStatus::Error,
        ]
        .into_iter()
        .filter(|s| s.is_done())
        .map(CommandStatus::as_str)
        .collect();
        assert_eq!(done, ["Finished", "Cancelled", "Error"]);
    }
}
