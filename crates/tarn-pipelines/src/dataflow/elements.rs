//! SDP's graph elements as tarn's graph: a `DefineOutput` becomes a
//! [`Dataset`] (materialized view, streaming table, temporary view; sinks
//! are refused), a `DefineFlow` a [`Flow`] whose query is the relation the
//! client planned (resolved at the run), or an AUTO CDC flow.

use base64::Engine as _;
use prost::Message;
use serde_json::Value;
use spark_connect_proto::pipeline_command::define_flow::{AutoCdcFlowDetails, Details as FlowDetails, ScdType};
use spark_connect_proto::pipeline_command::define_output::Details as OutputDetails;
use spark_connect_proto::pipeline_command::define_output::table_details::Schema;
use spark_connect_proto::pipeline_command::{DefineFlow, DefineOutput};
use spark_connect_proto::{OutputType, Read, Relation, ResolvedIdentifier, SourceCodeLocation, read, relation};
use tarn_gateway::GraphFailure;

use super::expressions;
use super::reads::split_name;
use crate::graph::{Cdc, Dataset, DatasetKind, Flow, Location, Query};

/// The dataset an output defines.
pub(super) fn dataset(request: DefineOutput) -> Result<Dataset, GraphFailure> {
    let name = request.output_name.filter(|n| !n.trim().is_empty());
    let name = name.ok_or_else(|| GraphFailure::invalid("DefineOutput needs the output's name"))?;
    let kind = match OutputType::try_from(request.output_type.unwrap_or_default()) {
        Ok(OutputType::MaterializedView) => DatasetKind::MaterializedView,
        Ok(OutputType::Table) => DatasetKind::StreamingTable,
        Ok(OutputType::TemporaryView) => DatasetKind::View,
        Ok(OutputType::Sink) => {
            return Err(GraphFailure::not_implemented(format!(
                "Sink '{name}': tarn pipelines do not write to sinks yet; write to a table instead"
            )));
        }
        _ => return Err(GraphFailure::invalid(format!("Output '{name}' has no output type"))),
    };
    let mut dataset = Dataset {
        name,
        kind,
        comment: request.comment,
        table_properties: Default::default(),
        partition_cols: Vec::new(),
        cluster_by: Vec::new(),
        schema: None,
        expectations: Vec::new(),
        location: location(request.source_code_location),
    };
    match request.details {
        Some(OutputDetails::TableDetails(table)) => {
            if let Some(format) = table.format.filter(|f| !f.is_empty() && !f.eq_ignore_ascii_case("delta")) {
                return Err(GraphFailure::not_implemented(format!(
                    "Dataset '{}' asks for format '{format}': tarn stores pipeline datasets as Delta tables",
                    dataset.name
                )));
            }
            dataset.table_properties = table.table_properties.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
            dataset.partition_cols = table.partition_cols;
            dataset.cluster_by = table.clustering_columns;
            dataset.schema = match table.schema {
                Some(Schema::SchemaString(ddl)) => Some(ddl),
                Some(Schema::SchemaDataType(t)) => Some(tarn_gateway::struct_ddl(&t).ok_or_else(|| {
                    GraphFailure::not_implemented(format!(
                        "The schema of '{}' has a type tarn cannot declare; give the schema as a DDL string",
                        dataset.name
                    ))
                })?),
                None => None,
            };
        }
        Some(OutputDetails::SinkDetails(_)) | None => {}
        Some(OutputDetails::Extension(any)) => {
            return Err(GraphFailure::not_implemented(format!("output extension {} is not supported", any.type_url)));
        }
    }
    Ok(dataset)
}

/// The flow a `DefineFlow` defines; its relation stays as sent.
pub(super) fn flow(request: DefineFlow) -> Result<Flow, GraphFailure> {
    let name = request.flow_name.filter(|n| !n.trim().is_empty());
    let name = name.ok_or_else(|| GraphFailure::invalid("DefineFlow needs the flow's name"))?;
    let target = request.target_dataset_name.filter(|n| !n.trim().is_empty());
    let target = target.ok_or_else(|| GraphFailure::invalid(format!("Flow '{name}' names no target dataset")))?;
    let (query, cdc) = match request.details {
        Some(FlowDetails::RelationFlowDetails(details)) => {
            let relation =
                details.relation.ok_or_else(|| GraphFailure::invalid(format!("Flow '{name}' has no relation")))?;
            (relation, None)
        }
        Some(FlowDetails::AutoCdcFlowDetails(details)) => {
            let cdc = cdc(&name, details)?;
            (stream_of(&cdc.source), Some(cdc))
        }
        Some(FlowDetails::Extension(any)) => {
            return Err(GraphFailure::not_implemented(format!("flow extension {} is not supported", any.type_url)));
        }
        None => return Err(GraphFailure::invalid(format!("Flow '{name}' has no query"))),
    };
    Ok(Flow {
        name,
        target,
        query: Some(Query::Relation(base64::engine::general_purpose::STANDARD.encode(query.encode_to_vec()))),
        inputs: Vec::new(),
        sources: Vec::new(),
        once: request.once.unwrap_or(false),
        cdc,
        location: location(request.source_code_location),
    })
}

/// `create_auto_cdc_flow`'s settings, columns and conditions as SQL.
fn cdc(flow: &str, details: AutoCdcFlowDetails) -> Result<Cdc, GraphFailure> {
    let bad = |what: &str, e: String| GraphFailure::not_implemented(format!("AUTO CDC flow '{flow}': {what}: {e}"));
    let source = details.source.filter(|s| !s.is_empty());
    let source = source.ok_or_else(|| GraphFailure::invalid(format!("AUTO CDC flow '{flow}' names no source")))?;
    let names = |what: &str, list: &[spark_connect_proto::Expression]| {
        list.iter().map(|e| expressions::column(e).map_err(|m| bad(what, m))).collect::<Result<Vec<_>, _>>()
    };
    let condition = |what: &str, e: Option<&spark_connect_proto::Expression>| {
        e.map(|e| expressions::sql(e).map_err(|m| bad(what, m))).transpose()
    };
    let some = |v: Vec<String>| (!v.is_empty()).then_some(v);
    let sequence = details.sequence_by.as_ref();
    let sequence =
        sequence.ok_or_else(|| GraphFailure::invalid(format!("AUTO CDC flow '{flow}' has no sequence_by")))?;
    Ok(Cdc {
        source,
        keys: names("keys", &details.keys)?,
        sequence_by: expressions::sql(sequence).map_err(|m| bad("sequence_by", m))?,
        apply_as_deletes: condition("apply_as_deletes", details.apply_as_deletes.as_ref())?,
        apply_as_truncates: condition("apply_as_truncates", details.apply_as_truncates.as_ref())?,
        column_list: some(names("column_list", &details.column_list)?),
        except_column_list: some(names("except_column_list", &details.except_column_list)?),
        stored_as_scd_type: if details.stored_as_scd_type == ScdType::ScdType2 as i32 { 2 } else { 1 },
        track_history_column_list: some(names("track_history_column_list", &details.track_history_column_list)?),
        track_history_except_column_list: some(names(
            "track_history_except_column_list",
            &details.track_history_except_column_list,
        )?),
        ignore_null_updates: false,
    })
}

/// A streaming read of `name`, which the run resolves like any other.
fn stream_of(name: &str) -> Relation {
    let table = read::NamedTable { unparsed_identifier: name.to_string(), options: Default::default() };
    let read = Read { is_streaming: true, read_type: Some(read::ReadType::NamedTable(table)) };
    Relation { common: None, rel_type: Some(relation::RelType::Read(read)) }
}

fn location(source: Option<SourceCodeLocation>) -> Location {
    let Some(source) = source else { return Location::default() };
    let line = source.line_number.and_then(|n| u32::try_from(n).ok()).filter(|n| *n > 0);
    Location { path: source.file_name.unwrap_or_default(), line }
}

/// `name` as the catalog resolves it, under the graph's defaults.
pub(super) fn identifier(name: &str, catalog: &str, schema: &str) -> ResolvedIdentifier {
    let mut parts = split_name(name);
    let table_name = parts.pop().unwrap_or_default();
    let (catalog_name, namespace) = match parts.len() {
        0 => (catalog.to_string(), vec![schema.to_string()]),
        1 => (catalog.to_string(), parts),
        _ => (parts.remove(0), parts),
    };
    ResolvedIdentifier { catalog_name, namespace, table_name }
}
