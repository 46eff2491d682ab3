use std::sync::Mutex;

use prost::Message;
use spark_connect_proto::pipeline_command::DropDataflowGraph;
use spark_connect_proto::{Command, Plan, SqlCommand, UserContext};

use super::*;

/// Graphs that record the commands they get.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl Recorder {
    fn saw(&self, what: String) {
        self.0.lock().unwrap().push(what);
    }
}

impl DataflowGraphs for Recorder {
    fn create_graph(&self, caller: &GraphCaller, request: CreateDataflowGraph) -> Result<String, GraphFailure> {
        self.saw(format!("create {} {:?}", caller.user, request.default_catalog));
        Ok("g-1".into())
    }
    fn define_output(&self, _: &GraphCaller, request: DefineOutput) -> Result<ResolvedIdentifier, GraphFailure> {
        Err(GraphFailure::not_implemented(format!("no sinks: {:?}", request.output_name)))
    }
    fn define_flow(&self, _: &GraphCaller, _: DefineFlow) -> Result<ResolvedIdentifier, GraphFailure> {
        Ok(ResolvedIdentifier::default())
    }
    fn define_sql(&self, _: &GraphCaller, request: DefineSqlGraphElements) -> Result<(), GraphFailure> {
        self.saw(format!("sql {:?}", request.sql_file_path));
        Ok(())
    }
    fn start_run(&self, _: &GraphCaller, _: StartRun) -> Result<mpsc::Receiver<RunEvent>, GraphFailure> {
        Ok(mpsc::channel(1).1)
    }
    fn drop_graph(&self, _: &GraphCaller, graph_id: &str) -> Result<(), GraphFailure> {
        self.saw(format!("drop {graph_id}"));
        Ok(())
    }
}

fn caller() -> GraphCaller {
    GraphCaller { user: "me".into(), cluster_id: "c".into(), port: 1 }
}

fn request(command_type: command::CommandType, user_context: Option<UserContext>) -> ExecutePlanRequest {
    let command = Command { command_type: Some(command_type) };
    ExecutePlanRequest {
        session_id: "s".into(),
        user_context,
        plan: Some(Plan { op_type: Some(plan::OpType::Command(command)) }),
        ..Default::default()
    }
}

fn pipeline(command_type: CommandType) -> ExecutePlanRequest {
    request(command::CommandType::PipelineCommand(PipelineCommand { command_type: Some(command_type) }), None)
}

#[test]
fn pipeline_commands_reach_the_graphs_and_answer_their_results() {
    let graphs = Recorder::default();
    let create = pipeline(CommandType::CreateDataflowGraph(CreateDataflowGraph {
        default_catalog: Some("main".into()),
        ..Default::default()
    }));
    let Some(Ok(Answer::Results(results))) = answer(&graphs, &caller(), &create) else { panic!("answered") };
    let execute_plan_response::ResponseType::PipelineCommandResult(result) = &results[0] else { panic!("a result") };
    let Some(ResultType::CreateDataflowGraphResult(created)) = &result.result_type else { panic!("its id") };
    assert_eq!(created.dataflow_graph_id.as_deref(), Some("g-1"));

    let sql = pipeline(CommandType::DefineSqlGraphElements(DefineSqlGraphElements {
        sql_file_path: Some("t.sql".into()),
        ..Default::default()
    }));
    assert!(matches!(answer(&graphs, &caller(), &sql), Some(Ok(Answer::Results(r))) if r.is_empty()));
    let dropped = pipeline(CommandType::DropDataflowGraph(DropDataflowGraph { dataflow_graph_id: Some("g-1".into()) }));
    assert!(answer(&graphs, &caller(), &dropped).is_some());
    assert!(matches!(
        answer(&graphs, &caller(), &pipeline(CommandType::StartRun(StartRun::default()))),
        Some(Ok(Answer::Events(_)))
    ));
    let sink = pipeline(CommandType::DefineOutput(DefineOutput::default()));
    let Some(Err(failure)) = answer(&graphs, &caller(), &sink) else { panic!("refused") };
    assert_eq!(failure.exception_class, UNSUPPORTED);
    assert_eq!(*graphs.0.lock().unwrap(), ["create me Some(\"main\")", "sql Some(\"t.sql\")", "drop g-1"]);
}

#[test]
fn sql_inside_a_flow_function_stays_a_plan() {
    let graphs = Recorder::default();
    #[allow(deprecated)]
    let sql = || command::CommandType::SqlCommand(SqlCommand { sql: "SELECT * FROM b".into(), ..Default::default() });
    assert!(answer(&graphs, &caller(), &request(sql(), None)).is_none(), "outside a flow the engine runs it");
    #[allow(deprecated)]
    let context = PipelineAnalysisContext { flow_name: Some("a".into()), ..Default::default() };
    let extension = prost_types::Any {
        type_url: "type.googleapis.com/spark.connect.PipelineAnalysisContext".into(),
        value: context.encode_to_vec(),
    };
    let user = UserContext { extensions: vec![extension], ..Default::default() };
    let Some(Ok(Answer::Results(results))) = answer(&graphs, &caller(), &request(sql(), Some(user))) else {
        panic!("answered lazily")
    };
    let execute_plan_response::ResponseType::SqlCommandResult(result) = &results[0] else { panic!("a SQL result") };
    let Some(relation::RelType::Sql(query)) = result.relation.as_ref().and_then(|r| r.rel_type.as_ref()) else {
        panic!("the SQL relation")
    };
    assert_eq!(query.query, "SELECT * FROM b");
}
