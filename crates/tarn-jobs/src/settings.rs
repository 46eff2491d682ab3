//! A job's settings, typed: what tarn-api reads a request's settings into,
//! what `spec` checks at create and what runs are driven by. Fields tarn
//! does not act on are kept only in the settings as sent (`raw`: stored
//! whole and shown back as they came); each task keeps its own JSON too,
//! as references resolve in it and task runners read it.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::error::{Result, invalid};

/// `JobSettings` (and a `runs/submit` body, read the same way).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct JobSettings {
    pub name: Option<String>,
    #[serde(skip)]
    pub tasks: Vec<TaskSettings>,
    pub job_clusters: Vec<JobCluster>,
    pub environments: Vec<Environment>,
    pub parameters: Vec<JobParameter>,
    pub max_concurrent_runs: Option<i64>,
    pub timeout_seconds: Option<i64>,
    pub queue: Option<Queue>,
    #[serde(deserialize_with = "or_default")]
    pub health: Health,
    #[serde(flatten)]
    pub alerts: Alerts,
    /// The settings as sent (as stored).
    #[serde(skip)]
    pub raw: Value,
}

/// One task's settings, with its JSON as sent.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TaskSettings {
    pub task_key: String,
    pub depends_on: Vec<Dependency>,
    pub run_if: Option<String>,
    #[serde(deserialize_with = "or_default")]
    pub disabled: bool,
    pub max_retries: Option<i64>,
    pub min_retry_interval_millis: Option<i64>,
    #[serde(deserialize_with = "or_default")]
    pub retry_on_timeout: bool,
    pub timeout_seconds: Option<i64>,
    #[serde(deserialize_with = "or_default")]
    pub health: Health,
    #[serde(flatten)]
    pub alerts: Alerts,
    pub existing_cluster_id: Option<String>,
    pub job_cluster_key: Option<String>,
    pub new_cluster: Option<Value>,
    pub environment_key: Option<String>,
    pub condition_task: Option<ConditionTask>,
    pub for_each_task: Option<ForEachTask>,
    pub notebook_task: Option<NotebookTask>,
    pub run_job_task: Option<RunJobTask>,
    pub pipeline_task: Option<PipelineTask>,
    #[serde(deserialize_with = "or_default")]
    pub libraries: Vec<TaskLibrary>,
    #[serde(skip)]
    pub raw: Value,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Dependency {
    pub task_key: String,
    pub outcome: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct JobCluster {
    pub job_cluster_key: String,
    pub new_cluster: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Environment {
    pub environment_key: String,
    pub spec: EnvironmentSpec,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct EnvironmentSpec {
    pub dependencies: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct JobParameter {
    pub name: String,
    pub default: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Queue {
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// A `null` reads as the field's default, as when it is left out.
fn or_default<'de, D, T>(deserializer: D) -> std::result::Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Health {
    #[serde(deserialize_with = "or_default")]
    pub rules: Vec<HealthRule>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct HealthRule {
    pub metric: String,
    pub value: Option<i64>,
}

impl Health {
    /// The rule on run duration, if there is one.
    pub fn duration_threshold(&self) -> Option<Duration> {
        let rule = self.rules.iter().find(|r| r.metric == "RUN_DURATION_SECONDS")?;
        rule.value.filter(|v| *v >= 0).map(|v| Duration::from_secs(v as u64))
    }
}

/// The flags of a job's or task's notification settings that tarn's
/// driver reads (whom to tell is `notify`'s, from the settings as sent).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Alerts {
    #[serde(deserialize_with = "or_default")]
    pub notification_settings: NotificationSettings,
    #[serde(deserialize_with = "or_default")]
    pub email_notifications: EmailNotifications,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct NotificationSettings {
    #[serde(deserialize_with = "or_default")]
    pub no_alert_for_skipped_runs: bool,
    #[serde(deserialize_with = "or_default")]
    pub no_alert_for_canceled_runs: bool,
    #[serde(deserialize_with = "or_default")]
    pub alert_on_last_attempt: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct EmailNotifications {
    #[serde(deserialize_with = "or_default")]
    pub no_alert_for_skipped_runs: bool,
}

impl Alerts {
    /// Whether a run that ended this way is kept quiet: skipped under
    /// `no_alert_for_skipped_runs`, cancelled under `no_alert_for_canceled_runs`.
    pub fn quiet(&self, skipped: bool, cancelled: bool) -> bool {
        let n = &self.notification_settings;
        (skipped && (n.no_alert_for_skipped_runs || self.email_notifications.no_alert_for_skipped_runs))
            || (cancelled && n.no_alert_for_canceled_runs)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ConditionTask {
    pub op: Option<String>,
    pub left: Option<String>,
    pub right: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ForEachTask {
    pub inputs: Option<String>,
    pub concurrency: Option<i64>,
    /// Kept as sent: it is resolved per iteration, then read.
    pub task: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct NotebookTask {
    pub notebook_path: String,
    #[serde(deserialize_with = "or_default")]
    pub base_parameters: serde_json::Map<String, Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RunJobTask {
    pub job_id: Option<i64>,
    pub job_parameters: Option<Value>,
}

/// `pipeline_task`: an update of a pipeline. The fields tarn does not act
/// on (`parameters`, `refresh_flow_selection`, `reset_checkpoint_selection`)
/// are refused by `spec` from the task's JSON.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PipelineTask {
    pub pipeline_id: Option<String>,
    #[serde(deserialize_with = "or_default")]
    pub full_refresh: bool,
    #[serde(deserialize_with = "or_default")]
    pub refresh_selection: Vec<String>,
    #[serde(deserialize_with = "or_default")]
    pub full_refresh_selection: Vec<String>,
}

/// A task's library; the kinds a task installs (PyPI and wheels).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TaskLibrary {
    pub pypi: Option<PyPiLibrary>,
    pub whl: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PyPiLibrary {
    pub package: String,
}

fn parse<T: serde::de::DeserializeOwned>(value: &Value, what: &str) -> Result<T> {
    T::deserialize(value).map_err(|e| invalid(format!("Invalid {what}: {e}")))
}

impl JobSettings {
    /// Reads settings as sent (or as stored); a field of the wrong type is
    /// refused, naming it.
    pub fn parse(settings: &Value) -> Result<Self> {
        Self::from_value(settings.clone())
    }

    /// As [`JobSettings::parse`], keeping `settings` itself as the raw JSON.
    pub fn from_value(settings: Value) -> Result<Self> {
        if !settings.is_object() {
            return Err(invalid("Job settings must be a JSON object"));
        }
        tarn_core::deployment::check(&settings, tarn_core::deployment::JOB_KINDS)
            .map_err(|e| invalid(format!("Invalid job settings: {e}")))?;
        let mut parsed: JobSettings = parse(&settings, "job settings")?;
        let tasks = match settings.get("tasks") {
            None | Some(Value::Null) => &[][..],
            Some(Value::Array(tasks)) => tasks.as_slice(),
            Some(_) => return Err(invalid("Invalid job settings: tasks must be an array")),
        };
        parsed.tasks = tasks.iter().map(TaskSettings::parse).collect::<Result<_>>()?;
        parsed.raw = settings;
        Ok(parsed)
    }

    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or("Untitled")
    }

    /// The principal `run_as` names, if the settings name one (`spec`
    /// refuses a `run_as` naming none or both).
    pub fn run_as_name(&self) -> Option<&str> {
        tarn_core::run_as::named(&self.raw).ok().flatten()
    }

    /// Runs of the job at once (at least one).
    pub fn max_concurrent_runs(&self) -> i64 {
        self.max_concurrent_runs.unwrap_or(1).max(1)
    }

    /// Whether a run past `max_concurrent_runs` waits (queue) or is skipped.
    pub fn queues(&self) -> bool {
        self.queue.as_ref().is_none_or(|q| q.enabled)
    }

    pub fn timeout(&self) -> Option<Duration> {
        self.timeout_seconds.filter(|t| *t > 0).map(|t| Duration::from_secs(t as u64))
    }

    pub fn task(&self, key: &str) -> Option<&TaskSettings> {
        self.tasks.iter().find(|t| t.task_key == key)
    }

    pub fn job_cluster(&self, key: &str) -> Option<&JobCluster> {
        self.job_clusters.iter().find(|c| c.job_cluster_key == key)
    }

    pub fn environment(&self, key: &str) -> Option<&Environment> {
        self.environments.iter().find(|e| e.environment_key == key)
    }
}

impl TaskSettings {
    pub fn parse(task: &Value) -> Result<Self> {
        Self::from_value(task.clone())
    }

    /// As [`TaskSettings::parse`], keeping `task` itself as the raw JSON.
    pub fn from_value(task: Value) -> Result<Self> {
        let mut parsed: TaskSettings = parse(&task, "task")?;
        parsed.raw = task;
        Ok(parsed)
    }

    pub fn timeout(&self) -> Option<Duration> {
        self.timeout_seconds.filter(|t| *t > 0).map(|t| Duration::from_secs(t as u64))
    }

    /// Whether another attempt may follow attempt `attempt` of a pass that
    /// began at attempt `first` (`max_retries` -1 retries without end).
    pub fn may_retry(&self, attempt: i64, first: i64) -> bool {
        let max = self.max_retries.unwrap_or(0);
        max < 0 || attempt - first < max
    }

    pub fn retry_interval(&self) -> Duration {
        Duration::from_millis(self.min_retry_interval_millis.unwrap_or(0).max(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn settings_read_with_their_defaults_and_refuse_wrong_types() {
        let settings = JobSettings::parse(&json!({
            "name": "j", "queue": {"enabled": false}, "timeout_seconds": 0,
            "notification_settings": {"no_alert_for_canceled_runs": true},
            "health": {"rules": [{"metric": "RUN_DURATION_SECONDS", "op": "GREATER_THAN", "value": 30}]},
            "tasks": [{"task_key": "a", "max_retries": -1, "notebook_task": {"notebook_path": "/n", "base_parameters": {}}}],
        }))
        .unwrap();
        assert_eq!((settings.name(), settings.max_concurrent_runs(), settings.queues()), ("j", 1, false));
        assert_eq!(settings.timeout(), None);
        assert_eq!(settings.health.duration_threshold(), Some(Duration::from_secs(30)));
        assert!(settings.alerts.quiet(false, true) && !settings.alerts.quiet(true, false));
        let task = settings.task("a").unwrap();
        assert!(task.may_retry(40, 0), "-1 retries without end");
        assert_eq!(task.raw["notebook_task"]["notebook_path"], "/n");
        assert!(JobSettings::parse(&json!({})).unwrap().queues());
        let wrong = JobSettings::parse(&json!({"tasks": [{"task_key": "a", "max_retries": "three"}]}));
        assert!(wrong.unwrap_err().to_string().contains("Invalid task"));
    }
}
