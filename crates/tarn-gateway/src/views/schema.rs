//! A query's schema, as the engine sent it, in Spark's JSON form (the form
//! Delta logs and Unity Catalog's `type_json` use), so the catalog can list
//! a view's columns as it lists a table's.

use serde_json::{Value, json};
use spark_connect_proto::{DataType, data_type};

/// The fields of a struct schema, or `None` for a type with no JSON form here.
pub(crate) fn fields(schema: &DataType) -> Option<Vec<Value>> {
    let Some(data_type::Kind::Struct(s)) = &schema.kind else { return None };
    s.fields.iter().map(field).collect()
}

fn field(f: &data_type::StructField) -> Option<Value> {
    Some(json!({
        "name": f.name,
        "type": type_json(f.data_type.as_ref()?)?,
        "nullable": f.nullable,
        "metadata": {},
    }))
}

fn type_json(t: &DataType) -> Option<Value> {
    use data_type::Kind as K;
    let simple = |name: &str| Some(json!(name));
    match t.kind.as_ref()? {
        K::Null(_) => simple("void"),
        K::Boolean(_) => simple("boolean"),
        K::Byte(_) => simple("byte"),
        K::Short(_) => simple("short"),
        K::Integer(_) => simple("integer"),
        K::Long(_) => simple("long"),
        K::Float(_) => simple("float"),
        K::Double(_) => simple("double"),
        K::Decimal(d) => Some(json!(format!("decimal({},{})", d.precision.unwrap_or(10), d.scale.unwrap_or(0)))),
        K::String(_) => simple("string"),
        K::Char(c) => Some(json!(format!("char({})", c.length))),
        K::VarChar(v) => Some(json!(format!("varchar({})", v.length))),
        K::Binary(_) => simple("binary"),
        K::Date(_) => simple("date"),
        K::Timestamp(_) => simple("timestamp"),
        K::TimestampNtz(_) => simple("timestamp_ntz"),
        K::Variant(_) => simple("variant"),
        K::Array(a) => Some(json!({
            "type": "array",
            "elementType": type_json(a.element_type.as_ref()?)?,
            "containsNull": a.contains_null,
        })),
        K::Map(m) => Some(json!({
            "type": "map",
            "keyType": type_json(m.key_type.as_ref()?)?,
            "valueType": type_json(m.value_type.as_ref()?)?,
            "valueContainsNull": m.value_contains_null,
        })),
        K::Struct(s) => Some(json!({
            "type": "struct",
            "fields": s.fields.iter().map(field).collect::<Option<Vec<_>>>()?,
        })),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(kind: data_type::Kind) -> DataType {
        DataType { kind: Some(kind) }
    }

    #[test]
    fn schemas_become_spark_json_fields() {
        let field = |name: &str, data_type, nullable| data_type::StructField {
            name: name.into(),
            data_type: Some(data_type),
            nullable,
            ..Default::default()
        };
        let map = t(data_type::Kind::Map(Box::new(data_type::Map {
            key_type: Some(Box::new(t(data_type::Kind::String(Default::default())))),
            value_type: Some(Box::new(t(data_type::Kind::Long(Default::default())))),
            value_contains_null: true,
            ..Default::default()
        })));
        let decimal = data_type::Decimal { scale: Some(2), precision: Some(12), ..Default::default() };
        let schema = t(data_type::Kind::Struct(data_type::Struct {
            fields: vec![
                field("id", t(data_type::Kind::Long(Default::default())), false),
                field("price", t(data_type::Kind::Decimal(decimal)), true),
                field("counts", map, true),
            ],
            ..Default::default()
        }));
        let fields = fields(&schema).unwrap();
        assert_eq!(fields[0], json!({"name": "id", "type": "long", "nullable": false, "metadata": {}}));
        assert_eq!(fields[1]["type"], "decimal(12,2)");
        assert_eq!(fields[2]["type"]["keyType"], "string");
        assert_eq!(fields[2]["type"]["valueContainsNull"], true);
    }
}
