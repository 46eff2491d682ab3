//! A file tree on an object store (DBFS, a volume, MLflow artifacts under
//! `TARN_STORAGE_ROOT`): the operations [`crate::Location`] offers, over
//! keys instead of paths.
//!
//! An object store has no directories: a directory is any key prefix with
//! objects under it, and an empty one is kept by a marker object
//! (`<dir>/.tarn-dir`) that listings hide. A tree's root is always a
//! directory. Renaming a directory copies and deletes object by object, so
//! unlike on disk it is not atomic.

use std::sync::Arc;

use tarn_storage::ObjectRoot;
use tarn_storage::object_store::{self, ObjectMeta};

use crate::staged::{STAGING_PREFIX, Staged};
use crate::tree::Entry;
use crate::{FilesError, Result};

/// Keeps an empty directory listed; client paths may not name it.
pub const DIR_MARKER: &str = ".tarn-dir";

/// A tree under `prefix` of an object-store root. Cheap to clone.
#[derive(Clone)]
pub struct ObjectTree {
    root: Arc<ObjectRoot>,
    /// Relative to the storage root, no slashes at its ends (`dbfs`,
    /// `volumes/<id>`).
    prefix: String,
}

impl std::fmt::Debug for ObjectTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ObjectTree({})", self.root.url(&self.prefix))
    }
}

impl PartialEq for ObjectTree {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.root, &other.root) && self.prefix == other.prefix
    }
}

/// An object-store failure on the path the client calls `shown`, by kind.
pub(crate) fn failed(shown: &str, e: object_store::Error) -> FilesError {
    let path = shown.to_string();
    match e {
        object_store::Error::NotFound { .. } => FilesError::NotFound { path },
        object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. } => {
            FilesError::AlreadyExists { path }
        }
        other => FilesError::Storage { context: path, source: other },
    }
}

fn modified_ms(meta: &ObjectMeta) -> i64 {
    meta.last_modified.timestamp_millis()
}

fn name_of(shown: &str) -> String {
    shown.rsplit('/').next().unwrap_or_default().to_string()
}

fn hidden(name: &str) -> bool {
    name == DIR_MARKER || name.starts_with(STAGING_PREFIX)
}

impl ObjectTree {
    pub fn new(root: Arc<ObjectRoot>, prefix: &str) -> ObjectTree {
        ObjectTree { root, prefix: prefix.trim_matches('/').to_string() }
    }

    pub(crate) fn root(&self) -> &Arc<ObjectRoot> {
        &self.root
    }

    /// `rel` (normalized, "" for the tree's root) relative to the storage root.
    pub(crate) fn key(&self, rel: &str) -> String {
        if rel.is_empty() { self.prefix.clone() } else { format!("{}/{rel}", self.prefix) }
    }

    /// The store's URL of `rel`, for an engine to read or write.
    pub(crate) fn url(&self, rel: &str) -> String {
        self.root.url(&self.key(rel))
    }

    fn head(&self, rel: &str, shown: &str) -> Result<Option<ObjectMeta>> {
        if rel.is_empty() {
            return Ok(None);
        }
        self.root.head(&self.key(rel)).map_err(|e| failed(shown, e))
    }

    /// Whether anything (an object or the marker) is under `rel/`.
    fn has_children(&self, rel: &str, shown: &str) -> Result<bool> {
        let listed = self.root.list_dir(&self.key(rel)).map_err(|e| failed(shown, e))?;
        Ok(!listed.objects.is_empty() || !listed.common_prefixes.is_empty())
    }

    fn dir_entry(shown: &str) -> Entry {
        Entry { path: shown.to_string(), name: name_of(shown), is_dir: true, size: 0, modified_ms: 0 }
    }

    fn file_entry(shown: &str, meta: &ObjectMeta) -> Entry {
        Entry {
            path: shown.into(),
            name: name_of(shown),
            is_dir: false,
            size: meta.size,
            modified_ms: modified_ms(meta),
        }
    }

    /// The file at `rel`: `IsADirectory` for a directory, else `NotFound`.
    fn file(&self, rel: &str, shown: &str) -> Result<ObjectMeta> {
        match self.head(rel, shown)? {
            Some(meta) => Ok(meta),
            None => Err(match self.stat(rel, shown) {
                Ok(_) => FilesError::IsADirectory { path: shown.into() },
                Err(e) => e,
            }),
        }
    }

    pub(crate) fn stat(&self, rel: &str, shown: &str) -> Result<Entry> {
        if let Some(meta) = self.head(rel, shown)? {
            return Ok(Self::file_entry(shown, &meta));
        }
        if rel.is_empty() || self.has_children(rel, shown)? {
            return Ok(Self::dir_entry(shown));
        }
        Err(FilesError::NotFound { path: shown.into() })
    }

    pub(crate) fn list(&self, rel: &str, shown: &str) -> Result<Vec<Entry>> {
        if self.head(rel, shown)?.is_some() {
            return Err(FilesError::NotADirectory { path: shown.into() });
        }
        let listed = self.root.list_dir(&self.key(rel)).map_err(|e| failed(shown, e))?;
        // As `stat`: a directory is the root or a prefix with something under it.
        if !rel.is_empty() && listed.objects.is_empty() && listed.common_prefixes.is_empty() {
            return Err(FilesError::NotFound { path: shown.into() });
        }
        let base = shown.trim_end_matches('/');
        let mut entries: Vec<Entry> = listed
            .common_prefixes
            .iter()
            .map(ObjectRoot::name_of)
            .filter(|name| !hidden(name))
            .map(|name| Self::dir_entry(&format!("{base}/{name}")))
            .collect();
        for meta in &listed.objects {
            let name = ObjectRoot::name_of(&meta.location);
            if !hidden(&name) {
                let path = format!("{base}/{name}");
                entries.push(Entry { path, name, is_dir: false, size: meta.size, modified_ms: modified_ms(meta) });
            }
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// Refuses a file at `rel` or at any of its ancestors (where a
    /// directory must go): `AlreadyExists`, as on disk.
    fn no_file_on_the_way(&self, rel: &str, shown: &str) -> Result<()> {
        let mut at = String::new();
        for segment in rel.split('/').filter(|s| !s.is_empty()) {
            at = if at.is_empty() { segment.to_string() } else { format!("{at}/{segment}") };
            if self.head(&at, shown)?.is_some() {
                return Err(FilesError::AlreadyExists { path: shown.into() });
            }
        }
        Ok(())
    }

    pub(crate) fn mkdirs(&self, rel: &str, shown: &str) -> Result<()> {
        if rel.is_empty() {
            return Ok(());
        }
        self.no_file_on_the_way(rel, shown)?;
        let marker = format!("{}/{DIR_MARKER}", self.key(rel));
        self.root.put(&marker, Default::default(), false).map_err(|e| failed(shown, e))
    }

    pub(crate) fn create_file(&self, rel: &str, shown: &str) -> Result<Staged> {
        if rel.is_empty() {
            return Err(FilesError::InvalidPath { path: shown.into(), reason: "it names no file" });
        }
        let parent = rel.rsplit_once('/').map_or("", |(parent, _)| parent);
        self.no_file_on_the_way(parent, shown)?;
        if self.has_children(rel, shown)? {
            return Err(FilesError::AlreadyExists { path: shown.into() });
        }
        Staged::spool(self.root.clone(), self.key(rel), shown)
    }

    /// The file's bytes in a local unlinked copy, and its entry.
    pub(crate) fn open_file(&self, rel: &str, shown: &str) -> Result<(std::fs::File, Entry)> {
        self.file(rel, shown)?;
        let (file, meta) = self.root.download(&self.key(rel)).map_err(|e| failed(shown, e))?;
        Ok((file, Self::file_entry(shown, &meta)))
    }

    pub(crate) fn read_range(&self, rel: &str, shown: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let meta = self.file(rel, shown)?;
        let end = offset.saturating_add(len).min(meta.size);
        if offset >= end {
            return Ok(Vec::new());
        }
        let bytes = self.root.get_range(&self.key(rel), offset..end).map_err(|e| failed(shown, e))?;
        Ok(bytes.to_vec())
    }

    pub(crate) fn delete_file(&self, rel: &str, shown: &str) -> Result<()> {
        self.file(rel, shown)?;
        self.root.delete(&self.key(rel)).map_err(|e| failed(shown, e))
    }

    /// Whether the directory at `rel` holds nothing but its marker.
    fn only_marker(&self, rel: &str, shown: &str) -> Result<bool> {
        let listed = self.root.list_dir(&self.key(rel)).map_err(|e| failed(shown, e))?;
        let only = listed.common_prefixes.is_empty()
            && listed.objects.iter().all(|o| ObjectRoot::name_of(&o.location) == DIR_MARKER);
        Ok(only)
    }

    pub(crate) fn delete_dir(&self, rel: &str, shown: &str) -> Result<()> {
        if !self.stat(rel, shown)?.is_dir {
            return Err(FilesError::NotADirectory { path: shown.into() });
        }
        if !self.only_marker(rel, shown)? {
            return Err(FilesError::DirectoryNotEmpty { path: shown.into() });
        }
        self.root.delete(&format!("{}/{DIR_MARKER}", self.key(rel))).map_err(|e| failed(shown, e))
    }

    pub(crate) fn delete(&self, rel: &str, shown: &str, recursive: bool) -> Result<bool> {
        if self.head(rel, shown)?.is_some() {
            self.root.delete(&self.key(rel)).map_err(|e| failed(shown, e))?;
            return Ok(true);
        }
        if !self.has_children(rel, shown)? {
            return Ok(false);
        }
        if !recursive && !self.only_marker(rel, shown)? {
            return Err(FilesError::DirectoryNotEmpty { path: shown.into() });
        }
        self.root.delete_prefix(&self.key(rel)).map_err(|e| failed(shown, e))?;
        Ok(true)
    }

    /// A fresh local copy of the directory at `rel` at `to` (replacing
    /// what was there), for a process that reads files in place.
    pub(crate) fn download_dir(&self, rel: &str, shown: &str, to: &std::path::Path) -> Result<()> {
        let base = self.key(rel);
        let under = self.root.list_all(&base).map_err(|e| failed(shown, e))?;
        if under.is_empty() {
            return Err(FilesError::NotFound { path: shown.into() });
        }
        let local = |e| FilesError::io(format!("copying {shown} to {}", to.display()), e);
        let parent = to.parent().ok_or_else(|| FilesError::InvalidPath { path: shown.into(), reason: "no parent" })?;
        std::fs::create_dir_all(parent).map_err(local)?;
        let staging = parent.join(format!("{STAGING_PREFIX}{}", uuid::Uuid::new_v4().simple()));
        let copied = self.copy_objects(&under, &base, &staging, shown);
        if let Err(e) = copied {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
        let _ = std::fs::remove_dir_all(to);
        if std::fs::rename(&staging, to).is_err() {
            // Another copy got there first; it is as fresh as this one.
            let _ = std::fs::remove_dir_all(&staging);
        }
        Ok(())
    }

    fn copy_objects(&self, under: &[ObjectMeta], base: &str, into: &std::path::Path, shown: &str) -> Result<()> {
        for meta in under {
            let Some(at) = self.root.rel_of_key(&meta.location) else { continue };
            let Some(tail) = at.strip_prefix(&format!("{base}/")) else { continue };
            if tail.split('/').any(hidden) || tail.split('/').any(|part| part == "..") {
                continue;
            }
            let path = into.join(tail);
            let local = |e| FilesError::io(format!("copying {shown}/{tail}"), e);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(local)?;
            }
            let (mut file, _) = self.root.download(&at).map_err(|e| failed(shown, e))?;
            let mut out = std::fs::File::create(&path).map_err(local)?;
            std::io::copy(&mut file, &mut out).map_err(local)?;
        }
        Ok(())
    }

    /// Copies then deletes every object under `from` (one object for a
    /// file); the caller checked that `to` is free.
    pub(crate) fn rename(&self, from: &str, to: &str, shown: &str) -> Result<()> {
        let (source, target) = (self.key(from), self.key(to));
        if self.head(from, shown)?.is_some() {
            self.root.copy(&source, &target).map_err(|e| failed(shown, e))?;
            return self.root.delete(&source).map_err(|e| failed(shown, e));
        }
        let under = self.root.list_all(&source).map_err(|e| failed(shown, e))?;
        if under.is_empty() {
            return Err(FilesError::NotFound { path: shown.into() });
        }
        for meta in under {
            let Some(at) = self.root.rel_of_key(&meta.location) else { continue };
            let Some(tail) = at.strip_prefix(&format!("{source}/")) else { continue };
            self.root.copy(&at, &format!("{target}/{tail}")).map_err(|e| failed(shown, e))?;
            self.root.delete(&at).map_err(|e| failed(shown, e))?;
        }
        Ok(())
    }
}
