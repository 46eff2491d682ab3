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

    /// Deletes a file or a directory with everything under it.
    pub fn delete(&self, path: &str) -> Result<()> {
        let location = self.location(path)?;
        location.delete(true).map_err(files_error)?;
        Ok(())
    }
}
