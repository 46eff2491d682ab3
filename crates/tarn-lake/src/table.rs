//! Result batches of lake statements, and table schemas in the catalog's
//! column shape.

use std::sync::Arc;

use deltalake::arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array, ListBuilder, MapBuilder, MapFieldNames,
    StringArray, StringBuilder, StructArray, TimestampMicrosecondArray,
};
use deltalake::arrow::datatypes::Schema;
use deltalake::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use serde_json::{Value, json};

use crate::Result;

/// One result column's values.
pub enum Column {
    Str(Vec<Option<String>>),
    Long(Vec<Option<i64>>),
    Double(Vec<Option<f64>>),
    Int(Vec<Option<i32>>),
    Bool(Vec<Option<bool>>),
    /// Milliseconds since the epoch, shown as a UTC timestamp.
    Timestamp(Vec<Option<i64>>),
    /// Days since the epoch.
    Date(Vec<Option<i32>>),
    Map(Vec<Option<Vec<(String, String)>>>),
    List(Vec<Option<Vec<String>>>),
    /// Named fields of equal length; the struct itself is never null.
    Struct(Vec<(&'static str, Column)>),
}

impl Column {
    fn into_array(self) -> Result<ArrayRef> {
        Ok(match self {
            Column::Str(v) => Arc::new(StringArray::from(v)),
            Column::Long(v) => Arc::new(Int64Array::from(v)),
            Column::Double(v) => Arc::new(Float64Array::from(v)),
            Column::Int(v) => Arc::new(Int32Array::from(v)),
            Column::Bool(v) => Arc::new(BooleanArray::from(v)),
            Column::Date(v) => Arc::new(Date32Array::from(v)),
            Column::Struct(fields) => {
                let fields = fields
                    .into_iter()
                    .map(|(n, c)| Ok((n, c.into_array()?)))
                    .collect::<Result<Vec<(&str, ArrayRef)>>>()?;
                Arc::new(StructArray::try_from(fields)?)
            }
            Column::Timestamp(v) => Arc::new(
                TimestampMicrosecondArray::from(v.into_iter().map(|t| t.map(|ms| ms * 1000)).collect::<Vec<_>>())
                    .with_timezone("UTC"),
            ),
            Column::Map(rows) => {
                // Spark's and Delta's names for a map's parts (Arrow's default is keys/values).
                let names = MapFieldNames { entry: "key_value".into(), key: "key".into(), value: "value".into() };
                let mut builder = MapBuilder::new(Some(names), StringBuilder::new(), StringBuilder::new());
                for row in rows {
                    match row {
                        Some(pairs) => {
                            for (k, v) in pairs {
                                builder.keys().append_value(k);
                                builder.values().append_value(v);
                            }
                            // Appending to a builder whose key and value counts match cannot fail.
                            let _ = builder.append(true);
                        }
                        None => {
                            let _ = builder.append(false);
                        }
                    }
                }
                Arc::new(builder.finish())
            }
            Column::List(rows) => {
                let mut builder = ListBuilder::new(StringBuilder::new());
                for row in rows {
                    match row {
                        Some(items) => {
                            for item in items {
                                builder.values().append_value(item);
                            }
                            builder.append(true);
                        }
                        None => builder.append(false),
                    }
                }
                Arc::new(builder.finish())
            }
        })
    }
}

/// A batch from named columns of equal length, every column nullable (the
/// schema must not depend on whether these rows happen to hold a null).
pub fn batch(columns: Vec<(&str, Column)>) -> Result<RecordBatch> {
    let columns = columns.into_iter().map(|(n, c)| Ok((n, c.into_array()?, true))).collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_from_iter_with_nullable(columns)?)
}

/// The result of a statement that returns no rows.
pub(crate) fn empty() -> Result<RecordBatch> {
    Ok(RecordBatch::try_new_with_options(
        Arc::new(Schema::empty()),
        Vec::new(),
        &RecordBatchOptions::new().with_row_count(Some(0)),
    )?)
}

/// Spark's name for a Delta type, and the catalog's type name.
fn type_names(delta: &Value) -> (String, String) {
    let Some(name) = delta.as_str() else {
        let kind = delta.get("type").and_then(Value::as_str).unwrap_or("struct");
        return (kind.to_string(), kind.to_uppercase());
    };
    let (text, uc) = match name {
        "long" => ("bigint", "LONG"),
        "integer" => ("int", "INT"),
        "short" => ("smallint", "SHORT"),
        "byte" => ("tinyint", "BYTE"),
        other if other.starts_with("decimal") => (other, "DECIMAL"),
        other => (other, ""),
    };
    let uc = if uc.is_empty() { text.to_uppercase() } else { uc.to_string() };
    (text.to_string(), uc)
}

/// `decimal(p,s)`'s precision and scale.
fn decimal_args(type_text: &str) -> Option<(u32, u32)> {
    let args = type_text.strip_prefix("decimal(")?.strip_suffix(')')?;
    let (p, s) = args.split_once(',')?;
    Some((p.trim().parse().ok()?, s.trim().parse().ok()?))
}

/// Delta schema fields (as JSON) in the Unity Catalog column shape.
pub fn uc_columns(fields: &[Value], partitions: &[String]) -> Vec<Value> {
    fields
        .iter()
        .enumerate()
        .map(|(position, field)| {
            let name = field.get("name").and_then(Value::as_str).unwrap_or_default();
            let (type_text, type_name) = type_names(field.get("type").unwrap_or(&Value::Null));
            let mut column = json!({
                "name": name,
                "type_text": type_text,
                "type_name": type_name,
                "type_json": field.to_string(),
                "position": position,
                "nullable": field.get("nullable").and_then(Value::as_bool).unwrap_or(true),
            });
            if let Some(comment) = field.pointer("/metadata/comment").and_then(Value::as_str) {
                column["comment"] = json!(comment);
            }
            // Engines read a decimal's precision and scale from these, not from the text.
            if let Some((precision, scale)) = decimal_args(&type_text) {
                column["type_precision"] = json!(precision);
                column["type_scale"] = json!(scale);
            }
            if let Some(index) = partitions.iter().position(|p| p == name) {
                column["partition_index"] = json!(index);
            }
            column
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_take_the_catalog_shape() {
        let fields = vec![
            json!({"name": "id", "type": "long", "nullable": false, "metadata": {}}),
            json!({"name": "day", "type": "date", "nullable": true, "metadata": {"comment": "d"}}),
            json!({"name": "price", "type": "decimal(10,2)", "nullable": true, "metadata": {}}),
        ];
        let columns = uc_columns(&fields, &["day".to_string()]);
        assert_eq!(columns[0]["type_text"], "bigint");
        assert_eq!(columns[0]["type_name"], "LONG");
        assert_eq!(columns[1]["type_name"], "DATE");
        assert_eq!(columns[1]["partition_index"], 0);
        assert_eq!(columns[1]["comment"], "d");
        assert_eq!(columns[2]["type_name"], "DECIMAL");
        assert_eq!((&columns[2]["type_precision"], &columns[2]["type_scale"]), (&json!(10), &json!(2)));
        assert!(columns[0].get("type_precision").is_none());
    }

    #[test]
    fn batches_hold_every_column_kind() {
        let b = batch(vec![
            ("s", Column::Str(vec![Some("a".into()), None])),
            ("m", Column::Map(vec![Some(vec![("k".into(), "v".into())]), None])),
            ("l", Column::List(vec![Some(vec!["x".into()]), Some(vec![])])),
            ("t", Column::Timestamp(vec![Some(1), None])),
            ("b", Column::Bool(vec![Some(true), None])),
        ])
        .unwrap();
        assert_eq!((b.num_rows(), b.num_columns()), (2, 5));
        assert_eq!(empty().unwrap().num_rows(), 0);
    }
}
