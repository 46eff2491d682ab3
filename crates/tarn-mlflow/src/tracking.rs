//! The tracking service: experiments, runs, logging and search, with the
//! MLflow server's rules.

use std::sync::Arc;

use tarn_core::time::now_ms;
use tarn_store::Store;
use tarn_store::mlflow::{ExperimentRow, Lifecycle, LoggedBatch, MetricRow, RunData, RunQuery, RunRow};

use crate::filter::{parse_filter, parse_order_by};
use crate::{MlflowError, Result, names, validate};

pub const DEFAULT_EXPERIMENT: &str = "Default";
pub(crate) const ACTIVE: &str = "active";
pub(crate) const DELETED: &str = "deleted";
const RUN_STATUSES: &[&str] = &["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"];
/// The most runs one search page holds (MLflow's limit).
const MAX_RUNS_PER_PAGE: usize = 50_000;
const MAX_EXPERIMENTS_PER_PAGE: usize = 50_000;

/// `run_view_type` / `view_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewType {
    ActiveOnly,
    DeletedOnly,
    All,
}

impl ViewType {
    pub fn parse(value: Option<&str>) -> Result<Self> {
        match value.unwrap_or("ACTIVE_ONLY") {
            "ACTIVE_ONLY" => Ok(Self::ActiveOnly),
            "DELETED_ONLY" => Ok(Self::DeletedOnly),
            "ALL" => Ok(Self::All),
            other => Err(MlflowError::InvalidParameter(format!("Invalid view type '{other}'"))),
        }
    }

    fn admits(self, stage: &str) -> bool {
        match self {
            Self::ActiveOnly => stage == ACTIVE,
            Self::DeletedOnly => stage == DELETED,
            Self::All => true,
        }
    }
}

/// A page of results and the token for the next one.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_page_token: Option<String>,
}

impl<T: Clone> Page<T> {
    /// The page of `all` (filtered and ordered in memory) at `offset`.
    pub(crate) fn slice(all: &[T], offset: usize, size: usize) -> Self {
        let (items, next_page_token) = tarn_core::page::slice(all, offset, size);
        Page { items, next_page_token }
    }
}

/// A `runs/search` request.
#[derive(Debug, Clone, Default)]
pub struct RunSearch {
    pub experiment_ids: Vec<String>,
    pub filter: Option<String>,
    pub view_type: Option<String>,
    pub max_results: Option<i64>,
    pub order_by: Vec<String>,
    pub page_token: Option<String>,
}

#[derive(Clone)]
pub struct Tracking {
    store: Arc<Store>,
}

fn parse_experiment_id(id: &str) -> Result<i64> {
    id.parse().map_err(|_| MlflowError::NotFound(format!("No Experiment with id={id} exists")))
}

pub(crate) fn page_size(max_results: Option<i64>, default: usize, limit: usize) -> Result<usize> {
    match max_results {
        None | Some(0) => Ok(default),
        Some(n) if n < 0 => Err(MlflowError::InvalidParameter(format!("Invalid value {n} for max_results"))),
        Some(n) => {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            if n > limit {
                return Err(MlflowError::InvalidParameter(format!(
                    "Invalid value {n} for parameter 'max_results' supplied. It must be at most {limit}"
                )));
            }
            Ok(n)
        }
    }
}

pub(crate) fn offset(page_token: Option<&str>) -> Result<usize> {
    match page_token.filter(|t| !t.is_empty()) {
        None => Ok(0),
        Some(token) => tarn_core::page::decode(token)
            .map_err(|_| MlflowError::InvalidParameter(format!("Invalid page token '{token}'"))),
    }
}

impl Tracking {
    /// Opens the service over the store, creating the default experiment `0`.
    pub fn open(store: Arc<Store>) -> Result<Self> {
        let tracking = Self { store };
        if tracking.store.get_experiment(0)?.is_none() {
            tracking.store.create_experiment(
                DEFAULT_EXPERIMENT,
                "",
                &|id| default_location(id, false),
                &[],
                now_ms(),
            )?;
        }
        Ok(tracking)
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    // -- experiments -------------------------------------------------------

    /// A new experiment, owned by `creator`.
    pub fn create_experiment(
        &self,
        name: &str,
        creator: &str,
        artifact_location: Option<&str>,
        tags: &[(String, String)],
    ) -> Result<String> {
        if name.trim().is_empty() {
            return Err(MlflowError::InvalidParameter("Invalid experiment name: ''".into()));
        }
        validate::tags(tags)?;
        let location = artifact_location.filter(|l| !l.is_empty()).map(str::to_string);
        let workspace_path = name.starts_with('/');
        let artifact = move |id: i64| location.clone().unwrap_or_else(|| default_location(id, workspace_path));
        match self.store.create_experiment(name, creator, &artifact, tags, now_ms())? {
            Some(id) => Ok(id.to_string()),
            None => Err(MlflowError::AlreadyExists(format!("Experiment(name={name}) already exists."))),
        }
    }

    pub fn experiment(&self, id: &str) -> Result<ExperimentRow> {
        let numeric = parse_experiment_id(id)?;
        self.store
            .get_experiment(numeric)?
            .ok_or_else(|| MlflowError::NotFound(format!("No Experiment with id={id} exists")))
    }

    pub fn experiment_by_name(&self, name: &str) -> Result<ExperimentRow> {
        self.store
            .get_experiment_by_name(name)?
            .ok_or_else(|| MlflowError::NotFound(format!("Could not find experiment with name '{name}'")))
    }

    /// Experiments `admit` lets through (the caller's permissions), then
    /// the filter, ordered and paged.
    pub fn search_experiments(
        &self,
        admit: &dyn Fn(&ExperimentRow) -> bool,
        view_type: Option<&str>,
        filter: Option<&str>,
        order_by: &[String],
        max_results: Option<i64>,
        page_token: Option<&str>,
    ) -> Result<Page<ExperimentRow>> {
        let view = ViewType::parse(view_type)?;
        let size = page_size(max_results, 1000, MAX_EXPERIMENTS_PER_PAGE)?;
        let start = offset(page_token)?;
        let clauses = crate::filter::parse_experiment_filter(filter.unwrap_or(""))?;
        let mut all: Vec<ExperimentRow> = self
            .store
            .list_experiments()?
            .into_iter()
            .filter(|e| {
                view.admits(&e.lifecycle_stage)
                    && clauses.iter().all(|c| crate::filter::experiment_admits(e, c))
                    && admit(e)
            })
            .collect();
        crate::filter::sort_experiments(&mut all, order_by)?;
        Ok(Page::slice(&all, start, size))
    }

    pub fn rename_experiment(&self, id: &str, new_name: &str) -> Result<()> {
        let experiment = self.experiment(id)?;
        if new_name.trim().is_empty() {
            return Err(MlflowError::InvalidParameter("Invalid experiment name: ''".into()));
        }
        if experiment.lifecycle_stage != ACTIVE {
            return Err(MlflowError::InvalidParameter(format!("Cannot rename a non-active experiment ({id}).")));
        }
        if !self.store.rename_experiment(experiment.experiment_id, new_name, now_ms())? {
            return Err(MlflowError::AlreadyExists(format!("Experiment(name={new_name}) already exists.")));
        }
        Ok(())
    }

    pub fn delete_experiment(&self, id: &str) -> Result<()> {
        let experiment = self.experiment(id)?;
        if experiment.experiment_id == 0 {
            return Err(MlflowError::InvalidParameter("Cannot delete the default experiment '0'.".into()));
        }
        Ok(self.store.set_experiment_lifecycle(experiment.experiment_id, DELETED, now_ms())?)
    }

    pub fn restore_experiment(&self, id: &str) -> Result<()> {
        let experiment = self.experiment(id)?;
        Ok(self.store.set_experiment_lifecycle(experiment.experiment_id, ACTIVE, now_ms())?)
    }

    pub fn set_experiment_tag(&self, id: &str, key: &str, value: &str) -> Result<()> {
        let experiment = self.experiment(id)?;
        validate::tag(key, value)?;
        Ok(self.store.set_experiment_tag(experiment.experiment_id, key, value)?)
    }

    pub fn delete_experiment_tag(&self, id: &str, key: &str) -> Result<()> {
        let experiment = self.experiment(id)?;
        if !self.store.delete_experiment_tag(experiment.experiment_id, key)? {
            return Err(MlflowError::NotFound(format!("No tag with name: {key} in experiment with id {id}")));
        }
        Ok(())
    }

    // -- runs --------------------------------------------------------------

    pub fn create_run(
        &self,
        experiment_id: &str,
        user_id: &str,
        run_name: Option<&str>,
        start_time: Option<i64>,
        tags: &[(String, String)],
    ) -> Result<RunRow> {
        let experiment = self.experiment(experiment_id)?;
        if experiment.lifecycle_stage != ACTIVE {
            return Err(MlflowError::InvalidParameter(format!(
                "The experiment {experiment_id} must be in the 'active' state. Current state is {}.",
                experiment.lifecycle_stage
            )));
        }
        validate::tags(tags)?;
        let id = uuid::Uuid::new_v4();
        let tagged_name = tags.iter().find(|(k, _)| k == RUN_NAME_TAG).map(|(_, v)| v.clone());
        let name = run_name
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .or(tagged_name)
            .unwrap_or_else(|| names::run_name(&id));
        let run_uuid = id.simple().to_string();
        let run = RunRow {
            artifact_uri: format!("{}/{run_uuid}/artifacts", experiment.artifact_location.trim_end_matches('/')),
            run_uuid,
            experiment_id: experiment.experiment_id,
            name: name.clone(),
            user_id: user_id.to_string(),
            status: "RUNNING".into(),
            start_time: start_time.unwrap_or_else(now_ms),
            end_time: None,
            lifecycle_stage: ACTIVE.into(),
        };
        let mut tags = tags.to_vec();
        tags.retain(|(k, _)| k != RUN_NAME_TAG);
        tags.push((RUN_NAME_TAG.into(), name));
        self.store.create_run(&run, &tags)?;
        Ok(run)
    }

    pub fn run(&self, run_id: &str) -> Result<RunRow> {
        self.store.get_run(run_id)?.ok_or_else(|| MlflowError::NotFound(format!("Run with id={run_id} not found")))
    }

    pub fn run_with_data(&self, run_id: &str) -> Result<(RunRow, RunData)> {
        let run = self.run(run_id)?;
        let data = self.store.run_data(run_id)?;
        Ok((run, data))
    }

    fn active_run(&self, run_id: &str) -> Result<RunRow> {
        let run = self.run(run_id)?;
        if run.lifecycle_stage != ACTIVE {
            return Err(MlflowError::InvalidParameter(format!(
                "The run {run_id} must be in the 'active' state. Current state is {}.",
                run.lifecycle_stage
            )));
        }
        Ok(run)
    }

    pub fn update_run(
        &self,
        run_id: &str,
        status: Option<&str>,
        end_time: Option<i64>,
        run_name: Option<&str>,
    ) -> Result<RunRow> {
        let mut run = self.active_run(run_id)?;
        if let Some(status) = status {
            if !RUN_STATUSES.contains(&status) {
                return Err(MlflowError::InvalidParameter(format!("Invalid run status '{status}'")));
            }
            run.status = status.to_string();
        }
        if end_time.is_some() {
            run.end_time = end_time;
        }
        if let Some(name) = run_name.filter(|n| !n.is_empty()) {
            run.name = name.to_string();
            self.store.log_batch(run_id, &[], &[], &[(RUN_NAME_TAG.into(), name.into())])?;
        }
        self.store.update_run(run_id, &run.status, run.end_time, &run.name)?;
        Ok(run)
    }

    pub fn delete_run(&self, run_id: &str) -> Result<()> {
        self.run(run_id)?;
        Ok(self.store.set_run_lifecycle(run_id, DELETED, now_ms())?)
    }

    pub fn restore_run(&self, run_id: &str) -> Result<()> {
        self.run(run_id)?;
        Ok(self.store.set_run_lifecycle(run_id, ACTIVE, now_ms())?)
    }

    /// Logs metrics, params and tags of one run at once (also what the
    /// single log calls do). Nothing is stored when anything is refused.
    pub fn log_batch(
        &self,
        run_id: &str,
        metrics: &[MetricRow],
        params: &[(String, String)],
        tags: &[(String, String)],
    ) -> Result<()> {
        validate::batch_size(metrics.len(), params.len(), tags.len())?;
        for m in metrics {
            validate::key("Metric", &m.key)?;
        }
        validate::params(params)?;
        validate::tags(tags)?;
        self.active_run(run_id)?;
        let metrics: Vec<MetricRow> = metrics
            .iter()
            .map(|m| {
                let (value, is_nan) = validate::metric_value(m.value);
                MetricRow { value, is_nan: is_nan || m.is_nan, ..m.clone() }
            })
            .collect();
        match self.store.log_batch(run_id, &metrics, params, tags)? {
            LoggedBatch::Logged => {
                // The run's name follows its `mlflow.runName` tag, however set.
                if let Some((_, name)) = tags.iter().rev().find(|(k, v)| k == RUN_NAME_TAG && !v.is_empty()) {
                    self.store.rename_run(run_id, name)?;
                }
                Ok(())
            }
            LoggedBatch::ParamConflict { key, old, new } => Err(MlflowError::InvalidParameter(format!(
                "Changing param values is not allowed. Param with key='{key}' was already logged with \
                 value='{old}' for run ID='{run_id}'. Attempted logging new value '{new}'."
            ))),
        }
    }

    pub fn delete_tag(&self, run_id: &str, key: &str) -> Result<()> {
        self.active_run(run_id)?;
        if !self.store.delete_run_tag(run_id, key)? {
            return Err(MlflowError::NotFound(format!("No tag with name: {key} in run with id {run_id}")));
        }
        Ok(())
    }

    pub fn metric_history(&self, run_id: &str, key: &str) -> Result<Vec<MetricRow>> {
        self.run(run_id)?;
        Ok(self.store.metric_history(run_id, key)?)
    }

    pub fn search_runs(&self, search: &RunSearch) -> Result<Page<(RunRow, RunData)>> {
        let size = page_size(search.max_results, 1000, MAX_RUNS_PER_PAGE)?;
        let start = offset(search.page_token.as_deref())?;
        let experiment_ids = search
            .experiment_ids
            .iter()
            .map(|id| {
                id.parse::<i64>().map_err(|_| MlflowError::InvalidParameter(format!("Invalid experiment id '{id}'")))
            })
            .collect::<Result<Vec<_>>>()?;
        let lifecycle = match ViewType::parse(search.view_type.as_deref())? {
            ViewType::ActiveOnly => Lifecycle::Active,
            ViewType::DeletedOnly => Lifecycle::Deleted,
            ViewType::All => Lifecycle::All,
        };
        let query = RunQuery {
            experiment_ids,
            lifecycle,
            clauses: parse_filter(search.filter.as_deref().unwrap_or(""))?,
            order: search.order_by.iter().map(|o| parse_order_by(o)).collect::<Result<_>>()?,
            offset: start,
            // One more than a page tells whether another page follows.
            limit: size + 1,
        };
        let mut ids = self.store.search_run_ids(&query)?;
        let more = ids.len() > size;
        ids.truncate(size);
        let items = self.store.get_runs(&ids)?;
        let next_page_token = more.then(|| tarn_core::page::encode(start + size));
        Ok(Page { items, next_page_token })
    }
}

pub const RUN_NAME_TAG: &str = "mlflow.runName";

/// Where an experiment's artifacts go unless its creator says otherwise:
/// tarn's proxied artifact store, as `mlflow server` does by default. An
/// experiment named by a workspace path (`/Users/...`), as on Databricks,
/// gets Databricks' location, which the client under a `databricks`
/// tracking URI reaches through the Files API; both are the same store.
fn default_location(id: i64, workspace_path: bool) -> String {
    if workspace_path {
        format!("{}{id}", crate::artifacts::DATABRICKS_ROOT)
    } else {
        format!("mlflow-artifacts:/{id}")
    }
}

impl Tracking {
    /// How many active runs experiment `experiment_id` holds, up to `cap`.
    pub fn count_active_runs(&self, experiment_id: i64, cap: u64) -> Result<u64> {
        Ok(self.store.count_active_runs(experiment_id, cap)?)
    }
}
