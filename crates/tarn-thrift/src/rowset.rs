//! Results in the forms TCLIService carries them: the Hive table schema
//! (TTypeId per column), Arrow IPC record batches as Databricks' extension
//! sends them (the schema message once, in the metadata; each batch's
//! messages without it), and the column-based set for clients without Arrow.

use std::collections::BTreeMap;

use tarn_lake::arrow::array::{Array, ArrayRef, AsArray};
use tarn_lake::arrow::compute::{cast, concat};
use tarn_lake::arrow::datatypes::{
    DataType, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, IntervalUnit, Schema,
};
use tarn_lake::arrow::error::ArrowError;
use tarn_lake::arrow::ipc::writer::StreamWriter;
use tarn_lake::arrow::record_batch::RecordBatch;
use tarn_lake::arrow::util::display::{ArrayFormatter, FormatOptions};
use thrift::OrderedFloat;

use crate::tcli::{
    TBinaryColumn, TBoolColumn, TByteColumn, TColumn, TColumnDesc, TDoubleColumn, TI16Column, TI32Column, TI64Column,
    TPrimitiveTypeEntry, TSparkArrowBatch, TStringColumn, TTableSchema, TTypeDesc, TTypeEntry, TTypeId,
    TTypeQualifierValue, TTypeQualifiers,
};

/// The Hive schema of a result.
pub fn table_schema(schema: &Schema) -> TTableSchema {
    let columns = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let position = i32::try_from(i + 1).unwrap_or(i32::MAX);
            TColumnDesc::new(f.name().clone(), TTypeDesc::new(vec![type_entry(f.data_type())]), position, None)
        })
        .collect();
    TTableSchema::new(columns)
}

fn type_entry(data_type: &DataType) -> TTypeEntry {
    let (id, qualifiers) = match data_type {
        DataType::Boolean => (TTypeId::BOOLEAN_TYPE, None),
        DataType::Int8 | DataType::UInt8 => (TTypeId::TINYINT_TYPE, None),
        DataType::Int16 | DataType::UInt16 => (TTypeId::SMALLINT_TYPE, None),
        DataType::Int32 | DataType::UInt32 => (TTypeId::INT_TYPE, None),
        DataType::Int64 | DataType::UInt64 => (TTypeId::BIGINT_TYPE, None),
        DataType::Float16 | DataType::Float32 => (TTypeId::FLOAT_TYPE, None),
        DataType::Float64 => (TTypeId::DOUBLE_TYPE, None),
        DataType::Timestamp(..) => (TTypeId::TIMESTAMP_TYPE, None),
        DataType::Date32 | DataType::Date64 => (TTypeId::DATE_TYPE, None),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => {
            (TTypeId::BINARY_TYPE, None)
        }
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => {
            let value = |n: i32| TTypeQualifierValue { i32_value: Some(n), string_value: None };
            let qualifiers = BTreeMap::from([
                ("precision".to_string(), value(i32::from(*p))),
                ("scale".to_string(), value(i32::from(*s))),
            ]);
            (TTypeId::DECIMAL_TYPE, Some(TTypeQualifiers::new(qualifiers)))
        }
        DataType::Null => (TTypeId::NULL_TYPE, None),
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..) | DataType::ListView(_) => {
            (TTypeId::ARRAY_TYPE, None)
        }
        DataType::Map(..) => (TTypeId::MAP_TYPE, None),
        DataType::Struct(_) => (TTypeId::STRUCT_TYPE, None),
        DataType::Interval(IntervalUnit::YearMonth) => (TTypeId::INTERVAL_YEAR_MONTH_TYPE, None),
        DataType::Interval(_) | DataType::Duration(_) => (TTypeId::INTERVAL_DAY_TIME_TYPE, None),
        _ => (TTypeId::STRING_TYPE, None),
    };
    TTypeEntry::new(TPrimitiveTypeEntry::new(id, qualifiers), None, None, None, None, None)
}

/// The schema as an Arrow IPC stream's first message.
pub fn arrow_schema(schema: &Schema) -> Result<Vec<u8>, ArrowError> {
    let mut writer = StreamWriter::try_new(Vec::new(), schema)?;
    // Not `into_inner`: that would end the stream, and batches follow.
    Ok(std::mem::take(writer.get_mut()))
}

/// Each batch as the IPC messages that follow the schema in a stream.
pub fn arrow_batches(schema: &Schema, batches: &[RecordBatch]) -> Result<Vec<TSparkArrowBatch>, ArrowError> {
    let mut writer = StreamWriter::try_new(Vec::new(), schema)?;
    writer.get_mut().clear();
    let mut out = Vec::with_capacity(batches.len());
    for batch in batches {
        writer.write(batch)?;
        let bytes = std::mem::take(writer.get_mut());
        out.push(TSparkArrowBatch::new(bytes, i64::try_from(batch.num_rows()).unwrap_or(i64::MAX)));
    }
    Ok(out)
}

/// The batches as one column-based set: numbers and booleans as themselves,
/// everything else as its text.
pub fn columns(schema: &Schema, batches: &[RecordBatch]) -> Result<Vec<TColumn>, ArrowError> {
    (0..schema.fields().len())
        .map(|i| {
            let parts: Vec<&dyn Array> = batches.iter().map(|b| b.column(i).as_ref()).collect();
            let array = if parts.is_empty() {
                tarn_lake::arrow::array::new_empty_array(schema.field(i).data_type())
            } else {
                concat(&parts)?
            };
            column(&array)
        })
        .collect()
}

fn nulls(array: &dyn Array) -> Vec<u8> {
    let mut bits = vec![0u8; array.len().div_ceil(8)];
    for i in (0..array.len()).filter(|&i| array.is_null(i)) {
        bits[i / 8] |= 1 << (i % 8);
    }
    bits
}

fn empty_column() -> TColumn {
    TColumn {
        bool_val: None,
        byte_val: None,
        i16_val: None,
        i32_val: None,
        i64_val: None,
        double_val: None,
        string_val: None,
        binary_val: None,
    }
}

fn column(array: &ArrayRef) -> Result<TColumn, ArrowError> {
    let bits = nulls(array.as_ref());
    let mut out = empty_column();
    match array.data_type() {
        DataType::Boolean => {
            let values = array.as_boolean().iter().map(|v| v.unwrap_or(false)).collect();
            out.bool_val = Some(TBoolColumn::new(values, bits));
        }
        DataType::Int8 => {
            out.byte_val = Some(TByteColumn::new(array.as_primitive::<Int8Type>().values().to_vec(), bits));
        }
        DataType::Int16 => {
            out.i16_val = Some(TI16Column::new(array.as_primitive::<Int16Type>().values().to_vec(), bits));
        }
        DataType::Int32 => {
            out.i32_val = Some(TI32Column::new(array.as_primitive::<Int32Type>().values().to_vec(), bits));
        }
        DataType::Int64 => {
            out.i64_val = Some(TI64Column::new(array.as_primitive::<Int64Type>().values().to_vec(), bits));
        }
        DataType::Float32 | DataType::Float64 => {
            let doubles = cast(array, &DataType::Float64)?;
            let values = doubles.as_primitive::<Float64Type>().values().iter().map(|v| OrderedFloat(*v)).collect();
            out.double_val = Some(TDoubleColumn::new(values, bits));
        }
        DataType::Binary | DataType::LargeBinary => {
            let binary = cast(array, &DataType::LargeBinary)?;
            let values = binary.as_binary::<i64>().iter().map(|v| v.unwrap_or_default().to_vec()).collect();
            out.binary_val = Some(TBinaryColumn::new(values, bits));
        }
        _ => {
            let options = FormatOptions::default().with_null("");
            let formatter = ArrayFormatter::try_new(array.as_ref(), &options)?;
            let values = (0..array.len()).map(|i| formatter.value(i).to_string()).collect();
            out.string_val = Some(TStringColumn::new(values, bits));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tarn_lake::arrow::array::{Int64Array, StringArray};
    use tarn_lake::arrow::datatypes::Field;
    use tarn_lake::arrow::ipc::reader::StreamReader;

    use super::*;

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        let ids = Arc::new(Int64Array::from(vec![1, 2, 3]));
        let names = Arc::new(StringArray::from(vec![Some("a"), None, Some("c")]));
        RecordBatch::try_new(schema, vec![ids, names]).unwrap()
    }

    #[test]
    fn arrow_batches_read_back_after_the_schema() {
        let b = batch();
        let mut stream = arrow_schema(&b.schema()).unwrap();
        for part in arrow_batches(&b.schema(), &[b.slice(0, 2), b.slice(2, 1)]).unwrap() {
            stream.extend(part.batch);
        }
        // As the connector reads it: the schema, the batches, no end marker.
        let read: Vec<RecordBatch> = StreamReader::try_new(&stream[..], None).unwrap().map(Result::unwrap).collect();
        assert_eq!(read.iter().map(RecordBatch::num_rows).sum::<usize>(), 3);
        assert_eq!(read[1].column(0).as_primitive::<Int64Type>().value(0), 3);
    }

    #[test]
    fn column_sets_mark_nulls() {
        let b = batch();
        let cols = columns(&b.schema(), &[b.slice(0, 1), b.slice(1, 2)]).unwrap();
        assert_eq!(cols[0].i64_val.as_ref().unwrap().values, vec![1, 2, 3]);
        let names = cols[1].string_val.as_ref().unwrap();
        assert_eq!(names.values, vec!["a", "", "c"]);
        assert_eq!(names.nulls, vec![0b010]);
        let schema = table_schema(&b.schema());
        assert_eq!(schema.columns[1].type_desc.types[0].primitive_entry.as_ref().unwrap().type_, TTypeId::STRING_TYPE);
    }
}
