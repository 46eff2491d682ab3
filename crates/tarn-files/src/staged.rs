//! Atomic writes: content goes to a staging file beside its target and
//! takes the target's name only once complete, so a failed or abandoned
//! upload never changes an existing file and a reader never sees half of
//! one. On an object store the staging file is a local spool, put whole
//! (or in parts, for a large one) when committed.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tarn_storage::ObjectRoot;

use crate::{FilesError, Result};

/// Staging files start with this; listings hide them and client paths may
/// not name them.
pub const STAGING_PREFIX: &str = ".tarn-staging-";

/// A file being written. Dropping it without [`Staged::commit`] removes the
/// staging file and leaves the target as it was.
#[derive(Debug)]
pub struct Staged {
    file: File,
    staging: PathBuf,
    target: Target,
    /// The target as the client names it, for errors.
    shown: String,
    written: u64,
}

/// Where a commit puts the content.
enum Target {
    Disk(PathBuf),
    /// A key relative to the storage root.
    Object(Arc<ObjectRoot>, String),
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Disk(path) => write!(f, "{}", path.display()),
            Target::Object(root, key) => f.write_str(&root.url(key)),
        }
    }
}

/// Whether a commit may replace an existing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overwrite {
    Allow,
    Refuse,
}

impl Overwrite {
    pub fn from_flag(overwrite: bool) -> Overwrite {
        if overwrite { Overwrite::Allow } else { Overwrite::Refuse }
    }
}

impl Staged {
    /// Starts writing `target`, whose directory must exist.
    pub fn create(target: PathBuf, shown: &str) -> Result<Staged> {
        let dir = target
            .parent()
            .ok_or_else(|| FilesError::InvalidPath { path: shown.to_string(), reason: "it names no file" })?;
        let staging = dir.join(format!("{STAGING_PREFIX}{}", uuid::Uuid::new_v4().simple()));
        let file = File::create_new(&staging).map_err(|e| FilesError::at(shown, e))?;
        Ok(Staged { file, staging, target: Target::Disk(target), shown: shown.to_string(), written: 0 })
    }

    /// Starts writing the object at `key` (relative to `root`), spooled in
    /// the root's scratch directory.
    pub(crate) fn spool(root: Arc<ObjectRoot>, key: String, shown: &str) -> Result<Staged> {
        let staging = root.scratch_file("upload");
        if let Some(dir) = staging.parent() {
            std::fs::create_dir_all(dir).map_err(|e| FilesError::io(format!("spooling {shown}"), e))?;
        }
        let file = File::create_new(&staging).map_err(|e| FilesError::io(format!("spooling {shown}"), e))?;
        Ok(Staged { file, staging, target: Target::Object(root, key), shown: shown.to_string(), written: 0 })
    }

    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.file.write_all(bytes).map_err(|e| FilesError::io(format!("writing {}", self.shown), e))?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Gives the content the target's name. With [`Overwrite::Refuse`] an
    /// existing target is left alone and the commit fails with
    /// `AlreadyExists`; a directory at the target is never replaced.
    pub fn commit(self, overwrite: Overwrite) -> Result<u64> {
        let target = match &self.target {
            Target::Disk(target) => target,
            Target::Object(root, key) => {
                self.file.sync_data().map_err(|e| FilesError::io(format!("writing {}", self.shown), e))?;
                let create_only = overwrite == Overwrite::Refuse;
                root.upload(key, &self.staging, create_only).map_err(|e| crate::object::failed(&self.shown, e))?;
                return Ok(self.written);
            }
        };
        self.file.sync_data().map_err(|e| FilesError::io(format!("writing {}", self.shown), e))?;
        if target.is_dir() {
            return Err(FilesError::AlreadyExists { path: self.shown.clone() });
        }
        match overwrite {
            Overwrite::Allow => std::fs::rename(&self.staging, target).map_err(|e| FilesError::at(&self.shown, e)),
            // A hard link is created only if the name is free, atomically;
            // the staging name then goes when `self` drops.
            Overwrite::Refuse => std::fs::hard_link(&self.staging, target).map_err(|e| FilesError::at(&self.shown, e)),
        }?;
        Ok(self.written)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        // After a rename the staging name no longer exists; that is fine.
        let _ = std::fs::remove_file(&self.staging);
    }
}

/// Writes `bytes` to `target` atomically (see [`Staged`]).
pub fn write_atomic(target: &Path, shown: &str, bytes: &[u8], overwrite: Overwrite) -> Result<u64> {
    let mut staged = Staged::create(target.to_path_buf(), shown)?;
    staged.write(bytes)?;
    staged.commit(overwrite)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdir::TempDir;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    #[test]
    fn overwrite_replaces_whole_files_and_abandoned_writes_leave_no_trace() {
        let tmp = TempDir::new("staged");
        let target = tmp.0.join("data.csv");
        write_atomic(&target, "data.csv", b"v1", Overwrite::Allow).unwrap();
        let mut staged = Staged::create(target.clone(), "data.csv").unwrap();
        staged.write(b"half of v2").unwrap();
        // Mid-write, readers still see v1 and only the staging file is new.
        assert_eq!(std::fs::read(&target).unwrap(), b"v1");
        assert_eq!(names(&tmp.0).len(), 2);
        drop(staged);
        assert_eq!(std::fs::read(&target).unwrap(), b"v1");
        assert_eq!(names(&tmp.0), ["data.csv"]);
        write_atomic(&target, "data.csv", b"v2", Overwrite::Allow).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"v2");
        assert_eq!(names(&tmp.0), ["data.csv"]);
    }

    #[test]
    fn refused_overwrite_keeps_the_existing_file() {
        let tmp = TempDir::new("refuse");
        let target = tmp.0.join("a");
        write_atomic(&target, "a", b"first", Overwrite::Refuse).unwrap();
        let err = write_atomic(&target, "a", b"second", Overwrite::Refuse).unwrap_err();
        assert!(matches!(err, FilesError::AlreadyExists { .. }), "{err:?}");
        assert_eq!(std::fs::read(&target).unwrap(), b"first");
        std::fs::create_dir(tmp.0.join("d")).unwrap();
        let err = write_atomic(&tmp.0.join("d"), "d", b"x", Overwrite::Allow).unwrap_err();
        assert!(matches!(err, FilesError::AlreadyExists { .. }), "{err:?}");
        assert_eq!(names(&tmp.0), ["a", "d"]);
    }
}
