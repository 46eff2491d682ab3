//! The rewrites tarn makes to an `ExecutePlan` before the engine sees it.

pub(crate) mod ctas;
pub(crate) mod paths;
pub(crate) mod save_as_table;
pub(crate) mod sql;

pub use paths::{PathResolver, rewrite_sql_text};
pub use sql::{Intercepted, SqlFailure, SqlInterceptor};
