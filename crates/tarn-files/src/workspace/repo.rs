//! Git folders in the workspace tree. A repo is a `REPO` row at its path
//! (its object id is the repo's id) over a checkout kept outside the
//! workspace root, at `<checkouts>/<id>`; `tarn-repos` clones and checks
//! out, this module shows the result. Every file and directory of the
//! checkout (but `.git`) gets a row, so ids, listings and permissions work
//! as for any workspace object; a `.py`/`.sql`/`.scala`/`.r` file that
//! starts with the notebook header is a NOTEBOOK at its path without the
//! extension, as Databricks shows it. Reads map a path under a repo to the
//! checkout; writes through the Workspace API are refused (a Git folder
//! changes by checking out another revision).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tarn_core::time::now_ms;
use tarn_store::WorkspaceObject;

use super::notebook::{Imported, classify};
use super::{Format, Language, ObjectType, Workspace, canonical, parent_of};
use crate::{FilesError, Result};

/// What a checkout's entry becomes: its type and a notebook's language.
type Entry = (ObjectType, Option<Language>);

impl Workspace {
    /// The repo `path` lies in (itself included): its root's path and id.
    pub(super) fn repo_of(&self, path: &str) -> Result<Option<(String, i64)>> {
        if self.checkouts.is_none() {
            return Ok(None);
        }
        let mut current = path.to_string();
        while current != "/" {
            if let Some(row) = self.store.get_workspace_object(&current)?
                && row.object_type == ObjectType::Repo.name()
            {
                return Ok(Some((row.path, row.object_id)));
            }
            current = parent_of(&current).to_string();
        }
        Ok(None)
    }

    /// The checkout file behind a path under a repo (a notebook's with its
    /// extension); `None` outside repos.
    pub(super) fn repo_local(&self, path: &str) -> Result<Option<PathBuf>> {
        let (Some(checkouts), Some((root, id))) = (&self.checkouts, self.repo_of(path)?) else { return Ok(None) };
        let rel = format!("{id}{}", &path[root.len()..]);
        let row = self.store.get_workspace_object(path)?;
        let language = row.filter(|r| r.object_type == ObjectType::Notebook.name()).and_then(|r| r.language);
        let Some(language) = language.as_deref().and_then(Language::from_name) else {
            return checkouts.resolve(&rel, path).map(Some);
        };
        let ext = language.extension();
        let lower = checkouts.resolve(&format!("{rel}.{ext}"), path)?;
        if language == Language::R && !lower.exists() {
            return checkouts.resolve(&format!("{rel}.R"), path).map(Some);
        }
        Ok(Some(lower))
    }

    /// Refuses a write at `path` if it is in a repo.
    pub(super) fn refuse_in_repo(&self, path: &str) -> Result<()> {
        if let Some((root, _)) = self.repo_of(path)? {
            return Err(FilesError::InvalidArgument(format!(
                "{path} is in the Git folder {root}, which tarn does not change through the Workspace API; \
                 commit to its remote and update the repo (or delete it with the Repos API)"
            )));
        }
        Ok(())
    }

    /// Refuses deleting `path` if it is in a repo or holds one (the repos'
    /// records and checkouts would be left behind).
    pub(super) fn refuse_delete_of_repo(&self, path: &str) -> Result<()> {
        self.refuse_in_repo(path)?;
        let mut below = Vec::new();
        if self.checkouts.is_some() {
            self.rows_below(path, &mut below)?;
        }
        if below.iter().any(|row| row.object_type == ObjectType::Repo.name()) {
            return Err(FilesError::InvalidArgument(format!(
                "{path} holds Git folders; delete them with the Repos API first"
            )));
        }
        Ok(())
    }

    /// Where repo `id`'s checkout lives; `None` if no checkout root is set.
    pub fn checkout_dir(&self, id: i64) -> Option<PathBuf> {
        self.checkouts.as_ref().map(|c| c.dir().join(id.to_string()))
    }

    /// Makes the `REPO` row at `path` (its parents made as directories of
    /// `creator`), owned by `creator`; returns its id. The path must be free.
    pub fn mount_repo(&self, path: &str, creator: &str) -> Result<i64> {
        let path = canonical(path)?;
        if path == "/" || self.checkouts.is_none() {
            return Err(FilesError::InvalidPath { path, reason: "a Git folder cannot be made here" });
        }
        let _guard = self.lock();
        self.refuse_in_repo(parent_of(&path))?;
        self.mkdirs_locked(parent_of(&path), creator)?;
        if self.row(&path)?.is_some() {
            return Err(FilesError::AlreadyExists { path });
        }
        let now = now_ms();
        let row = self.store.put_workspace_object(&WorkspaceObject {
            object_id: 0,
            parent: parent_of(&path).to_string(),
            path,
            object_type: ObjectType::Repo.name().into(),
            language: None,
            created_at: now,
            modified_at: now,
            creator: creator.to_string(),
        })?;
        Ok(row.object_id)
    }

    /// Removes the repo at `path` from the tree (its row and its files'
    /// rows); the checkout on disk is the caller's.
    pub fn unmount_repo(&self, path: &str) -> Result<()> {
        let path = canonical(path)?;
        let _guard = self.lock();
        self.store.delete_workspace_tree(&path)?;
        Ok(())
    }

    /// Brings the rows under the repo at `path` in line with its checkout:
    /// entries gone are deleted, new ones added, kept ones keep their ids.
    pub fn sync_repo(&self, path: &str) -> Result<()> {
        let path = canonical(path)?;
        let _guard = self.lock();
        let Some((root, id)) = self.repo_of(&path)?.filter(|(root, _)| *root == path) else {
            return Err(FilesError::NotFound { path });
        };
        let dir = self.checkout_dir(id).ok_or_else(|| FilesError::NotFound { path: path.clone() })?;
        let mut wanted = BTreeMap::new();
        scan(&dir, &root, &mut wanted)?;
        let mut stale = Vec::new();
        self.rows_below(&root, &mut stale)?;
        for row in stale {
            let keep = wanted.get(&row.path).is_some_and(|(t, _)| t.name() == row.object_type);
            if !keep {
                self.store.delete_workspace_tree(&row.path)?;
            }
        }
        let now = now_ms();
        // BTreeMap order puts a directory before what it holds.
        for (entry_path, (object_type, language)) in wanted {
            self.store.put_workspace_object(&WorkspaceObject {
                object_id: 0,
                parent: parent_of(&entry_path).to_string(),
                path: entry_path,
                object_type: object_type.name().into(),
                language: language.map(|l| l.name().to_string()),
                created_at: now,
                modified_at: now,
                creator: String::new(),
            })?;
        }
        Ok(())
    }

    fn rows_below(&self, path: &str, out: &mut Vec<WorkspaceObject>) -> Result<()> {
        for row in self.store.list_workspace_children(path)? {
            if row.object_type == ObjectType::Directory.name() {
                self.rows_below(&row.path, out)?;
            }
            out.push(row);
        }
        Ok(())
    }
}

/// The workspace entries of checkout directory `dir` shown at `at`.
/// Links are left out: a checkout's link may point anywhere.
fn scan(dir: &Path, at: &str, out: &mut BTreeMap<String, Entry>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| FilesError::at(at, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| FilesError::at(at, e))?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else { continue };
        let file_type = entry.file_type().map_err(|e| FilesError::at(at, e))?;
        if name == ".git" || file_type.is_symlink() {
            continue;
        }
        let shown = format!("{at}/{name}");
        if file_type.is_dir() {
            out.insert(shown.clone(), (ObjectType::Directory, None));
            scan(&entry.path(), &shown, out)?;
        } else if file_type.is_file() {
            let (path, entry) = classify_file(&entry.path(), &shown)?;
            // A file and a notebook that would share a path: the file wins.
            if !out.contains_key(&path) || entry.0 == ObjectType::File {
                out.insert(path, entry);
            }
        }
    }
    Ok(())
}

fn classify_file(local: &Path, shown: &str) -> Result<(String, Entry)> {
    let candidate = shown
        .rsplit_once('.')
        .is_some_and(|(_, ext)| ["py", "sql", "scala", "r"].iter().any(|e| e.eq_ignore_ascii_case(ext)));
    if !candidate {
        return Ok((shown.to_string(), (ObjectType::File, None)));
    }
    let content = std::fs::read(local).map_err(|e| FilesError::at(shown, e))?;
    match classify(shown, content, Format::Auto, None) {
        Ok((path, Imported::Notebook { language, .. })) => Ok((path, (ObjectType::Notebook, Some(language)))),
        _ => Ok((shown.to_string(), (ObjectType::File, None))),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tarn_store::Store;

    use super::super::{Format, Import, ObjectType, Workspace};
    use crate::confine::Root;
    use crate::testdir::TempDir;

    #[test]
    fn a_checkout_shows_as_a_read_only_tree_with_notebooks() {
        let tmp = TempDir::new("workspace-repo");
        let store = Arc::new(Store::open_in_memory().unwrap());
        let ws = Workspace::new(Root::open(&tmp.0.join("workspace")).unwrap(), store)
            .with_checkouts(Root::open(&tmp.0.join("repos")).unwrap());
        let id = ws.mount_repo("/Repos/me/demo", "me").unwrap();
        let dir = ws.checkout_dir(id).unwrap();
        std::fs::create_dir_all(dir.join("lib")).unwrap();
        std::fs::create_dir_all(dir.join(".git")).unwrap();
        std::fs::write(dir.join("nb.py"), "# Databricks notebook source\nx = 1\n").unwrap();
        std::fs::write(dir.join("lib/plain.py"), "y = 2\n").unwrap();
        ws.sync_repo("/Repos/me/demo").unwrap();

        assert_eq!(ws.get_status("/Repos/me/demo").unwrap().object_type, ObjectType::Repo);
        let listed: Vec<_> = ws.list("/Repos/me/demo", None).unwrap().into_iter().map(|o| o.path).collect();
        assert_eq!(listed, ["/Repos/me/demo/lib", "/Repos/me/demo/nb"]);
        let nb = ws.get_status("/Repos/me/demo/nb").unwrap();
        assert_eq!(nb.object_type, ObjectType::Notebook);
        assert!(ws.notebook("/Repos/me/demo/nb").unwrap().source.contains("x = 1"));
        assert_eq!(ws.export("/Repos/me/demo/lib/plain.py", Format::Raw).unwrap().content, b"y = 2\n");

        // A new revision: what stays keeps its id, what went is gone.
        std::fs::remove_file(dir.join("lib/plain.py")).unwrap();
        std::fs::write(dir.join("nb.py"), "# Databricks notebook source\nx = 3\n").unwrap();
        ws.sync_repo("/Repos/me/demo").unwrap();
        assert_eq!(ws.get_status("/Repos/me/demo/nb").unwrap().object_id, nb.object_id);
        assert!(ws.get_status("/Repos/me/demo/lib/plain.py").is_err());

        let write = Import {
            path: "/Repos/me/demo/new.py".into(),
            creator: "me".into(),
            content: b"z = 1".to_vec(),
            format: Format::Auto,
            language: None,
            overwrite: false,
        };
        assert!(ws.import(write).is_err());
        assert!(ws.delete("/Repos/me", true).is_err());
        assert!(ws.mkdirs("/Repos/me/demo/sub", "me").is_err());
        ws.unmount_repo("/Repos/me/demo").unwrap();
        assert!(ws.get_status("/Repos/me/demo/nb").is_err());
    }
}
