//! MLflow 3 logged models: created pending, finalized READY (or failed),
//! with params, tags and metrics of their own, searched in memory (an
//! experiment holds thousands of models, not millions).

use tarn_core::time::now_ms;
use tarn_store::mlflow::{Clause, Comparison, Entity, LoggedModelRow, ModelMetric, SqlValue};

use crate::filter::{compare_number, compare_present, compare_text, parse_clauses};
use crate::tracking::{ACTIVE, DELETED, Page, offset, page_size};
use crate::{MlflowError, Result, Tracking, validate};

pub const PENDING: &str = "LOGGED_MODEL_PENDING";
const STATUSES: &[&str] = &[PENDING, "LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED"];
const ATTRIBUTES: &[&str] =
    &["model_id", "name", "status", "source_run_id", "model_type", "creation_timestamp", "last_updated_timestamp"];

const MODEL_HISTORY_TAG: &str = "mlflow.log-model.history";
/// The mandatory fields of a `runs/log-model` summary first, then the kept optional one.
const MODEL_HISTORY_FIELDS: &[&str] = &["artifact_path", "flavors", "utc_time_created", "run_id", "model_uuid"];

/// A `logged-models/search` request.
#[derive(Debug, Clone, Default)]
pub struct ModelSearch {
    pub experiment_ids: Vec<String>,
    pub filter: Option<String>,
    /// (`field_name`, ascending)
    pub order_by: Vec<(String, bool)>,
    pub max_results: Option<i64>,
    pub page_token: Option<String>,
}

/// A new logged model's attributes.
#[derive(Debug, Clone, Default)]
pub struct NewModel {
    pub experiment_id: String,
    pub name: Option<String>,
    pub model_type: Option<String>,
    pub source_run_id: Option<String>,
    pub params: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
}

fn attribute(m: &LoggedModelRow, key: &str) -> Option<String> {
    Some(match key {
        "model_id" => m.model_id.clone(),
        "name" => m.name.clone(),
        "status" => m.status.clone(),
        "source_run_id" => m.source_run_id.clone()?,
        "model_type" => m.model_type.clone()?,
        "creation_timestamp" => m.creation_time.to_string(),
        _ => m.last_updated_time.to_string(),
    })
}

/// The latest value of each metric key (highest step, then timestamp).
fn latest_metric(m: &LoggedModelRow, key: &str) -> Option<f64> {
    m.metrics
        .iter()
        .filter(|x| x.metric.key == key)
        .max_by_key(|x| (x.metric.step, x.metric.timestamp))
        .map(|x| if x.metric.is_nan { f64::NAN } else { x.metric.value })
}

fn admits(m: &LoggedModelRow, c: &Clause) -> bool {
    let text = |pairs: &[(String, String)]| pairs.iter().find(|(k, _)| k == &c.key).map(|(_, v)| v.clone());
    match c.entity {
        Entity::Metric => latest_metric(m, &c.key).is_some_and(|v| compare_number(c.op, v, &c.value)),
        Entity::Param => compare_present(c.op, text(&m.params).as_deref(), &c.value),
        Entity::Tag => compare_present(c.op, text(&m.tags).as_deref(), &c.value),
        Entity::Attribute => match (attribute(m, &c.key), &c.value) {
            (Some(v), SqlValue::Number(_)) => v.parse().is_ok_and(|n: f64| compare_number(c.op, n, &c.value)),
            (Some(v), _) => compare_text(c.op, &v, &c.value),
            (None, _) => c.op == Comparison::Ne,
        },
    }
}

fn sort_key(m: &LoggedModelRow, field: &str) -> (Option<f64>, Option<String>) {
    match field.split_once('.') {
        Some(("metrics", key)) => (latest_metric(m, key), None),
        Some(("params", key)) => (None, m.params.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())),
        _ => match field {
            "creation_timestamp" | "creation_time" => (Some(m.creation_time as f64), None),
            "last_updated_timestamp" => (Some(m.last_updated_time as f64), None),
            other => (None, attribute(m, other)),
        },
    }
}

/// What a run read or wrote, as `log-inputs` and `log-outputs` record it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunIo {
    Dataset,
    ModelInput,
    ModelOutput,
}

impl RunIo {
    /// The kind the store records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dataset => "dataset",
            Self::ModelInput => "model_input",
            Self::ModelOutput => "model_output",
        }
    }
}

impl Tracking {
    pub fn create_logged_model(&self, new: NewModel) -> Result<LoggedModelRow> {
        let experiment = self.experiment(&new.experiment_id)?;
        validate::params(&new.params)?;
        validate::tags(&new.tags)?;
        if let Some(run) = &new.source_run_id {
            self.run(run)?;
        }
        let id = uuid::Uuid::new_v4();
        let model_id = format!("m-{}", id.simple());
        let now = now_ms();
        let model = LoggedModelRow {
            artifact_location: format!(
                "{}/{}/{model_id}/artifacts",
                experiment.artifact_location.trim_end_matches('/'),
                crate::artifacts::models_dir(&experiment.artifact_location),
            ),
            name: new.name.filter(|n| !n.is_empty()).unwrap_or_else(|| crate::names::run_name(&id)),
            model_id,
            experiment_id: experiment.experiment_id,
            creation_time: now,
            last_updated_time: now,
            status: PENDING.into(),
            status_message: None,
            model_type: new.model_type,
            source_run_id: new.source_run_id,
            lifecycle_stage: ACTIVE.into(),
            tags: new.tags,
            params: new.params,
            metrics: Vec::new(),
        };
        self.store().create_logged_model(&model)?;
        Ok(model)
    }

    pub fn logged_model(&self, model_id: &str, allow_deleted: bool) -> Result<LoggedModelRow> {
        match self.store().get_logged_model(model_id)? {
            Some(m) if allow_deleted || m.lifecycle_stage == ACTIVE => Ok(m),
            _ => Err(MlflowError::NotFound(format!("Logged model with ID '{model_id}' not found."))),
        }
    }

    pub fn finalize_logged_model(&self, model_id: &str, status: &str) -> Result<LoggedModelRow> {
        let model = self.logged_model(model_id, false)?;
        if !STATUSES.contains(&status) {
            return Err(MlflowError::InvalidParameter(format!("Invalid logged model status '{status}'")));
        }
        self.store().update_logged_model(model_id, status, &model.lifecycle_stage, now_ms())?;
        self.logged_model(model_id, false)
    }

    pub fn delete_logged_model(&self, model_id: &str) -> Result<()> {
        let model = self.logged_model(model_id, false)?;
        Ok(self.store().update_logged_model(model_id, &model.status, DELETED, now_ms())?)
    }

    pub fn set_logged_model_tags(&self, model_id: &str, tags: &[(String, String)]) -> Result<()> {
        self.logged_model(model_id, false)?;
        validate::tags(tags)?;
        Ok(self.store().set_logged_model_tags(model_id, tags, now_ms())?)
    }

    pub fn delete_logged_model_tag(&self, model_id: &str, key: &str) -> Result<()> {
        self.logged_model(model_id, false)?;
        if !self.store().delete_logged_model_tag(model_id, key)? {
            return Err(MlflowError::NotFound(format!("No tag with key '{key}' on logged model '{model_id}'")));
        }
        Ok(())
    }

    pub fn log_logged_model_params(&self, model_id: &str, params: &[(String, String)]) -> Result<()> {
        self.logged_model(model_id, false)?;
        validate::params(params)?;
        Ok(self.store().log_logged_model_params(model_id, params)?)
    }

    /// Metrics a run logged against a model (`model_id` on log-metric).
    pub fn log_model_metrics(&self, model_id: &str, metrics: &[ModelMetric]) -> Result<()> {
        self.logged_model(model_id, false)?;
        let stored: Vec<ModelMetric> = metrics
            .iter()
            .map(|m| {
                let (value, is_nan) = validate::metric_value(m.metric.value);
                let mut m = m.clone();
                m.metric.value = value;
                m.metric.is_nan |= is_nan;
                m
            })
            .collect();
        Ok(self.store().log_model_metrics(model_id, &stored)?)
    }

    pub fn search_logged_models(&self, search: &ModelSearch) -> Result<Page<LoggedModelRow>> {
        let size = page_size(search.max_results, 100, 1000)?;
        let start = offset(search.page_token.as_deref())?;
        let ids = search
            .experiment_ids
            .iter()
            .map(|id| self.experiment(id).map(|e| e.experiment_id))
            .collect::<Result<Vec<_>>>()?;
        let clauses = parse_clauses(search.filter.as_deref().unwrap_or(""), &|k| ATTRIBUTES.contains(&k), &|k| {
            k.ends_with("_timestamp")
        })?;
        let mut models: Vec<LoggedModelRow> = self
            .store()
            .list_logged_models(&ids)?
            .into_iter()
            .filter(|m| m.lifecycle_stage == ACTIVE && clauses.iter().all(|c| admits(m, c)))
            .collect();
        for (field, ascending) in search.order_by.iter().rev() {
            models.sort_by(|a, b| {
                let ordering = sort_key(a, field).partial_cmp(&sort_key(b, field)).unwrap_or(std::cmp::Ordering::Equal);
                if *ascending { ordering } else { ordering.reverse() }
            });
        }
        Ok(Page::slice(&models, start, size))
    }

    /// `runs/log-model`: appends a model's summary (its path, flavors and
    /// time) to the run's `mlflow.log-model.history` tag, as MLflow 2 did.
    pub fn record_logged_model(&self, run_id: &str, model_json: &str) -> Result<()> {
        let malformed =
            || MlflowError::InvalidParameter(format!("Malformed model info. \n {model_json} \n is not a valid JSON."));
        let serde_json::Value::Object(model) = serde_json::from_str(model_json).map_err(|_| malformed())? else {
            return Err(malformed());
        };
        let missing: Vec<&str> =
            MODEL_HISTORY_FIELDS[..4].iter().copied().filter(|f| !model.contains_key(*f)).collect();
        if !missing.is_empty() {
            return Err(MlflowError::InvalidParameter(format!("Model json is missing mandatory fields: {missing:?}")));
        }
        let (_, data) = self.run_with_data(run_id)?;
        let mut history = match data.tags.iter().find(|(k, _)| k == MODEL_HISTORY_TAG) {
            Some((_, v)) => serde_json::from_str::<Vec<serde_json::Value>>(v).unwrap_or_default(),
            None => Vec::new(),
        };
        let summary: serde_json::Map<_, _> =
            model.into_iter().filter(|(k, _)| MODEL_HISTORY_FIELDS.contains(&k.as_str())).collect();
        history.push(serde_json::Value::Object(summary));
        let value = serde_json::Value::Array(history).to_string();
        self.log_batch(run_id, &[], &[], &[(MODEL_HISTORY_TAG.to_string(), value)])
    }

    /// Records what a run read (datasets, models) or wrote (models): the
    /// client's documents, kept as sent and shown back by `runs/get`.
    pub fn log_run_io(&self, run_id: &str, kind: RunIo, items: &[serde_json::Value]) -> Result<()> {
        self.run(run_id)?;
        Ok(self.store().add_run_inputs(run_id, kind.as_str(), items)?)
    }
}
