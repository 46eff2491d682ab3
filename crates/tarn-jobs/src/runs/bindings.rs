//! What dynamic value references resolve to when a task starts: the job
//! and run, the task itself, its upstream tasks (states and task values),
//! the job's parameters and a for-each input.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde_json::{Map, Value};

/// What is known of a finished (or running) upstream task.
#[derive(Debug, Clone, Default)]
pub struct TaskFacts {
    pub run_id: i64,
    pub result_state: String,
    pub error_code: String,
    pub execution_count: i64,
    pub notebook_path: String,
    pub values: Map<String, Value>,
}

#[derive(Debug, Clone, Default)]
pub struct Bindings {
    pub job_id: Option<i64>,
    pub job_name: String,
    pub job_run_id: i64,
    pub repair_count: i64,
    pub start_time: i64,
    pub trigger_type: String,
    pub parameters: Map<String, Value>,
    pub task_key: String,
    pub task_run_id: i64,
    pub attempt: i64,
    pub notebook_path: String,
    pub tasks: HashMap<String, TaskFacts>,
    pub workspace_id: String,
    pub workspace_url: String,
    pub input: Option<Value>,
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn time_field(ms: i64, field: &str) -> Option<String> {
    let t: DateTime<Utc> = DateTime::from_timestamp_millis(ms)?;
    Some(match field {
        "iso_date" => t.format("%Y-%m-%d").to_string(),
        "iso_datetime" => t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        "timestamp_ms" => ms.to_string(),
        "year" => t.year().to_string(),
        "month" => t.month().to_string(),
        "day" => t.day().to_string(),
        "hour" => t.hour().to_string(),
        "minute" => t.minute().to_string(),
        "second" => t.second().to_string(),
        "is_weekday" => (t.weekday().number_from_monday() <= 5).to_string(),
        _ => return None,
    })
}

impl Bindings {
    /// What `reference` (without braces) stands for; `None` when it names
    /// nothing this run has (an upstream task that set no such value).
    pub fn lookup(&self, reference: &str) -> Option<String> {
        let parts: Vec<&str> = reference.split('.').collect();
        match parts.as_slice() {
            ["job", "id"] | ["job_id"] => self.job_id.map(|id| id.to_string()),
            ["job", "name"] => Some(self.job_name.clone()),
            ["job", "run_id"] | ["parent_run_id"] => Some(self.job_run_id.to_string()),
            ["job", "repair_count"] => Some(self.repair_count.to_string()),
            ["job", "start_time" | "trigger", field] if *field != "type" => time_field(self.start_time, field),
            ["job", "trigger", "time", field] => time_field(self.start_time, field),
            ["start_date"] => time_field(self.start_time, "iso_date"),
            ["start_time"] => Some(self.start_time.to_string()),
            ["job", "trigger", "type"] => Some(self.trigger_type.clone()),
            ["job", "parameters", name] => self.parameters.get(*name).map(text),
            ["task", "name"] | ["task_key"] => Some(self.task_key.clone()),
            ["task", "run_id"] | ["run_id"] => Some(self.task_run_id.to_string()),
            ["task", "notebook_path"] => Some(self.notebook_path.clone()),
            ["task", "execution_count"] => Some((self.attempt + 1).to_string()),
            ["task_retry_count"] => Some(self.attempt.to_string()),
            ["tasks", key, rest @ ..] => self.upstream(key, rest),
            ["workspace", "id"] => Some(self.workspace_id.clone()),
            ["workspace", "url"] => Some(self.workspace_url.clone()),
            ["input"] => self.input.as_ref().map(text),
            ["input", path @ ..] => {
                let mut v = self.input.as_ref()?;
                for p in path {
                    v = match v {
                        Value::Array(items) => items.get(p.parse::<usize>().ok()?)?,
                        other => other.get(*p)?,
                    };
                }
                Some(text(v))
            }
            _ => None,
        }
    }

    fn upstream(&self, key: &str, rest: &[&str]) -> Option<String> {
        let facts = self.tasks.get(key)?;
        match rest {
            ["run_id"] => Some(facts.run_id.to_string()),
            ["result_state"] => Some(facts.result_state.to_lowercase()),
            ["error_code"] => Some(facts.error_code.clone()),
            ["execution_count"] => Some(facts.execution_count.to_string()),
            ["notebook_path"] => Some(facts.notebook_path.clone()),
            ["values", name] => facts.values.get(*name).map(text),
            _ => None,
        }
    }

    /// `value` with every `{{...}}` in its strings replaced; the first
    /// reference that resolves to nothing is the error.
    pub fn resolve(&self, value: &Value) -> Result<Value, String> {
        Ok(match value {
            Value::String(s) => Value::String(self.resolve_text(s)?),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.resolve(v)).collect::<Result<_, _>>()?),
            Value::Object(map) => Value::Object(
                map.iter().map(|(k, v)| Ok((k.clone(), self.resolve(v)?))).collect::<Result<_, String>>()?,
            ),
            other => other.clone(),
        })
    }

    pub fn resolve_text(&self, s: &str) -> Result<String, String> {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(start) = rest.find("{{") {
            let Some(len) = rest[start + 2..].find("}}") else { break };
            let reference = rest[start + 2..start + 2 + len].trim();
            if reference.starts_with("secrets/") {
                // Left for the task to resolve as its user (see `tasks::context`).
                out.push_str(&rest[..start + 2 + len + 2]);
                rest = &rest[start + 2 + len + 2..];
                continue;
            }
            let value = self
                .lookup(reference)
                .ok_or_else(|| format!("The dynamic value reference {{{{{reference}}}}} has no value in this run"))?;
            out.push_str(&rest[..start]);
            out.push_str(&value);
            rest = &rest[start + 2 + len + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_resolve_to_the_run_the_task_and_upstream_values() {
        let mut values = Map::new();
        values.insert("accuracy".into(), json!(0.93));
        values.insert("label".into(), json!("ok"));
        let upstream = TaskFacts { run_id: 11, result_state: "SUCCESS".into(), values, ..TaskFacts::default() };
        let b = Bindings {
            job_id: Some(3),
            job_run_id: 10,
            start_time: 1_763_683_200_000, // 2025-11-21T00:00:00Z, a Friday
            parameters: Map::from_iter([("threshold".to_string(), json!("0.8"))]),
            task_run_id: 12,
            tasks: HashMap::from([("train".to_string(), upstream)]),
            input: Some(json!({"city": "Oslo"})),
            ..Bindings::default()
        };
        let v = json!({"a": "{{job.id}}/{{job.run_id}}/{{task.run_id}}", "b": ["{{ tasks.train.values.accuracy }}"],
                       "c": "{{job.parameters.threshold}} {{tasks.train.result_state}} {{job.start_time.iso_date}}",
                       "d": "{{input.city}} {{job.start_time.is_weekday}}"});
        assert_eq!(
            b.resolve(&v).unwrap(),
            json!({"a": "3/10/12", "b": ["0.93"], "c": "0.8 success 2025-11-21", "d": "Oslo true"})
        );
        let err = b.resolve(&json!("{{tasks.train.values.missing}}")).unwrap_err();
        assert!(err.contains("tasks.train.values.missing"), "{err}");
    }
}
