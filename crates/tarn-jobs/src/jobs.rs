//! `Jobs`: job definitions created, read, changed and deleted with the
//! Jobs API's rules (settings checked whole before anything is stored;
//! `update` merges tasks and job clusters by key).

use std::sync::Arc;

use serde_json::{Map, Value};
use tarn_core::time::now_ms;
use tarn_store::{JobRow, Store};

use crate::error::{JobsError, Result, invalid};
use crate::settings::JobSettings;
use crate::spec::validate;

/// A page of `jobs/list`.
#[derive(Debug)]
pub struct JobList {
    pub jobs: Vec<JobRow>,
    pub has_more: bool,
}

/// Arrays that `update` merges by a key instead of replacing.
const KEYED_ARRAYS: &[(&str, &str)] =
    &[("tasks", "task_key"), ("job_clusters", "job_cluster_key"), ("environments", "environment_key")];

#[derive(Clone)]
pub struct Jobs {
    store: Arc<Store>,
    cluster_exists: Arc<dyn Fn(&str) -> bool + Send + Sync>,
}

fn not_found(job_id: i64) -> JobsError {
    JobsError::NotFound(format!("Job {job_id} does not exist."))
}

impl Jobs {
    /// `cluster_exists` answers whether an `existing_cluster_id` names a cluster.
    pub fn new(store: Arc<Store>, cluster_exists: Arc<dyn Fn(&str) -> bool + Send + Sync>) -> Self {
        Self { store, cluster_exists }
    }

    pub(crate) fn check(&self, settings: &Value) -> Result<JobSettings> {
        validate(settings, &*self.cluster_exists)
    }

    pub fn create(&self, creator: &str, settings: Value) -> Result<i64> {
        let mut settings = settings;
        if let Some(map) = settings.as_object_mut() {
            map.entry("name").or_insert_with(|| Value::String("Untitled".into()));
            map.entry("max_concurrent_runs").or_insert(Value::from(1));
        }
        self.check(&settings)?;
        Ok(self.store.create_job(creator, &settings, now_ms())?)
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
    pub fn reset(&self, job_id: i64, settings: Value) -> Result<()> {
        self.get(job_id)?;
        self.check(&settings)?;
        self.store.set_job_settings(job_id, &settings)?;
        Ok(())
    }

    /// Changes the named top-level fields; tasks, job clusters and
    /// environments merge by key. `fields_to_remove` drops fields
    /// (`schedule`) or keyed entries (`tasks/train`).
    pub fn update(&self, job_id: i64, new_settings: Option<Value>, fields_to_remove: &[String]) -> Result<()> {
        let job = self.get(job_id)?;
        let mut settings = match job.settings {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        for field in fields_to_remove {
            remove(&mut settings, field)?;
        }
        match new_settings {
            Some(Value::Object(new)) => {
                for (field, value) in new {
                    merge(&mut settings, field, value);
                }
            }
            Some(Value::Null) | None => {}
            Some(_) => return Err(invalid("new_settings must be a JSON object")),
        }
        let settings = Value::Object(settings);
        self.check(&settings)?;
        self.store.set_job_settings(job_id, &settings)?;
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

fn remove(settings: &mut Map<String, Value>, field: &str) -> Result<()> {
    match field.split_once('/') {
        None => {
            settings.remove(field);
            Ok(())
        }
        Some((array, key_value)) => {
            let Some((_, key)) = KEYED_ARRAYS.iter().find(|(f, _)| *f == array) else {
                return Err(invalid(format!("fields_to_remove: '{field}' names no keyed array")));
            };
            if let Some(Value::Array(items)) = settings.get_mut(array) {
                items.retain(|item| key_of(item, key) != Some(key_value));
            }
            Ok(())
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
        let id = jobs
            .create(
                "ann",
                json!({"name": "j", "schedule": {"quartz_cron_expression": "* * * * * ?", "timezone_id": "UTC"},
                       "tasks": [{"task_key": "a", "notebook_task": {"notebook_path": "/a"}},
                                 {"task_key": "b", "notebook_task": {"notebook_path": "/b"}}]}),
            )
            .unwrap();
        let new = json!({"tasks": [{"task_key": "a", "notebook_task": {"notebook_path": "/a2"}},
                                   {"task_key": "c", "notebook_task": {"notebook_path": "/c"}}]});
        jobs.update(id, Some(new), &["schedule".into(), "tasks/b".into()]).unwrap();
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
        assert!(jobs.update(id, Some(cycle), &[]).is_err());
        assert_eq!(jobs.get(id).unwrap().settings, settings);
        jobs.delete(id).unwrap();
        assert!(matches!(jobs.get(id), Err(JobsError::NotFound(_))));
    }
}
