//! The passes on `ExecutePlan` requests built as PySpark builds them, with
//! a fake engine and fake hooks: each pass alone, then the pipeline.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use spark_connect_proto::write_operation::save_table::TableSaveMethod;
use spark_connect_proto::write_operation::{SaveMode, SaveTable, SaveType};
use spark_connect_proto::{
    Command, DataType, ExecutePlanRequest, Plan, Range, Read, Relation, Sql, SqlCommand, UserContext, WriteOperation,
    command, data_type, plan, read, relation,
};

use super::engine::EngineFuture;
use super::{EngineCalls, Hooks, Intercepted, Outcome, Pass, PassContext, PathResolver, SqlFailure, SqlInterceptor};
use crate::{EngineCallError, GatewayError};

/// A request with PySpark's session fields around `plan`.
fn request(plan: plan::OpType) -> ExecutePlanRequest {
    ExecutePlanRequest {
        session_id: "9a4b3c2d-0000-4000-8000-000000000001".into(),
        user_context: Some(UserContext { user_id: "admin".into(), ..Default::default() }),
        operation_id: Some("3f1e0c2a-0000-4000-8000-000000000002".into()),
        plan: Some(Plan { op_type: Some(plan) }),
        client_type: Some("_SPARK_CONNECT_PYTHON spark/4.0.0".into()),
        ..Default::default()
    }
}

fn rel(rel_type: relation::RelType) -> Relation {
    Relation { common: None, rel_type: Some(rel_type) }
}

/// `spark.sql(text)` as PySpark 4 sends it: a `SqlCommand` whose input is a
/// `Sql` relation.
fn spark_sql(text: &str) -> ExecutePlanRequest {
    request(plan::OpType::Command(Command {
        command_type: Some(command::CommandType::SqlCommand(SqlCommand {
            input: Some(rel(relation::RelType::Sql(Sql { query: text.into(), ..Default::default() }))),
            ..Default::default()
        })),
    }))
}

/// `spark.range(3)`.
fn range() -> Relation {
    rel(relation::RelType::Range(Range { start: Some(0), end: 3, step: 1, num_partitions: None }))
}

/// `spark.read.format(format).load(path)`.
fn read_path(format: &str, path: &str) -> Relation {
    rel(relation::RelType::Read(Read {
        is_streaming: false,
        read_type: Some(read::ReadType::DataSource(read::DataSource {
            format: Some(format.into()),
            paths: vec![path.into()],
            ..Default::default()
        })),
    }))
}

/// `df.write` with `save_type`, in `mode`.
fn write(input: Relation, save_type: SaveType, mode: SaveMode, partitioning: &[&str]) -> ExecutePlanRequest {
    request(plan::OpType::Command(Command {
        command_type: Some(command::CommandType::WriteOperation(WriteOperation {
            input: Some(input),
            mode: mode as i32,
            partitioning_columns: partitioning.iter().map(|c| (*c).to_string()).collect(),
            save_type: Some(save_type),
            ..Default::default()
        })),
    }))
}

/// `df.write.saveAsTable(name)`.
fn save_as_table(name: &str) -> SaveType {
    SaveType::Table(SaveTable { table_name: name.into(), save_method: TableSaveMethod::SaveAsTable as i32 })
}

fn sql_text(request: &ExecutePlanRequest) -> &str {
    let Some(plan::OpType::Command(Command { command_type: Some(command::CommandType::SqlCommand(c)) })) =
        request.plan.as_ref().and_then(|p| p.op_type.as_ref())
    else {
        panic!("not a SQL command: {request:?}");
    };
    match c.input.as_ref().and_then(|r| r.rel_type.as_ref()) {
        Some(relation::RelType::Sql(sql)) => &sql.query,
        other => panic!("not a SQL relation: {other:?}"),
    }
}

fn write_of(request: &ExecutePlanRequest) -> &WriteOperation {
    match request.plan.as_ref().and_then(|p| p.op_type.as_ref()) {
        Some(plan::OpType::Command(Command { command_type: Some(command::CommandType::WriteOperation(w)) })) => w,
        other => panic!("not a write: {other:?}"),
    }
}

fn data_source(relation: Option<&Relation>) -> &read::DataSource {
    match relation.and_then(|r| r.rel_type.as_ref()) {
        Some(relation::RelType::Read(Read { read_type: Some(read::ReadType::DataSource(d)), .. })) => d,
        other => panic!("not a data source read: {other:?}"),
    }
}

/// A struct schema of (name, nullable) BIGINT columns.
fn longs(columns: &[(&str, bool)]) -> DataType {
    let long = DataType { kind: Some(data_type::Kind::Long(Default::default())) };
    let fields = columns
        .iter()
        .map(|(name, nullable)| data_type::StructField {
            name: (*name).into(),
            data_type: Some(long.clone()),
            nullable: *nullable,
            ..Default::default()
        })
        .collect();
    DataType { kind: Some(data_type::Kind::Struct(data_type::Struct { fields, ..Default::default() })) }
}

/// An engine that answers every schema with `schema` and a `CREATE TABLE`
/// with `refusal` (or success); it records what it was asked.
#[derive(Default)]
struct FakeEngine {
    schema: Option<DataType>,
    refusal: Option<EngineCallError>,
    analyzed: Mutex<Vec<String>>,
    ran: Mutex<Vec<String>>,
}

impl FakeEngine {
    fn with_schema(schema: DataType) -> Self {
        Self { schema: Some(schema), ..Default::default() }
    }

    fn refusing(mut self, message: &str) -> Self {
        self.refusal = Some(EngineCallError::Refused(message.into()));
        self
    }

    fn calls(&self) -> (Vec<String>, Vec<String>) {
        (self.analyzed.lock().unwrap().clone(), self.ran.lock().unwrap().clone())
    }
}

impl EngineCalls for FakeEngine {
    fn analyze_schema(&self, query: Relation) -> EngineFuture<'_, Option<DataType>> {
        let what = match query.rel_type {
            Some(relation::RelType::Sql(sql)) => sql.query,
            other => format!("{other:?}"),
        };
        self.analyzed.lock().unwrap().push(what);
        Box::pin(async move { Ok(self.schema.clone()) })
    }

    fn run_sql(&self, sql: String) -> EngineFuture<'_, ()> {
        self.ran.lock().unwrap().push(sql);
        Box::pin(async move { self.refusal.clone().map_or(Ok(()), Err) })
    }
}

/// Volumes stored under `/lake`; a path leaving its volume is refused.
struct Volumes;

impl PathResolver for Volumes {
    fn resolve(&self, path: &str) -> Result<String, String> {
        match path.strip_prefix("/Volumes/") {
            Some(rest) if !rest.contains("..") => Ok(format!("/lake/{rest}")),
            _ => Err(format!("{path} is outside its volume")),
        }
    }
}

/// Answers `OPTIMIZE` and what reads tarn's system tables with one byte,
/// refuses `VACUUM`, leaves the rest to the engine.
#[derive(Default)]
struct Lake {
    refreshed: AtomicUsize,
}

impl SqlInterceptor for Lake {
    fn intercept<'a>(&'a self, sql: &'a str) -> Intercepted<'a> {
        Box::pin(async move {
            if sql.starts_with("OPTIMIZE") || sql.contains("tarn_system.") {
                Some(Ok(vec![7]))
            } else if sql.starts_with("VACUUM") {
                Some(Err(SqlFailure {
                    exception_class: "org.apache.spark.sql.AnalysisException",
                    message: "[DELTA_VACUUM_RETENTION_PERIOD_TOO_SHORT] no".into(),
                }))
            } else {
                None
            }
        })
    }

    fn refresh_system_tables(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        self.refreshed.fetch_add(1, Ordering::SeqCst);
        Box::pin(async {})
    }
}

fn hooks(lake: Option<Arc<Lake>>) -> Hooks {
    let sql = lake.map(|l| l as Arc<dyn SqlInterceptor>);
    Hooks { sql, paths: Some(Arc::new(Volumes)), graphs: None, access: None, views: None }
}

/// Runs one pass; returns its outcome and whether it noted a system table read.
async fn run_pass(
    pass: Pass,
    hooks: &Hooks,
    engine: &FakeEngine,
    request: &mut ExecutePlanRequest,
) -> (Result<Outcome, GatewayError>, bool) {
    let mut cx = PassContext::new(hooks, engine);
    let outcome = pass.run(request, &mut cx).await;
    (outcome, cx.reads_system_tables)
}

mod paths {
    use super::*;

    #[tokio::test]
    async fn a_path_in_sql_text_is_resolved() {
        let (hooks, engine) = (hooks(None), FakeEngine::default());
        let mut req =
            spark_sql("SELECT * FROM parquet.`/Volumes/main/s/v/events` WHERE src = 'dbfs:/Volumes/main/s/v/x'");
        let (outcome, _) = run_pass(Pass::Paths, &hooks, &engine, &mut req).await;
        assert_eq!(outcome.unwrap(), Outcome::Changed);
        assert_eq!(sql_text(&req), "SELECT * FROM parquet.`/lake/main/s/v/events` WHERE src = '/lake/main/s/v/x'");
    }

    #[tokio::test]
    async fn read_and_write_paths_are_resolved() {
        let (hooks, engine) = (hooks(None), FakeEngine::default());
        let mut input = read_path("csv", "dbfs:/Volumes/main/s/v/in.csv");
        if let Some(relation::RelType::Read(Read { read_type: Some(read::ReadType::DataSource(d)), .. })) =
            input.rel_type.as_mut()
        {
            d.options = HashMap::from([("path".to_string(), "/Volumes/main/s/v/other.csv".to_string())]);
        }
        let out = SaveType::Path("/Volumes/main/s/v/out".into());
        let mut req = write(input, out, SaveMode::Overwrite, &[]);
        let (outcome, _) = run_pass(Pass::Paths, &hooks, &engine, &mut req).await;
        assert_eq!(outcome.unwrap(), Outcome::Changed);
        let w = write_of(&req);
        assert_eq!(w.save_type, Some(SaveType::Path("/lake/main/s/v/out".into())));
        let source = data_source(w.input.as_ref());
        assert_eq!(source.paths, ["/lake/main/s/v/in.csv"]);
        assert_eq!(source.options["path"], "/lake/main/s/v/other.csv");
    }

    #[tokio::test]
    async fn a_system_table_read_by_name_is_renamed_and_noted() {
        let (hooks, engine) = (hooks(None), FakeEngine::default());
        let table = read::NamedTable { unparsed_identifier: "system.access.audit".into(), options: HashMap::new() };
        let mut req = request(plan::OpType::Root(rel(relation::RelType::Read(Read {
            is_streaming: false,
            read_type: Some(read::ReadType::NamedTable(table)),
        }))));
        let (outcome, reads_system_tables) = run_pass(Pass::Paths, &hooks, &engine, &mut req).await;
        assert_eq!(outcome.unwrap(), Outcome::Changed);
        assert!(reads_system_tables);
        assert!(format!("{req:?}").contains("\"tarn_system.access.audit\""), "{req:?}");
    }

    #[tokio::test]
    async fn a_path_leaving_its_volume_fails_and_others_are_left_alone() {
        let (hooks, engine) = (hooks(None), FakeEngine::default());
        let mut req = spark_sql("SELECT * FROM json.`/Volumes/main/s/v/../../etc`");
        let (outcome, _) = run_pass(Pass::Paths, &hooks, &engine, &mut req).await;
        let Err(GatewayError::Path(message)) = outcome else { panic!("{outcome:?}") };
        assert_eq!(message, "/Volumes/main/s/v/../../etc is outside its volume");

        let mut req = spark_sql("SELECT * FROM parquet.`/tmp/events`");
        let (outcome, reads_system_tables) = run_pass(Pass::Paths, &hooks, &engine, &mut req).await;
        assert_eq!((outcome.unwrap(), reads_system_tables), (Outcome::Unchanged, false));
        let mut req = spark_sql("SELECT * FROM parquet.`/Volumes/main/s/v/x`");
        let (outcome, _) = run_pass(Pass::Paths, &Hooks::default(), &engine, &mut req).await;
        assert_eq!(outcome.unwrap(), Outcome::Unchanged, "no resolver, no rewrite");
    }
}

mod sql {
    use super::*;

    fn local_data(request: &ExecutePlanRequest) -> Option<Vec<u8>> {
        let relation = match request.plan.as_ref()?.op_type.as_ref()? {
            plan::OpType::Root(r) => r,
            plan::OpType::Command(Command { command_type: Some(command::CommandType::SqlCommand(c)) }) => {
                c.input.as_ref()?
            }
            _ => return None,
        };
        match relation.rel_type.as_ref()? {
            relation::RelType::LocalRelation(local) => local.data.clone().map(|d| d.to_vec()),
            _ => None,
        }
    }

    #[tokio::test]
    async fn a_statement_tarn_runs_becomes_its_result_and_is_settled() {
        let lake = Arc::new(Lake::default());
        let (hooks, engine) = (hooks(Some(lake)), FakeEngine::default());
        #[allow(deprecated)]
        let legacy = request(plan::OpType::Command(Command {
            command_type: Some(command::CommandType::SqlCommand(SqlCommand {
                sql: "OPTIMIZE t".into(),
                ..Default::default()
            })),
        }));
        let root = request(plan::OpType::Root(rel(relation::RelType::Sql(Sql {
            query: "OPTIMIZE t".into(),
            ..Default::default()
        }))));
        for mut req in [spark_sql("OPTIMIZE main.s.t ZORDER BY (k)"), root, legacy] {
            let (outcome, _) = run_pass(Pass::Sql, &hooks, &engine, &mut req).await;
            assert_eq!(outcome.unwrap(), Outcome::Settled);
            assert_eq!(local_data(&req), Some(vec![7]), "{req:?}");
        }
    }

    #[tokio::test]
    async fn other_statements_go_on_and_failures_are_spark_exceptions() {
        let lake = Arc::new(Lake::default());
        let (hooks, engine) = (hooks(Some(lake.clone())), FakeEngine::default());
        let mut req = spark_sql("SELECT 1");
        let (outcome, _) = run_pass(Pass::Sql, &hooks, &engine, &mut req).await;
        assert_eq!(outcome.unwrap(), Outcome::Unchanged);
        assert_eq!(sql_text(&req), "SELECT 1");
        assert_eq!(lake.refreshed.load(Ordering::SeqCst), 0);

        let mut cx = PassContext::new(&hooks, &engine);
        cx.reads_system_tables = true;
        Pass::Sql.run(&mut req, &mut cx).await.unwrap();
        assert_eq!(lake.refreshed.load(Ordering::SeqCst), 1, "a system table read by name refreshes them first");

        let mut req = spark_sql("VACUUM t RETAIN 0 HOURS");
        let (outcome, _) = run_pass(Pass::Sql, &hooks, &engine, &mut req).await;
        let Err(GatewayError::Statement(failure)) = outcome else { panic!("{outcome:?}") };
        assert_eq!(failure.exception_class, "org.apache.spark.sql.AnalysisException");
        assert!(failure.message.starts_with("[DELTA_VACUUM_RETENTION_PERIOD_TOO_SHORT]"));
    }
}

mod ctas {
    use super::*;

    const QUERY: &str = "SELECT id AS k, id FROM range(3)";

    #[tokio::test]
    async fn a_ctas_creates_the_table_then_inserts() {
        let hooks = hooks(None);
        let engine = FakeEngine::with_schema(longs(&[("k", false), ("id", true)]));
        let mut req = spark_sql(&format!("CREATE TABLE main.s.t PARTITIONED BY (k) COMMENT 'c' AS {QUERY};"));
        let (outcome, _) = run_pass(Pass::Ctas, &hooks, &engine, &mut req).await;
        assert_eq!(outcome.unwrap(), Outcome::Changed);
        assert_eq!(sql_text(&req), format!("INSERT INTO main.s.t {QUERY}"));
        let (analyzed, ran) = engine.calls();
        assert_eq!(analyzed, [QUERY]);
        assert_eq!(
            ran,
            ["CREATE TABLE main.s.t (`k` BIGINT NOT NULL, `id` BIGINT) USING DELTA PARTITIONED BY (k) COMMENT 'c'"]
        );
    }

    #[tokio::test]
    async fn an_existing_table_is_replaced_kept_or_refused_as_the_statement_says() {
        let hooks = hooks(None);
        let engine = FakeEngine::with_schema(longs(&[("id", true)])).refusing("Table main.s.t already exists");
        let mut req = spark_sql(&format!("CREATE OR REPLACE TABLE main.s.t AS {QUERY}"));
        let (outcome, _) = run_pass(Pass::Ctas, &hooks, &engine, &mut req).await;
        assert_eq!(outcome.unwrap(), Outcome::Changed);
        assert_eq!(sql_text(&req), format!("INSERT OVERWRITE TABLE main.s.t {QUERY}"));

        let text = format!("CREATE TABLE IF NOT EXISTS main.s.t AS {QUERY}");
        let mut req = spark_sql(&text);
        let (outcome, _) = run_pass(Pass::Ctas, &hooks, &engine, &mut req).await;
        assert_eq!(outcome.unwrap(), Outcome::Unchanged);
        assert_eq!(sql_text(&req), text);

        let mut req = spark_sql(&format!("CREATE TABLE main.s.t AS {QUERY}"));
        let (outcome, _) = run_pass(Pass::Ctas, &hooks, &engine, &mut req).await;
        let Err(error) = outcome else { panic!("the engine's refusal is the client's") };
        assert!(matches!(&error, GatewayError::Ctas(EngineCallError::Refused(_))));
        assert_eq!(error.to_string(), "Table main.s.t already exists");
    }

    #[tokio::test]
    async fn other_statements_do_not_reach_the_engine() {
        let (hooks, engine) = (hooks(None), FakeEngine::with_schema(longs(&[("id", true)])));
        for text in ["SELECT 1", "CREATE TABLE t (a INT) USING DELTA", "CREATE TABLE t USING parquet AS SELECT 1"] {
            let mut req = spark_sql(text);
            let (outcome, _) = run_pass(Pass::Ctas, &hooks, &engine, &mut req).await;
            assert_eq!(outcome.unwrap(), Outcome::Unchanged);
            assert_eq!(sql_text(&req), text);
        }
        assert_eq!(engine.calls(), (vec![], vec![]));
    }
}

mod save_as_table {
    use super::*;

    #[tokio::test]
    async fn a_new_table_is_created_then_appended_to() {
        let hooks = hooks(None);
        let engine = FakeEngine::with_schema(longs(&[("id", false), ("day", true)]));
        let mut req = write(range(), save_as_table("main.s.t"), SaveMode::ErrorIfExists, &["day"]);
        let (outcome, _) = run_pass(Pass::SaveAsTable, &hooks, &engine, &mut req).await;
        assert_eq!(outcome.unwrap(), Outcome::Changed);
        let (_, ran) = engine.calls();
        assert_eq!(
            ran,
            ["CREATE TABLE main.s.t (`id` BIGINT NOT NULL, `day` BIGINT) USING DELTA PARTITIONED BY (`day`)"]
        );
        let w = write_of(&req);
        assert_eq!((w.mode, w.partitioning_columns.len()), (SaveMode::Append as i32, 0));
        assert_eq!(w.save_type, Some(save_as_table("main.s.t")));
    }

    #[tokio::test]
    async fn an_existing_table_is_overwritten_by_insert_or_left_to_the_engine() {
        let hooks = hooks(None);
        let engine = FakeEngine::with_schema(longs(&[("id", false)])).refusing("table already exists");
        let mut req = write(range(), save_as_table("main.s.t"), SaveMode::Overwrite, &[]);
        let (outcome, _) = run_pass(Pass::SaveAsTable, &hooks, &engine, &mut req).await;
        assert_eq!(outcome.unwrap(), Outcome::Changed);
        let insert = SaveTable { table_name: "main.s.t".into(), save_method: TableSaveMethod::InsertInto as i32 };
        assert_eq!(write_of(&req).save_type, Some(SaveType::Table(insert)));

        let mut req = write(range(), save_as_table("main.s.t"), SaveMode::Append, &[]);
        let (outcome, _) = run_pass(Pass::SaveAsTable, &hooks, &engine, &mut req).await;
        assert_eq!(outcome.unwrap(), Outcome::Unchanged);
        assert_eq!(write_of(&req).mode, SaveMode::Append as i32);
    }

    #[tokio::test]
    async fn a_refused_create_is_an_invalid_argument_and_other_writes_are_left_alone() {
        let hooks = hooks(None);
        let engine = FakeEngine::with_schema(longs(&[("id", false)])).refusing("no such schema main.nope");
        let mut req = write(range(), save_as_table("main.nope.t"), SaveMode::ErrorIfExists, &[]);
        let (outcome, _) = run_pass(Pass::SaveAsTable, &hooks, &engine, &mut req).await;
        let Err(error) = outcome else { panic!("the engine's refusal is the client's") };
        assert_eq!(error.code(), tonic::Code::InvalidArgument);
        assert_eq!(error.to_string(), "no such schema main.nope");

        let engine = FakeEngine::with_schema(longs(&[("id", false)]));
        let mut parquet = write(range(), save_as_table("main.s.t"), SaveMode::ErrorIfExists, &[]);
        if let Some(plan::OpType::Command(Command { command_type: Some(command::CommandType::WriteOperation(w)) })) =
            parquet.plan.as_mut().and_then(|p| p.op_type.as_mut())
        {
            w.source = Some("parquet".into());
        }
        let to_path = write(range(), SaveType::Path("/tmp/out".into()), SaveMode::ErrorIfExists, &[]);
        for mut req in [parquet, to_path] {
            let (outcome, _) = run_pass(Pass::SaveAsTable, &hooks, &engine, &mut req).await;
            assert_eq!(outcome.unwrap(), Outcome::Unchanged);
        }
        assert_eq!(engine.calls(), (vec![], vec![]));
    }
}

mod pipeline {
    use super::*;

    async fn run(hooks: &Hooks, engine: &FakeEngine, request: &mut ExecutePlanRequest) -> bool {
        super::super::run(&super::super::PIPELINE, request, &mut PassContext::new(hooks, engine)).await.unwrap()
    }

    #[tokio::test]
    async fn paths_are_resolved_before_a_ctas_is_split() {
        let (hooks, engine) = (hooks(Some(Arc::default())), FakeEngine::with_schema(longs(&[("id", true)])));
        let mut req = spark_sql("CREATE TABLE main.s.t AS SELECT * FROM json.`/Volumes/main/s/v/in.json`");
        assert!(run(&hooks, &engine, &mut req).await);
        assert_eq!(sql_text(&req), "INSERT INTO main.s.t SELECT * FROM json.`/lake/main/s/v/in.json`");
        assert_eq!(engine.calls().0, ["SELECT * FROM json.`/lake/main/s/v/in.json`"]);
    }

    #[tokio::test]
    async fn a_statement_tarn_answers_reaches_no_later_pass() {
        let lake = Arc::new(Lake::default());
        let (hooks, engine) = (hooks(Some(lake)), FakeEngine::with_schema(longs(&[("id", true)])));
        let mut req = spark_sql("CREATE TABLE main.s.audit AS SELECT * FROM system.access.audit");
        assert!(run(&hooks, &engine, &mut req).await);
        assert_eq!(engine.calls(), (vec![], vec![]), "the interceptor saw the renamed table and took it");
    }

    #[tokio::test]
    async fn a_request_no_pass_changes_is_reported_unchanged() {
        let (hooks, engine) = (hooks(Some(Arc::default())), FakeEngine::default());
        let mut req = write(read_path("parquet", "/tmp/in"), save_as_table("main.s.t"), SaveMode::Append, &[]);
        let before = req.clone();
        assert!(!run(&hooks, &engine, &mut req).await, "the engine had no schema to give");
        assert_eq!(req, before);
    }
}
