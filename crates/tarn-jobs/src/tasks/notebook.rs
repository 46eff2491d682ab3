//! `notebook_task`: a workspace notebook run cell by cell in the task's
//! context, `base_parameters` and job parameters as widgets. `%run` inlines
//! another notebook; `%md` cells are passed over; `%pip` and `%sh` cells run
//! in the context as they would in a notebook; the first failing cell
//! fails the task; `dbutils.notebook.exit` ends it with its value. A
//! notebook from a job's `git_source` is read from the run's checkout
//! (`crate::git`), its `%run` targets too.

use serde_json::Value;
use tarn_compute::context::Language as ContextLanguage;
use tarn_files::{Cell, Language};

use super::context::{Step, TaskContext};
use super::{Attempt, Ending, Engines, Outcome};

/// How deep `%run` may nest.
const MAX_RUN_DEPTH: usize = 8;

struct Command {
    language: ContextLanguage,
    code: String,
}

pub(super) async fn run(engines: &Engines, attempt: &Attempt, spec: &Value) -> Outcome {
    let path = spec.get("notebook_path").and_then(Value::as_str).unwrap_or_default();
    let source = match crate::git::task_checkout(attempt, spec) {
        Ok(Some(checkout)) => Source::Git(checkout),
        Ok(None) => Source::Workspace(engines),
        Err(e) => return Outcome::failed(e),
    };
    let mut commands = Vec::new();
    if let Err(e) = expand(&source, &attempt.user, path, 0, &mut commands) {
        return Outcome::failed(e);
    }
    let mut context = match TaskContext::open(engines, attempt, None).await {
        Ok(c) => c,
        Err(e) => return Outcome::failed(e),
    };
    let mut outcome = Outcome::succeeded(String::new());
    outcome.cluster_id = context.cluster_id();
    let last = commands.len().saturating_sub(1);
    for (i, command) in commands.into_iter().enumerate() {
        let result = match i == last {
            true => context.run_last(command.language, command.code, None).await,
            false => context.run(command.language, command.code, None).await,
        };
        if let Some(values) = result.values {
            outcome.values = values;
        }
        match result.step {
            Step::Output(text) => push_line(&mut outcome.logs, &text),
            Step::Exit { value, stdout } => {
                push_line(&mut outcome.logs, &stdout);
                outcome.notebook_result = Some(value);
                return outcome;
            }
            Step::Error { summary, cause, stdout } => {
                push_line(&mut outcome.logs, &stdout);
                outcome.ending = Ending::Failed { error: summary, trace: Some(cause) };
                return outcome;
            }
        }
    }
    outcome
}

fn push_line(logs: &mut String, text: &str) {
    if text.is_empty() {
        return;
    }
    logs.push_str(text);
    if !text.ends_with('\n') {
        logs.push('\n');
    }
}

/// Where a task's notebooks come from.
enum Source<'a> {
    Workspace(&'a Engines),
    /// The run's checkout; paths are relative to the repository root.
    Git(&'a crate::git::Checkout),
}

impl Source<'_> {
    /// The notebook at `path`: its path as `%run` resolves against, its
    /// language and cells.
    fn load(&self, user: &str, path: &str) -> Result<(String, Language, Vec<Cell>), String> {
        match self {
            Source::Workspace(engines) => {
                engines.may_read(user, path)?;
                let notebook = engines.files.workspace().notebook(path).map_err(|e| format!("Notebook {path}: {e}"))?;
                let cells = notebook.cells();
                Ok((notebook.path, notebook.language, cells))
            }
            Source::Git(checkout) => {
                let (language, cells) = checkout.notebook(path)?;
                Ok((format!("/{}", path.trim_start_matches('/')), language, cells))
            }
        }
    }
}

/// The notebook's runnable cells, `%run` notebooks inlined.
fn expand(source: &Source<'_>, user: &str, path: &str, depth: usize, out: &mut Vec<Command>) -> Result<(), String> {
    if depth > MAX_RUN_DEPTH {
        return Err(format!("%run nests deeper than {MAX_RUN_DEPTH} notebooks at {path}"));
    }
    let (notebook_path, language, cells) = source.load(user, path)?;
    let default = match language {
        Language::Python => ContextLanguage::Python,
        Language::Sql => ContextLanguage::Sql,
        other => return Err(format!("{path} is a {} notebook; tarn runs Python and SQL", other.name())),
    };
    for Cell { magic, source: text } in cells {
        let (language, code) = match magic.as_deref() {
            None => (default, text),
            Some("python") => (ContextLanguage::Python, text),
            Some("sql") => (ContextLanguage::Sql, text),
            // The context runs these as a notebook does: %pip installs into
            // the context's own environment, %sh runs in bash.
            Some("pip") => (ContextLanguage::Python, format!("%pip {text}")),
            Some("sh") => (ContextLanguage::Python, format!("%sh\n{text}")),
            Some("md" | "md-sandbox") => continue,
            Some("run") => {
                let target = text.trim();
                expand(source, user, &relative(&notebook_path, target), depth + 1, out)?;
                continue;
            }
            Some(other) => {
                return Err(format!("Notebook {path} has a %{other} cell, which tarn does not run in jobs"));
            }
        };
        if !code.trim().is_empty() {
            out.push(Command { language, code });
        }
    }
    Ok(())
}

/// A `%run` target relative to the notebook that names it.
fn relative(from: &str, target: &str) -> String {
    let target = target.trim_matches('"');
    if target.starts_with('/') {
        return target.to_string();
    }
    let mut parts: Vec<&str> = from.split('/').filter(|p| !p.is_empty()).collect();
    parts.pop();
    for segment in target.split('/') {
        match segment {
            "." | "" => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn run_targets_resolve_against_the_notebook() {
        assert_eq!(super::relative("/Users/a/jobs/main", "./lib"), "/Users/a/jobs/lib");
        assert_eq!(super::relative("/Users/a/jobs/main", "../shared/setup"), "/Users/a/shared/setup");
        assert_eq!(super::relative("/Users/a/jobs/main", "/Repos/x"), "/Repos/x");
    }
}
