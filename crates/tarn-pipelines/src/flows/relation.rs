//! The Spark Connect relations a flow runs: its query (a plan from Python
//! or SQL text), wrapped with the expectations' verdicts so the engine
//! evaluates them in the same pass, and the temporary views a flow's
//! incremental inputs are read from.

use base64::Engine as _;
use prost::Message;
use spark_connect_proto::{
    Command, CreateDataFrameViewCommand, Drop, Expression, LocalRelation, Project, Read, Relation, Sql, WriteOperation,
    command, expression, read, relation, write_operation,
};

use crate::graph::Expectation;

/// The column an expectation's verdict is read from.
pub fn verdict_column(i: usize) -> String {
    format!("__tarn_expectation_{i}")
}

pub fn decode(base64_plan: &str) -> Result<Relation, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(base64_plan.trim())
        .map_err(|e| format!("the flow's plan is not base64: {e}"))?;
    Relation::decode(bytes.as_slice()).map_err(|e| format!("the flow's plan is not a Spark Connect relation: {e}"))
}

pub fn sql(query: &str) -> Relation {
    #[allow(deprecated)]
    let sql = Sql { query: query.to_string(), ..Default::default() };
    Relation { common: None, rel_type: Some(relation::RelType::Sql(sql)) }
}

fn expression(expr_type: expression::ExprType) -> Expression {
    Expression { common: None, expr_type: Some(expr_type) }
}

/// `SELECT *, (c1) AS __tarn_expectation_0, ... FROM (query)`.
pub fn with_verdicts(query: Relation, expectations: &[Expectation]) -> Relation {
    let columns = expectations.iter().enumerate().map(|(i, e)| (e.condition.clone(), verdict_column(i))).collect();
    with_columns(query, columns)
}

/// The column that says which expectations a row met, one letter per
/// expectation in order: `t` met, `f` did not (a NULL verdict does not).
pub const VERDICTS: &str = "__tarn_verdicts";

/// `SELECT *, concat(CASE WHEN (c1) THEN 't' ELSE 'f' END, ...) AS
/// __tarn_verdicts FROM (query)`: the engine writes files partitioned by
/// this one column about as fast as unpartitioned ones, and markedly
/// slower with one partition column per expectation.
pub fn with_verdict_letters(query: Relation, expectations: &[Expectation]) -> Relation {
    if expectations.is_empty() {
        return query;
    }
    let letters: Vec<String> =
        expectations.iter().map(|e| format!("CASE WHEN ({}) THEN 't' ELSE 'f' END", e.condition)).collect();
    with_columns(query, vec![(format!("concat({})", letters.join(", ")), VERDICTS.to_string())])
}

/// `SELECT *, (expression) AS name, ... FROM (query)`.
fn with_columns(query: Relation, columns: Vec<(String, String)>) -> Relation {
    if columns.is_empty() {
        return query;
    }
    let star = expression::UnresolvedStar { unparsed_target: None, plan_id: None };
    let mut expressions = vec![expression(expression::ExprType::UnresolvedStar(star))];
    for (text, name) in columns {
        let value =
            expression(expression::ExprType::ExpressionString(expression::ExpressionString { expression: text }));
        let alias = expression::Alias { expr: Some(Box::new(value)), name: vec![name], metadata: None };
        expressions.push(expression(expression::ExprType::Alias(Box::new(alias))));
    }
    let project = Project { input: Some(Box::new(query)), expressions };
    Relation { common: None, rel_type: Some(relation::RelType::Project(Box::new(project))) }
}

/// `SELECT expressions FROM input`, each expression as `selectExpr` takes it.
pub fn select(input: Relation, expressions: &[String]) -> Relation {
    let expressions = expressions
        .iter()
        .map(|e| {
            expression(expression::ExprType::ExpressionString(expression::ExpressionString { expression: e.clone() }))
        })
        .collect();
    let project = Project { input: Some(Box::new(input)), expressions };
    Relation { common: None, rel_type: Some(relation::RelType::Project(Box::new(project))) }
}

/// Files read as `format`, with a schema in DDL when given.
pub fn files(format: &str, paths: Vec<String>, schema: Option<String>, options: Vec<(String, String)>) -> Relation {
    let source = read::DataSource {
        format: Some(format.to_string()),
        schema,
        options: options.into_iter().collect(),
        paths,
        predicates: Vec::new(),
        source_name: None,
    };
    let read = Read { is_streaming: false, read_type: Some(read::ReadType::DataSource(source)) };
    Relation { common: None, rel_type: Some(relation::RelType::Read(read)) }
}

/// Rows held here, sent to the engine as Arrow IPC.
pub fn local(
    schema: deltalake::arrow::datatypes::SchemaRef,
    rows: &[deltalake::arrow::record_batch::RecordBatch],
) -> Result<Relation, String> {
    let mut data = Vec::new();
    let mut writer =
        deltalake::arrow::ipc::writer::StreamWriter::try_new(&mut data, &schema).map_err(|e| e.to_string())?;
    for batch in rows {
        writer.write(batch).map_err(|e| e.to_string())?;
    }
    writer.finish().map_err(|e| e.to_string())?;
    drop(writer);
    let local = LocalRelation { data: Some(data.into()), schema: None };
    Ok(Relation { common: None, rel_type: Some(relation::RelType::LocalRelation(local)) })
}

/// `name` as part of a view name: letters and digits kept, the rest `_`.
pub fn view_part(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect()
}

/// `CREATE OR REPLACE TEMPORARY VIEW name` over `input`.
pub fn temp_view(name: &str, input: Relation) -> Command {
    let view =
        CreateDataFrameViewCommand { input: Some(input), name: name.to_string(), is_global: false, replace: true };
    Command { command_type: Some(command::CommandType::CreateDataframeView(view)) }
}

/// `input` without the columns `names`.
pub fn drop_columns(input: Relation, names: Vec<String>) -> Relation {
    let drop = Drop { input: Some(Box::new(input)), columns: Vec::new(), column_names: names };
    Relation { common: None, rel_type: Some(relation::RelType::Drop(Box::new(drop))) }
}

/// `input.write.mode("overwrite").option("compression", "snappy")
/// .partitionBy(partitions).parquet(dir)`: Snappy, as Delta writers use by
/// default, encodes faster than the engine's zstd.
pub fn write_parquet(input: Relation, dir: &str, partitions: Vec<String>) -> Command {
    let write = WriteOperation {
        input: Some(input),
        source: Some("parquet".into()),
        mode: write_operation::SaveMode::Overwrite.into(),
        partitioning_columns: partitions,
        options: [("compression".to_string(), "snappy".to_string())].into_iter().collect(),
        save_type: Some(write_operation::SaveType::Path(dir.to_string())),
        ..Default::default()
    };
    Command { command_type: Some(command::CommandType::WriteOperation(write)) }
}
