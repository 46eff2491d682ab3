//! The Spark Connect edge: tarn's own Spark Connect endpoint in front of
//! the clusters' engines ([`Gateway`]), and the Spark Connect client tarn
//! runs its own SQL on an engine with ([`connect`]).
//!
//! The gateway authenticates a call (the token check tarn-api makes too,
//! `Store::authenticate`), routes it by `x-databricks-cluster-id` to the
//! cluster's running engine, records the cluster's activity, gives new
//! sessions tarn's defaults, and runs an `ExecutePlan` through an ordered
//! pipeline of rewrites (`passes`: volume paths and system names, SQL
//! tarn answers itself, CTAS, `saveAsTable`) before streaming the call to
//! the engine. Spark Declarative Pipelines' commands never reach an
//! engine: [`sdp`] answers them through the [`DataflowGraphs`] the wiring
//! plugs in (tarn-pipelines). Every failure it answers itself is a
//! [`GatewayError`], turned into a gRPC status in one place (`status`).
//!
//! Invariants: the gateway owns no cluster or catalog state (it asks
//! tarn-compute's `ClusterManager`, and the wiring's hooks); the user's
//! token never reaches an engine; only the first message of a call is
//! decoded, and a request no pass changed is forwarded byte for byte.

pub mod access;
pub mod connect;
mod error;
mod passes;
pub mod relations;
mod reply;
mod rpc_status;
pub mod sdp;
mod server;
mod status;
pub mod views;

pub use access::{Access, AccessControl, GrantStatement, GrantVerb};
pub use error::{EngineCallError, GatewayError};
pub use passes::save_as_table::struct_ddl;
pub use passes::{Hooks, Intercepted, PathResolver, SqlFailure, SqlInterceptor, rewrite_sql_text};
pub use sdp::{DataflowGraphs, GraphCaller, GraphFailure, RunEvent};
pub use server::Gateway;
pub use views::{NewView, Prepared, ViewCatalog, ViewDefinition};
