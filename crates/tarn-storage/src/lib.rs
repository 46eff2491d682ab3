//! Storage: where tarn keeps the bytes of tables, volumes, DBFS, MLflow
//! artifacts and pipeline data. By default that is `$TARN_HOME`; with
//! `TARN_STORAGE_ROOT=s3://bucket/prefix` it is an S3-compatible object
//! store reached with the standard `AWS_*` variables.
//!
//! This crate owns the root's parsing, the one [`ObjectStore`] client built
//! from the environment, the credentials engines get, and the bridge that
//! lets tarn's synchronous file code call the store: every object-store
//! future runs on a runtime of its own, so a caller on any thread (a tokio
//! worker included) waits on a channel, never nests a runtime. Credentials
//! are read from the environment once and never printed: [`Storage`]'s
//! `Debug` names the bucket and the variables' keys only.

mod bridge;
mod object;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use object::ObjectRoot;
pub use object_store;

/// An object-store root's subtree per kind of data.
pub mod area {
    pub const DBFS: &str = "dbfs";
    pub const ARTIFACTS: &str = "artifacts";
    pub const TABLES: &str = "tables";
    pub const VOLUMES: &str = "volumes";
    pub const PIPELINES: &str = "pipelines";
    pub const WORKSPACE: &str = "workspace";
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("TARN_STORAGE_ROOT '{root}' is not usable: {reason}")]
    InvalidRoot { root: String, reason: &'static str },
    #[error("the object store client could not be built: {0}")]
    Client(String),
}

/// Where tarn's data lives: `$TARN_HOME` ([`Storage::local`]) or an object
/// store. Cheap to clone.
#[derive(Clone, Default)]
pub struct Storage {
    object: Option<Arc<ObjectRoot>>,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.object {
            None => f.write_str("Storage(local)"),
            Some(object) => write!(f, "Storage({object:?})"),
        }
    }
}

impl Storage {
    /// Everything under `$TARN_HOME`, as without a storage root.
    pub fn local() -> Storage {
        Storage::default()
    }

    /// The storage `root` names (`None` or empty: local), with credentials
    /// and endpoint from the `AWS_*` variables. `scratch` is a local
    /// directory for uploads being spooled and downloads being staged.
    pub fn from_env(root: Option<&str>, scratch: &Path) -> Result<Storage, StorageError> {
        let Some(root) = root.map(str::trim).filter(|r| !r.is_empty()) else { return Ok(Storage::local()) };
        let (bucket, prefix) = parse_root(root)?;
        let aws: Vec<(String, String)> = std::env::vars().filter(|(key, _)| key.starts_with("AWS_")).collect();
        let object = ObjectRoot::connect(bucket, prefix, aws, scratch.to_path_buf())?;
        Ok(Storage { object: Some(Arc::new(object)) })
    }

    /// A root on an in-memory store, for tests of the code above this one.
    pub fn in_memory(prefix: &str, scratch: &Path) -> Result<Storage, StorageError> {
        let object = ObjectRoot::in_memory(prefix, scratch.to_path_buf())?;
        Ok(Storage { object: Some(Arc::new(object)) })
    }

    /// The object-store root; `None` when data lives under `$TARN_HOME`.
    pub fn object(&self) -> Option<&Arc<ObjectRoot>> {
        self.object.as_ref()
    }

    /// What an engine needs in its environment to read and write the root
    /// (the `AWS_*` pairs); empty for local storage.
    pub fn engine_env(&self) -> Vec<(String, String)> {
        self.object.as_ref().map(|o| o.engine_env().to_vec()).unwrap_or_default()
    }
}

/// `s3://bucket` or `s3://bucket/some/prefix/` into the bucket and the
/// prefix without slashes at its ends.
fn parse_root(root: &str) -> Result<(String, String), StorageError> {
    let invalid = |reason| StorageError::InvalidRoot { root: root.to_string(), reason };
    let rest = root.strip_prefix("s3://").ok_or_else(|| invalid("only s3:// roots are supported"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(invalid("it names no bucket"));
    }
    if bucket.contains(['?', '#', '@', ':']) {
        return Err(invalid("the bucket name is not valid"));
    }
    let segments: Vec<&str> = prefix.split('/').filter(|s| !s.is_empty()).collect();
    if segments.iter().any(|s| *s == "." || *s == "..") {
        return Err(invalid("the prefix may not contain . or .. segments"));
    }
    Ok((bucket.to_string(), segments.join("/")))
}

/// A fresh path under `scratch` for one spool or download.
pub(crate) fn scratch_file(scratch: &Path, kind: &str) -> PathBuf {
    scratch.join(format!("{kind}-{}-{}", std::process::id(), object::next_id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_parse_into_bucket_and_prefix() {
        assert_eq!(parse_root("s3://b").unwrap(), ("b".into(), "".into()));
        assert_eq!(parse_root("s3://b/").unwrap(), ("b".into(), "".into()));
        assert_eq!(parse_root("s3://b/p/q/").unwrap(), ("b".into(), "p/q".into()));
        for bad in ["s3://", "s3:///p", "http://b/p", "/tmp/x", "s3://b/../x", "s3://u:p@b/x"] {
            assert!(parse_root(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_unset_root_is_local() {
        let storage = Storage::from_env(Some("  "), Path::new("/tmp")).unwrap();
        assert!(storage.object().is_none() && storage.engine_env().is_empty());
        assert_eq!(format!("{storage:?}"), "Storage(local)");
    }
}
