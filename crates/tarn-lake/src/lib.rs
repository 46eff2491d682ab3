//! Delta Lake statements the engine lacks, run in tarn with delta-rs and
//! DataFusion: `DESCRIBE HISTORY`, `DESCRIBE DETAIL`, `OPTIMIZE [ZORDER BY]`,
//! `VACUUM`, `RESTORE`, `ALTER TABLE ... ADD COLUMNS`, `ALTER TABLE ... SET
//! TBLPROPERTIES` and `COMMENT ON TABLE`; and the system tables tarn writes
//! from its own store ([`system`]).
//!
//! Tables are found through the catalog; commits to managed tables are
//! decided under the catalog's commit lock (see `log_store`), so a commit
//! tarn makes and one an engine makes never take the same version. Results
//! come back as Arrow record batches; the gateway and the statement API turn
//! them into what their clients read. This crate knows nothing of clusters
//! (it does not depend on `tarn-compute`).

mod history;
mod log_store;
pub mod managed;
mod ops;
mod replace;
pub mod statement;
pub mod storage;
pub mod system;
mod system_jobs;
mod table;

use std::sync::Arc;

pub use deltalake::arrow;
use deltalake::arrow::record_batch::RecordBatch;
use serde_json::Value;
use tarn_catalog::{Catalog, CatalogError, DEFAULT_CATALOG, DEFAULT_SCHEMA, Kind};

pub use statement::Statement;
pub use system::{SystemTables, mentions_system_tables};
pub use table::{Column, batch, uc_columns};

#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("[PARSE_SYNTAX_ERROR] {0}")]
    Parse(String),
    #[error("[TABLE_OR_VIEW_NOT_FOUND] The table or view `{0}` cannot be found.")]
    TableNotFound(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("[DELTA_CONCURRENT_WRITE] {0}")]
    Conflict(String),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Store(#[from] tarn_store::StoreError),
    #[error("{0}")]
    Delta(#[from] deltalake::DeltaTableError),
    #[error("{0}")]
    Arrow(#[from] deltalake::arrow::error::ArrowError),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
}

pub type Result<T> = std::result::Result<T, LakeError>;

impl LakeError {
    /// The Spark exception class a Spark client should raise for this error.
    pub fn spark_exception_class(&self) -> &'static str {
        match self {
            LakeError::Parse(_) => "org.apache.spark.sql.catalyst.parser.ParseException",
            LakeError::TableNotFound(_) | LakeError::InvalidArgument(_) => "org.apache.spark.sql.AnalysisException",
            LakeError::Conflict(_) => "io.delta.exceptions.ConcurrentModificationException",
            _ => "org.apache.spark.SparkException",
        }
    }
}

/// A table as the catalog knows it.
#[derive(Debug, Clone)]
pub(crate) struct TableRef {
    pub full_name: String,
    pub table_id: String,
    pub location: String,
    pub managed: bool,
    pub info: Value,
}

/// A view, for the statements that also take one.
pub(crate) struct ViewRef {
    pub full_name: String,
    pub properties: Vec<(String, String)>,
}

/// The lake service. Cheap to clone.
#[derive(Clone)]
pub struct Lake {
    catalog: Catalog,
    user: Arc<str>,
    /// Where one- and two-part names resolve.
    current_catalog: Arc<str>,
    current_schema: Arc<str>,
    system: Option<SystemTables>,
}

impl Lake {
    /// `user` is recorded as the author of catalog changes tarn makes.
    pub fn new(catalog: Catalog, user: &str) -> Self {
        Self {
            catalog,
            user: user.into(),
            current_catalog: DEFAULT_CATALOG.into(),
            current_schema: DEFAULT_SCHEMA.into(),
            system: None,
        }
    }

    /// The same lake, refreshing `system` before any statement that names a
    /// system table (whoever runs the statement).
    pub fn with_system_tables(self, system: SystemTables) -> Self {
        Self { system: Some(system), ..self }
    }

    /// The same lake with names resolved in `catalog` (default `main`) and
    /// `schema` (default `default`), as after `USE CATALOG` / `USE SCHEMA`.
    pub fn in_namespace(&self, catalog: Option<&str>, schema: Option<&str>) -> Self {
        Self {
            current_catalog: catalog.unwrap_or(DEFAULT_CATALOG).into(),
            current_schema: schema.unwrap_or(DEFAULT_SCHEMA).into(),
            ..self.clone()
        }
    }

    /// Runs `sql` when it is a lake statement; `None` when the engine should.
    pub async fn execute_sql(&self, sql: &str) -> Option<Result<RecordBatch>> {
        if mentions_system_tables(sql) {
            self.refresh_system_tables().await;
        }
        match statement::parse(sql) {
            Ok(None) => None,
            // Replacing a table that is not there creates it: the engine does.
            Ok(Some(Statement::ReplaceTable { table, .. }))
                if matches!(self.resolve(&table), Err(LakeError::TableNotFound(_))) =>
            {
                None
            }
            Ok(Some(statement)) => Some(self.execute(statement).await),
            Err(e) => Some(Err(e)),
        }
    }

    /// Brings the system tables up to date (when this lake has them); a
    /// failure is logged and the tables stay as they were.
    pub async fn refresh_system_tables(&self) {
        if let Some(system) = &self.system
            && let Err(e) = system.refresh().await
        {
            tracing::warn!(error = %e, "refreshing the system tables; they may be stale");
        }
    }

    pub async fn execute(&self, statement: Statement) -> Result<RecordBatch> {
        ops::execute(self, statement).await
    }

    fn full_name(&self, parts: &[String]) -> String {
        match parts {
            [t] => format!("{}.{}.{t}", self.current_catalog, self.current_schema),
            [s, t] => format!("{}.{s}.{t}", self.current_catalog),
            _ => parts.join("."),
        }
    }

    /// `a`, `s.a` and `c.s.a` in the current catalog and schema.
    pub(crate) fn resolve(&self, parts: &[String]) -> Result<TableRef> {
        let full_name = self.full_name(parts);
        let info = match self.catalog.get(Kind::Table, &full_name) {
            Ok(info) => info,
            Err(CatalogError::NotFound { .. } | CatalogError::InvalidArgument(_)) => {
                return Err(LakeError::TableNotFound(parts.join(".")));
            }
            Err(e) => return Err(e.into()),
        };
        let text = |key: &str| info.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
        if text("table_type") == "VIEW" {
            return Err(LakeError::InvalidArgument(format!(
                "[EXPECT_TABLE_NOT_VIEW.NO_ALTERNATIVE] The statement expects a table but {full_name} is a view. \
                 SQLSTATE: 42809"
            )));
        }
        let format = text("data_source_format");
        if !format.is_empty() && !format.eq_ignore_ascii_case("DELTA") {
            return Err(LakeError::InvalidArgument(format!(
                "[DELTA_TABLE_ONLY_OPERATION] {full_name} is not a Delta table (format {format})."
            )));
        }
        Ok(TableRef {
            full_name: text("full_name"),
            table_id: text("table_id"),
            location: text("storage_location"),
            managed: text("table_type").eq_ignore_ascii_case("MANAGED"),
            info,
        })
    }

    /// The view `parts` names, if it names one: its full name and properties.
    pub(crate) fn view(&self, parts: &[String]) -> Result<Option<ViewRef>> {
        let full_name = self.full_name(parts);
        let info = match self.catalog.get(Kind::Table, &full_name) {
            Ok(info) => info,
            Err(CatalogError::NotFound { .. } | CatalogError::InvalidArgument(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if info.get("table_type").and_then(Value::as_str) != Some("VIEW") {
            return Ok(None);
        }
        let properties = info.get("properties").and_then(Value::as_object).into_iter().flatten();
        let properties = properties.map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect();
        Ok(Some(ViewRef { full_name, properties }))
    }

    /// A catalog table opened for reading at its latest version (managed
    /// tables through the catalog's commit coordination, as engines commit them).
    pub async fn open_table(&self, full_name: &str) -> Result<deltalake::DeltaTable> {
        let parts: Vec<String> = full_name.split('.').map(str::to_string).collect();
        let table = self.resolve(&parts)?;
        ops::open(self, &table).await.map(|(delta, _)| delta)
    }

    pub(crate) fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub(crate) fn user(&self) -> &str {
        &self.user
    }
}
