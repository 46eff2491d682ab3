//! Spark Declarative Pipelines at the edge: the gateway answers
//! `Command.pipeline_command` itself (engines reject it) by handing each
//! command to the [`DataflowGraphs`] the wiring plugs in (tarn-pipelines),
//! and keeps `spark.sql(...)` lazy while a flow's query function runs, as
//! Spark does when a request carries a `PipelineAnalysisContext` naming a
//! flow. What goes back on the wire is [`crate::reply`]'s business.

use prost::Message;
use spark_connect_proto::pipeline_command::{
    CommandType, CreateDataflowGraph, DefineFlow, DefineOutput, DefineSqlGraphElements, StartRun,
};
use spark_connect_proto::pipeline_command_result::{
    CreateDataflowGraphResult, DefineFlowResult, DefineOutputResult, ResultType,
};
use spark_connect_proto::{
    ExecutePlanRequest, PipelineAnalysisContext, PipelineCommand, PipelineCommandResult, Relation, ResolvedIdentifier,
    command, execute_plan_response, plan, relation,
};
use tokio::sync::mpsc;

const ANALYSIS: &str = "org.apache.spark.sql.AnalysisException";
const PARSE: &str = "org.apache.spark.sql.catalyst.parser.ParseException";
const UNSUPPORTED: &str = "java.lang.UnsupportedOperationException";
const ILLEGAL_ARGUMENT: &str = "java.lang.IllegalArgumentException";
const SPARK: &str = "org.apache.spark.SparkException";

/// Who sent a pipeline command: the authenticated user and the cluster
/// (engine) the session runs on.
#[derive(Debug, Clone)]
pub struct GraphCaller {
    pub user: String,
    pub cluster_id: String,
    pub port: u16,
}

/// A pipeline command, or the run it started, that failed: the JVM
/// exception class PySpark raises and its message.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphFailure {
    pub exception_class: &'static str,
    pub message: String,
}

impl GraphFailure {
    /// A graph that does not hold together (unknown names, bad outputs).
    pub fn analysis(message: impl Into<String>) -> Self {
        Self { exception_class: ANALYSIS, message: message.into() }
    }

    /// SQL definitions that do not parse.
    pub fn parse(message: impl Into<String>) -> Self {
        Self { exception_class: PARSE, message: message.into() }
    }

    /// Something SDP offers that tarn does not run.
    pub fn not_implemented(message: impl Into<String>) -> Self {
        Self { exception_class: UNSUPPORTED, message: message.into() }
    }

    /// A command missing what it must carry, or naming what does not exist.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self { exception_class: ILLEGAL_ARGUMENT, message: message.into() }
    }

    /// A run that failed.
    pub fn failed(message: impl Into<String>) -> Self {
        Self { exception_class: SPARK, message: message.into() }
    }
}

/// What a run reports while it goes: progress lines, then at most one
/// failure. The run has ended when the channel closes.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEvent {
    Message { timestamp_ms: i64, text: String },
    Failed(GraphFailure),
}

/// Dataflow graphs built and run for SDP clients (implemented by
/// tarn-pipelines). Each call is one `PipelineCommand`.
pub trait DataflowGraphs: Send + Sync + 'static {
    /// A new, empty graph; its id.
    fn create_graph(&self, caller: &GraphCaller, request: CreateDataflowGraph) -> Result<String, GraphFailure>;
    /// A dataset (table, materialized view, temporary view); its full name.
    fn define_output(&self, caller: &GraphCaller, request: DefineOutput) -> Result<ResolvedIdentifier, GraphFailure>;
    /// A flow into a dataset; its full name.
    fn define_flow(&self, caller: &GraphCaller, request: DefineFlow) -> Result<ResolvedIdentifier, GraphFailure>;
    /// The datasets and flows of a SQL file.
    fn define_sql(&self, caller: &GraphCaller, request: DefineSqlGraphElements) -> Result<(), GraphFailure>;
    /// Runs the graph (or only checks it, `dry`); its progress, ending when
    /// the run ends. Called inside the runtime: it may spawn the run.
    fn start_run(&self, caller: &GraphCaller, request: StartRun) -> Result<mpsc::Receiver<RunEvent>, GraphFailure>;
    fn drop_graph(&self, caller: &GraphCaller, graph_id: &str) -> Result<(), GraphFailure>;
}

/// How the gateway answers an `ExecutePlan` it took.
#[derive(Debug)]
pub(crate) enum Answer {
    /// The responses, before `ResultComplete`.
    Results(Vec<execute_plan_response::ResponseType>),
    /// A run's progress, streamed as `pipeline_event_result`s.
    Events(mpsc::Receiver<RunEvent>),
}

/// The answer to `request` when it is a pipeline command, or `spark.sql`
/// inside a flow's query function; `None` for everything else.
pub(crate) fn answer(
    graphs: &dyn DataflowGraphs,
    caller: &GraphCaller,
    request: &ExecutePlanRequest,
) -> Option<Result<Answer, GraphFailure>> {
    let command = match request.plan.as_ref()?.op_type.as_ref()? {
        plan::OpType::Command(c) => c.command_type.as_ref()?,
        // Sail offers no plan compression, so clients never compress.
        plan::OpType::Root(_) | plan::OpType::CompressedOperation(_) => return None,
    };
    match command {
        command::CommandType::PipelineCommand(p) => Some(pipeline_command(graphs, caller, p.clone())),
        command::CommandType::SqlCommand(sql) if in_flow_function(request) => {
            lazy_sql(sql).map(|relation| Ok(Answer::Results(vec![sql_result(relation)])))
        }
        _ => None,
    }
}

fn pipeline_command(
    graphs: &dyn DataflowGraphs,
    caller: &GraphCaller,
    command: PipelineCommand,
) -> Result<Answer, GraphFailure> {
    let result = |r: ResultType| Ok(Answer::Results(vec![command_result(r)]));
    match command.command_type {
        Some(CommandType::CreateDataflowGraph(c)) => {
            let id = graphs.create_graph(caller, c)?;
            result(ResultType::CreateDataflowGraphResult(CreateDataflowGraphResult { dataflow_graph_id: Some(id) }))
        }
        Some(CommandType::DefineOutput(d)) => {
            let resolved = graphs.define_output(caller, d)?;
            result(ResultType::DefineOutputResult(DefineOutputResult { resolved_identifier: Some(resolved) }))
        }
        Some(CommandType::DefineFlow(d)) => {
            let resolved = graphs.define_flow(caller, d)?;
            result(ResultType::DefineFlowResult(DefineFlowResult { resolved_identifier: Some(resolved) }))
        }
        Some(CommandType::DefineSqlGraphElements(d)) => {
            graphs.define_sql(caller, d)?;
            Ok(Answer::Results(Vec::new()))
        }
        Some(CommandType::StartRun(r)) => Ok(Answer::Events(graphs.start_run(caller, r)?)),
        Some(CommandType::DropDataflowGraph(d)) => {
            graphs.drop_graph(caller, d.dataflow_graph_id.as_deref().unwrap_or_default())?;
            Ok(Answer::Results(Vec::new()))
        }
        Some(CommandType::GetQueryFunctionExecutionSignalStream(_) | CommandType::DefineFlowQueryFunctionResult(_)) => {
            Err(GraphFailure::not_implemented(
                "tarn evaluates flow query functions on the client only: register flows with their relation",
            ))
        }
        Some(CommandType::ExecuteOutputFlows(_)) => {
            Err(GraphFailure::not_implemented("ExecuteOutputFlows is not supported by tarn; use StartRun"))
        }
        Some(CommandType::Extension(any)) => {
            Err(GraphFailure::not_implemented(format!("unknown pipeline command extension {}", any.type_url)))
        }
        None => Err(GraphFailure::invalid("the pipeline command is empty")),
    }
}

fn command_result(result: ResultType) -> execute_plan_response::ResponseType {
    execute_plan_response::ResponseType::PipelineCommandResult(PipelineCommandResult { result_type: Some(result) })
}

fn sql_result(relation: Relation) -> execute_plan_response::ResponseType {
    execute_plan_response::ResponseType::SqlCommandResult(execute_plan_response::SqlCommandResult {
        relation: Some(relation),
    })
}

/// The request runs inside a flow's query function: its user context
/// carries a `PipelineAnalysisContext` naming a flow.
fn in_flow_function(request: &ExecutePlanRequest) -> bool {
    let Some(context) = &request.user_context else { return false };
    context.extensions.iter().filter(|any| any.type_url.ends_with("spark.connect.PipelineAnalysisContext")).any(|any| {
        PipelineAnalysisContext::decode(any.value.as_slice()).is_ok_and(|c| {
            #[allow(deprecated)]
            let named = c.flow_name.as_deref().is_some_and(|n| !n.is_empty());
            named || c.flow_identifier.is_some()
        })
    })
}

/// The SQL relation of a `spark.sql(...)` command, not run.
fn lazy_sql(sql: &spark_connect_proto::SqlCommand) -> Option<Relation> {
    if let Some(input) = &sql.input {
        return matches!(input.rel_type, Some(relation::RelType::Sql(_))).then(|| input.clone());
    }
    #[allow(deprecated)]
    let query = spark_connect_proto::Sql {
        query: sql.sql.clone(),
        args: sql.args.clone(),
        pos_args: sql.pos_args.clone(),
        named_arguments: sql.named_arguments.clone(),
        pos_arguments: sql.pos_arguments.clone(),
    };
    #[allow(deprecated)]
    let has_text = !sql.sql.is_empty();
    has_text.then_some(Relation { common: None, rel_type: Some(relation::RelType::Sql(query)) })
}

#[cfg(test)]
mod tests;
