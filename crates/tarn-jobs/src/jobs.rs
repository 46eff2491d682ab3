//! `Jobs`: job definitions created, read, changed and deleted with the
//! Jobs API's rules (settings checked whole before anything is stored;
//! `update` merges tasks and job clusters by key). They come typed: whole
//! settings as [`JobSettings`], a change as a [`JobUpdate`].

use std::sync::Arc;

use serde_json::{Map, Value};
use tarn_core::time::now_ms;
use tarn_store::{JobRow, Store};

use crate::error::{JobsError, Result, invalid};
use crate::settings::JobSettings;
use crate::spec::{validate, validate_with};

/// A page of `jobs/list`.
#[derive(Debug)]
pub struct JobList {
    pub jobs: Vec<JobRow>,
    pub has_more: bool,
}

/// Arrays that `update` merges by a key instead of replacing.
const KEYED_ARRAYS: &[(&str, &str)] =
    &[("tasks", "task_key"), ("job_clusters", "job_cluster_key"), ("environments", "environment_key")];

/// `jobs/update`'s request: top-level fields to set (tasks, job clusters
/// and environments merge by key) and fields to remove.
#[derive(Debug, Clone, Default)]
pub struct JobUpdate {
    new_settings: Map<String, Value>,
    fields_to_remove: Vec<Removal>,
}

/// A field `fields_to_remove` names: a top-level field (`schedule`) or an
/// entry of a keyed array (`tasks/train`).
#[derive(Debug, Clone)]
enum Removal {
    Field(String),
    Entry { array: String, key: &'static str, value: String },
}

impl JobUpdate {
    /// Reads the request's parts: `fields_to_remove` must name fields or
    /// entries of keyed arrays, `new_settings` (if given) be an object.
    pub fn new(new_settings: Option<Value>, fields_to_remove: &[String]) -> Result<Self> {
        let fields_to_remove = fields_to_remove.iter().map(|f| Removal::parse(f)).collect::<Result<_>>()?;
        let new_settings = match new_settings {
            Some(Value::Object(new)) => new,
            Some(Value::Null) | None => Map::new(),
            Some(_) => return Err(invalid("new_settings must be a JSON object")),
        };
        Ok(Self { new_settings, fields_to_remove })
    }
}

impl Removal {
    fn parse(field: &str) -> Result<Self> {
        let Some((array, value)) = field.split_once('/') else { return Ok(Removal::Field(field.to_string())) };
        let Some((_, key)) = KEYED_ARRAYS.iter().find(|(f, _)| *f == array) else {
            return Err(invalid(format!("fields_to_remove: '{field}' names no keyed array")));
        };
        Ok(Removal::Entry { array: array.to_string(), key, value: value.to_string() })
    }

    fn apply(&self, settings: &mut Map<String, Value>) {
        match self {
            Removal::Field(field) => {
                settings.remove(field);
            }
            Removal::Entry { array, key, value } => {
                if let Some(Value::Array(items)) = settings.get_mut(array) {
                    items.retain(|item| key_of(item, key) != Some(value.as_str()));
                }
            }
        }
    }
}

/// Answers whether an id names something (a cluster, a warehouse).
pub type Exists = Arc<dyn Fn(&str) -> bool + Send + Sync>;

#[derive(Clone)]
pub struct Jobs {
    store: Arc<Store>,
    cluster_exists: Arc<dyn Fn(&str) -> bool + Send + Sync>,
    /// Whether a task's `warehouse_id` names a warehouse; `None` takes any.
    warehouse_exists: Option<Exists>,
}

fn not_found(job_id: i64) -> JobsError {
    JobsError::NotFound(format!("Job {job_id} does not exist."))
}

impl Jobs {
    /// `cluster_exists` answers whether an `existing_cluster_id` names a cluster.
    pub fn new(store: Arc<Store>, cluster_exists: Arc<dyn Fn(&str) -> bool + Send + Sync>) -> Self {
        Self { store, cluster_exists, warehouse_exists: None }
    }

    /// Checks tasks' `warehouse_id`s with `exists`.
    pub fn with_warehouses(mut self, exists: Exists) -> Self {
        self.warehouse_exists = Some(exists);
        self
    }

    pub(crate) fn check(&self, settings: &JobSettings) -> Result<()> {
        match &self.warehouse_exists {
            Some(exists) => validate_with(settings, &*self.cluster_exists, &**exists),
            None => validate(settings, &*self.cluster_exists),
        }
    }

    /// Stores a new job; `name` and `max_concurrent_runs` default to
    /// `Untitled` and 1 when left out.
    pub fn create(&self, creator: &str, settings: JobSettings) -> Result<i64> {
        let mut settings = settings;
        if let Some(map) = settings.raw.as_object_mut() {
            if !map.contains_key("name") {
                map.insert("name".into(), Value::String("Untitled".into()));
                settings.name = Some("Untitled".into());
            }
            if !map.contains_key("max_concurrent_runs") {
                map.insert("max_concurrent_runs".into(), Value::from(1));
                settings.max_concurrent_runs = Some(1);
            }
        }
        self.check(&settings)?;
        Ok(self.store.create_job(creator, &settings.raw, now_ms())?)
    }

    pub fn get(&self, job_id: i64) -> Result<JobRow> {
        self.store.get_job(job_id)?.ok_or_else(|| not_found(job_id))
    }

    /// Jobs newest first; `limit` 1 to 100 (default 20).
    pub fn list(&self, name: Option<&str>, offset: usize, limit: Option<i64>) -> Result<JobList> {
        let limit = match limit {
            None | Some(0) => 20,
            Some(n @ 1..=100) => n as usize,
            Some(n) => return Err(invalid(format!("limit must be between 1 and 100, got {n}"))),
        };
        let mut jobs = self.store.list_jobs(name.filter(|n| !n.is_empty()), offset, limit + 1)?;
        let has_more = jobs.len() > limit;
        jobs.truncate(limit);
        Ok(JobList { jobs, has_more })
    }

    /// Replaces a job's settings whole.
    pub fn reset(&self, job_id: i64, settings: JobSettings) -> Result<()> {
        self.get(job_id)?;
        self.check(&settings)?;
        self.store.set_job_settings(job_id, &settings.raw)?;
        Ok(())
    }

    /// Changes the named top-level fields; tasks, job clusters and
    /// environments merge by key; the fields to remove go first.
    pub fn update(&self, job_id: i64, change: JobUpdate) -> Result<()> {
        let job = self.get(job_id)?;
        let mut settings = match job.settings {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        for removal in &change.fields_to_remove {
            removal.apply(&mut settings);
        }
        for (field, value) in change.new_settings {
            merge(&mut settings, field, value);
        }
        let settings = JobSettings::from_value(Value::Object(settings))?;
        self.check(&settings)?;
        self.store.set_job_settings(job_id, &settings.raw)?;
        Ok(())
    }

    pub fn delete(&self, job_id: i64) -> Result<()> {
        if !self.store.delete_job(job_id)? {
            return Err(not_found(job_id));
        }
        Ok(())
    }
}

fn key_of<'a>(item: &'a Value, key: &str) -> Option<&'a str> {
    item.get(key).and_then(Value::as_str)
}

fn merge(settings: &mut Map<String, Value>, field: String, value: Value) {
    let keyed = KEYED_ARRAYS.iter().find(|(f, _)| *f == field).map(|(_, k)| *k);
    match (keyed, value, settings.get_mut(&field)) {
        (Some(key), Value::Array(new), Some(Value::Array(old))) => {
            for item in new {
                match old.iter_mut().find(|o| key_of(o, key).is_some() && key_of(o, key) == key_of(&item, key)) {
                    Some(slot) => *slot = item,
                    None => old.push(item),
                }
            }
        }
        (_, value, _) => {
            settings.insert(field, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn update_merges_tasks_by_key_and_removes_fields() {
        let jobs = Jobs::new(Arc::new(Store::open_in_memory().unwrap()), Arc::new(|_: &str| false));
        let settings = json!({"name": "j", "schedule": {"quartz_cron_expression": "* * * * * ?", "timezone_id": "UTC"},
                              "tasks": [{"task_key": "a", "notebook_task": {"notebook_path": "/a"}},
                                        {"task_key": "b", "notebook_task": {"notebook_path": "/b"}}]});
        let id = jobs.create("ann", JobSettings::from_value(settings).unwrap()).unwrap();
        let new = json!({"tasks": [{"task_key": "a", "notebook_task": {"notebook_path": "/a2"}},
                                   {"task_key": "c", "notebook_task": {"notebook_path": "/c"}}]});
        let change = JobUpdate::new(Some(new), &["schedule".into(), "tasks/b".into()]).unwrap();
        jobs.update(id, change).unwrap();
        let settings = jobs.get(id).unwrap().settings;
        let paths: Vec<&str> = settings["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["notebook_task"]["notebook_path"].as_str().unwrap())
            .collect();
        assert_eq!(paths, vec!["/a2", "/c"]);
        assert!(settings.get("schedule").is_none());
        assert_eq!(settings["max_concurrent_runs"], 1);
        // A refused update leaves the job as it was.
        let cycle = json!({"tasks": [{"task_key": "a", "depends_on": [{"task_key": "c"}], "notebook_task": {}},
                                     {"task_key": "c", "depends_on": [{"task_key": "a"}], "notebook_task": {}}]});
        assert!(jobs.update(id, JobUpdate::new(Some(cycle), &[]).unwrap()).is_err());
        assert!(JobUpdate::new(Some(json!([])), &[]).is_err());
        assert!(JobUpdate::new(None, &["nope/x".into()]).is_err());
        assert_eq!(jobs.get(id).unwrap().settings, settings);
        jobs.delete(id).unwrap();
        assert!(matches!(jobs.get(id), Err(JobsError::NotFound(_))));
    }
}
