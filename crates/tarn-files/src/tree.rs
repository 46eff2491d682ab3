//! Operations on a place in one of tarn's file trees (a volume, the DBFS
//! root), shared by the Files API and DBFS. On disk every operation
//! resolves its path through [`Root`] first, so none reaches outside the
//! tree; on an object store ([`ObjectTree`]) a normalized path is a key
//! under the tree's prefix and cannot leave it.

use std::fs::{File, Metadata};
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::UNIX_EPOCH;

use crate::confine::{Root, normalize};
use crate::object::ObjectTree;
use crate::staged::{STAGING_PREFIX, Staged};
use crate::{FilesError, Result};

/// A file or directory as listings and status calls describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// As the client names it (`/Volumes/c/s/v/a.csv`, `/tmp/a.csv`).
    pub path: String,
    pub name: String,
    pub is_dir: bool,
    /// Bytes; 0 for directories.
    pub size: u64,
    pub modified_ms: i64,
}

/// Where a tree's files are. Cheap to clone.
#[derive(Debug, Clone, PartialEq)]
pub enum Tree {
    Disk(Root),
    Object(ObjectTree),
}

impl From<Root> for Tree {
    fn from(root: Root) -> Tree {
        Tree::Disk(root)
    }
}

impl Tree {
    /// `area` of the storage root when it is an object store, else the
    /// directory `dir` on this machine.
    pub fn on(storage: &tarn_storage::Storage, area: &str, dir: &std::path::Path) -> Result<Tree> {
        Ok(match storage.object() {
            Some(root) => Tree::Object(ObjectTree::new(root.clone(), area)),
            None => Tree::Disk(Root::open(dir)?),
        })
    }
}

/// A path under a root, with the name the client gave it.
#[derive(Debug, Clone)]
pub struct Location {
    root: Tree,
    /// Normalized: no leading, trailing or doubled slashes; "" is the root.
    rel: String,
    shown: String,
}

fn modified_ms(meta: &Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Location {
    /// `shown` is the client's name for the path (slashes normalized here).
    pub(crate) fn new(root: impl Into<Tree>, rel: &str, shown: &str) -> Result<Location> {
        let rel = normalize(rel, shown)?;
        let shown = format!("/{}", normalize(shown, shown)?);
        Ok(Location { root: root.into(), rel, shown })
    }

    /// `rel` under `root`, for trees other crates keep (MLflow artifacts).
    pub fn under(root: impl Into<Tree>, rel: &str) -> Result<Location> {
        Location::new(root, rel, &format!("/{rel}"))
    }

    /// `rel` under `root`, named `shown` to the client (the Databricks
    /// client's Files API paths onto MLflow artifacts).
    pub fn under_as(root: impl Into<Tree>, rel: &str, shown: &str) -> Result<Location> {
        Location::new(root, rel, shown)
    }

    /// The object-store tree this location is in, if it is in one.
    fn object(&self) -> Option<&ObjectTree> {
        match &self.root {
            Tree::Object(tree) => Some(tree),
            Tree::Disk(_) => None,
        }
    }

    pub fn shown(&self) -> &str {
        &self.shown
    }

    pub fn is_root(&self) -> bool {
        self.rel.is_empty()
    }

    fn local(&self) -> Result<PathBuf> {
        match &self.root {
            Tree::Disk(root) => root.resolve(&self.rel, &self.shown),
            Tree::Object(_) => Err(FilesError::Unsupported(format!("{} is in object storage", self.shown))),
        }
    }

    /// Where the location is on this machine, for an engine to read or
    /// write (confinement checked now; the engine's own access is not).
    /// `Unsupported` for a location in object storage: see [`Location::url`].
    pub fn local_path(&self) -> Result<PathBuf> {
        self.local()
    }

    /// The location as an engine names it: `file:///…` on this machine,
    /// the store's URL (`s3://bucket/…`) in object storage.
    pub fn url(&self) -> Result<String> {
        match self.object() {
            Some(tree) => Ok(tree.url(&self.rel)),
            None => Ok(format!("file://{}", self.local()?.display())),
        }
    }

    /// The object-store root and the key (relative to it) of a location in
    /// object storage; `None` on disk.
    pub fn object_key(&self) -> Option<(std::sync::Arc<tarn_storage::ObjectRoot>, String)> {
        self.object().map(|tree| (tree.root().clone(), tree.key(&self.rel)))
    }

    /// A local copy of this directory at `to`, for a process that reads
    /// files in place (a model server); only needed, and only offered, in
    /// object storage, where [`Location::local_path`] has no answer.
    pub fn download_dir(&self, to: &std::path::Path) -> Result<()> {
        match self.object() {
            Some(tree) => tree.download_dir(&self.rel, &self.shown, to),
            None => Err(FilesError::Unsupported(format!("{} is on this machine already", self.shown))),
        }
    }

    fn child(&self, name: &str) -> Result<Location> {
        let rel = if self.rel.is_empty() { name.to_string() } else { format!("{}/{name}", self.rel) };
        let shown = format!("{}/{name}", self.shown.trim_end_matches('/'));
        Location::new(self.root.clone(), &rel, &shown)
    }

    fn entry(&self, meta: &Metadata) -> Entry {
        let name = self.shown.rsplit('/').next().unwrap_or_default().to_string();
        let is_dir = meta.is_dir();
        let size = if is_dir { 0 } else { meta.len() };
        Entry { path: self.shown.clone(), name, is_dir, size, modified_ms: modified_ms(meta) }
    }

    fn metadata(&self) -> Result<Metadata> {
        std::fs::metadata(self.local()?).map_err(|e| FilesError::at(&self.shown, e))
    }

    pub fn stat(&self) -> Result<Entry> {
        if let Some(tree) = self.object() {
            return tree.stat(&self.rel, &self.shown);
        }
        Ok(self.entry(&self.metadata()?))
    }

    /// The directory's entries by name. Staging files and links that lead
    /// out of the tree are left out.
    pub fn list(&self) -> Result<Vec<Entry>> {
        if let Some(tree) = self.object() {
            return tree.list(&self.rel, &self.shown);
        }
        if !self.metadata()?.is_dir() {
            return Err(FilesError::NotADirectory { path: self.shown.clone() });
        }
        let dir = std::fs::read_dir(self.local()?).map_err(|e| FilesError::at(&self.shown, e))?;
        let mut entries = Vec::new();
        for item in dir {
            let item = item.map_err(|e| FilesError::io(format!("listing {}", self.shown), e))?;
            let name = item.file_name().to_string_lossy().into_owned();
            if name.starts_with(STAGING_PREFIX) {
                continue;
            }
            // A child whose name tarn refuses, or that escapes, is not shown.
            if let Ok(entry) = self.child(&name).and_then(|c| c.stat()) {
                entries.push(entry);
            }
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// Creates the directory and its parents; a file in the way is
    /// `AlreadyExists`. An existing directory is fine.
    pub fn mkdirs(&self) -> Result<()> {
        if let Some(tree) = self.object() {
            return tree.mkdirs(&self.rel, &self.shown);
        }
        let path = self.local()?;
        std::fs::create_dir_all(&path).map_err(|e| self.in_the_way(e))
    }

    /// Creating directories failed; a file where one should go (the OS says
    /// "not a directory") is `AlreadyExists`.
    fn in_the_way(&self, e: std::io::Error) -> FilesError {
        match FilesError::at(&self.shown, e) {
            FilesError::NotADirectory { path } => FilesError::AlreadyExists { path },
            other => other,
        }
    }

    /// Starts an atomic write of this file, creating its parent directories.
    pub fn create_file(&self) -> Result<Staged> {
        if let Some(tree) = self.object() {
            return tree.create_file(&self.rel, &self.shown);
        }
        let path = self.local()?;
        let parent = match path.parent() {
            Some(parent) if !self.is_root() => parent,
            _ => return Err(FilesError::InvalidPath { path: self.shown.clone(), reason: "it names no file" }),
        };
        if path.is_dir() {
            return Err(FilesError::AlreadyExists { path: self.shown.clone() });
        }
        std::fs::create_dir_all(parent).map_err(|e| self.in_the_way(e))?;
        Staged::create(path, &self.shown)
    }

    /// The open file and its entry; a directory is `IsADirectory`.
    pub fn open_file(&self) -> Result<(File, Entry)> {
        if let Some(tree) = self.object() {
            return tree.open_file(&self.rel, &self.shown);
        }
        let path = self.local()?;
        let file = File::open(&path).map_err(|e| FilesError::at(&self.shown, e))?;
        let meta = file.metadata().map_err(|e| FilesError::at(&self.shown, e))?;
        if meta.is_dir() {
            return Err(FilesError::IsADirectory { path: self.shown.clone() });
        }
        Ok((file, self.entry(&meta)))
    }

    /// Up to `len` bytes from `offset`; fewer at the end of the file.
    pub fn read_range(&self, offset: u64, len: u64) -> Result<Vec<u8>> {
        if let Some(tree) = self.object() {
            return tree.read_range(&self.rel, &self.shown, offset, len);
        }
        let (mut file, _) = self.open_file()?;
        let read_err = |e| FilesError::io(format!("reading {}", self.shown), e);
        file.seek(SeekFrom::Start(offset)).map_err(read_err)?;
        let mut out = Vec::new();
        file.take(len).read_to_end(&mut out).map_err(read_err)?;
        Ok(out)
    }

    fn refuse_root(&self) -> Result<()> {
        if self.is_root() {
            return Err(FilesError::InvalidPath { path: self.shown.clone(), reason: "the root cannot be deleted" });
        }
        Ok(())
    }

    /// Deletes a file; a directory is `IsADirectory`.
    pub fn delete_file(&self) -> Result<()> {
        if let Some(tree) = self.object() {
            return tree.delete_file(&self.rel, &self.shown);
        }
        let path = self.local()?;
        let meta = std::fs::symlink_metadata(&path).map_err(|e| FilesError::at(&self.shown, e))?;
        if meta.is_dir() {
            return Err(FilesError::IsADirectory { path: self.shown.clone() });
        }
        std::fs::remove_file(&path).map_err(|e| FilesError::at(&self.shown, e))
    }

    /// Deletes an empty directory; a file is `NotADirectory`.
    pub fn delete_dir(&self) -> Result<()> {
        self.refuse_root()?;
        if let Some(tree) = self.object() {
            return tree.delete_dir(&self.rel, &self.shown);
        }
        if !self.metadata()?.is_dir() {
            return Err(FilesError::NotADirectory { path: self.shown.clone() });
        }
        std::fs::remove_dir(self.local()?).map_err(|e| FilesError::at(&self.shown, e))
    }

    /// Deletes whatever is here, a directory's content only with
    /// `recursive`. Nothing here is not an error; returns whether something
    /// was deleted.
    pub fn delete(&self, recursive: bool) -> Result<bool> {
        self.refuse_root()?;
        if let Some(tree) = self.object() {
            return tree.delete(&self.rel, &self.shown, recursive);
        }
        let path = self.local()?;
        let Ok(meta) = std::fs::symlink_metadata(&path) else { return Ok(false) };
        let removed = match (meta.is_dir(), recursive) {
            (false, _) => std::fs::remove_file(&path),
            (true, false) => std::fs::remove_dir(&path),
            (true, true) => std::fs::remove_dir_all(&path),
        };
        removed.map_err(|e| FilesError::at(&self.shown, e))?;
        Ok(true)
    }

    /// Moves a file or directory (with its content) to `to`, which must not
    /// exist, within the same tree.
    pub fn rename(&self, to: &Location) -> Result<()> {
        if self.root != to.root {
            return Err(FilesError::Unsupported(format!(
                "Moving {} to {} crosses storage roots; copy the data instead",
                self.shown, to.shown
            )));
        }
        self.refuse_root()?;
        to.refuse_root()?;
        if to.rel.starts_with(&format!("{}/", self.rel)) {
            return Err(FilesError::InvalidArgument(format!("Cannot move {} into itself", self.shown)));
        }
        if let Some(tree) = self.object() {
            if to.stat().is_ok() {
                return Err(FilesError::AlreadyExists { path: to.shown.clone() });
            }
            return tree.rename(&self.rel, &to.rel, &self.shown);
        }
        let (from, dest) = (self.local()?, to.local()?);
        std::fs::symlink_metadata(&from).map_err(|e| FilesError::at(&self.shown, e))?;
        if std::fs::symlink_metadata(&dest).is_ok() {
            return Err(FilesError::AlreadyExists { path: to.shown.clone() });
        }
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| FilesError::at(&to.shown, e))?;
        }
        std::fs::rename(&from, &dest).map_err(|e| FilesError::at(&self.shown, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::staged::Overwrite;
    use crate::testdir::TempDir;

    fn tree(tmp: &TempDir) -> Location {
        Location::new(Root::open(&tmp.0.join("root")).unwrap(), "", "/Volumes/c/s/v").unwrap()
    }

    fn at(base: &Location, rel: &str) -> Location {
        let shown = format!("{}/{rel}", base.shown());
        Location::new(base.root.clone(), rel, &shown).unwrap()
    }

    /// The same tree on an in-memory object store.
    fn object_tree(tmp: &TempDir) -> Location {
        let storage = tarn_storage::Storage::in_memory("team", &tmp.0.join("scratch")).unwrap();
        let tree = ObjectTree::new(storage.object().unwrap().clone(), "volumes/1");
        Location::new(Tree::Object(tree), "", "/Volumes/c/s/v").unwrap()
    }

    #[test]
    fn files_and_directories_round_trip() {
        let tmp = TempDir::new("tree");
        round_trip(tree(&tmp));
        round_trip(object_tree(&tmp));
    }

    fn round_trip(root: Location) {
        let mut staged = at(&root, "raw/2024/a.csv").create_file().unwrap();
        staged.write(b"id\n1\n").unwrap();
        staged.commit(Overwrite::Allow).unwrap();
        at(&root, "raw/empty").mkdirs().unwrap();
        let listed: Vec<(String, bool)> =
            at(&root, "raw").list().unwrap().into_iter().map(|e| (e.path, e.is_dir)).collect();
        assert_eq!(
            listed,
            [("/Volumes/c/s/v/raw/2024".to_string(), true), ("/Volumes/c/s/v/raw/empty".to_string(), true)]
        );
        let file = at(&root, "raw/2024/a.csv");
        assert_eq!((file.stat().unwrap().size, file.read_range(3, 10).unwrap()), (5, b"1\n".to_vec()));
        assert!(matches!(at(&root, "raw/2024/a.csv/x").mkdirs(), Err(FilesError::AlreadyExists { .. })));
        assert!(matches!(at(&root, "raw").delete_dir(), Err(FilesError::DirectoryNotEmpty { .. })));
        assert!(matches!(at(&root, "raw").delete_file(), Err(FilesError::IsADirectory { .. })));
        assert!(matches!(root.delete(true), Err(FilesError::InvalidPath { .. })));
        file.rename(&at(&root, "done/a.csv")).unwrap();
        assert!(matches!(file.stat(), Err(FilesError::NotFound { .. })));
        assert!(at(&root, "raw").delete(true).unwrap());
        assert!(!at(&root, "raw").delete(true).unwrap());
        assert_eq!(at(&root, "done/a.csv").read_range(0, 100).unwrap(), b"id\n1\n");
        let mut again = at(&root, "done/a.csv").create_file().unwrap();
        again.write(b"v2").unwrap();
        assert!(matches!(again.commit(Overwrite::Refuse), Err(FilesError::AlreadyExists { .. })));
        at(&root, "done").rename(&at(&root, "moved/done")).unwrap();
        let (mut file, entry) = at(&root, "moved/done/a.csv").open_file().unwrap();
        let mut read = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut read).unwrap();
        assert_eq!((read.as_slice(), entry.size), (b"id\n1\n".as_slice(), 5));
        assert!(matches!(at(&root, "done").stat(), Err(FilesError::NotFound { .. })));
        at(&root, "empty").mkdirs().unwrap();
        assert!(at(&root, "empty").list().unwrap().is_empty());
        at(&root, "empty").delete_dir().unwrap();
        assert!(matches!(at(&root, "empty").stat(), Err(FilesError::NotFound { .. })));
    }

    #[test]
    fn object_trees_spool_large_files_and_name_their_urls() {
        let tmp = TempDir::new("object-tree");
        let root = object_tree(&tmp);
        let mut staged = at(&root, "big.bin").create_file().unwrap();
        for _ in 0..9 {
            staged.write(&[1u8; 1 << 20]).unwrap();
        }
        staged.commit(Overwrite::Allow).unwrap();
        assert_eq!(at(&root, "big.bin").stat().unwrap().size, 9 << 20);
        assert_eq!(at(&root, "big.bin").read_range((9 << 20) - 2, 10).unwrap(), [1, 1]);
        assert_eq!(at(&root, "big.bin").url().unwrap(), "memory:///team/volumes/1/big.bin");
        assert!(matches!(at(&root, "big.bin").local_path(), Err(FilesError::Unsupported(_))));
        // Nothing is left in the spool once committed.
        assert_eq!(std::fs::read_dir(tmp.0.join("scratch")).unwrap().count(), 0);
    }
}
