//! SQL outside the engine: which statements tarn runs itself (through
//! `tarn-lake`) and which go to an engine, for both entry points: the Spark
//! Connect gateway ([`LakeInterceptor`]) and the SQL Statement Execution API
//! ([`Statements`], run on the local SQL [`Warehouse`]).

mod arrow_ipc;
mod error;
mod grants;
mod parameters;
pub mod phase;
pub mod result;
pub mod sessions;
pub mod statements;
mod views;
pub mod warehouse;

use tarn_gateway::{Intercepted, SqlFailure, SqlInterceptor};
use tarn_lake::Lake;

pub use arrow_ipc::{decode_stream, encode_stream};
pub use error::SqlError;
pub use grants::CatalogAccess;
pub use phase::Phase;
pub use sessions::{Session, SessionSpec, Sessions};
pub use statements::Statements;
pub use views::CatalogViews;
pub use warehouse::Warehouse;

/// The gateway's hook: lake statements are run here, the rest by the engine.
pub struct LakeInterceptor {
    lake: Lake,
}

impl LakeInterceptor {
    pub fn new(lake: Lake) -> Self {
        Self { lake }
    }
}

impl SqlInterceptor for LakeInterceptor {
    fn refresh_system_tables(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(self.lake.refresh_system_tables())
    }

    fn intercept<'a>(&'a self, sql: &'a str) -> Intercepted<'a> {
        Box::pin(async move {
            let result = match self.lake.execute_sql(sql).await? {
                Ok(batch) => encode_stream(&batch).map_err(|e| SqlFailure {
                    exception_class: "org.apache.spark.SparkException",
                    message: e.to_string(),
                }),
                Err(e) => Err(SqlFailure { exception_class: e.spark_exception_class(), message: e.to_string() }),
            };
            Some(result)
        })
    }
}
