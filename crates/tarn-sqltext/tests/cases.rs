//! The case table (`cases.json`), which the Python worker's `split_sql` runs
//! too (`tests/python/test_sqltext.py`).

use serde_json::{Value, json};
use tarn_sqltext::{Kind, split_statements, tokens};

fn cases() -> Vec<Value> {
    let table: Value = serde_json::from_str(include_str!("../cases.json")).unwrap_or_default();
    table["cases"].as_array().cloned().unwrap_or_default()
}

/// Every token but whitespace, as the table writes them.
fn token_table(sql: &str) -> Value {
    let listed = tokens(sql).filter(|t| t.kind != Kind::Whitespace).map(|t| {
        let kind = format!("{:?}", t.kind);
        if t.closed { json!([kind, t.text]) } else { json!([kind, t.text, "unclosed"]) }
    });
    Value::Array(listed.collect())
}

fn values(sql: &str) -> Value {
    let quoted = tokens(sql).filter(|t| matches!(t.kind, Kind::String | Kind::QuotedIdentifier));
    json!(quoted.map(|t| t.value().into_owned()).collect::<Vec<_>>())
}

#[test]
fn case_table() {
    let cases = cases();
    assert!(cases.len() > 20, "the case table did not load");
    for case in cases {
        let (name, sql) = (&case["name"], case["sql"].as_str().unwrap_or_default());
        assert_eq!(json!(split_statements(sql)), case["statements"], "statements of {name}");
        if let Some(expected) = case.get("tokens") {
            assert_eq!(&token_table(sql), expected, "tokens of {name}");
        }
        if let Some(expected) = case.get("values") {
            assert_eq!(&values(sql), expected, "values of {name}");
        }
        assert_eq!(tokens(sql).map(|t| t.text).collect::<String>(), sql, "tokens of {name} cover it");
    }
}
