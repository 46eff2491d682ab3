//! The catalog: catalogs, schemas, tables and volumes in a
//! `catalog.schema.object` namespace, with owners, comments, properties and
//! storage locations under `$TARN_HOME/lake`, and the Delta commit
//! coordination engines use to write managed tables.
//!
//! Objects are kept in the shape the Unity Catalog API returns them (their
//! "info"), so what an engine registered is what a client reads. Names are
//! case-insensitive and stored lower-cased; `hive_metastore` is an alias of
//! `main`. This crate runs no queries and knows no HTTP.

mod delta;
mod grants;
mod names;
mod objects;
mod request;

use std::path::PathBuf;
use std::sync::Arc;

use tarn_store::{Store, StoreError};

pub use delta::{CommitRequest, Commits, delta_log_version};
pub use grants::{ACCOUNT_USERS, Action, GrantChange, HeldPrivilege, Principal, privilege_name};
pub use names::{DEFAULT_CATALOG, DEFAULT_SCHEMA, FullName};
pub use objects::local_path;
pub use request::{CreateRequest, Properties, UpdateRequest};

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{kind} '{name}' does not exist.")]
    NotFound { kind: Kind, name: String },
    #[error("{kind} '{name}' already exists.")]
    AlreadyExists { kind: Kind, name: String },
    #[error("{kind} '{name}' is not empty: it still holds {count} object(s). Drop them first or use force/CASCADE.")]
    NotEmpty { kind: Kind, name: String, count: i64 },
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("Commit version {version} is not the next version of the table (latest is {latest}).")]
    CommitConflict { version: i64, latest: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
}

pub type Result<T> = std::result::Result<T, CatalogError>;

/// The kinds of object in the namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Catalog,
    Schema,
    Table,
    Volume,
    Staging,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Catalog => "catalog",
            Kind::Schema => "schema",
            Kind::Table => "table",
            Kind::Volume => "volume",
            Kind::Staging => "staging",
        }
    }

    /// How many name parts an object of this kind has.
    fn depth(self) -> usize {
        match self {
            Kind::Catalog => 1,
            Kind::Schema => 2,
            Kind::Table | Kind::Volume | Kind::Staging => 3,
        }
    }

    fn parent(self) -> Option<Kind> {
        match self {
            Kind::Catalog => None,
            Kind::Schema => Some(Kind::Catalog),
            Kind::Table | Kind::Volume | Kind::Staging => Some(Kind::Schema),
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Kind::Catalog => "Catalog",
            Kind::Schema => "Schema",
            Kind::Table => "Table",
            Kind::Volume => "Volume",
            Kind::Staging => "Staging table",
        };
        f.write_str(s)
    }
}

/// The catalog service. Cheap to clone.
#[derive(Clone)]
pub struct Catalog {
    store: Arc<Store>,
    lake: PathBuf,
    /// With an object-store root, managed tables and volumes live there
    /// instead of under `lake`.
    storage: tarn_storage::Storage,
    locks: delta::CommitLocks,
    /// Owners claimed for tables about to be created ([`Catalog::claim_owner`]).
    claims: Arc<std::sync::Mutex<std::collections::HashMap<String, (String, std::time::Instant)>>>,
}

impl Catalog {
    /// `lake` is where managed tables and volumes live (`$TARN_HOME/lake`).
    pub fn new(store: Arc<Store>, lake: PathBuf) -> Self {
        Self { store, lake, storage: Default::default(), locks: Default::default(), claims: Default::default() }
    }

    /// Managed tables and volumes under `storage`'s object-store root when
    /// it has one (`tables/<id>`, `volumes/<id>`).
    pub fn with_storage(mut self, storage: tarn_storage::Storage) -> Self {
        self.storage = storage;
        self
    }

    pub fn storage(&self) -> &tarn_storage::Storage {
        &self.storage
    }

    /// Creates `main` and `main.default` when they do not exist yet, with
    /// the privileges a Databricks workspace catalog grants everyone.
    pub fn bootstrap(&self, owner: &str) -> Result<()> {
        if self.get(Kind::Catalog, DEFAULT_CATALOG).is_err() {
            let req = CreateRequest {
                name: Some(DEFAULT_CATALOG.into()),
                comment: Some("Default catalog".into()),
                ..Default::default()
            };
            let info = self.create(Kind::Catalog, &req, owner)?;
            self.grant_everyone(info["id"].as_str().unwrap_or_default(), grants::DEFAULT_CATALOG_GRANTS)?;
        }
        let default = format!("{DEFAULT_CATALOG}.{DEFAULT_SCHEMA}");
        if self.get(Kind::Schema, &default).is_err() {
            let req = CreateRequest {
                catalog_name: Some(DEFAULT_CATALOG.into()),
                name: Some(DEFAULT_SCHEMA.into()),
                comment: Some("Default schema".into()),
                ..Default::default()
            };
            let info = self.create(Kind::Schema, &req, owner)?;
            self.grant_everyone(info["schema_id"].as_str().unwrap_or_default(), grants::DEFAULT_SCHEMA_GRANTS)?;
        }
        Ok(())
    }

    /// Names of all catalogs, for engines to mount.
    pub fn catalog_names(&self) -> Result<Vec<String>> {
        Ok(self.store.list_uc_objects(Kind::Catalog.as_str(), "")?.into_iter().map(|o| o.full_name).collect())
    }
}
