//! The rewrites tarn makes to an `ExecutePlan` before the engine sees it,
//! as one ordered pipeline: the gateway decodes the request once, runs
//! each pass of [`PIPELINE`] over it, and encodes it once if any pass
//! changed it. A pass is a function of the request and a [`PassContext`]:
//! what the wiring plugged in ([`Hooks`]), the cluster's engine in the
//! caller's session ([`EngineCalls`]), and what earlier passes found.
//!
//! The order matters: the caller's access is checked first, on the names
//! and paths as the user wrote them; volume paths and system names are resolved first,
//! so that the SQL tarn runs itself and the statements split later name
//! what engines can read; a statement tarn answers is settled and no later
//! pass sees it.

use std::sync::Arc;

use spark_connect_proto::ExecutePlanRequest;

use crate::GatewayError;

mod access;
pub(crate) mod ctas;
mod engine;
pub(crate) mod paths;
pub(crate) mod save_as_table;
pub(crate) mod sql;
mod views;

#[cfg(test)]
pub(crate) use engine::EngineFuture;
pub(crate) use engine::{EngineCalls, SessionEngine};
pub use paths::{PathResolver, rewrite_sql_text};
pub use sql::{Intercepted, SqlFailure, SqlInterceptor};

/// What the wiring plugs into the gateway's rewrites.
#[derive(Clone, Default)]
pub struct Hooks {
    pub sql: Option<Arc<dyn SqlInterceptor>>,
    pub paths: Option<Arc<dyn PathResolver>>,
    /// Answers SDP's pipeline commands; without it they go to the engine.
    pub graphs: Option<Arc<dyn crate::sdp::DataflowGraphs>>,
    /// Checks the caller's grants and answers grant statements; without it
    /// every request goes through.
    pub access: Option<Arc<dyn crate::AccessControl>>,
    /// Keeps views; without it view statements and reads go to the engine.
    pub views: Option<Arc<dyn crate::views::ViewCatalog>>,
}

/// What a pass may use besides the request.
pub(crate) struct PassContext<'a> {
    pub hooks: &'a Hooks,
    /// The cluster's engine, in the request's session. Only the CTAS and
    /// `saveAsTable` passes call it (to learn a schema and create a table
    /// before the request runs); a connection is made on the first call.
    pub engine: &'a dyn EngineCalls,
    /// Set by the paths pass: a table of tarn's `system` catalog is read by
    /// name, so the SQL pass brings the system tables up to date first.
    pub reads_system_tables: bool,
    /// The session's principal (none in tests of the rewrites alone).
    pub user: Option<&'a tarn_store::User>,
    /// The session's current catalog and schema; the access pass moves it
    /// on a `USE`.
    pub namespace: Vec<String>,
}

impl<'a> PassContext<'a> {
    pub fn new(hooks: &'a Hooks, engine: &'a dyn EngineCalls) -> Self {
        Self { hooks, engine, reads_system_tables: false, user: None, namespace: default_namespace() }
    }
}

/// Where a new session's unqualified names resolve.
pub(crate) fn default_namespace() -> Vec<String> {
    vec!["main".into(), "default".into()]
}

/// What a pass did to the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Unchanged,
    Changed,
    /// Changed, and settled: the later passes are skipped.
    Settled,
}

/// One rewrite of the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pass {
    /// The caller's grants; grant statements answered ([`access`]).
    Access,
    /// `/Volumes/...` paths and `system.*` names ([`paths`]).
    Paths,
    /// View statements answered, views read replaced by their query ([`views`]).
    Views,
    /// SQL tarn runs itself, answered in place ([`sql`]).
    Sql,
    /// A Delta CTAS split into `CREATE TABLE` and `INSERT` ([`ctas`]).
    Ctas,
    /// A Delta `saveAsTable` split into `CREATE TABLE` and an append ([`save_as_table`]).
    SaveAsTable,
}

/// The passes, in the order they run.
pub(crate) const PIPELINE: [Pass; 6] =
    [Pass::Access, Pass::Paths, Pass::Views, Pass::Sql, Pass::Ctas, Pass::SaveAsTable];

/// The passes for an Apache Spark engine: it keeps its own catalog (with
/// its grants, views and table formats), so only the paths are tarn's.
pub(crate) const SPARK_PIPELINE: [Pass; 1] = [Pass::Paths];

/// The passes a request to an engine of `backend` goes through.
pub(crate) fn pipeline(backend: tarn_compute::backend::Backend) -> &'static [Pass] {
    if backend.is_sail() { &PIPELINE } else { &SPARK_PIPELINE }
}

impl Pass {
    pub async fn run(
        self,
        request: &mut ExecutePlanRequest,
        cx: &mut PassContext<'_>,
    ) -> Result<Outcome, GatewayError> {
        match self {
            Self::Access => access::pass(request, cx),
            Self::Paths => paths::pass(request, cx),
            Self::Views => views::pass(request, cx).await,
            Self::Sql => sql::pass(request, cx).await,
            Self::Ctas => ctas::pass(request, cx).await,
            Self::SaveAsTable => save_as_table::pass(request, cx).await,
        }
    }
}

/// Runs `pipeline` over `request`; true when it changed.
pub(crate) async fn run(
    pipeline: &[Pass],
    request: &mut ExecutePlanRequest,
    cx: &mut PassContext<'_>,
) -> Result<bool, GatewayError> {
    let mut changed = false;
    for pass in pipeline.iter().copied() {
        match pass.run(request, cx).await? {
            Outcome::Unchanged => {}
            Outcome::Changed => changed = true,
            Outcome::Settled => return Ok(true),
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests;
