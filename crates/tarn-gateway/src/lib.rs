//! The Spark Connect edge.

pub mod connect;
mod passes;
mod rpc_status;
mod server;

pub use passes::{Intercepted, PathResolver, SqlFailure, SqlInterceptor, rewrite_sql_text};
pub use server::{Gateway, Hooks};
