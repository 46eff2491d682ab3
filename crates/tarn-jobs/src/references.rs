//! Dynamic value references (`{{job.run_id}}`, `{{tasks.train.values.acc}}`,
//! ...): found in a task's strings and checked at create against what the
//! job defines, as Databricks does.

use std::collections::HashSet;

use serde_json::Value;

use crate::error::{Result, invalid};

const TIME_FIELDS: &[&str] =
    &["iso_date", "iso_datetime", "timestamp_ms", "year", "month", "day", "hour", "minute", "second", "is_weekday"];
const TASK_FIELDS: &[&str] = &["run_id", "result_state", "error_code", "execution_count", "notebook_path"];
/// The older `{{run_id}}`-style variables, still accepted.
const LEGACY: &[&str] =
    &["job_id", "run_id", "parent_run_id", "start_date", "start_time", "task_retry_count", "task_key"];

/// What a reference may name: the job's tasks (those the task depends on,
/// directly or not, have values for it) and parameters, and whether it sits
/// in a `for_each_task`'s nested task (where `{{input}}` exists).
pub(crate) struct Scope<'a> {
    pub tasks: &'a HashSet<&'a str>,
    pub upstream: &'a HashSet<String>,
    pub parameters: &'a HashSet<&'a str>,
    pub in_for_each: bool,
}

/// Every `{{...}}` reference in `value`'s strings, trimmed.
pub(crate) fn find(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => {
            let mut rest = s.as_str();
            while let Some(start) = rest.find("{{") {
                let Some(len) = rest[start + 2..].find("}}") else { break };
                out.push(rest[start + 2..start + 2 + len].trim().to_string());
                rest = &rest[start + 2 + len + 2..];
            }
        }
        Value::Array(items) => items.iter().for_each(|v| find(v, out)),
        Value::Object(map) => map.values().for_each(|v| find(v, out)),
        _ => {}
    }
}

/// Whether `reference` names something this job has.
pub(crate) fn check(reference: &str, scope: &Scope<'_>) -> Result<()> {
    // A secret, resolved when the task starts with the run's user's permissions.
    if let Some(parsed) = tarn_core::secret_ref::SecretRef::parse(&format!("{{{{{reference}}}}}")) {
        return parsed.map(|_| ()).map_err(invalid);
    }
    let parts: Vec<&str> = reference.split('.').collect();
    let known = match parts.as_slice() {
        [legacy] if LEGACY.contains(legacy) => true,
        ["job", "id" | "name" | "run_id" | "repair_count"] => true,
        ["job", "start_time", field] | ["job", "trigger", "time", field] => TIME_FIELDS.contains(field),
        ["job", "trigger", "type"] | ["job", "trigger", "file_arrival", "location"] => true,
        ["job", "parameters", name] => {
            if !scope.parameters.contains(name) {
                return Err(invalid(format!(
                    "Invalid dynamic value reference {{{{{reference}}}}}: the job has no parameter '{name}'"
                )));
            }
            true
        }
        ["task", "name" | "run_id" | "notebook_path" | "execution_count"] => true,
        ["tasks", key, rest @ ..] => {
            if !scope.tasks.contains(key) {
                return Err(invalid(format!(
                    "Invalid dynamic value reference {{{{{reference}}}}}: the job has no task '{key}'"
                )));
            }
            if !scope.upstream.contains(*key) {
                return Err(invalid(format!(
                    "Invalid dynamic value reference {{{{{reference}}}}}: task '{key}' is not upstream of this \
                     task (name it in depends_on, directly or through another task)"
                )));
            }
            matches!(rest, [field] if TASK_FIELDS.contains(field))
                || matches!(rest, ["values", name] if !name.is_empty())
        }
        ["workspace", "id" | "url"] => true,
        ["input", ..] => scope.in_for_each,
        _ => false,
    };
    if known { Ok(()) } else { Err(invalid(format!("Invalid dynamic value reference {{{{{reference}}}}}"))) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_are_found_and_checked() {
        let mut found = Vec::new();
        find(&json!({"a": ["x {{ job.run_id }} y {{tasks.t.values.acc}}"], "b": "{{unclosed"}), &mut found);
        assert_eq!(found, vec!["job.run_id", "tasks.t.values.acc"]);
        let tasks = HashSet::from(["t", "later"]);
        let upstream = HashSet::from(["t".to_string()]);
        let parameters = HashSet::from(["threshold"]);
        let scope = Scope { tasks: &tasks, upstream: &upstream, parameters: &parameters, in_for_each: false };
        for good in ["job.id", "job.parameters.threshold", "tasks.t.result_state", "job.start_time.iso_date", "run_id"]
        {
            assert!(check(good, &scope).is_ok(), "{good}");
        }
        let not_upstream = check("tasks.later.values.x", &scope).unwrap_err().to_string();
        assert!(not_upstream.contains("'later' is not upstream"), "{not_upstream}");
        for bad in ["job.parameters.nope", "tasks.missing.values.x", "tasks.t.colour", "input", "jobs.id", ""] {
            assert!(check(bad, &scope).is_err(), "{bad}");
        }
    }
}
