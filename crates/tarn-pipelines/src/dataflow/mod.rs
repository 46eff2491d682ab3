//! Spark Declarative Pipelines' dataflow graphs: what an SDP client
//! (`python -m pyspark.pipelines.cli run`) defines through tarn's Spark
//! Connect gateway, kept here until it runs. [`Graphs`] is the gateway's
//! [`DataflowGraphs`]: `CreateDataflowGraph` opens a graph, `DefineOutput`,
//! `DefineFlow` and `DefineSqlGraphElements` add to it ([`elements`]), and
//! `StartRun` resolves the flows' reads ([`reads`]) and runs the graph as
//! an update of a tarn pipeline ([`run`]), whose events stream back.
//!
//! Graphs live in memory: a client defines and runs one within minutes; a
//! graph nobody touched for an hour is forgotten.

mod elements;
mod expressions;
mod reads;
mod run;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use spark_connect_proto::ResolvedIdentifier;
use spark_connect_proto::pipeline_command::{
    CreateDataflowGraph, DefineFlow, DefineOutput, DefineSqlGraphElements, StartRun,
};
use tarn_gateway::{DataflowGraphs, GraphCaller, GraphFailure, RunEvent};
use tokio::sync::mpsc;

use crate::graph::{Definitions, Location};
use crate::pipelines::Pipelines;
use crate::settings::{DEFAULT_CATALOG, DEFAULT_SCHEMA};

/// How long an untouched graph is kept.
const IDLE: Duration = Duration::from_secs(3600);

/// One client's graph, as defined so far.
#[derive(Debug, Clone)]
struct Graph {
    user: String,
    catalog: String,
    schema: String,
    /// The spec's `configuration`: the pipeline's configuration.
    conf: serde_json::Map<String, serde_json::Value>,
    /// Flows from Python keep their relation as sent, resolved at the run.
    definitions: Definitions,
    touched: Instant,
}

/// The dataflow graphs SDP clients defined; plugged into the gateway.
#[derive(Clone)]
pub struct Graphs {
    pipelines: Pipelines,
    graphs: Arc<Mutex<HashMap<String, Graph>>>,
}

impl Graphs {
    pub fn new(pipelines: Pipelines) -> Self {
        Self { pipelines, graphs: Arc::default() }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Graph>> {
        self.graphs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes the caller's graph `id`.
    fn with_graph<T>(
        &self,
        caller: &GraphCaller,
        id: Option<&str>,
        change: impl FnOnce(&mut Graph) -> Result<T, GraphFailure>,
    ) -> Result<T, GraphFailure> {
        let id = id.unwrap_or_default();
        let mut graphs = self.lock();
        let graph = graphs
            .get_mut(id)
            .filter(|g| g.user == caller.user)
            .ok_or_else(|| GraphFailure::invalid(format!("There is no dataflow graph '{id}' (create one first)")))?;
        graph.touched = Instant::now();
        change(graph)
    }
}

impl DataflowGraphs for Graphs {
    fn create_graph(&self, caller: &GraphCaller, request: CreateDataflowGraph) -> Result<String, GraphFailure> {
        let named = |n: Option<String>, default: &str| n.filter(|n| !n.trim().is_empty()).unwrap_or(default.into());
        let graph = Graph {
            user: caller.user.clone(),
            catalog: named(request.default_catalog, DEFAULT_CATALOG),
            schema: named(request.default_database, DEFAULT_SCHEMA),
            conf: request.sql_conf.into_iter().map(|(k, v)| (k, serde_json::Value::String(v))).collect(),
            definitions: Definitions::default(),
            touched: Instant::now(),
        };
        let id = uuid::Uuid::new_v4().to_string();
        let mut graphs = self.lock();
        graphs.retain(|_, g| g.touched.elapsed() < IDLE);
        graphs.insert(id.clone(), graph);
        Ok(id)
    }

    fn define_output(&self, caller: &GraphCaller, request: DefineOutput) -> Result<ResolvedIdentifier, GraphFailure> {
        let id = request.dataflow_graph_id.clone();
        let dataset = elements::dataset(request)?;
        self.with_graph(caller, id.as_deref(), |graph| {
            let resolved = elements::identifier(&dataset.name, &graph.catalog, &graph.schema);
            graph.definitions.datasets.push(dataset);
            Ok(resolved)
        })
    }

    fn define_flow(&self, caller: &GraphCaller, request: DefineFlow) -> Result<ResolvedIdentifier, GraphFailure> {
        let id = request.dataflow_graph_id.clone();
        let flow = elements::flow(request)?;
        self.with_graph(caller, id.as_deref(), |graph| {
            let resolved = elements::identifier(&flow.name, &graph.catalog, &graph.schema);
            graph.definitions.flows.push(flow);
            Ok(resolved)
        })
    }

    fn define_sql(&self, caller: &GraphCaller, request: DefineSqlGraphElements) -> Result<(), GraphFailure> {
        let path = request.sql_file_path.unwrap_or_default();
        let defined = crate::sql::definitions(&path, request.sql_text.as_deref().unwrap_or_default(), 1);
        if let Some(error) = defined.errors.first() {
            return Err(GraphFailure::parse(at(&error.message, error.location.as_ref())));
        }
        self.with_graph(caller, request.dataflow_graph_id.as_deref(), |graph| {
            graph.definitions.extend(defined);
            Ok(())
        })
    }

    fn start_run(&self, caller: &GraphCaller, request: StartRun) -> Result<mpsc::Receiver<RunEvent>, GraphFailure> {
        let graph = self.with_graph(caller, request.dataflow_graph_id.as_deref(), |g| Ok(g.clone()))?;
        run::start(&self.pipelines, caller, graph, request)
    }

    fn drop_graph(&self, caller: &GraphCaller, graph_id: &str) -> Result<(), GraphFailure> {
        self.with_graph(caller, Some(graph_id), |_| Ok(()))?;
        self.lock().remove(graph_id);
        Ok(())
    }
}

/// `message` with where it happened.
fn at(message: &str, location: Option<&Location>) -> String {
    match location {
        Some(Location { path, line: Some(line) }) => format!("{message} (at {path}:{line})"),
        Some(Location { path, line: None }) if !path.is_empty() => format!("{message} (in {path})"),
        _ => message.to_string(),
    }
}

#[cfg(test)]
mod tests;
