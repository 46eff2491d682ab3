use std::collections::HashMap;

use base64::Engine as _;
use prost::Message;
use spark_connect_proto::pipeline_command::define_flow::{AutoCdcFlowDetails, Details as FlowDetails};
use spark_connect_proto::pipeline_command::define_output::{Details, TableDetails, table_details};
use spark_connect_proto::pipeline_command::{DefineFlow, DefineOutput};
use spark_connect_proto::{
    DataType, Expression, Filter, OutputType, Read, Relation, SourceCodeLocation, Sql, data_type, expression, read,
    relation,
};
use tarn_gateway::relations::children_mut;

use super::{elements, reads};
use crate::graph::{DatasetKind, Definitions, Flow, Input, Query};

fn table(name: &str, streaming: bool) -> Relation {
    let named = read::NamedTable { unparsed_identifier: name.into(), options: HashMap::new() };
    let read = Read { is_streaming: streaming, read_type: Some(read::ReadType::NamedTable(named)) };
    Relation { common: None, rel_type: Some(relation::RelType::Read(read)) }
}

fn filtered(input: Relation) -> Relation {
    let filter = Filter { input: Some(Box::new(input)), condition: None };
    Relation { common: None, rel_type: Some(relation::RelType::Filter(Box::new(filter))) }
}

fn output(name: &str, kind: OutputType) -> DefineOutput {
    DefineOutput { output_name: Some(name.into()), output_type: Some(kind as i32), ..Default::default() }
}

fn flow(name: &str, relation: Relation) -> DefineFlow {
    DefineFlow {
        flow_name: Some(name.into()),
        target_dataset_name: Some(name.into()),
        details: Some(FlowDetails::RelationFlowDetails(
            spark_connect_proto::pipeline_command::define_flow::WriteRelationFlowDetails { relation: Some(relation) },
        )),
        source_code_location: Some(SourceCodeLocation {
            file_name: Some("t.py".into()),
            line_number: Some(7),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn relation_of(flow: &Flow) -> Relation {
    let Some(Query::Relation(encoded)) = &flow.query else { panic!("a relation") };
    Relation::decode(base64::engine::general_purpose::STANDARD.decode(encoded).unwrap().as_slice()).unwrap()
}

/// The tables a relation reads, in plan order, and its SQL texts.
fn reads_of(relation: &mut Relation) -> Vec<String> {
    let mut out = Vec::new();
    match &relation.rel_type {
        Some(relation::RelType::Read(Read { read_type: Some(read::ReadType::NamedTable(t)), is_streaming })) => {
            out.push(format!("{}{}", t.unparsed_identifier, if *is_streaming { " (stream)" } else { "" }));
        }
        Some(relation::RelType::Sql(sql)) => out.push(sql.query.clone()),
        Some(relation::RelType::SubqueryAlias(a)) => out.push(format!("as {}", a.alias)),
        _ => {}
    }
    for child in children_mut(relation) {
        out.extend(reads_of(child));
    }
    out
}

fn graph(outputs: Vec<DefineOutput>, flows: Vec<DefineFlow>) -> Definitions {
    Definitions {
        datasets: outputs.into_iter().map(|o| elements::dataset(o).unwrap()).collect(),
        flows: flows.into_iter().map(|f| elements::flow(f).unwrap()).collect(),
        errors: Vec::new(),
    }
}

#[test]
fn reads_of_datasets_become_full_names_stream_views_and_inlined_views() {
    #[allow(deprecated)]
    let sql = Sql { query: "SELECT * FROM STREAM(bronze) JOIN dims USING (id)".into(), ..Default::default() };
    let defs = graph(
        vec![
            output("bronze", OutputType::Table),
            output("v", OutputType::TemporaryView),
            output("silver", OutputType::Table),
            output("gold", OutputType::MaterializedView),
            output("joined", OutputType::MaterializedView),
        ],
        vec![
            flow("bronze", table("main.raw.events", false)),
            flow("v", filtered(table("bronze", true))),
            flow("silver", table("v", false)),
            flow("gold", filtered(table("`silver`", false))),
            flow("joined", Relation { common: None, rel_type: Some(relation::RelType::Sql(sql)) }),
        ],
    );
    let resolved = reads::resolve(defs, "main", "sales");
    assert!(resolved.errors.is_empty(), "{:?}", resolved.errors);
    let by_name = |n: &str| resolved.flows.iter().find(|f| f.name == n).unwrap();
    assert_eq!(reads_of(&mut relation_of(by_name("bronze"))), ["main.raw.events"], "other tables stay as written");
    assert!(by_name("bronze").inputs.is_empty());
    assert_eq!(reads_of(&mut relation_of(by_name("silver"))), ["as v", "`__tarn_stream__bronze`"]);
    assert_eq!(
        by_name("silver").inputs,
        [Input { name: "bronze".into(), streaming: true, skip_change_commits: false }]
    );
    assert_eq!(reads_of(&mut relation_of(by_name("gold"))), ["`main`.`sales`.`silver`"]);
    assert_eq!(by_name("gold").inputs, [Input { name: "silver".into(), streaming: false, skip_change_commits: false }]);
    let joined = by_name("joined");
    assert_eq!(reads_of(&mut relation_of(joined)), ["SELECT * FROM `__tarn_stream__bronze` JOIN dims USING (id)"]);
    assert_eq!(joined.inputs, [Input { name: "bronze".into(), streaming: true, skip_change_commits: false }]);
}

#[test]
fn file_streams_become_sources_read_through_their_view() {
    let mut options = HashMap::new();
    options.insert("cloudFiles.format".to_string(), "json".to_string());
    let source = read::DataSource {
        format: Some("cloudFiles".into()),
        schema: Some("id INT".into()),
        options,
        paths: vec!["/Volumes/main/raw/landing".into()],
        ..Default::default()
    };
    let stream = Read { is_streaming: true, read_type: Some(read::ReadType::DataSource(source)) };
    let defs = graph(
        vec![output("bronze", OutputType::Table)],
        vec![flow("bronze", Relation { common: None, rel_type: Some(relation::RelType::Read(stream)) })],
    );
    let resolved = reads::resolve(defs, "main", "sales");
    let bronze = &resolved.flows[0];
    let source = &bronze.sources[0];
    assert_eq!((source.path.as_str(), source.format.as_str()), ("/Volumes/main/raw/landing", "json"));
    assert_eq!(source.schema.as_deref(), Some("id INT"));
    let view = source.view.clone().unwrap();
    assert_eq!(reads_of(&mut relation_of(bronze)), [format!("`{view}`")]);
}

#[test]
fn unresolvable_reads_are_definition_errors_at_the_flow() {
    let defs = graph(
        vec![output("a", OutputType::Table), output("v", OutputType::TemporaryView), output("b", OutputType::Table)],
        vec![flow("v", table("elsewhere", true)), flow("a", table("v", false)), flow("b", table("a", true))],
    );
    let resolved = reads::resolve(defs, "main", "s");
    let names: Vec<&str> = resolved.flows.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["b"]);
    assert_eq!(resolved.errors.len(), 1, "the view's failure is reported once: {:?}", resolved.errors);
    let error = &resolved.errors[0];
    assert!(error.message.starts_with("Flow 'v': it streams from 'elsewhere'"), "{}", error.message);
    assert_eq!(error.location.as_ref().map(|l| (l.path.as_str(), l.line)), Some(("t.py", Some(7))));
}

#[test]
fn outputs_map_to_datasets_and_sinks_and_other_formats_are_refused() {
    let long = DataType { kind: Some(data_type::Kind::Long(Default::default())) };
    let field = data_type::StructField { name: "id".into(), data_type: Some(long), nullable: true, metadata: None };
    let schema = DataType {
        kind: Some(data_type::Kind::Struct(data_type::Struct { fields: vec![field], ..Default::default() })),
    };
    let mut request = output("bronze", OutputType::MaterializedView);
    request.comment = Some("raw".into());
    request.details = Some(Details::TableDetails(TableDetails {
        table_properties: HashMap::from([("quality".to_string(), "bronze".to_string())]),
        partition_cols: vec!["day".into()],
        schema: Some(table_details::Schema::SchemaDataType(schema)),
        ..Default::default()
    }));
    let dataset = elements::dataset(request).unwrap();
    assert_eq!(dataset.kind, DatasetKind::MaterializedView);
    assert_eq!((dataset.comment.as_deref(), dataset.schema.as_deref()), (Some("raw"), Some("`id` BIGINT")));
    assert_eq!(dataset.table_properties["quality"], "bronze");
    assert_eq!(dataset.partition_cols, ["day"]);

    let sink = elements::dataset(output("out", OutputType::Sink)).unwrap_err();
    assert!(sink.message.contains("Sink 'out'"), "{}", sink.message);
    let mut parquet = output("p", OutputType::Table);
    parquet.details =
        Some(Details::TableDetails(TableDetails { format: Some("parquet".into()), ..Default::default() }));
    assert!(elements::dataset(parquet).unwrap_err().message.contains("Delta"));
    assert!(elements::flow(DefineFlow { flow_name: Some("f".into()), ..Default::default() }).is_err());
    let id = elements::identifier("x", "main", "s");
    assert_eq!(
        (id.catalog_name.as_str(), id.namespace.as_slice(), id.table_name.as_str()),
        ("main", &["s".to_string()][..], "x")
    );
}

#[test]
fn auto_cdc_flows_keep_their_settings_and_stream_their_source() {
    let column = |name: &str| Expression {
        common: None,
        expr_type: Some(expression::ExprType::UnresolvedAttribute(expression::UnresolvedAttribute {
            unparsed_identifier: name.into(),
            plan_id: None,
            is_metadata_column: None,
        })),
    };
    let condition = Expression {
        common: None,
        expr_type: Some(expression::ExprType::ExpressionString(expression::ExpressionString {
            expression: "op = 'DELETE'".into(),
        })),
    };
    let request = DefineFlow {
        flow_name: Some("target".into()),
        target_dataset_name: Some("target".into()),
        details: Some(FlowDetails::AutoCdcFlowDetails(AutoCdcFlowDetails {
            source: Some("changes".into()),
            keys: vec![column("id")],
            sequence_by: Some(column("seq")),
            apply_as_deletes: Some(condition),
            ..Default::default()
        })),
        ..Default::default()
    };
    let defs = graph(
        vec![output("changes", OutputType::Table), output("target", OutputType::Table)],
        vec![flow("changes", table("main.raw.changes", false)), request],
    );
    let resolved = reads::resolve(defs, "main", "s");
    let target = resolved.flows.iter().find(|f| f.name == "target").unwrap();
    let cdc = target.cdc.as_ref().unwrap();
    assert_eq!((cdc.keys.as_slice(), cdc.sequence_by.as_str()), (&["id".to_string()][..], "seq"));
    assert_eq!(cdc.apply_as_deletes.as_deref(), Some("(op = 'DELETE')"));
    assert_eq!(target.inputs, [Input { name: "changes".into(), streaming: true, skip_change_commits: false }]);
}
