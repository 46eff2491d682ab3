//! The model registry: registered models, versions (READY once created:
//! their files are already in the artifact store), tags, aliases and stage
//! transitions, with the MLflow server's errors.

use tarn_core::time::now_ms;
use tarn_store::mlflow::{Comparison, Entity, ModelVersionRow, RegisteredModelRow, SqlValue};

use crate::filter::{compare_number, compare_present, compare_text, parse_clauses};
use crate::tracking::{Page, offset, page_size};
use crate::{MlflowError, Result, Tracking, validate};

const STAGES: &[&str] = &["None", "Staging", "Production", "Archived"];

/// A new model version's attributes.
#[derive(Debug, Clone, Default)]
pub struct NewVersion {
    pub name: String,
    pub source: String,
    pub run_id: Option<String>,
    pub run_link: Option<String>,
    pub description: Option<String>,
    pub model_id: Option<String>,
    pub tags: Vec<(String, String)>,
    pub user_id: String,
}

fn not_found_model(name: &str) -> MlflowError {
    MlflowError::NotFound(format!("Registered Model with name={name} not found"))
}

fn parse_version(version: &str) -> Result<i64> {
    version
        .parse()
        .map_err(|_| MlflowError::InvalidParameter(format!("Parameter 'version' must be an integer, got '{version}'.")))
}

/// `Production` from `production` and friends; unknown stages are refused.
fn canonical_stage(stage: &str) -> Result<&'static str> {
    STAGES.iter().find(|s| s.eq_ignore_ascii_case(stage)).copied().ok_or_else(|| {
        MlflowError::InvalidParameter(format!("Invalid Model Version stage: {stage}. Value must be one of {STAGES:?}."))
    })
}

/// A tag clause; a missing tag passes `!=` (the client filters prompts out
/// of registry searches with `tag.mlflow.prompt.is_prompt != 'true'`).
fn tag_admits(value: Option<&str>, clause: &tarn_store::mlflow::Clause) -> bool {
    match value {
        None if clause.op == Comparison::Ne => true,
        _ => compare_present(clause.op, value, &clause.value),
    }
}

fn version_admits(v: &ModelVersionRow, clause: &tarn_store::mlflow::Clause) -> bool {
    let tag = |key: &str| v.tags.iter().find(|(k, _)| k == key).map(|(_, value)| value.clone());
    match clause.entity {
        Entity::Tag => tag_admits(tag(&clause.key).as_deref(), clause),
        _ => {
            let value = match clause.key.as_str() {
                "name" => v.name.clone(),
                "run_id" => v.run_id.clone().unwrap_or_default(),
                "source" | "source_path" => v.source.clone(),
                "current_stage" => v.current_stage.clone(),
                "model_id" => v.model_id.clone().unwrap_or_default(),
                _ => v.version.to_string(),
            };
            match &clause.value {
                SqlValue::Number(_) => value.parse().is_ok_and(|n: f64| compare_number(clause.op, n, &clause.value)),
                _ => compare_text(clause.op, &value, &clause.value),
            }
        }
    }
}

impl Tracking {
    /// A new registered model, owned by `creator`.
    pub fn create_registered_model(
        &self,
        name: &str,
        creator: &str,
        description: Option<&str>,
        tags: &[(String, String)],
    ) -> Result<RegisteredModelRow> {
        if name.is_empty() {
            return Err(MlflowError::InvalidParameter("Registered model name cannot be empty.".into()));
        }
        validate::tags(tags)?;
        if !self.store().create_registered_model(name, creator, description.unwrap_or(""), tags, now_ms())? {
            return Err(MlflowError::AlreadyExists(format!("Registered Model (name={name}) already exists.")));
        }
        self.registered_model(name)
    }

    pub fn registered_model(&self, name: &str) -> Result<RegisteredModelRow> {
        self.store().get_registered_model(name)?.ok_or_else(|| not_found_model(name))
    }

    /// The newest version in each stage (of `stages`, or all).
    pub fn latest_versions(&self, name: &str, stages: &[String]) -> Result<Vec<ModelVersionRow>> {
        self.registered_model(name)?;
        let wanted = stages.iter().map(|s| canonical_stage(s)).collect::<Result<Vec<_>>>()?;
        let mut latest: Vec<ModelVersionRow> = Vec::new();
        for v in self.store().list_model_versions(Some(name))? {
            if !wanted.is_empty() && !wanted.contains(&v.current_stage.as_str()) {
                continue;
            }
            match latest.iter_mut().find(|l| l.current_stage == v.current_stage) {
                Some(slot) if slot.version < v.version => *slot = v,
                Some(_) => {}
                None => latest.push(v),
            }
        }
        Ok(latest)
    }

    pub fn update_registered_model(&self, name: &str, description: Option<&str>) -> Result<RegisteredModelRow> {
        let model = self.registered_model(name)?;
        let description = description.unwrap_or(&model.description);
        self.store().update_registered_model(name, description, now_ms())?;
        self.registered_model(name)
    }

    pub fn rename_registered_model(&self, name: &str, new_name: &str) -> Result<RegisteredModelRow> {
        self.registered_model(name)?;
        if new_name.is_empty() {
            return Err(MlflowError::InvalidParameter("Registered model name cannot be empty.".into()));
        }
        if !self.store().rename_registered_model(name, new_name, now_ms())? {
            return Err(MlflowError::AlreadyExists(format!("Registered Model (name={new_name}) already exists.")));
        }
        self.registered_model(new_name)
    }

    /// Hands the model to `owner`.
    pub fn set_registered_model_owner(&self, name: &str, owner: &str) -> Result<RegisteredModelRow> {
        self.registered_model(name)?;
        if owner.is_empty() {
            return Err(MlflowError::InvalidParameter("A registered model's owner cannot be empty.".into()));
        }
        self.store().set_registered_model_creator(name, owner, now_ms())?;
        self.registered_model(name)
    }

    /// The models whose names start with `prefix` (Unity Catalog's
    /// `catalog.schema.` names a schema's models), by name.
    pub fn registered_models_under(&self, prefix: &str) -> Result<Vec<RegisteredModelRow>> {
        let names = self.store().list_registered_model_names()?;
        names.iter().filter(|n| n.starts_with(prefix)).map(|n| self.registered_model(n)).collect()
    }

    /// Every version of the model, newest first.
    pub fn model_versions(&self, name: &str) -> Result<Vec<ModelVersionRow>> {
        self.registered_model(name)?;
        let mut versions = self.store().list_model_versions(Some(name))?;
        versions.sort_by_key(|v| std::cmp::Reverse(v.version));
        Ok(versions)
    }

    pub fn delete_registered_model(&self, name: &str) -> Result<()> {
        self.registered_model(name)?;
        Ok(self.store().delete_registered_model(name)?)
    }

    pub fn set_registered_model_tag(&self, name: &str, key: &str, value: &str) -> Result<()> {
        self.registered_model(name)?;
        validate::tag(key, value)?;
        Ok(self.store().set_registered_model_tag(name, key, value)?)
    }

    pub fn delete_registered_model_tag(&self, name: &str, key: &str) -> Result<()> {
        self.registered_model(name)?;
        if !self.store().delete_registered_model_tag(name, key)? {
            return Err(MlflowError::NotFound(format!("No tag with name: {key} in registered model {name}")));
        }
        Ok(())
    }

    /// Models `admit` lets through (the caller's permissions) and the filter admits.
    pub fn search_registered_models(
        &self,
        admit: &dyn Fn(&RegisteredModelRow) -> bool,
        filter: Option<&str>,
        max_results: Option<i64>,
        page_token: Option<&str>,
    ) -> Result<Page<RegisteredModelRow>> {
        let size = page_size(max_results, 100, 1000)?;
        let start = offset(page_token)?;
        let clauses = parse_clauses(filter.unwrap_or(""), &|k| k == "name", &|_| false)?;
        let mut models = Vec::new();
        for name in self.store().list_registered_model_names()? {
            let model = self.registered_model(&name)?;
            let admitted = clauses.iter().all(|c| match c.entity {
                Entity::Tag => {
                    let value = model.tags.iter().find(|(k, _)| k == &c.key).map(|(_, v)| v.as_str());
                    tag_admits(value, c)
                }
                _ => compare_text(c.op, &model.name, &c.value),
            });
            if admitted && admit(&model) {
                models.push(model);
            }
        }
        Ok(Page::slice(&models, start, size))
    }

    /// Where a version's files are: a logged model's artifacts for
    /// `models:/m-...`, a run's artifact path for `runs:/<run>/<path>`,
    /// else the source itself.
    fn storage_location(&self, source: &str, model_id: Option<&str>) -> Result<String> {
        if let Some(id) = source.strip_prefix("models:/").filter(|id| id.starts_with("m-")).or(model_id)
            && let Ok(model) = self.logged_model(id.trim_end_matches('/'), true)
        {
            return Ok(model.artifact_location);
        }
        if let Some(rest) = source.strip_prefix("runs:/") {
            let (run_id, path) = rest.split_once('/').unwrap_or((rest, ""));
            let run = self.run(run_id)?;
            return Ok(format!("{}/{}", run.artifact_uri.trim_end_matches('/'), path.trim_start_matches('/')));
        }
        Ok(source.to_string())
    }

    pub fn create_model_version(&self, new: NewVersion) -> Result<ModelVersionRow> {
        self.registered_model(&new.name)?;
        if new.source.is_empty() {
            return Err(MlflowError::InvalidParameter("Missing value for required parameter 'source'.".into()));
        }
        if new.source.contains("/../") || new.source.ends_with("/..") {
            return Err(MlflowError::InvalidParameter(format!("Invalid model version source: '{}'", new.source)));
        }
        validate::tags(&new.tags)?;
        let now = now_ms();
        let row = ModelVersionRow {
            storage_location: self.storage_location(&new.source, new.model_id.as_deref())?,
            name: new.name.clone(),
            version: 0,
            creation_time: now,
            last_updated_time: now,
            description: new.description.unwrap_or_default(),
            user_id: new.user_id,
            current_stage: "None".into(),
            source: new.source,
            run_id: new.run_id.filter(|r| !r.is_empty()),
            run_link: new.run_link.filter(|r| !r.is_empty()),
            model_id: new.model_id.filter(|m| !m.is_empty()),
            status: "READY".into(),
            tags: new.tags,
            aliases: Vec::new(),
        };
        let version = self.store().create_model_version(&row)?;
        self.model_version(&new.name, &version.to_string())
    }

    pub fn model_version(&self, name: &str, version: &str) -> Result<ModelVersionRow> {
        let number = parse_version(version)?;
        self.store()
            .get_model_version(name, number)?
            .ok_or_else(|| MlflowError::NotFound(format!("Model Version (name={name}, version={version}) not found")))
    }

    pub fn update_model_version(
        &self,
        name: &str,
        version: &str,
        description: Option<&str>,
    ) -> Result<ModelVersionRow> {
        let v = self.model_version(name, version)?;
        let description = description.unwrap_or(&v.description);
        self.store().update_model_version(name, v.version, description, &v.current_stage, now_ms())?;
        self.model_version(name, version)
    }

    pub fn transition_stage(
        &self,
        name: &str,
        version: &str,
        stage: &str,
        archive_existing: bool,
    ) -> Result<ModelVersionRow> {
        let v = self.model_version(name, version)?;
        let stage = canonical_stage(stage)?;
        let now = now_ms();
        if archive_existing && matches!(stage, "Staging" | "Production") {
            for other in self.store().list_model_versions(Some(name))? {
                if other.version != v.version && other.current_stage == stage {
                    self.store().update_model_version(name, other.version, &other.description, "Archived", now)?;
                }
            }
        }
        self.store().update_model_version(name, v.version, &v.description, stage, now)?;
        self.model_version(name, version)
    }

    pub fn delete_model_version(&self, name: &str, version: &str) -> Result<()> {
        let v = self.model_version(name, version)?;
        Ok(self.store().delete_model_version(name, v.version)?)
    }

    pub fn set_model_version_tag(&self, name: &str, version: &str, key: &str, value: &str) -> Result<()> {
        let v = self.model_version(name, version)?;
        validate::tag(key, value)?;
        Ok(self.store().set_model_version_tag(name, v.version, key, value)?)
    }

    pub fn delete_model_version_tag(&self, name: &str, version: &str, key: &str) -> Result<()> {
        let v = self.model_version(name, version)?;
        if !self.store().delete_model_version_tag(name, v.version, key)? {
            return Err(MlflowError::NotFound(format!("No tag with name: {key} in model version {name} {version}")));
        }
        Ok(())
    }

    pub fn set_alias(&self, name: &str, alias: &str, version: &str) -> Result<()> {
        let v = self.model_version(name, version)?;
        let reserved = alias.eq_ignore_ascii_case("latest")
            || (alias.starts_with(['v', 'V']) && alias[1..].parse::<i64>().is_ok());
        if alias.is_empty() || reserved {
            return Err(MlflowError::InvalidParameter(format!("'{alias}' alias name (case insensitive) is reserved.")));
        }
        Ok(self.store().set_registered_model_alias(name, alias, v.version)?)
    }

    pub fn delete_alias(&self, name: &str, alias: &str) -> Result<()> {
        self.registered_model(name)?;
        if !self.store().delete_registered_model_alias(name, alias)? {
            return Err(MlflowError::NotFound(format!("Registered model alias {alias} not found.")));
        }
        Ok(())
    }

    pub fn version_by_alias(&self, name: &str, alias: &str) -> Result<ModelVersionRow> {
        self.registered_model(name)?;
        let version = self
            .store()
            .alias_version(name, alias)?
            .ok_or_else(|| MlflowError::NotFound(format!("Registered model alias {alias} not found.")))?;
        self.model_version(name, &version.to_string())
    }

    /// Versions of the models `admit` lets through (by name) the filter admits.
    pub fn search_model_versions(
        &self,
        admit: &dyn Fn(&str) -> bool,
        filter: Option<&str>,
        max_results: Option<i64>,
        page_token: Option<&str>,
    ) -> Result<Page<ModelVersionRow>> {
        let size = page_size(max_results, 10_000, 200_000)?;
        let start = offset(page_token)?;
        let attributes = ["name", "run_id", "source", "source_path", "current_stage", "model_id", "version_number"];
        let clauses = parse_clauses(filter.unwrap_or(""), &|k| attributes.contains(&k), &|k| k == "version_number")?;
        // A name clause narrows the read to that model.
        let only = clauses.iter().find_map(|c| match (&c.key[..], c.op, &c.value) {
            ("name", Comparison::Eq, SqlValue::Text(n)) if c.entity == Entity::Attribute => Some(n.clone()),
            _ => None,
        });
        let mut versions: Vec<ModelVersionRow> = self
            .store()
            .list_model_versions(only.as_deref())?
            .into_iter()
            .filter(|v| clauses.iter().all(|c| version_admits(v, c)))
            .collect();
        let mut admitted: std::collections::HashMap<String, bool> = std::collections::HashMap::new();
        versions.retain(|v| *admitted.entry(v.name.clone()).or_insert_with(|| admit(&v.name)));
        versions.sort_by(|a, b| a.name.cmp(&b.name).then(b.version.cmp(&a.version)));
        Ok(Page::slice(&versions, start, size))
    }

    /// Where the client downloads a version's files from.
    pub fn download_uri(&self, name: &str, version: &str) -> Result<String> {
        Ok(self.model_version(name, version)?.storage_location)
    }
}
