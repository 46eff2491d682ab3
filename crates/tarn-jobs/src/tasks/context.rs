//! A task attempt's execution context: created on the task's compute with
//! its widgets, upstream task values and argv, destroyed (its worker killed)
//! when the attempt ends or is dropped.

use serde_json::{Map, Value, json};
use tarn_compute::context::{CommandStatus, Compute, Contexts, Language, TaskSetup};

use super::{Attempt, Engines, TaskCompute};

pub(super) struct TaskContext {
    contexts: Contexts,
    id: String,
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

fn text(results: &Value, field: &str) -> String {
    results.get(field).and_then(Value::as_str).unwrap_or_default().to_string()
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
        let mut attach = Map::new();
        attach.insert("widgets".into(), Value::Object(attempt.widgets.clone()));
        attach.insert("task_values".into(), Value::Object(attempt.upstream_values.clone()));
        if let Some(argv) = argv {
            attach.insert("argv".into(), json!(argv));
        }
        let dependencies =
            attempt.dependencies.iter().map(|d| engines.local_dependency(d)).collect::<Result<Vec<_>, _>>()?;
        let setup = TaskSetup { dependencies, attach };
        let id = engines
            .contexts
            .create_with(compute, Language::Python, &attempt.user, setup)
            .await
            .map_err(|e| format!("The task's execution context could not start: {e}"))?;
        Ok(Self { contexts: engines.contexts.clone(), id })
    }

    /// The cluster whose engine the context uses (the serverless one included).
    pub fn cluster_id(&self) -> Option<String> {
        self.contexts.status(None, &self.id).ok().map(|s| s.cluster_id)
    }

    pub async fn run(&self, language: Language, code: String, filename: Option<String>) -> StepResult {
        let snapshot = match self.contexts.run(&self.id, language, code, filename).await {
            Ok(s) => s,
            Err(e) => return StepResult { step: error(e.to_string(), String::new()), values: None },
        };
        let results = snapshot.results.unwrap_or(Value::Null);
        let values = results.get("taskValues").and_then(Value::as_object).cloned();
        let step = match (snapshot.status, results.get("resultType").and_then(Value::as_str)) {
            (CommandStatus::Finished, Some("error")) | (CommandStatus::Error | CommandStatus::Cancelled, _) => {
                Step::Error {
                    summary: text(&results, "summary"),
                    cause: text(&results, "cause"),
                    stdout: text(&results, "stdout"),
                }
            }
            _ if results.get("notebookExit").and_then(Value::as_bool) == Some(true) => {
                Step::Exit { value: text(&results, "data"), stdout: text(&results, "stdout") }
            }
            (_, Some("table")) => Step::Output(results.get("data").map(Value::to_string).unwrap_or_default()),
            _ => Step::Output(text(&results, "data")),
        };
        StepResult { step, values }
    }
}

fn error(summary: String, stdout: String) -> Step {
    Step::Error { cause: summary.clone(), summary, stdout }
}

impl Drop for TaskContext {
    fn drop(&mut self) {
        if let Err(e) = self.contexts.destroy(None, &self.id) {
            tracing::debug!(context_id = self.id, error = %e, "destroying a task's context");
        }
    }
}
