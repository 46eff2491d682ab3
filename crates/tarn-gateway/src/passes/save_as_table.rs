//! `saveAsTable` as Databricks users write it. Sail 0.7.2 fails a
//! `saveAsTable` into a new Delta table when the data has nullable or
//! partition columns (it plans the data write as a second create), and
//! cannot overwrite a table through the catalog. What it does run is
//! `CREATE TABLE` followed by an append, and an insert-overwrite; so the
//! gateway turns the one into the other before the engine sees it.
//!
//! The last pass of the pipeline.

use spark_connect_proto::write_operation::save_table::TableSaveMethod;
use spark_connect_proto::write_operation::{SaveMode, SaveType};
use spark_connect_proto::{Command, DataType, ExecutePlanRequest, WriteOperation, command, data_type, plan};
use tarn_sqltext::quote_identifier;

use super::{Outcome, PassContext};
use crate::GatewayError;

/// The write of a `saveAsTable` in Delta (the default format), if that is
/// what the request is.
fn table_write(req: &mut ExecutePlanRequest) -> Option<&mut WriteOperation> {
    let Some(plan::OpType::Command(Command { command_type: Some(command::CommandType::WriteOperation(write)) })) =
        req.plan.as_mut()?.op_type.as_mut()
    else {
        return None;
    };
    let Some(SaveType::Table(table)) = &write.save_type else { return None };
    let delta = write.source.as_deref().is_none_or(|s| s.eq_ignore_ascii_case("delta"));
    (table.save_method == TableSaveMethod::SaveAsTable as i32 && delta && write.bucket_by.is_none()).then_some(write)
}

/// The `saveAsTable` pass: a write into a new table creates the table on
/// the engine first and becomes an append; an overwrite of an existing
/// table becomes an insert-overwrite. Other requests are left alone. An
/// error is the engine's answer to the `CREATE TABLE`, for the client.
pub(crate) async fn pass(req: &mut ExecutePlanRequest, cx: &mut PassContext<'_>) -> Result<Outcome, GatewayError> {
    let Some(write) = table_write(req) else { return Ok(Outcome::Unchanged) };
    let (Some(input), Some(SaveType::Table(table))) = (write.input.clone(), write.save_type.clone()) else {
        return Ok(Outcome::Unchanged);
    };
    let schema = cx.engine.analyze_schema(input).await.map_err(GatewayError::SaveAsTable)?;
    let Some(columns) = schema.as_ref().and_then(struct_ddl) else { return Ok(Outcome::Unchanged) };
    let partitioning = if write.partitioning_columns.is_empty() {
        String::new()
    } else {
        let cols: Vec<String> = write.partitioning_columns.iter().map(|c| quote_identifier(c)).collect();
        format!(" PARTITIONED BY ({})", cols.join(", "))
    };
    let create = format!("CREATE TABLE {} ({columns}) USING DELTA{partitioning}", table.table_name);
    match cx.engine.run_sql(create).await {
        Ok(()) => {
            tracing::debug!(table = table.table_name, "saveAsTable: created the table, appending");
            write.mode = SaveMode::Append as i32;
            write.partitioning_columns.clear();
            Ok(Outcome::Changed)
        }
        Err(e) if e.already_exists() => {
            if write.mode != SaveMode::Overwrite as i32 {
                return Ok(Outcome::Unchanged);
            }
            tracing::debug!(table = table.table_name, "saveAsTable overwrite: inserting over the table");
            write.save_type = Some(SaveType::Table(spark_connect_proto::write_operation::SaveTable {
                table_name: table.table_name,
                save_method: TableSaveMethod::InsertInto as i32,
            }));
            write.partitioning_columns.clear();
            Ok(Outcome::Changed)
        }
        Err(e) => Err(GatewayError::SaveAsTable(e)),
    }
}

/// Column definitions of a struct schema, or `None` for a type this
/// rewrite does not know (the request then goes to the engine unchanged).
pub fn struct_ddl(schema: &DataType) -> Option<String> {
    let Some(data_type::Kind::Struct(s)) = &schema.kind else { return None };
    let columns = s
        .fields
        .iter()
        .map(|f| {
            let null = if f.nullable { "" } else { " NOT NULL" };
            Some(format!("{} {}{null}", quote_identifier(&f.name), type_ddl(f.data_type.as_ref()?)?))
        })
        .collect::<Option<Vec<_>>>()?;
    Some(columns.join(", "))
}

fn type_ddl(t: &DataType) -> Option<String> {
    use data_type::Kind as K;
    Some(match t.kind.as_ref()? {
        K::Boolean(_) => "BOOLEAN".into(),
        K::Byte(_) => "TINYINT".into(),
        K::Short(_) => "SMALLINT".into(),
        K::Integer(_) => "INT".into(),
        K::Long(_) => "BIGINT".into(),
        K::Float(_) => "FLOAT".into(),
        K::Double(_) => "DOUBLE".into(),
        K::Decimal(d) => format!("DECIMAL({}, {})", d.precision.unwrap_or(10), d.scale.unwrap_or(0)),
        K::String(_) => "STRING".into(),
        K::Char(c) => format!("CHAR({})", c.length),
        K::VarChar(v) => format!("VARCHAR({})", v.length),
        K::Binary(_) => "BINARY".into(),
        K::Date(_) => "DATE".into(),
        K::Timestamp(_) => "TIMESTAMP".into(),
        K::TimestampNtz(_) => "TIMESTAMP_NTZ".into(),
        K::Array(a) => format!("ARRAY<{}>", type_ddl(a.element_type.as_ref()?)?),
        K::Map(m) => format!("MAP<{}, {}>", type_ddl(m.key_type.as_ref()?)?, type_ddl(m.value_type.as_ref()?)?),
        K::Struct(s) => {
            let fields = s
                .fields
                .iter()
                .map(|f| Some(format!("{}: {}", quote_identifier(&f.name), type_ddl(f.data_type.as_ref()?)?)))
                .collect::<Option<Vec<_>>>()?;
            format!("STRUCT<{}>", fields.join(", "))
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use spark_connect_proto::data_type::{Kind, StructField};

    fn t(kind: Kind) -> DataType {
        DataType { kind: Some(kind) }
    }

    #[test]
    fn schemas_become_column_definitions() {
        let field = |name: &str, data_type, nullable| StructField {
            name: name.into(),
            data_type: Some(data_type),
            nullable,
            ..Default::default()
        };
        let array = t(Kind::Array(Box::new(data_type::Array {
            element_type: Some(Box::new(t(Kind::String(Default::default())))),
            contains_null: true,
            ..Default::default()
        })));
        let schema = t(Kind::Struct(data_type::Struct {
            fields: vec![
                field("id", t(Kind::Long(Default::default())), false),
                field(
                    "odd`name",
                    t(Kind::Decimal(data_type::Decimal { scale: Some(2), precision: Some(12), ..Default::default() })),
                    true,
                ),
                field("tags", array, true),
            ],
            ..Default::default()
        }));
        assert_eq!(
            struct_ddl(&schema).unwrap(),
            "`id` BIGINT NOT NULL, `odd``name` DECIMAL(12, 2), `tags` ARRAY<STRING>"
        );
        assert!(
            struct_ddl(&t(Kind::Struct(data_type::Struct {
                fields: vec![field("v", t(Kind::Variant(Default::default())), true)],
                ..Default::default()
            })))
            .is_none()
        );
    }
}
