//! The workspace tree: notebooks, files and directories by absolute path
//! (`/Users/<user>/...`; a `/Workspace` prefix names the same place).
//!
//! Content is under the workspace tree (on disk, or under the storage
//! root's `workspace/`) at the object's path: a file's bytes, a notebook's
//! SOURCE text (header first), a directory (on disk only: in object storage
//! directories are their rows). Git folders' files are their checkout's. The
//! metadata store keeps each object's row: its id, type and language. Ids
//! live there rather than being derived (from an inode or a path hash)
//! because Databricks ids survive an overwrite, which replaces the inode,
//! and a new object at a reused path gets a new id, which a path hash would
//! not. Changes are serialized by one lock, so a check (does it exist? is
//! the parent a directory?) holds until its write; the store row is
//! written after the content, and deleted before it.

mod notebook;
mod repo;

use std::sync::{Arc, Mutex, MutexGuard};

use tarn_core::time::now_ms;
use tarn_store::{Store, WorkspaceObject};

use crate::confine::{Root, segments};
use crate::staged::Overwrite;
use crate::tree::{Location, Tree};
use crate::{FilesError, Limit, Result};
use notebook::Imported;
pub use notebook::{Cell, file_cells};

/// The most an import may carry (Databricks: 10 MB).
pub const MAX_IMPORT: usize = 10 << 20;
/// The most bytes a workspace file (not a notebook) may hold.
pub const MAX_FILE_IMPORT: usize = 256 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectType {
    Notebook,
    File,
    Directory,
    /// A Git folder's root (`repo.rs`).
    Repo,
}

impl ObjectType {
    pub fn name(self) -> &'static str {
        match self {
            ObjectType::Notebook => "NOTEBOOK",
            ObjectType::File => "FILE",
            ObjectType::Directory => "DIRECTORY",
            ObjectType::Repo => "REPO",
        }
    }

    fn from_name(name: &str) -> Option<ObjectType> {
        [ObjectType::Notebook, ObjectType::File, ObjectType::Directory, ObjectType::Repo]
            .into_iter()
            .find(|t| t.name() == name)
    }

    /// Whether it holds other objects (a directory, a repo).
    pub fn is_container(self) -> bool {
        matches!(self, ObjectType::Directory | ObjectType::Repo)
    }
}

/// A notebook's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Python,
    Sql,
    Scala,
    R,
}

const LANGUAGES: [Language; 4] = [Language::Python, Language::Sql, Language::Scala, Language::R];

impl Language {
    pub fn name(self) -> &'static str {
        match self {
            Language::Python => "PYTHON",
            Language::Sql => "SQL",
            Language::Scala => "SCALA",
            Language::R => "R",
        }
    }

    pub fn from_name(name: &str) -> Option<Language> {
        LANGUAGES.into_iter().find(|l| l.name() == name)
    }

    /// The extension of its source files (`py`), and an export's `file_type`.
    pub fn extension(self) -> &'static str {
        match self {
            Language::Python => "py",
            Language::Sql => "sql",
            Language::Scala => "scala",
            Language::R => "r",
        }
    }

    fn from_extension(ext: &str) -> Option<Language> {
        LANGUAGES.into_iter().find(|l| l.extension().eq_ignore_ascii_case(ext))
    }

    /// What starts a line comment.
    pub fn comment(self) -> &'static str {
        match self {
            Language::Python | Language::R => "#",
            Language::Sql => "--",
            Language::Scala => "//",
        }
    }
}

/// An import or export format, as the API names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Source,
    Auto,
    Jupyter,
    Raw,
    Html,
    Dbc,
    RMarkdown,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Source => "SOURCE",
            Format::Auto => "AUTO",
            Format::Jupyter => "JUPYTER",
            Format::Raw => "RAW",
            Format::Html => "HTML",
            Format::Dbc => "DBC",
            Format::RMarkdown => "R_MARKDOWN",
        }
    }

    pub fn from_name(name: &str) -> Option<Format> {
        [Format::Source, Format::Auto, Format::Jupyter, Format::Raw, Format::Html, Format::Dbc, Format::RMarkdown]
            .into_iter()
            .find(|f| f.name() == name)
    }
}

/// A workspace object as status and listings describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub object_id: i64,
    pub path: String,
    pub object_type: ObjectType,
    pub language: Option<Language>,
    pub created_at: i64,
    pub modified_at: i64,
    /// Its owner (empty: none).
    pub creator: String,
    /// Bytes of content; none for directories.
    pub size: Option<u64>,
}

/// An import request, decoded.
#[derive(Debug, Clone)]
pub struct Import {
    pub path: String,
    /// Who imports it: a new object's owner (an overwrite keeps the owner).
    pub creator: String,
    pub content: Vec<u8>,
    pub format: Format,
    pub language: Option<Language>,
    pub overwrite: bool,
}

/// Exported content and its file type (`py`, `ipynb`, a file's extension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    pub content: Vec<u8>,
    pub file_type: Option<String>,
}

/// A notebook's source, for running it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notebook {
    pub path: String,
    pub language: Language,
    /// SOURCE text, header first.
    pub source: String,
}

impl Notebook {
    /// Its cells in order, magics (`%md`, `%sql`...) split off.
    pub fn cells(&self) -> Vec<Cell> {
        notebook::cells(&self.source, self.language)
    }
}

/// `path` as stored: absolute, normalized, without a `/Workspace` prefix.
fn canonical(path: &str) -> Result<String> {
    if !path.starts_with('/') {
        return Err(FilesError::InvalidPath { path: path.to_string(), reason: "workspace paths are absolute" });
    }
    let mut parts = segments(path, path)?;
    if parts.first() == Some(&"Workspace") {
        parts.remove(0);
    }
    Ok(format!("/{}", parts.join("/")))
}

fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// The workspace service.
pub struct Workspace {
    root: Tree,
    store: Arc<Store>,
    lock: Mutex<()>,
    /// Where Git folders' checkouts live (`repo.rs`); none: no repos.
    checkouts: Option<Root>,
}

impl Workspace {
    pub fn new(root: impl Into<Tree>, store: Arc<Store>) -> Workspace {
        Workspace { root: root.into(), store, lock: Mutex::new(()), checkouts: None }
    }

    /// Shows Git folders whose checkouts are under `checkouts`.
    pub fn with_checkouts(mut self, checkouts: Root) -> Workspace {
        self.checkouts = Some(checkouts);
        self
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        // The guarded state is on disk and in SQLite, not behind the lock.
        self.lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where an object's content is: in a Git folder's checkout, or in the
    /// workspace tree.
    fn content(&self, path: &str) -> Result<Location> {
        if let Some(local) = self.repo_local(path)? {
            let (Some(dir), Some(name)) = (local.parent(), local.file_name()) else {
                return Err(FilesError::InvalidPath { path: path.to_string(), reason: "it names no file" });
            };
            return Location::under_as(Root::open(dir)?, &name.to_string_lossy(), path);
        }
        Location::under_as(self.root.clone(), path, path)
    }

    fn read_content(&self, path: &str) -> Result<Vec<u8>> {
        self.content(path)?.read_range(0, u64::MAX)
    }

    /// The stored row at a canonical path; `/` always exists.
    fn row(&self, path: &str) -> Result<Option<WorkspaceObject>> {
        if path == "/" {
            let root = WorkspaceObject {
                object_id: 0,
                path: "/".into(),
                parent: "/".into(),
                object_type: ObjectType::Directory.name().into(),
                language: None,
                created_at: 0,
                modified_at: 0,
                creator: String::new(),
            };
            return Ok(Some(root));
        }
        Ok(self.store.get_workspace_object(path)?)
    }

    fn existing(&self, path: &str) -> Result<WorkspaceObject> {
        self.row(path)?.ok_or_else(|| FilesError::NotFound { path: path.to_string() })
    }

    fn info(&self, row: WorkspaceObject) -> Result<ObjectInfo> {
        let object_type = ObjectType::from_name(&row.object_type).unwrap_or(ObjectType::File);
        let size = match object_type {
            ObjectType::Directory | ObjectType::Repo => None,
            _ => self.content(&row.path)?.stat().ok().map(|entry| entry.size),
        };
        Ok(ObjectInfo {
            object_id: row.object_id,
            language: row.language.as_deref().and_then(Language::from_name),
            path: row.path,
            object_type,
            created_at: row.created_at,
            modified_at: row.modified_at,
            creator: row.creator,
            size,
        })
    }

    pub fn get_status(&self, path: &str) -> Result<ObjectInfo> {
        let path = canonical(path)?;
        self.info(self.existing(&path)?)
    }

    /// A directory's children by path, or the object itself if it is not a
    /// directory. With `notebooks_modified_after`, notebooks modified at or
    /// before it are left out.
    pub fn list(&self, path: &str, notebooks_modified_after: Option<i64>) -> Result<Vec<ObjectInfo>> {
        let path = canonical(path)?;
        let row = self.existing(&path)?;
        let container = ObjectType::from_name(&row.object_type).is_some_and(ObjectType::is_container);
        let rows = if container { self.store.list_workspace_children(&path)? } else { vec![row] };
        let after = notebooks_modified_after.unwrap_or(i64::MIN);
        rows.into_iter()
            .filter(|r| r.object_type != ObjectType::Notebook.name() || r.modified_at > after)
            .map(|r| self.info(r))
            .collect()
    }

    /// The stored rows of `path` and of the directories above it, nearest
    /// first, the root last; a path or directory that does not exist is
    /// left out. Who may do what at a path is decided from these: a grant
    /// on a directory reaches everything under it.
    pub fn lineage(&self, path: &str) -> Result<Vec<WorkspaceObject>> {
        let mut current = canonical(path)?;
        let mut rows = Vec::new();
        loop {
            if let Some(row) = self.row(&current)? {
                rows.push(row);
            }
            if current == "/" {
                return Ok(rows);
            }
            current = parent_of(&current).to_string();
        }
    }

    /// The lineage of the object with id `object_id` (the root is 0), or
    /// `None` if there is no such object.
    pub fn lineage_of_id(&self, object_id: i64) -> Result<Option<Vec<WorkspaceObject>>> {
        let path = match object_id {
            0 => "/".to_string(),
            id => match self.store.get_workspace_object_by_id(id)? {
                Some(row) => row.path,
                None => return Ok(None),
            },
        };
        self.lineage(&path).map(Some)
    }

    /// `path` as the workspace stores it (no `/Workspace` prefix, normalized).
    pub fn canonical(&self, path: &str) -> Result<String> {
        canonical(path)
    }

    /// Creates the directory and its parents, new ones owned by `creator`;
    /// an object other than a directory at any of them is `AlreadyExists`.
    pub fn mkdirs(&self, path: &str, creator: &str) -> Result<()> {
        let path = canonical(path)?;
        let _guard = self.lock();
        self.refuse_in_repo(&path)?;
        self.mkdirs_locked(&path, creator)
    }

    /// Makes `/Shared` if it is missing (its grant to every user is seeded
    /// with its row by the store's migrations).
    pub fn ensure_shared(&self) -> Result<()> {
        let _guard = self.lock();
        self.mkdirs_locked("/Shared", "")
    }

    fn mkdirs_locked(&self, path: &str, creator: &str) -> Result<()> {
        let mut current = String::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            current = format!("{current}/{part}");
            if let Tree::Disk(_) = self.root {
                self.content(&current)?.mkdirs()?;
            }
            // A home is its user's, whoever makes it; `/Users` is no one's.
            let owner = match (parent_of(&current), part) {
                ("/Users" | "/Repos", user) => user,
                ("/", "Users" | "Repos") => "",
                _ => creator,
            };
            let row = self.store.ensure_workspace_directory(&current, parent_of(&current), owner, now_ms())?;
            if row.object_type != ObjectType::Directory.name() {
                return Err(FilesError::AlreadyExists { path: current });
            }
        }
        Ok(())
    }

    /// Creates `/Users/<user>` if it is missing: every user has a home.
    pub fn ensure_home(&self, user: &str) -> Result<()> {
        let home = canonical(&format!("/Users/{user}"))?;
        if self.store.get_workspace_object(&home)?.is_some() {
            return Ok(());
        }
        let _guard = self.lock();
        self.mkdirs_locked(&home, user)
    }

    /// Imports a notebook or file; returns what was stored.
    pub fn import(&self, req: Import) -> Result<ObjectInfo> {
        self.import_up_to(req, MAX_IMPORT)
    }

    /// Imports a file as `workspace-files/import-file` does: a file may
    /// hold up to `MAX_FILE_IMPORT` bytes, a notebook still `MAX_IMPORT`.
    pub fn import_file(&self, req: Import) -> Result<ObjectInfo> {
        self.import_up_to(req, MAX_FILE_IMPORT)
    }

    fn import_up_to(&self, req: Import, max: usize) -> Result<ObjectInfo> {
        if req.content.len() > max {
            let size = req.content.len() as u64;
            return Err(FilesError::TooLarge { limit: Limit::Import, size, max: max as u64 });
        }
        let given = canonical(&req.path)?;
        if given == "/" {
            return Err(FilesError::InvalidPath { path: req.path, reason: "it names no object" });
        }
        let size = req.content.len();
        let (path, imported) = notebook::classify(&given, req.content, req.format, req.language)?;
        if size > MAX_IMPORT && matches!(imported, Imported::Notebook { .. }) {
            return Err(FilesError::TooLarge { limit: Limit::Import, size: size as u64, max: MAX_IMPORT as u64 });
        }
        let _guard = self.lock();
        self.refuse_in_repo(&path)?;
        let parent = parent_of(&path);
        match self.row(parent)? {
            Some(row) if row.object_type == ObjectType::Directory.name() => {}
            _ => return Err(FilesError::ParentNotFound { path: parent.to_string() }),
        }
        if let Some(row) = self.row(&path)?
            && (row.object_type == ObjectType::Directory.name() || !req.overwrite)
        {
            return Err(FilesError::AlreadyExists { path });
        }
        let (object_type, language, bytes) = match imported {
            Imported::Notebook { language, source } => (ObjectType::Notebook, Some(language), source.into_bytes()),
            Imported::File(bytes) => (ObjectType::File, None, bytes),
        };
        let mut staged = self.content(&path)?.create_file()?;
        staged.write(&bytes)?;
        staged.commit(Overwrite::Allow)?;
        let now = now_ms();
        let row = self.store.put_workspace_object(&WorkspaceObject {
            object_id: 0,
            parent: parent.to_string(),
            path,
            object_type: object_type.name().into(),
            language: language.map(|l| l.name().to_string()),
            created_at: now,
            modified_at: now,
            creator: req.creator,
        })?;
        self.info(row)
    }

    /// A notebook or file in `format`.
    pub fn export(&self, path: &str, format: Format) -> Result<Export> {
        let path = canonical(path)?;
        let info = self.info(self.existing(&path)?)?;
        let unsupported =
            || FilesError::Unsupported(format!("Exporting as {} is not supported by tarn", format.name()));
        let read = || self.read_content(&path);
        match (info.object_type, info.language, format) {
            (ObjectType::Directory, ..) => {
                Err(FilesError::Unsupported(format!("Exporting a directory ({path}) is not supported by tarn")))
            }
            (ObjectType::Notebook, Some(language), Format::Source | Format::Auto | Format::Raw) => {
                Ok(Export { content: read()?, file_type: Some(language.extension().into()) })
            }
            (ObjectType::Notebook, Some(language), Format::Jupyter) => {
                let source = String::from_utf8_lossy(&read()?).into_owned();
                Ok(Export { content: notebook::to_jupyter(&source, language), file_type: Some("ipynb".into()) })
            }
            (ObjectType::File, _, Format::Source | Format::Auto | Format::Raw) => {
                let file_type = path.rsplit('/').next().and_then(|n| n.rsplit_once('.')).map(|(_, e)| e.to_string());
                Ok(Export { content: read()?, file_type })
            }
            (ObjectType::File, _, Format::Jupyter) => {
                Err(FilesError::InvalidArgument(format!("{path} is a file; only notebooks export as JUPYTER")))
            }
            _ => Err(unsupported()),
        }
    }

    /// Deletes an object; a non-empty directory only with `recursive`.
    pub fn delete(&self, path: &str, recursive: bool) -> Result<()> {
        let path = canonical(path)?;
        if path == "/" {
            return Err(FilesError::InvalidPath { path, reason: "the root cannot be deleted" });
        }
        let _guard = self.lock();
        let row = self.existing(&path)?;
        self.refuse_delete_of_repo(&path)?;
        let is_dir = row.object_type == ObjectType::Directory.name();
        if is_dir && !recursive && self.store.count_workspace_children(&path)? > 0 {
            return Err(FilesError::DirectoryNotEmpty { path });
        }
        let content = self.content(&path)?;
        self.store.delete_workspace_tree(&path)?;
        content.delete(true).map(drop)
    }

    /// The notebook at `path`, for running it.
    pub fn notebook(&self, path: &str) -> Result<Notebook> {
        let path = canonical(path)?;
        let info = self.info(self.existing(&path)?)?;
        let (ObjectType::Notebook, Some(language)) = (info.object_type, info.language) else {
            return Err(FilesError::InvalidArgument(format!("{path} is not a notebook")));
        };
        let bytes = self.read_content(&path)?;
        let source = String::from_utf8(bytes)
            .map_err(|_| FilesError::InvalidArgument(format!("Notebook {path} is not UTF-8 text")))?;
        Ok(Notebook { path, language, source })
    }
}

#[cfg(test)]
mod tests;
