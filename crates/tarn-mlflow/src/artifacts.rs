//! The proxied artifact store: `mlflow-artifacts:/<path>` is
//! `$TARN_HOME/artifacts/<path>`, read and written through tarn-files'
//! confinement (no `..`, no links out) and staged writes (a failed upload
//! leaves nothing).

use std::path::Path;

use tarn_files::{FilesError, Location, Root};

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
    root: Root,
}

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

/// The store path of a `mlflow-artifacts:` URI (with or without a host).
fn proxied_path(uri: &str) -> Option<&str> {
    let rest = uri.strip_prefix("mlflow-artifacts:")?;
    let rest = match rest.strip_prefix("//") {
        Some(with_host) => with_host.split_once('/').map_or("", |(_, path)| path),
        None => rest,
    };
    Some(rest.trim_matches('/'))
}

impl Artifacts {
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| MlflowError::Io(format!("creating {}: {e}", dir.display())))?;
        Ok(Self { root: Root::open(dir).map_err(files_error)? })
    }

    /// Where `path` (relative, `/`-separated) lives; refused if it leaves the store.
    pub fn location(&self, path: &str) -> Result<Location> {
        if path.split('/').any(|part| part == "..") {
            return Err(MlflowError::InvalidParameter(format!("Invalid artifact path: '{path}'")));
        }
        Location::under(self.root.clone(), path.trim_matches('/')).map_err(files_error)
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

    /// Deletes a file or a directory with everything under it.
    pub fn delete(&self, path: &str) -> Result<()> {
        let location = self.location(path)?;
        location.delete(true).map_err(files_error)?;
        Ok(())
    }
}
