//! The metadata calls (GetCatalogs, GetSchemas, GetTables, GetColumns...)
//! answered from tarn's catalog as the caller sees it, in the JDBC result
//! shapes HiveServer2 uses. Name arguments are JDBC patterns (`%` and `*`
//! for any run of characters, `_` for one), matched without case.

use std::sync::Arc;

use serde_json::Value;
use tarn_catalog::{Catalog, Kind, Principal};
use tarn_lake::arrow::array::{ArrayRef, Int16Builder, Int32Builder, StringBuilder};
use tarn_lake::arrow::datatypes::{DataType, Field, Schema};
use tarn_lake::arrow::error::ArrowError;
use tarn_lake::arrow::record_batch::RecordBatch;
use tarn_sql::sessions::Output;

/// The most objects one level of a listing reads.
const LIST_LIMIT: u64 = 100_000;

/// One cell of a metadata row.
pub enum Cell {
    Text(Option<String>),
    Int(Option<i32>),
    Short(Option<i16>),
}

fn text(s: &str) -> Cell {
    Cell::Text(Some(s.to_string()))
}

const NULL: Cell = Cell::Text(None);

#[derive(Clone, Copy)]
enum Type {
    Text,
    Int,
    Short,
}

/// A result of named columns built row by row.
struct Rows {
    columns: &'static [(&'static str, Type)],
    rows: Vec<Vec<Cell>>,
}

impl Rows {
    fn new(columns: &'static [(&'static str, Type)]) -> Self {
        Self { columns, rows: Vec::new() }
    }

    fn finish(self) -> Result<Output, ArrowError> {
        let fields: Vec<Field> = self
            .columns
            .iter()
            .map(|(name, t)| {
                let data_type = match t {
                    Type::Text => DataType::Utf8,
                    Type::Int => DataType::Int32,
                    Type::Short => DataType::Int16,
                };
                Field::new(*name, data_type, true)
            })
            .collect();
        let arrays: Vec<ArrayRef> =
            self.columns.iter().enumerate().map(|(i, (_, t))| column(&self.rows, i, *t)).collect();
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?;
        Ok(Output { schema: batch.schema(), batches: vec![batch] })
    }
}

fn column(rows: &[Vec<Cell>], i: usize, t: Type) -> ArrayRef {
    match t {
        Type::Text => {
            let mut b = StringBuilder::new();
            for row in rows {
                b.append_option(match &row[i] {
                    Cell::Text(v) => v.as_deref(),
                    _ => None,
                });
            }
            Arc::new(b.finish())
        }
        Type::Int => {
            let mut b = Int32Builder::new();
            for row in rows {
                b.append_option(if let Cell::Int(v) = row[i] { v } else { None });
            }
            Arc::new(b.finish())
        }
        Type::Short => {
            let mut b = Int16Builder::new();
            for row in rows {
                b.append_option(if let Cell::Short(v) = row[i] { v } else { None });
            }
            Arc::new(b.finish())
        }
    }
}

/// Whether `name` matches the JDBC pattern (absent: everything).
pub fn like(pattern: Option<&str>, name: &str) -> bool {
    fn matches(p: &[char], n: &[char]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some(('%' | '*', rest)) => (0..=n.len()).any(|i| matches(rest, &n[i..])),
            Some(('_', rest)) => !n.is_empty() && matches(rest, &n[1..]),
            Some(('\\', [c, rest @ ..])) => n.first() == Some(c) && matches(rest, &n[1..]),
            Some((c, rest)) => n.first() == Some(c) && matches(rest, &n[1..]),
        }
    }
    let Some(pattern) = pattern.filter(|p| !p.is_empty()) else { return true };
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let n: Vec<char> = name.to_lowercase().chars().collect();
    matches(&p, &n)
}

/// The catalog as one principal sees it.
pub struct Metadata<'a> {
    pub catalog: &'a Catalog,
    pub principal: Principal,
}

/// Why a metadata call failed.
pub type MetaResult = Result<Output, String>;

fn names(items: &[Value]) -> impl Iterator<Item = &str> {
    items.iter().filter_map(|v| v.get("name").and_then(Value::as_str))
}

impl Metadata<'_> {
    fn visible(&self, kind: Kind, parent: &[&str]) -> Result<Vec<Value>, String> {
        self.catalog
            .list_visible(&self.principal, kind, parent, 0, LIST_LIMIT)
            .map(|(items, _)| items)
            .map_err(|e| e.to_string())
    }

    fn catalog_names(&self, catalog: Option<&str>) -> Result<Vec<String>, String> {
        // `hive_metastore` names `main` here too, as everywhere in the catalog.
        let catalog =
            catalog.map(|c| tarn_catalog::FullName::from_parts(&[c]).map_or(c.to_string(), |n| n.name().into()));
        let all = self.visible(Kind::Catalog, &[])?;
        Ok(names(&all)
            .filter(|n| catalog.as_deref().is_none_or(|c| c.is_empty() || c.eq_ignore_ascii_case(n)))
            .map(str::to_string)
            .collect())
    }

    /// `(catalog, schema)` pairs that match.
    fn schema_names(&self, catalog: Option<&str>, pattern: Option<&str>) -> Result<Vec<(String, String)>, String> {
        let mut out = Vec::new();
        for c in self.catalog_names(catalog)? {
            let schemas = self.visible(Kind::Schema, &[&c])?;
            out.extend(names(&schemas).filter(|s| like(pattern, s)).map(|s| (c.clone(), s.to_string())));
        }
        Ok(out)
    }

    fn table_infos(
        &self,
        catalog: Option<&str>,
        schema: Option<&str>,
        table: Option<&str>,
    ) -> Result<Vec<Value>, String> {
        let mut out = Vec::new();
        for (c, s) in self.schema_names(catalog, schema)? {
            let tables = self.visible(Kind::Table, &[&c, &s])?;
            out.extend(tables.into_iter().filter(|t| like(table, t.get("name").and_then(Value::as_str).unwrap_or(""))));
        }
        Ok(out)
    }

    pub fn catalogs(&self) -> MetaResult {
        let mut rows = Rows::new(&[("TABLE_CAT", Type::Text)]);
        rows.rows.extend(self.catalog_names(None)?.iter().map(|c| vec![text(c)]));
        rows.finish().map_err(|e| e.to_string())
    }

    pub fn schemas(&self, catalog: Option<&str>, pattern: Option<&str>) -> MetaResult {
        let mut rows = Rows::new(&[("TABLE_SCHEM", Type::Text), ("TABLE_CATALOG", Type::Text)]);
        rows.rows.extend(self.schema_names(catalog, pattern)?.iter().map(|(c, s)| vec![text(s), text(c)]));
        rows.finish().map_err(|e| e.to_string())
    }

    pub fn tables(
        &self,
        catalog: Option<&str>,
        schema: Option<&str>,
        table: Option<&str>,
        types: Option<&[String]>,
    ) -> MetaResult {
        let mut rows = Rows::new(&[
            ("TABLE_CAT", Type::Text),
            ("TABLE_SCHEM", Type::Text),
            ("TABLE_NAME", Type::Text),
            ("TABLE_TYPE", Type::Text),
            ("REMARKS", Type::Text),
            ("TYPE_CAT", Type::Text),
            ("TYPE_SCHEM", Type::Text),
            ("TYPE_NAME", Type::Text),
            ("SELF_REFERENCING_COL_NAME", Type::Text),
            ("REF_GENERATION", Type::Text),
        ]);
        for t in self.table_infos(catalog, schema, table)? {
            let kind = table_kind(&t);
            if types.is_some_and(|wanted| !wanted.is_empty() && !wanted.iter().any(|w| w.eq_ignore_ascii_case(kind))) {
                continue;
            }
            let field = |k: &str| Cell::Text(t.get(k).and_then(Value::as_str).map(str::to_string));
            rows.rows.push(vec![
                field("catalog_name"),
                field("schema_name"),
                field("name"),
                text(kind),
                Cell::Text(Some(t.get("comment").and_then(Value::as_str).unwrap_or("").to_string())),
                NULL,
                NULL,
                NULL,
                NULL,
                NULL,
            ]);
        }
        rows.finish().map_err(|e| e.to_string())
    }

    pub fn columns(
        &self,
        catalog: Option<&str>,
        schema: Option<&str>,
        table: Option<&str>,
        column: Option<&str>,
    ) -> MetaResult {
        let mut rows = Rows::new(COLUMNS);
        for t in self.table_infos(catalog, schema, table)? {
            let field = |k: &str| t.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            let (c, s, n) = (field("catalog_name"), field("schema_name"), field("name"));
            let columns = t.get("columns").and_then(Value::as_array).cloned().unwrap_or_default();
            for (i, col) in columns.iter().enumerate() {
                let name = col.get("name").and_then(Value::as_str).unwrap_or("");
                if like(column, name) {
                    rows.rows.push(column_row([&c, &s, &n], i, col));
                }
            }
        }
        rows.finish().map_err(|e| e.to_string())
    }

    pub fn table_types() -> MetaResult {
        let mut rows = Rows::new(&[("TABLE_TYPE", Type::Text)]);
        rows.rows.extend(["TABLE", "VIEW"].iter().map(|t| vec![text(t)]));
        rows.finish().map_err(|e| e.to_string())
    }

    pub fn type_info() -> MetaResult {
        let mut rows = Rows::new(TYPE_INFO);
        for (name, code) in TYPES {
            let numeric = matches!(*code, -6 | 5 | 4 | -5 | 6 | 8 | 3);
            rows.rows.push(vec![
                text(name),
                Cell::Int(Some(*code)),
                Cell::Int(None),
                NULL,
                NULL,
                NULL,
                Cell::Short(Some(1)),
                Cell::Text(Some((*code == 12).to_string())),
                Cell::Short(Some(3)),
                Cell::Text(Some((!numeric).to_string())),
                Cell::Text(Some("false".into())),
                Cell::Text(Some("false".into())),
                NULL,
                Cell::Short(Some(0)),
                Cell::Short(Some(0)),
                Cell::Int(None),
                Cell::Int(None),
                Cell::Int(numeric.then_some(10)),
            ]);
        }
        rows.finish().map_err(|e| e.to_string())
    }

    /// tarn keeps no user functions, so none are listed.
    pub fn functions() -> MetaResult {
        Rows::new(&[
            ("FUNCTION_CAT", Type::Text),
            ("FUNCTION_SCHEM", Type::Text),
            ("FUNCTION_NAME", Type::Text),
            ("REMARKS", Type::Text),
            ("FUNCTION_TYPE", Type::Int),
            ("SPECIFIC_NAME", Type::Text),
        ])
        .finish()
        .map_err(|e| e.to_string())
    }

    /// Tables here declare no primary keys.
    pub fn primary_keys() -> MetaResult {
        Rows::new(&[
            ("TABLE_CAT", Type::Text),
            ("TABLE_SCHEM", Type::Text),
            ("TABLE_NAME", Type::Text),
            ("COLUMN_NAME", Type::Text),
            ("KEY_SEQ", Type::Int),
            ("PK_NAME", Type::Text),
        ])
        .finish()
        .map_err(|e| e.to_string())
    }

    /// Nor foreign keys.
    pub fn cross_reference() -> MetaResult {
        const COLUMNS: &[(&str, Type)] = &[
            ("PKTABLE_CAT", Type::Text),
            ("PKTABLE_SCHEM", Type::Text),
            ("PKTABLE_NAME", Type::Text),
            ("PKCOLUMN_NAME", Type::Text),
            ("FKTABLE_CAT", Type::Text),
            ("FKTABLE_SCHEM", Type::Text),
            ("FKTABLE_NAME", Type::Text),
            ("FKCOLUMN_NAME", Type::Text),
            ("KEY_SEQ", Type::Int),
            ("UPDATE_RULE", Type::Int),
            ("DELETE_RULE", Type::Int),
            ("FK_NAME", Type::Text),
            ("PK_NAME", Type::Text),
            ("DEFERRABILITY", Type::Int),
        ];
        Rows::new(COLUMNS).finish().map_err(|e| e.to_string())
    }
}

fn table_kind(table: &Value) -> &'static str {
    match table.get("table_type").and_then(Value::as_str) {
        Some("VIEW" | "MATERIALIZED_VIEW" | "METRIC_VIEW") => "VIEW",
        _ => "TABLE",
    }
}

/// Spark type names and their `java.sql.Types` codes.
const TYPES: &[(&str, i32)] = &[
    ("BOOLEAN", 16),
    ("TINYINT", -6),
    ("SMALLINT", 5),
    ("INT", 4),
    ("BIGINT", -5),
    ("FLOAT", 6),
    ("DOUBLE", 8),
    ("DECIMAL", 3),
    ("STRING", 12),
    ("BINARY", -2),
    ("DATE", 91),
    ("TIMESTAMP", 93),
    ("ARRAY", 2003),
    ("MAP", 2000),
    ("STRUCT", 2002),
    ("VOID", 0),
];

fn sql_type(type_name: &str) -> i32 {
    let name = match type_name.to_ascii_uppercase().as_str() {
        "BYTE" => "TINYINT".to_string(),
        "SHORT" => "SMALLINT".to_string(),
        "INTEGER" => "INT".to_string(),
        "LONG" => "BIGINT".to_string(),
        "CHAR" | "VARCHAR" => "STRING".to_string(),
        "TIMESTAMP_NTZ" => "TIMESTAMP".to_string(),
        "NULL" => "VOID".to_string(),
        other => other.to_string(),
    };
    TYPES.iter().find(|(n, _)| *n == name).map_or(1111, |(_, code)| *code)
}

const COLUMNS: &[(&str, Type)] = &[
    ("TABLE_CAT", Type::Text),
    ("TABLE_SCHEM", Type::Text),
    ("TABLE_NAME", Type::Text),
    ("COLUMN_NAME", Type::Text),
    ("DATA_TYPE", Type::Int),
    ("TYPE_NAME", Type::Text),
    ("COLUMN_SIZE", Type::Int),
    ("BUFFER_LENGTH", Type::Short),
    ("DECIMAL_DIGITS", Type::Int),
    ("NUM_PREC_RADIX", Type::Int),
    ("NULLABLE", Type::Int),
    ("REMARKS", Type::Text),
    ("COLUMN_DEF", Type::Text),
    ("SQL_DATA_TYPE", Type::Int),
    ("SQL_DATETIME_SUB", Type::Int),
    ("CHAR_OCTET_LENGTH", Type::Int),
    ("ORDINAL_POSITION", Type::Int),
    ("IS_NULLABLE", Type::Text),
    ("SCOPE_CATALOG", Type::Text),
    ("SCOPE_SCHEMA", Type::Text),
    ("SCOPE_TABLE", Type::Text),
    ("SOURCE_DATA_TYPE", Type::Short),
    ("IS_AUTO_INCREMENT", Type::Text),
];

fn column_row(table: [&str; 3], index: usize, col: &Value) -> Vec<Cell> {
    let get = |k: &str| col.get(k).and_then(Value::as_str).unwrap_or("");
    let type_name = if get("type_name").is_empty() { get("type_text") } else { get("type_name") };
    let nullable = col.get("nullable").and_then(Value::as_bool).unwrap_or(true);
    // The catalog counts from 0, JDBC from 1.
    let position =
        col.get("position").and_then(Value::as_i64).map_or(index, |p| usize::try_from(p).unwrap_or(index)) + 1;
    let precision =
        col.get("type_precision").and_then(Value::as_i64).and_then(|p| i32::try_from(p).ok()).filter(|p| *p > 0);
    let scale = col.get("type_scale").and_then(Value::as_i64).and_then(|p| i32::try_from(p).ok());
    let type_text = sql_type_name(type_name, get("type_text"));
    vec![
        text(table[0]),
        text(table[1]),
        text(table[2]),
        text(get("name")),
        Cell::Int(Some(sql_type(type_name))),
        Cell::Text(Some(type_text)),
        Cell::Int(precision),
        Cell::Short(None),
        Cell::Int(scale.filter(|_| precision.is_some())),
        Cell::Int(Some(10)),
        Cell::Int(Some(i32::from(nullable))),
        Cell::Text(Some(get("comment").to_string())),
        NULL,
        Cell::Int(None),
        Cell::Int(None),
        Cell::Int(None),
        Cell::Int(Some(i32::try_from(position).unwrap_or(i32::MAX))),
        text(if nullable { "YES" } else { "NO" }),
        NULL,
        NULL,
        NULL,
        Cell::Short(None),
        text("NO"),
    ]
}

const TYPE_INFO: &[(&str, Type)] = &[
    ("TYPE_NAME", Type::Text),
    ("DATA_TYPE", Type::Int),
    ("PRECISION", Type::Int),
    ("LITERAL_PREFIX", Type::Text),
    ("LITERAL_SUFFIX", Type::Text),
    ("CREATE_PARAMS", Type::Text),
    ("NULLABLE", Type::Short),
    ("CASE_SENSITIVE", Type::Text),
    ("SEARCHABLE", Type::Short),
    ("UNSIGNED_ATTRIBUTE", Type::Text),
    ("FIXED_PREC_SCALE", Type::Text),
    ("AUTO_INCREMENT", Type::Text),
    ("LOCAL_TYPE_NAME", Type::Text),
    ("MINIMUM_SCALE", Type::Short),
    ("MAXIMUM_SCALE", Type::Short),
    ("SQL_DATA_TYPE", Type::Int),
    ("SQL_DATETIME_SUB", Type::Int),
    ("NUM_PREC_RADIX", Type::Int),
];

/// A column's type as Spark SQL writes it (`BIGINT`, `DECIMAL(10,2)`,
/// `ARRAY<STRING>`), from the catalog's type name and text.
fn sql_type_name(type_name: &str, type_text: &str) -> String {
    let upper = type_name.to_ascii_uppercase();
    let canonical = match upper.as_str() {
        "LONG" => "BIGINT",
        "INTEGER" => "INT",
        "SHORT" => "SMALLINT",
        "BYTE" => "TINYINT",
        "NULL" => "VOID",
        other => other,
    };
    let parameterized = matches!(canonical, "DECIMAL" | "ARRAY" | "MAP" | "STRUCT" | "CHAR" | "VARCHAR");
    if parameterized && type_text.contains(['(', '<']) { type_text.to_ascii_uppercase() } else { canonical.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jdbc_patterns() {
        assert!(like(None, "orders"));
        assert!(like(Some("%"), "orders"));
        assert!(like(Some("*"), "orders"));
        assert!(like(Some("ord%"), "Orders"));
        assert!(like(Some("o_ders"), "orders"));
        assert!(!like(Some("o_ders"), "oders"));
        assert!(like(Some("my\\_table"), "my_table"));
        assert!(!like(Some("my\\_table"), "myxtable"));
        assert!(!like(Some("ord"), "orders"));
    }

    #[test]
    fn shapes() {
        let types = Metadata::type_info().unwrap();
        assert_eq!(types.schema.fields().len(), 18);
        assert_eq!(types.num_rows(), TYPES.len());
        assert_eq!(Metadata::cross_reference().unwrap().schema.field(8).data_type(), &DataType::Int32);
        assert_eq!(sql_type("long"), -5);
        assert_eq!(sql_type("geometry"), 1111);
        assert_eq!(sql_type_name("LONG", "bigint"), "BIGINT");
        assert_eq!(sql_type_name("DECIMAL", "decimal(10,2)"), "DECIMAL(10,2)");
        assert_eq!(sql_type_name("ARRAY", "array<string>"), "ARRAY<STRING>");
        assert_eq!(sql_type_name("STRING", "string"), "STRING");
    }
}
