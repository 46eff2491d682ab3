//! Files: the trees behind the Files API (Unity Catalog volumes), DBFS
//! (`$TARN_HOME/dbfs`, and volumes by their `/Volumes` paths) and the
//! workspace (`$TARN_HOME/workspace`: notebooks, files, directories).
//!
//! This crate owns where client paths land on disk and how bytes get there:
//! every path is confined to its tree ([`confine`]), every write is staged
//! beside its target and renamed into place ([`staged`]), and workspace
//! objects keep a stable id, type and language in the metadata store. It
//! knows no HTTP: callers hand it decoded paths and bytes and map
//! [`FilesError`] to their wire errors.

pub mod confine;
mod dbfs;
mod object;
pub mod staged;
mod tree;
mod volumes;
mod workspace;

use std::path::Path;
use std::sync::Arc;

use tarn_catalog::{Catalog, CatalogError};
use tarn_storage::{Storage, area};
use tarn_store::{Store, StoreError};

pub use confine::Root;
pub use dbfs::{DEFAULT_READ, Dbfs, MAX_BLOCK, MAX_READ, MAX_STREAMS, check_block};
pub use object::{DIR_MARKER, ObjectTree};
pub use staged::{Overwrite, Staged};
pub use tree::{Entry, Location, Tree};
pub use volumes::Volumes;
pub use workspace::{
    Cell, Export, Format, Import, Language, MAX_FILE_IMPORT, MAX_IMPORT, Notebook, ObjectInfo, ObjectType, Workspace,
    file_cells,
};

/// The size limits the APIs enforce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// A DBFS `add-block` or `put` payload.
    Block,
    /// A DBFS `read` length.
    Read,
    /// A workspace import.
    Import,
}

#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("Invalid path '{path}': {reason}")]
    InvalidPath { path: String, reason: &'static str },
    #[error("Path '{path}' leads outside its storage through a symbolic link")]
    Escapes { path: String },
    #[error("No file or directory exists at path {path}")]
    NotFound { path: String },
    #[error("The parent folder ({path}) does not exist")]
    ParentNotFound { path: String },
    #[error("{path} already exists")]
    AlreadyExists { path: String },
    #[error("{path} is a directory")]
    IsADirectory { path: String },
    #[error("{path} is not a directory")]
    NotADirectory { path: String },
    #[error("Directory {path} is not empty")]
    DirectoryNotEmpty { path: String },
    #[error("Volume '{name}' does not exist")]
    VolumeNotFound { name: String },
    #[error("{size} bytes exceed the limit of {max} bytes")]
    TooLarge { limit: Limit, size: u64, max: u64 },
    #[error("No open stream has handle {0}")]
    UnknownHandle(i64),
    #[error("Too many open streams ({0}); close some before creating more")]
    TooManyStreams(usize),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    Unsupported(String),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error("{context}: {source}")]
    Storage { context: String, source: tarn_storage::object_store::Error },
}

impl FilesError {
    fn io(context: String, source: std::io::Error) -> Self {
        FilesError::Io { context, source }
    }

    /// An I/O failure on the path the client calls `shown`, by kind.
    fn at(shown: &str, source: std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        let path = shown.to_string();
        match source.kind() {
            K::NotFound => FilesError::NotFound { path },
            K::AlreadyExists => FilesError::AlreadyExists { path },
            K::DirectoryNotEmpty => FilesError::DirectoryNotEmpty { path },
            K::NotADirectory => FilesError::NotADirectory { path },
            K::IsADirectory => FilesError::IsADirectory { path },
            _ => FilesError::Io { context: path, source },
        }
    }
}

pub type Result<T> = std::result::Result<T, FilesError>;

/// The three trees. Cheap to clone.
#[derive(Clone)]
pub struct Files {
    volumes: Volumes,
    dbfs: Arc<Dbfs>,
    workspace: Arc<Workspace>,
}

impl Files {
    /// The workspace lives under `home` (`$TARN_HOME`), DBFS there too or
    /// under `storage`'s object-store root; volumes wherever the catalog says.
    pub fn open(home: &Path, storage: &Storage, store: Arc<Store>, catalog: Catalog) -> Result<Files> {
        let volumes = Volumes::new(catalog);
        let dbfs = Dbfs::new(Tree::on(storage, area::DBFS, &home.join("dbfs"))?, volumes.clone());
        let workspace = Workspace::new(Tree::on(storage, area::WORKSPACE, &home.join("workspace"))?, store)
            .with_checkouts(Root::open(&home.join("repos"))?);
        workspace.ensure_shared()?;
        Ok(Files { volumes, dbfs: Arc::new(dbfs), workspace: Arc::new(workspace) })
    }

    pub fn volumes(&self) -> &Volumes {
        &self.volumes
    }

    pub fn dbfs(&self) -> &Dbfs {
        &self.dbfs
    }

    pub fn workspace(&self) -> &Workspace {
        &self.workspace
    }
}

#[cfg(test)]
pub(crate) mod testdir {
    use std::path::PathBuf;

    /// A fresh directory under the system temp dir, removed on drop.
    pub struct TempDir(pub PathBuf);

    impl TempDir {
        pub fn new(name: &str) -> TempDir {
            let dir = std::env::temp_dir().join(format!("tarn-files-{name}-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
