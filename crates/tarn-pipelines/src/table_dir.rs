//! Where a pipeline's dataset (or event log) table keeps its files: a
//! directory under `$TARN_HOME/lake/pipelines`, or a prefix under the
//! storage root's `pipelines/`. The engine's staged Parquet always lands in
//! a local directory (the engine runs on this host); committing moves it
//! into the table.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tarn_storage::ObjectRoot;

#[derive(Clone)]
pub enum TableDir {
    Local(PathBuf),
    /// A prefix of the root (`pipelines/<id>/<table>`), and the local
    /// directory its staging and scratch files go in.
    Object {
        root: Arc<ObjectRoot>,
        rel: String,
        scratch: PathBuf,
    },
}

impl std::fmt::Debug for TableDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.engine_path())
    }
}

impl TableDir {
    /// The pipelines' base: `pipelines/` under the storage's object root,
    /// else `local`; `scratch` holds what must stay on this machine.
    pub fn base(storage: &tarn_storage::Storage, local: PathBuf, scratch: PathBuf) -> TableDir {
        match storage.object() {
            Some(root) => TableDir::Object { root: root.clone(), rel: tarn_storage::area::PIPELINES.into(), scratch },
            None => TableDir::Local(local),
        }
    }

    pub fn join(&self, name: &str) -> TableDir {
        match self {
            TableDir::Local(dir) => TableDir::Local(dir.join(name)),
            TableDir::Object { root, rel, scratch } => {
                TableDir::Object { root: root.clone(), rel: format!("{rel}/{name}"), scratch: scratch.join(name) }
            }
        }
    }

    /// A directory on this machine for files that must be local: the
    /// engine's staged output, the analysis's definitions file.
    pub fn local_dir(&self) -> &Path {
        match self {
            TableDir::Local(dir) => dir,
            TableDir::Object { scratch, .. } => scratch,
        }
    }

    /// How an engine or delta-rs names the table: a local path, or the
    /// root's `s3://` URL.
    pub fn engine_path(&self) -> String {
        match self {
            TableDir::Local(dir) => dir.display().to_string(),
            TableDir::Object { root, rel, .. } => root.url(rel),
        }
    }

    pub fn url(&self) -> Result<url::Url, String> {
        deltalake::ensure_table_uri(self.engine_path()).map_err(|e| e.to_string())
    }

    /// Whether the table has a Delta log yet.
    pub fn has_log(&self) -> bool {
        match self {
            TableDir::Local(dir) => dir.join("_delta_log").exists(),
            TableDir::Object { root, rel, .. } => {
                root.list_dir(&format!("{rel}/_delta_log")).is_ok_and(|listed| !listed.objects.is_empty())
            }
        }
    }

    /// Makes the table's directory (nothing to make in object storage).
    pub fn create(&self) -> Result<(), String> {
        match self {
            TableDir::Local(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))
            }
            TableDir::Object { .. } => Ok(()),
        }
    }

    /// Moves the local `file` into the table as `name`; answers its size
    /// and modification time (epoch ms).
    pub fn take_file(&self, file: &Path, name: &str) -> Result<(u64, i64), String> {
        match self {
            TableDir::Local(dir) => {
                let to = dir.join(name);
                std::fs::rename(file, &to).map_err(|e| format!("moving {}: {e}", file.display()))?;
                let meta = std::fs::metadata(&to).map_err(|e| e.to_string())?;
                let modified = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
                Ok((meta.len(), modified.map_or(0, |d| d.as_millis() as i64)))
            }
            TableDir::Object { root, rel, .. } => {
                let key = format!("{rel}/{name}");
                let size = root.upload(&key, file, false).map_err(|e| format!("uploading {}: {e}", file.display()))?;
                let _ = std::fs::remove_file(file);
                let modified = root.head(&key).ok().flatten().map_or(0, |m| m.last_modified.timestamp_millis());
                Ok((size, modified))
            }
        }
    }

    /// Removes the table's files (and its local scratch).
    pub fn remove_all(&self) -> Result<(), String> {
        match self {
            TableDir::Local(dir) if dir.exists() => {
                std::fs::remove_dir_all(dir).map_err(|e| format!("removing {}: {e}", dir.display()))
            }
            TableDir::Local(_) => Ok(()),
            TableDir::Object { root, rel, scratch } => {
                let _ = std::fs::remove_dir_all(scratch);
                root.delete_prefix(rel).map(drop).map_err(|e| format!("removing {}: {e}", root.url(rel)))
            }
        }
    }
}
