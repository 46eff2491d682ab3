//! The proxied artifact store: `mlflow-artifacts:/<path>` is
//! `$TARN_HOME/artifacts/<path>`, read and written through tarn-files'
//! confinement (no `..`, no links out) and staged writes (a failed upload
//! leaves nothing).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tarn_files::{FilesError, Location, Root, Tree};

use crate::{MlflowError, Result};

/// One entry of an artifact listing; `path` is relative to the store root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactFile {
    pub path: String,
    pub is_dir: bool,
    pub file_size: u64,
}

#[derive(Clone)]
pub struct Artifacts {
    root: Tree,
    cache: PathBuf,
    /// Signed URLs: token -> what it admits until when (epoch ms).
    signed: Arc<Mutex<HashMap<String, (Signed, i64)>>>,
}

/// What a signed URL admits: reading or writing one store path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

#[derive(Debug, Clone)]
struct Signed {
    path: String,
    access: Access,
}

/// How long a signed URL works, as Databricks' do.
const SIGNED_URL_TTL_MS: i64 = 15 * 60 * 1000;

pub fn files_error(e: FilesError) -> MlflowError {
    match e {
        FilesError::NotFound { path } => MlflowError::NotFound(format!("No such file or directory: '{path}'")),
        FilesError::InvalidPath { .. } | FilesError::Escapes { .. } => {
            MlflowError::InvalidParameter(format!("Invalid artifact path: {e}"))
        }
        FilesError::IsADirectory { .. } | FilesError::NotADirectory { .. } | FilesError::AlreadyExists { .. } => {
            MlflowError::InvalidParameter(e.to_string())
        }
        other => MlflowError::Io(other.to_string()),
    }
}

/// Databricks' artifact root of tracked experiments.
pub(crate) const DATABRICKS_ROOT: &str = "dbfs:/databricks/mlflow-tracking/";
/// Where the Databricks client's Files API finds them.
const WORKSPACE_INTERNAL: &str = "WorkspaceInternal/Mlflow/Artifacts/";

/// The directory of an experiment's logged models: `logged_models` under
/// Databricks' root (the client's pattern), `models` as `mlflow server` has it.
pub(crate) fn models_dir(experiment_location: &str) -> &'static str {
    if experiment_location.starts_with(DATABRICKS_ROOT) { "logged_models" } else { "models" }
}

/// The store path of a `mlflow-artifacts:` URI (with or without a host) or
/// of one under Databricks' root.
fn proxied_path(uri: &str) -> Option<&str> {
    if let Some(rest) = uri.strip_prefix(DATABRICKS_ROOT) {
        return Some(rest.trim_matches('/'));
    }
    let rest = uri.strip_prefix("mlflow-artifacts:")?;
    let rest = match rest.strip_prefix("//") {
        Some(with_host) => with_host.split_once('/').map_or("", |(_, path)| path),
        None => rest,
    };
    Some(rest.trim_matches('/'))
}

impl Artifacts {
    /// The store on `tree`; `cache` holds local copies of models for
    /// model servers when the tree is in object storage.
    pub fn open(tree: Tree, cache: PathBuf) -> Self {
        Self { root: tree, cache, signed: Arc::default() }
    }

    /// The store in the directory `dir` on this machine.
    pub fn open_dir(dir: &Path) -> Result<Self> {
        let root = Root::open(dir).map_err(files_error)?;
        Ok(Self::open(Tree::Disk(root), dir.join(".cache")))
    }

    /// Where `path` (relative, `/`-separated) lives; refused if it leaves the store.
    pub fn location(&self, path: &str) -> Result<Location> {
        if path.split('/').any(|part| part == "..") {
            return Err(MlflowError::InvalidParameter(format!("Invalid artifact path: '{path}'")));
        }
        Location::under(self.root.clone(), path.trim_matches('/')).map_err(files_error)
    }

    /// The directory on this machine holding the artifacts under `uri` (a
    /// `mlflow-artifacts:` URI or one under Databricks' root), for a process
    /// that reads them in place (a model server): in object storage, a
    /// fresh copy under the cache. Refused outside the store.
    pub fn local_dir(&self, uri: &str) -> Result<std::path::PathBuf> {
        let path = proxied_path(uri).ok_or_else(|| {
            MlflowError::NotImplemented(format!("Reading artifacts outside tarn's artifact store ('{uri}')"))
        })?;
        let location = self.location(path)?;
        if let Tree::Object(_) = self.root {
            let copy = self.cache.join(path);
            location.download_dir(&copy).map_err(|e| match e {
                FilesError::NotFound { .. } => MlflowError::NotFound(format!("No such directory: '{uri}'")),
                other => files_error(other),
            })?;
            return Ok(copy);
        }
        let dir = location.local_path().map_err(files_error)?;
        if !dir.is_dir() {
            return Err(MlflowError::NotFound(format!("No such directory: '{uri}'")));
        }
        Ok(dir)
    }

    /// The entries directly under `path`; a missing directory lists nothing
    /// (as the Python server answers).
    pub fn list(&self, path: &str) -> Result<Vec<ArtifactFile>> {
        let location = self.location(path)?;
        let entries = match location.list() {
            Ok(entries) => entries,
            Err(FilesError::NotFound { .. } | FilesError::NotADirectory { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(files_error(e)),
        };
        let prefix = path.trim_matches('/');
        Ok(entries
            .into_iter()
            .map(|e| ArtifactFile {
                path: if prefix.is_empty() { e.name.clone() } else { format!("{prefix}/{}", e.name) },
                is_dir: e.is_dir,
                file_size: e.size,
            })
            .collect())
    }

    /// The entries directly under `relative` in an artifact root such as a
    /// run's `mlflow-artifacts:/1/<run>/artifacts`, with paths relative to
    /// that root (what `artifacts/list` answers).
    pub fn list_root(&self, root_uri: &str, relative: Option<&str>) -> Result<Vec<ArtifactFile>> {
        let root = proxied_path(root_uri).ok_or_else(|| {
            MlflowError::NotImplemented(format!("Listing artifacts outside tarn's artifact store ('{root_uri}')"))
        })?;
        let relative = relative.unwrap_or("").trim_matches('/');
        let dir = if relative.is_empty() { root.to_string() } else { format!("{root}/{relative}") };
        let mut files = self.list(&dir)?;
        for f in &mut files {
            let name = f.path.rsplit('/').next().unwrap_or(&f.path).to_string();
            f.path = if relative.is_empty() { name } else { format!("{relative}/{name}") };
        }
        Ok(files)
    }

    /// Whether a Files API path (no leading `/`) is the Databricks client's
    /// name for tracking artifacts.
    pub fn is_workspace_internal(path: &str) -> bool {
        path.trim_start_matches('/').starts_with(WORKSPACE_INTERNAL)
    }

    /// Where a Files API path the Databricks client uses for artifacts lives:
    /// `WorkspaceInternal/Mlflow/Artifacts/<exp>/Runs/<run>/...` is the run's
    /// `<exp>/<run>/...`, `.../<exp>/LoggedModels/<id>/...` the model's
    /// `<exp>/logged_models/<id>/...`.
    pub fn workspace_internal(&self, path: &str) -> std::result::Result<Location, FilesError> {
        let shown = format!("/{}", path.trim_start_matches('/'));
        let invalid = || FilesError::InvalidPath { path: shown.clone(), reason: "not an MLflow artifact path" };
        let rest = path.trim_start_matches('/').strip_prefix(WORKSPACE_INTERNAL).ok_or_else(invalid)?;
        let mut parts = rest.splitn(4, '/');
        let (experiment, kind, id) = match (parts.next(), parts.next(), parts.next()) {
            (Some(e), Some(k), Some(i)) if !e.is_empty() && !i.is_empty() => (e, k, i),
            _ => return Err(invalid()),
        };
        let tail = parts.next().unwrap_or("");
        let dir = match kind {
            "Runs" => format!("{experiment}/{id}"),
            "LoggedModels" => format!("{experiment}/logged_models/{id}"),
            _ => return Err(invalid()),
        };
        let rel = if tail.is_empty() { dir } else { format!("{dir}/{tail}") };
        Location::under_as(self.root.clone(), &rel, &shown)
    }

    /// A token for a URL that reads (or writes) `relative` under an
    /// artifact root, valid for 15 minutes without other credentials (as a
    /// cloud store's signed URL is).
    pub fn sign(&self, root_uri: &str, relative: &str, access: Access) -> Result<String> {
        let root = proxied_path(root_uri).ok_or_else(|| {
            MlflowError::NotImplemented(format!("Signing URLs outside tarn's artifact store ('{root_uri}')"))
        })?;
        let relative = relative.trim_matches('/');
        let path = if relative.is_empty() { root.to_string() } else { format!("{root}/{relative}") };
        self.location(&path)?;
        let token = tarn_core::id::random_hex(24);
        let now = tarn_core::time::now_ms();
        let mut signed = self.signed.lock().unwrap_or_else(|p| p.into_inner());
        signed.retain(|_, (_, expires)| *expires > now);
        signed.insert(token.clone(), (Signed { path, access }, now + SIGNED_URL_TTL_MS));
        Ok(token)
    }

    /// The file a signed URL's token names, while it is valid for `access`.
    pub fn signed(&self, token: &str, access: Access) -> Result<Location> {
        let signed = self.signed.lock().unwrap_or_else(|p| p.into_inner());
        match signed.get(token) {
            Some((s, expires)) if *expires > tarn_core::time::now_ms() && s.access == access => self.location(&s.path),
            _ => Err(MlflowError::NotFound("The signed URL is unknown or has expired".into())),
        }
    }

    /// Deletes a file or a directory with everything under it.
    pub fn delete(&self, path: &str) -> Result<()> {
        let location = self.location(path)?;
        location.delete(true).map_err(files_error)?;
        Ok(())
    }
}

impl Artifacts {
    /// Where `relative` under an artifact root (a run's
    /// `mlflow-artifacts:/1/<run>/artifacts`) lives, for reading one file
    /// of it; refused outside the store.
    pub fn root_location(&self, root_uri: &str, relative: &str) -> Result<Location> {
        let root = proxied_path(root_uri).ok_or_else(|| {
            MlflowError::NotImplemented(format!("Reading artifacts outside tarn's artifact store ('{root_uri}')"))
        })?;
        let relative = relative.trim_matches('/');
        self.location(&if relative.is_empty() { root.to_string() } else { format!("{root}/{relative}") })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn databricks_client_paths_map_onto_the_store() {
        let dir = std::env::temp_dir().join(format!("tarn-artifacts-{}", tarn_core::id::random_hex(6)));
        let artifacts = Artifacts::open_dir(&dir).unwrap();
        let run =
            artifacts.workspace_internal("WorkspaceInternal/Mlflow/Artifacts/3/Runs/abc/artifacts/a.txt").unwrap();
        assert_eq!(run.local_path().unwrap(), dir.canonicalize().unwrap().join("3/abc/artifacts/a.txt"));
        assert_eq!(run.shown(), "/WorkspaceInternal/Mlflow/Artifacts/3/Runs/abc/artifacts/a.txt");
        let model = artifacts.workspace_internal("/WorkspaceInternal/Mlflow/Artifacts/3/LoggedModels/m-1").unwrap();
        assert_eq!(model.local_path().unwrap(), dir.canonicalize().unwrap().join("3/logged_models/m-1"));
        for bad in ["WorkspaceInternal/Mlflow/Artifacts/3/Other/x", "WorkspaceInternal/Mlflow/Artifacts/3/Runs/../../x"]
        {
            assert!(artifacts.workspace_internal(bad).is_err(), "{bad}");
        }
        assert_eq!(proxied_path("dbfs:/databricks/mlflow-tracking/3/abc/artifacts"), Some("3/abc/artifacts"));
        assert_eq!(proxied_path("mlflow-artifacts://host:5000/3/abc"), Some("3/abc"));
        assert_eq!(proxied_path("s3://bucket/x"), None);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
