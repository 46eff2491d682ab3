//! What a served entity needs of its registered model version: the
//! directory of its MLflow model, the requirements it was logged with, and
//! its serving input example, read from tarn's registry and artifact store.

use std::path::PathBuf;

use tarn_mlflow::{Artifacts, MlflowError, Tracking};

use crate::error::{Result, ServingError, invalid};

/// A registered model version's files, ready to load.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    pub dir: PathBuf,
    /// `requirements.txt` as logged, plus `mlflow` when it is not named.
    pub requirements: Vec<String>,
    /// `serving_input_example.json`: the first request a new worker answers.
    pub example: Option<Vec<u8>>,
}

/// Where served entities' models come from.
pub trait ModelSource: Send + Sync {
    /// Refuses a version the registry does not have.
    fn check(&self, name: &str, version: &str) -> Result<()>;
    fn files(&self, name: &str, version: &str) -> Result<ModelFiles>;
}

/// The workspace model registry and its artifact store.
pub struct Registry {
    pub tracking: Tracking,
    pub artifacts: Artifacts,
}

fn registry_error(name: &str, version: &str, e: MlflowError) -> ServingError {
    match e {
        MlflowError::NotFound(_) | MlflowError::InvalidParameter(_) => {
            invalid(format!("Model version {version} of registered model '{name}' does not exist: {e}"))
        }
        other => ServingError::Unavailable(format!("Reading model '{name}' version {version}: {other}")),
    }
}

impl ModelSource for Registry {
    fn check(&self, name: &str, version: &str) -> Result<()> {
        self.tracking.model_version(name, version).map(drop).map_err(|e| registry_error(name, version, e))
    }

    fn files(&self, name: &str, version: &str) -> Result<ModelFiles> {
        let row = self.tracking.model_version(name, version).map_err(|e| registry_error(name, version, e))?;
        let dir = self.artifacts.local_dir(&row.storage_location).map_err(|e| {
            invalid(format!(
                "The files of model '{name}' version {version} ({}) cannot be read: {e}",
                row.storage_location
            ))
        })?;
        if !dir.join("MLmodel").is_file() {
            return Err(invalid(format!(
                "Model '{name}' version {version} has no MLmodel file at {}: it is not an MLflow model",
                row.storage_location
            )));
        }
        let logged = std::fs::read_to_string(dir.join("requirements.txt")).unwrap_or_default();
        let example = std::fs::read(dir.join("serving_input_example.json")).ok();
        Ok(ModelFiles { requirements: requirements(&logged), dir, example })
    }
}

/// The installable lines of a requirements file, with `mlflow` added when
/// the model does not name it (the worker runs MLflow's scoring code).
pub fn requirements(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text
        .lines()
        .map(|l| l.split(" #").next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('-'))
        .map(str::to_string)
        .collect();
    let names_mlflow = lines.iter().any(|l| {
        let name: String = l.chars().take_while(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c)).collect();
        name.eq_ignore_ascii_case("mlflow")
    });
    if !names_mlflow {
        lines.push("mlflow".to_string());
    }
    lines
}

#[cfg(test)]
mod tests {
    #[test]
    fn requirements_keep_packages_and_add_mlflow_when_missing() {
        let reqs = super::requirements("# logged\nmlflow-skinny==3.1\n\n-r other.txt\nscikit-learn==1.5 # pinned\n");
        assert_eq!(reqs, vec!["mlflow-skinny==3.1", "scikit-learn==1.5", "mlflow"]);
        assert_eq!(super::requirements("mlflow==3.17.2\n"), vec!["mlflow==3.17.2"]);
    }
}
