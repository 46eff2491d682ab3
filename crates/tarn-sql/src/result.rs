//! A statement's result as the statement API serves it: the columns' SQL
//! types, and the rows as `JSON_ARRAY` text (every value a string or null,
//! nested values as JSON) split into chunks.

use std::sync::Arc;

use serde_json::Value;
use tarn_lake::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use tarn_lake::arrow::compute::cast;
use tarn_lake::arrow::datatypes::{DataType, Field, Schema};
use tarn_lake::arrow::error::ArrowError;
use tarn_lake::arrow::util::display::{ArrayFormatter, FormatOptions};

/// The most an `INLINE` result may hold, as on Databricks.
pub const INLINE_LIMIT_BYTES: usize = 25 * 1024 * 1024;
/// About how much JSON one chunk carries.
pub const CHUNK_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct ResultColumn {
    pub name: String,
    pub position: usize,
    pub type_text: String,
    pub type_name: &'static str,
    pub precision: Option<u8>,
    pub scale: Option<i8>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub index: usize,
    pub row_offset: usize,
    pub rows: Vec<Vec<Option<String>>>,
    pub byte_count: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResultSet {
    pub columns: Vec<ResultColumn>,
    pub chunks: Vec<Chunk>,
    pub total_rows: usize,
    pub total_bytes: usize,
    /// Rows were left out because of `row_limit` or `byte_limit`.
    pub truncated: bool,
}

/// Why a result cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ResultError {
    #[error(transparent)]
    Arrow(#[from] ArrowError),
    #[error(
        "The result is larger than the {} MiB an INLINE result may hold; set row_limit or byte_limit",
        INLINE_LIMIT_BYTES / 1024 / 1024
    )]
    TooLarge,
}

/// Limits on what a result keeps.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    pub rows: Option<usize>,
    pub bytes: Option<usize>,
}

impl ResultSet {
    pub fn from_batches(schema: &Schema, batches: &[RecordBatch], limits: Limits) -> Result<Self, ResultError> {
        let columns = schema.fields().iter().enumerate().map(|(i, f)| column(i, f)).collect();
        let mut chunks: Vec<Chunk> = Vec::new();
        let mut current = Chunk { index: 0, row_offset: 0, rows: Vec::new(), byte_count: 0 };
        let (mut total_rows, mut total_bytes, mut truncated) = (0usize, 0usize, false);
        'batches: for batch in batches {
            let texts = batch.columns().iter().map(texts).collect::<Result<Vec<_>, _>>()?;
            for row in 0..batch.num_rows() {
                let values: Vec<Option<String>> = texts.iter().map(|col| col[row].clone()).collect();
                let bytes = row_bytes(&values);
                if limits.rows.is_some_and(|n| total_rows >= n)
                    || limits.bytes.is_some_and(|n| total_bytes.saturating_add(bytes) > n)
                {
                    truncated = true;
                    break 'batches;
                }
                total_bytes = total_bytes.saturating_add(bytes);
                if total_bytes > INLINE_LIMIT_BYTES {
                    return Err(ResultError::TooLarge);
                }
                if current.byte_count > 0 && current.byte_count.saturating_add(bytes) > CHUNK_BYTES {
                    let next =
                        Chunk { index: current.index + 1, row_offset: total_rows, rows: Vec::new(), byte_count: 0 };
                    chunks.push(std::mem::replace(&mut current, next));
                }
                current.rows.push(values);
                current.byte_count += bytes;
                total_rows += 1;
            }
        }
        if !current.rows.is_empty() || chunks.is_empty() {
            chunks.push(current);
        }
        Ok(Self { columns, chunks, total_rows, total_bytes, truncated })
    }
}

/// The length of the row in the JSON answer.
fn row_bytes(values: &[Option<String>]) -> usize {
    2 + values.iter().map(|v| v.as_ref().map_or(4, |s| s.len() + 2) + 1).sum::<usize>()
}

fn column(position: usize, field: &Field) -> ResultColumn {
    let (precision, scale) = match field.data_type() {
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => (Some(*p), Some(*s)),
        _ => (None, None),
    };
    let (type_text, type_name) = sql_type(field.data_type());
    ResultColumn { name: field.name().clone(), position, type_text, type_name, precision, scale }
}

/// An Arrow type as the statement API names it: its Spark SQL spelling
/// (`type_text`) and its `type_name`.
fn sql_type(data_type: &DataType) -> (String, &'static str) {
    let text = |t: &DataType| sql_type(t).0;
    match data_type {
        DataType::Boolean => ("BOOLEAN".into(), "BOOLEAN"),
        DataType::Int8 => ("TINYINT".into(), "BYTE"),
        DataType::Int16 | DataType::UInt8 => ("SMALLINT".into(), "SHORT"),
        DataType::Int32 | DataType::UInt16 => ("INT".into(), "INT"),
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => ("BIGINT".into(), "LONG"),
        DataType::Float16 | DataType::Float32 => ("FLOAT".into(), "FLOAT"),
        DataType::Float64 => ("DOUBLE".into(), "DOUBLE"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => ("STRING".into(), "STRING"),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => {
            ("BINARY".into(), "BINARY")
        }
        DataType::Date32 | DataType::Date64 => ("DATE".into(), "DATE"),
        DataType::Timestamp(_, Some(_)) => ("TIMESTAMP".into(), "TIMESTAMP"),
        DataType::Timestamp(_, None) => ("TIMESTAMP_NTZ".into(), "TIMESTAMP"),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => (format!("DECIMAL({p},{s})"), "DECIMAL"),
        DataType::List(f) | DataType::LargeList(f) | DataType::ListView(f) | DataType::FixedSizeList(f, _) => {
            (format!("ARRAY<{}>", text(f.data_type())), "ARRAY")
        }
        DataType::Struct(fields) => {
            let inner: Vec<String> = fields.iter().map(|f| format!("{}: {}", f.name(), text(f.data_type()))).collect();
            (format!("STRUCT<{}>", inner.join(", ")), "STRUCT")
        }
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => {
                (format!("MAP<{}, {}>", text(kv[0].data_type()), text(kv[1].data_type())), "MAP")
            }
            other => (format!("MAP<{}>", text(other)), "MAP"),
        },
        DataType::Interval(_) | DataType::Duration(_) => ("INTERVAL".into(), "INTERVAL"),
        DataType::Null => ("VOID".into(), "NULL"),
        other => (other.to_string().to_uppercase(), "USER_DEFINED_TYPE"),
    }
}

/// Every value of `array` as statement API text.
fn texts(array: &ArrayRef) -> Result<Vec<Option<String>>, ArrowError> {
    // Logical nulls: a NULL-typed column has no validity buffer.
    let nulls = array.logical_nulls();
    let valid = |i: usize| nulls.as_ref().is_none_or(|n| n.is_valid(i));
    match array.data_type() {
        DataType::List(_)
        | DataType::LargeList(_)
        | DataType::FixedSizeList(..)
        | DataType::Struct(_)
        | DataType::Map(..) => Ok((0..array.len())
            .map(|i| valid(i).then(|| json(array, i).map(|v| v.to_string())).transpose())
            .collect::<Result<_, _>>()?),
        _ => {
            let array = utc(array)?;
            let options = FormatOptions::default()
                .with_timestamp_tz_format(Some("%Y-%m-%dT%H:%M:%S%.3fZ"))
                .with_timestamp_format(Some("%Y-%m-%dT%H:%M:%S%.3f"));
            let formatter = ArrayFormatter::try_new(array.as_ref(), &options)?;
            Ok((0..array.len()).map(|i| valid(i).then(|| formatter.value(i).to_string())).collect())
        }
    }
}

/// Timestamps with a zone are shown in UTC, as `...Z`.
fn utc(array: &ArrayRef) -> Result<ArrayRef, ArrowError> {
    match array.data_type() {
        DataType::Timestamp(unit, Some(tz)) if tz.as_ref() != "UTC" => {
            cast(array, &DataType::Timestamp(*unit, Some(Arc::from("UTC"))))
        }
        _ => Ok(array.clone()),
    }
}

/// A nested value as JSON: numbers and booleans as JSON, the rest as text.
fn json(array: &ArrayRef, row: usize) -> Result<Value, ArrowError> {
    if array.logical_nulls().is_some_and(|n| n.is_null(row)) {
        return Ok(Value::Null);
    }
    Ok(match array.data_type() {
        DataType::List(_) => items(&array.as_list::<i32>().value(row))?,
        DataType::LargeList(_) => items(&array.as_list::<i64>().value(row))?,
        DataType::FixedSizeList(..) => items(&array.as_fixed_size_list().value(row))?,
        DataType::Struct(fields) => {
            let s = array.as_struct();
            let mut object = serde_json::Map::new();
            for (field, child) in fields.iter().zip(s.columns()) {
                object.insert(field.name().clone(), json(child, row)?);
            }
            Value::Object(object)
        }
        DataType::Map(..) => {
            let entries = array.as_map().value(row);
            let (keys, values) = (entries.column(0), entries.column(1));
            let mut object = serde_json::Map::new();
            for i in 0..entries.len() {
                let key = match json(keys, i)? {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                object.insert(key, json(values, i)?);
            }
            Value::Object(object)
        }
        _ => {
            let text = texts(&array.slice(row, 1))?.into_iter().next().flatten().unwrap_or_default();
            let numeric = array.data_type().is_numeric() || *array.data_type() == DataType::Boolean;
            match numeric.then(|| serde_json::from_str::<Value>(&text).ok()).flatten() {
                Some(v @ (Value::Number(_) | Value::Bool(_))) => v,
                _ => Value::String(text),
            }
        }
    })
}

fn items(values: &ArrayRef) -> Result<Value, ArrowError> {
    Ok(Value::Array((0..values.len()).map(|i| json(values, i)).collect::<Result<_, _>>()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tarn_lake::arrow::array::{Int64Array, ListArray, StringArray, TimestampMicrosecondArray};
    use tarn_lake::arrow::datatypes::Int64Type;

    fn batch(n: i64) -> RecordBatch {
        let ids: ArrayRef = Arc::new(Int64Array::from_iter((0..n).map(|i| (i % 3 != 2).then_some(i))));
        let names: ArrayRef = Arc::new(StringArray::from_iter_values((0..n).map(|i| format!("name-{i}"))));
        let tags: ArrayRef =
            Arc::new(ListArray::from_iter_primitive::<Int64Type, _, _>((0..n).map(|i| Some(vec![Some(i), None]))));
        let at: ArrayRef = Arc::new(TimestampMicrosecondArray::from(vec![0; n as usize]).with_timezone("+02:00"));
        RecordBatch::try_from_iter([("id", ids), ("name", names), ("tags", tags), ("at", at)]).unwrap()
    }

    #[test]
    fn values_are_text_and_nested_values_json() {
        let b = batch(3);
        let result = ResultSet::from_batches(&b.schema(), &[b], Limits::default()).unwrap();
        let types: Vec<_> = result.columns.iter().map(|c| (c.type_text.as_str(), c.type_name)).collect();
        assert_eq!(
            types,
            [("BIGINT", "LONG"), ("STRING", "STRING"), ("ARRAY<BIGINT>", "ARRAY"), ("TIMESTAMP", "TIMESTAMP")]
        );
        let rows = &result.chunks[0].rows;
        assert_eq!(
            rows[0],
            [Some("0".into()), Some("name-0".into()), Some("[0,null]".into()), Some("1970-01-01T00:00:00.000Z".into())]
        );
        assert_eq!(rows[2][0], None);
        assert!(!result.truncated);
    }

    #[test]
    fn limits_truncate_and_big_results_are_chunked() {
        let b = batch(100_000);
        let limited =
            ResultSet::from_batches(&b.schema(), std::slice::from_ref(&b), Limits { rows: Some(10), bytes: None })
                .unwrap();
        assert_eq!((limited.total_rows, limited.truncated, limited.chunks.len()), (10, true, 1));
        let all = ResultSet::from_batches(&b.schema(), std::slice::from_ref(&b), Limits::default()).unwrap();
        assert!(all.chunks.len() > 1, "{} chunks", all.chunks.len());
        assert_eq!(all.chunks.iter().map(|c| c.rows.len()).sum::<usize>(), 100_000);
        assert_eq!(all.chunks[1].row_offset, all.chunks[0].rows.len());
        let by_bytes = ResultSet::from_batches(&b.schema(), &[b], Limits { rows: None, bytes: Some(1000) }).unwrap();
        assert!(by_bytes.truncated && by_bytes.total_bytes <= 1000);
    }

    #[test]
    fn an_empty_result_has_one_empty_chunk() {
        let b = batch(0);
        let result = ResultSet::from_batches(&b.schema(), &[b], Limits::default()).unwrap();
        assert_eq!((result.chunks.len(), result.total_rows), (1, 0));
    }
}
