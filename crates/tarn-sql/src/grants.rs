//! Unity Catalog grants on every path to the data: [`CatalogAccess`] is the
//! gateway's [`AccessControl`] (Spark Connect sessions) and the statement
//! API's. It resolves the names a request reaches in the session's
//! namespace, checks them against the catalog's grants, claims the tables
//! a request creates for its principal, refuses reads of tables' and
//! volumes' files by path (volumes are read under `/Volumes`, with READ
//! VOLUME), and answers `GRANT`, `REVOKE` and `SHOW GRANTS`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tarn_catalog::{Action, Catalog, CatalogError, GrantChange, Kind, Principal};
use tarn_gateway::access::Use;
use tarn_gateway::{Access, AccessControl, GrantStatement, GrantVerb, SqlFailure};
use tarn_lake::arrow::array::{ArrayRef, StringArray};
use tarn_lake::arrow::datatypes::{DataType, Field, Schema};
use tarn_lake::arrow::record_batch::RecordBatch;
use tarn_store::Store;

pub struct CatalogAccess {
    catalog: Catalog,
    store: Arc<Store>,
    /// Where tables and volumes keep their files (`$TARN_HOME/lake`).
    lake: PathBuf,
}

impl CatalogAccess {
    pub fn new(catalog: Catalog, store: Arc<Store>, lake: PathBuf) -> Self {
        Self { catalog, store, lake }
    }

    fn principal(&self, user: &str) -> Result<Principal, CatalogError> {
        principal(&self.catalog, &self.store, user)
    }

    /// What `how` needs on the table `full`, which exists.
    fn check_table(&self, p: &Principal, full: &str, how: Use) -> Result<(), CatalogError> {
        let action = match how {
            Use::Describe => Action::Browse,
            Use::Read => Action::Select,
            // Creating a table that exists appends to or replaces it.
            Use::Write | Use::Create => Action::Modify,
            Use::Manage => Action::Manage,
        };
        self.catalog.authorize(p, Kind::Table, full, action)
    }

    fn check_tables(&self, p: &Principal, access: &Access, namespace: &[String]) -> Result<(), CatalogError> {
        for (name, how) in &access.tables {
            let Some(full) = resolve(name, namespace, 3) else { continue };
            if self.catalog.get(Kind::Table, &full).is_ok() {
                if !p.admin {
                    self.check_table(p, &full, *how)?;
                }
            } else if *how == Use::Create
                && let Some((schema, _)) = full.rsplit_once('.')
                && self.catalog.get(Kind::Schema, schema).is_ok()
            {
                if !p.admin {
                    self.catalog.authorize(p, Kind::Schema, schema, Action::Create(Kind::Table))?;
                }
                // An admin's new table is the admin's too, whichever engine registers it.
                self.catalog.claim_owner(&full, &p.name);
            }
            // Anything else is no table of the catalog (a temporary view, a
            // name the engine will not find either).
        }
        for name in access.schemas.iter().filter(|_| !p.admin) {
            if let Some(full) = resolve(name, namespace, 2)
                && let Some((catalog, _)) = full.split_once('.')
                && self.catalog.get(Kind::Catalog, catalog).is_ok()
            {
                self.catalog.authorize(p, Kind::Catalog, catalog, Action::Create(Kind::Schema))?;
            }
        }
        Ok(())
    }

    fn check_paths(&self, p: &Principal, access: &Access) -> Result<(), CatalogError> {
        if p.admin {
            return Ok(());
        }
        for (path, write) in &access.paths {
            let local = path.strip_prefix("dbfs:").or_else(|| path.strip_prefix("file://")).unwrap_or(path);
            let local = local.strip_prefix("file:").unwrap_or(local);
            if local.starts_with("/Volumes/") {
                match self.catalog.authorize_volume_file(p, local, *write) {
                    // No such volume: the engine will not find the file either.
                    Err(CatalogError::NotFound { .. } | CatalogError::InvalidArgument(_)) => {}
                    other => other?,
                }
            } else if object_store_url(path) {
                // Engines hold tarn's storage credentials: a path there
                // would reach every table and volume past their grants.
                return Err(CatalogError::PermissionDenied(format!(
                    "Reading or writing object storage by path is not allowed ({path}): \
                     read a table by its name, a volume's files under /Volumes"
                )));
            } else if inside(Path::new(local), &self.lake) {
                return Err(CatalogError::PermissionDenied(format!(
                    "Reading or writing the files of tables and volumes by path is not allowed ({path}): \
                     read a table by its name, a volume's files under /Volumes"
                )));
            }
        }
        Ok(())
    }

    fn run_grant(
        &self,
        user: &str,
        statement: &GrantStatement,
        namespace: &[String],
    ) -> Result<RecordBatch, CatalogError> {
        let p = self.principal(user)?;
        let (kind, depth) = match statement.securable_type.as_str() {
            "CATALOG" => (Kind::Catalog, 1),
            "SCHEMA" => (Kind::Schema, 2),
            "VOLUME" => (Kind::Volume, 3),
            _ => (Kind::Table, 3),
        };
        let full = resolve(&statement.name, namespace, depth)
            .ok_or_else(|| CatalogError::InvalidArgument(format!("Invalid name {}", statement.name.join("."))))?;
        if statement.verb == GrantVerb::Show {
            self.catalog.authorize(&p, kind, &full, Action::Browse)?;
            return self.show_grants(kind, &full, statement.principal.as_deref());
        }
        let principal = statement.principal.clone().unwrap_or_default();
        let privileges = statement.privileges.clone();
        let change = match statement.verb {
            GrantVerb::Grant => GrantChange { principal, add: privileges, remove: Vec::new() },
            _ => GrantChange { principal, add: Vec::new(), remove: privileges },
        };
        self.catalog.update_grants(&p, kind, &full, &[change])?;
        Ok(RecordBatch::new_empty(Arc::new(Schema::empty())))
    }

    /// SHOW GRANTS as Databricks answers it: the owner (OWN), then every
    /// privilege granted on the object or a container above it.
    fn show_grants(&self, kind: Kind, full: &str, principal: Option<&str>) -> Result<RecordBatch, CatalogError> {
        let mut rows: Vec<[String; 4]> = Vec::new();
        let object_type = kind.as_str().to_uppercase();
        let info = self.catalog.get(kind, full)?;
        if let Some(owner) = info.get("owner").and_then(|o| o.as_str())
            && principal.is_none_or(|p| p == owner)
        {
            rows.push([owner.to_string(), "OWN".into(), object_type.clone(), full.to_string()]);
        }
        for (grantee, held) in self.catalog.effective_grants(kind, full, principal)? {
            for h in held {
                let (on_type, on_key) = h
                    .inherited_from
                    .map_or((object_type.clone(), full.to_string()), |(k, n)| (k.as_str().to_uppercase(), n));
                rows.push([grantee.clone(), h.privilege.replace('_', " "), on_type, on_key]);
            }
        }
        let columns = ["principal", "ActionType", "ObjectType", "ObjectKey"];
        let schema = Schema::new(columns.iter().map(|c| Field::new(*c, DataType::Utf8, false)).collect::<Vec<_>>());
        let arrays: Vec<ArrayRef> = (0..4)
            .map(|i| Arc::new(StringArray::from(rows.iter().map(|r| r[i].as_str()).collect::<Vec<_>>())) as ArrayRef)
            .collect();
        RecordBatch::try_new(Arc::new(schema), arrays).map_err(|e| CatalogError::InvalidArgument(e.to_string()))
    }
}

impl AccessControl for CatalogAccess {
    fn check(&self, user: &str, access: &Access, namespace: &[String]) -> Result<(), String> {
        let p = self.principal(user).map_err(|e| e.to_string())?;
        self.check_tables(&p, access, namespace).map_err(|e| e.to_string())?;
        self.check_paths(&p, access).map_err(|e| e.to_string())
    }

    fn grant(&self, user: &str, statement: &GrantStatement, namespace: &[String]) -> Result<Vec<u8>, SqlFailure> {
        let batch = self.run_grant(user, statement, namespace).map_err(|e| SqlFailure {
            exception_class: "org.apache.spark.sql.AnalysisException",
            message: match &e {
                CatalogError::PermissionDenied(m) => format!("[INSUFFICIENT_PERMISSIONS] Insufficient privileges: {m}"),
                other => other.to_string(),
            },
        })?;
        crate::encode_stream(&batch)
            .map_err(|e| SqlFailure { exception_class: "org.apache.spark.SparkException", message: e.to_string() })
    }
}

/// The catalog's view of the user named `user` (their groups, admin or not).
pub(crate) fn principal(catalog: &Catalog, store: &Store, user: &str) -> Result<Principal, CatalogError> {
    match store.find_user(user)? {
        Some(user) => catalog.principal(&user),
        None => Err(CatalogError::PermissionDenied(format!("Unknown principal {user}"))),
    }
}

/// `name` as a full name of `depth` parts, its missing leading parts taken
/// from the session's (catalog, schema); None when it has too many.
pub(crate) fn resolve(name: &[String], namespace: &[String], depth: usize) -> Option<String> {
    if name.is_empty() || name.len() > depth {
        return None;
    }
    let missing = depth - name.len();
    let mut parts: Vec<String> = namespace.iter().take(missing).cloned().collect();
    if parts.len() < missing {
        return None;
    }
    parts.extend(name.iter().cloned());
    Some(parts.join(".").to_lowercase())
}

/// Whether `path` is an object store's URL (`s3://`, `s3a://`, `gs://`, ...),
/// whatever its case.
fn object_store_url(path: &str) -> bool {
    let Some((scheme, _)) = path.split_once("://") else { return false };
    const SCHEMES: [&str; 7] = ["s3", "s3a", "s3n", "gs", "abfs", "abfss", "wasbs"];
    SCHEMES.iter().any(|s| scheme.trim().eq_ignore_ascii_case(s))
}

/// Whether `path` is `dir` or inside it, after resolving `..` and links
/// where the path exists.
fn inside(path: &Path, dir: &Path) -> bool {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let mut probe = path.to_path_buf();
    // The deepest part that exists resolves links; the rest is appended.
    let mut tail = Vec::new();
    while !probe.exists() {
        match (probe.file_name().map(|f| f.to_os_string()), probe.parent()) {
            (Some(name), Some(parent)) => {
                tail.push(name);
                probe = parent.to_path_buf();
            }
            _ => break,
        }
    }
    let mut resolved = probe.canonicalize().unwrap_or(probe);
    for part in tail.into_iter().rev() {
        resolved.push(part);
    }
    resolved.starts_with(&dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_in_the_session_namespace() {
        let ns = ["main".to_string(), "s1".to_string()];
        assert_eq!(resolve(&["T".into()], &ns, 3).as_deref(), Some("main.s1.t"));
        assert_eq!(resolve(&["s2".into(), "t".into()], &ns, 3).as_deref(), Some("main.s2.t"));
        assert_eq!(resolve(&["s2".into()], &ns, 2).as_deref(), Some("main.s2"));
        assert_eq!(resolve(&["a".into(), "b".into(), "c".into(), "d".into()], &ns, 3), None);
    }

    #[test]
    fn paths_inside_the_lake_are_found_through_dot_dots() {
        let lake = std::env::temp_dir();
        assert!(inside(&lake.join("tables/x/../y/part-0.parquet"), &lake));
        assert!(!inside(Path::new("/nonexistent-root/a"), &lake));
    }

    #[test]
    fn object_store_urls_are_known_by_scheme() {
        for url in ["s3://b/p/tables/1", "S3A://b/x", " s3n://b", "gs://b/x", "abfss://c@a.dfs/x"] {
            assert!(object_store_url(url), "{url}");
        }
        for path in ["/Volumes/main/default/v/a.csv", "dbfs:/tmp/x", "file:///tmp/x", "/tmp/s3://x"] {
            assert!(!object_store_url(path), "{path}");
        }
    }
}
