//! `custom_metrics` as `MonitorMetric` sends them: AGGREGATE metrics (a
//! SQL aggregate per input column, `{{input_column}}` in its template),
//! DERIVED metrics (an expression over the same profile row's metrics) and
//! DRIFT metrics (an expression over `{{current_df}}.metric` and
//! `{{base_df}}.metric`). Definitions are rendered to SQL here and planned
//! by DataFusion against the table at create, so a bad one is refused
//! there; [`crate::custom_eval`] computes them.

use deltalake::arrow::datatypes::{DataType, Field, Schema};
use deltalake::datafusion::common::DFSchema;
use deltalake::datafusion::logical_expr::ExprSchemable;
use deltalake::datafusion::logical_expr::utils::find_aggregate_exprs;
use deltalake::datafusion::prelude::{Expr, SessionContext};
use serde_json::Value;

use crate::error::{MonitorError, Result, invalid};
use crate::scan::Source;

/// The input column that stands for the table as a whole.
pub const TABLE: &str = ":table";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Aggregate,
    Derived,
    Drift,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CustomMetric {
    pub kind: Kind,
    pub name: String,
    /// Table columns (as the table spells them) or [`TABLE`].
    pub input_columns: Vec<String>,
    pub definition: String,
    pub output_type: DataType,
}

/// Built-in profile columns a derived or drift metric may name, with their types.
const PROFILE_NUMBERS: &[(&str, DataType)] = &[
    ("count", DataType::Int64),
    ("num_nulls", DataType::Int64),
    ("avg", DataType::Float64),
    ("min", DataType::Float64),
    ("max", DataType::Float64),
    ("stddev", DataType::Float64),
    ("num_zeros", DataType::Int64),
    ("num_nan", DataType::Int64),
    ("median", DataType::Float64),
    ("distinct_count", DataType::Int64),
    ("percent_nan", DataType::Float64),
    ("percent_null", DataType::Float64),
    ("percent_zeros", DataType::Float64),
    ("percent_distinct", DataType::Float64),
];

/// A Spark StructField's JSON (`{"name": ..., "type": "double", ...}`) as an Arrow type.
fn output_type(text: &str) -> Result<DataType> {
    let field: Value = serde_json::from_str(text)
        .map_err(|e| invalid(format!("output_data_type must be a Spark StructField as JSON: {e}")))?;
    let kind = field.get("type").unwrap_or(&field);
    Ok(match kind.as_str() {
        Some("double") => DataType::Float64,
        Some("float") => DataType::Float32,
        Some("long") => DataType::Int64,
        Some("integer") => DataType::Int32,
        Some("short") => DataType::Int16,
        Some("byte") => DataType::Int8,
        Some("boolean") => DataType::Boolean,
        Some("string") => DataType::Utf8,
        Some(other) => return Err(invalid(format!("output_data_type '{other}' is not a type tarn knows"))),
        None => {
            return Err(MonitorError::NotImplemented(
                "custom metrics of struct, array or map output_data_type are not implemented by tarn yet".into(),
            ));
        }
    })
}

fn text<'a>(metric: &'a Value, field: &str) -> Result<&'a str> {
    metric
        .get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| invalid(format!("custom_metrics entries need a {field}")))
}

/// Reads `custom_metrics`; `columns` are the monitored table's.
pub fn parse(body: &Value, columns: &[String], reserved: &[&str]) -> Result<Vec<CustomMetric>> {
    let Some(list) = body.get("custom_metrics").filter(|v| !v.is_null()) else { return Ok(Vec::new()) };
    let list = list.as_array().ok_or_else(|| invalid("custom_metrics must be a list of MonitorMetric"))?;
    let mut metrics: Vec<CustomMetric> = Vec::with_capacity(list.len());
    for m in list {
        let kind = match text(m, "type")? {
            "CUSTOM_METRIC_TYPE_AGGREGATE" => Kind::Aggregate,
            "CUSTOM_METRIC_TYPE_DERIVED" => Kind::Derived,
            "CUSTOM_METRIC_TYPE_DRIFT" => Kind::Drift,
            other => return Err(invalid(format!("Unknown custom metric type '{other}'"))),
        };
        let name = text(m, "name")?.to_string();
        let identifier = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !identifier || reserved.iter().any(|r| r.eq_ignore_ascii_case(&name)) {
            return Err(invalid(format!("Custom metric name '{name}' is not a free column name of the output tables")));
        }
        if metrics.iter().any(|x| x.name.eq_ignore_ascii_case(&name)) {
            return Err(invalid(format!("Custom metric '{name}' is defined twice")));
        }
        let inputs = m.get("input_columns").and_then(Value::as_array).filter(|a| !a.is_empty());
        let inputs = inputs.ok_or_else(|| invalid(format!("Custom metric '{name}' needs input_columns")))?;
        let mut input_columns = Vec::with_capacity(inputs.len());
        for c in inputs {
            let c = c.as_str().ok_or_else(|| invalid("input_columns must be strings"))?;
            let found = if c == TABLE {
                Some(c)
            } else {
                columns.iter().map(String::as_str).find(|t| t.eq_ignore_ascii_case(c))
            };
            let found = found.ok_or_else(|| invalid(format!("Column '{c}' does not exist in the monitored table")))?;
            input_columns.push(found.to_string());
        }
        let definition = text(m, "definition")?.to_string();
        let output_type = output_type(text(m, "output_data_type")?)?;
        metrics.push(CustomMetric { kind, name, input_columns, definition, output_type });
    }
    Ok(metrics)
}

/// A template with its `{{...}}` placeholders filled; any other Jinja is refused.
pub fn render(metric: &CustomMetric, input_column: Option<&str>) -> Result<String> {
    let mut sql = String::with_capacity(metric.definition.len());
    let mut rest = metric.definition.as_str();
    while let Some(open) = rest.find("{{") {
        sql.push_str(&rest[..open]);
        let close = rest[open..].find("}}").map(|c| open + c);
        let close = close.ok_or_else(|| invalid(format!("Custom metric '{}': an unclosed '{{{{'", metric.name)))?;
        let value = match (rest[open + 2..close].trim(), metric.kind, input_column) {
            ("input_column", Kind::Aggregate, Some(c)) if c != TABLE => format!("\"{}\"", c.replace('"', "\"\"")),
            ("current_df", Kind::Drift, _) => "current_df".into(),
            ("base_df", Kind::Drift, _) => "base_df".into(),
            (other, ..) => {
                return Err(invalid(format!("Custom metric '{}': '{{{{{other}}}}}' cannot be used here", metric.name)));
            }
        };
        sql.push_str(&value);
        rest = &rest[close + 2..];
    }
    sql.push_str(rest);
    if sql.contains("{%") {
        return Err(invalid(format!("Custom metric '{}': Jinja statements are not supported", metric.name)));
    }
    Ok(sql)
}

/// The columns of a profile row a derived or drift metric may name.
pub fn profile_schema(metrics: &[CustomMetric]) -> Schema {
    let mut fields: Vec<Field> = PROFILE_NUMBERS.iter().map(|(n, t)| Field::new(*n, t.clone(), true)).collect();
    fields.push(Field::new("column_name", DataType::Utf8, true));
    for m in metrics.iter().filter(|m| m.kind != Kind::Drift) {
        fields.push(Field::new(&m.name, m.output_type.clone(), true));
    }
    Schema::new(fields)
}

fn planned(ctx: &SessionContext, metric: &CustomMetric, sql: &str, schema: &DFSchema) -> Result<Expr> {
    let refused = |e: String| invalid(format!("Custom metric '{}' ({sql}): {e}", metric.name));
    let expr = ctx.parse_sql_expr(sql, schema).map_err(|e| refused(e.to_string()))?;
    expr.get_type(schema).map_err(|e| refused(e.to_string()))?;
    let aggregates = !find_aggregate_exprs([&expr]).is_empty();
    match (metric.kind, aggregates) {
        (Kind::Aggregate, false) => Err(refused("an aggregate metric's definition must aggregate".into())),
        (Kind::Derived | Kind::Drift, true) => Err(refused("only aggregate metrics may aggregate".into())),
        _ => Ok(expr),
    }
}

/// Refuses a definition DataFusion cannot plan: aggregates against the
/// table, derived metrics against a profile row, drift metrics against two.
pub fn check(source: &Source, metrics: &[CustomMetric]) -> Result<()> {
    check_against(&source.ctx, source.frame.schema(), metrics)
}

fn check_against(ctx: &SessionContext, table: &DFSchema, metrics: &[CustomMetric]) -> Result<()> {
    let profile = profile_schema(metrics);
    let row = DFSchema::try_from(profile.clone()).map_err(|e| MonitorError::Refresh(e.to_string()))?;
    let pair = DFSchema::try_from_qualified_schema("current_df", &profile)
        .and_then(|c| DFSchema::try_from_qualified_schema("base_df", &profile).and_then(|b| c.join(&b)))
        .map_err(|e| MonitorError::Refresh(e.to_string()))?;
    for metric in metrics {
        match metric.kind {
            Kind::Aggregate => {
                for column in &metric.input_columns {
                    planned(ctx, metric, &render(metric, Some(column))?, table)?;
                }
            }
            Kind::Derived => _ = planned(ctx, metric, &render(metric, None)?, &row)?,
            Kind::Drift => _ = planned(ctx, metric, &render(metric, None)?, &pair)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn metric(kind: &str, definition: &str) -> Value {
        json!({"custom_metrics": [{"type": kind, "name": "m", "input_columns": ["x"], "definition": definition,
               "output_data_type": "{\"name\": \"output\", \"type\": \"double\", \"nullable\": true, \"metadata\": {}}"}]})
    }

    #[test]
    fn definitions_render_and_bad_ones_are_refused() {
        let cols = vec!["x".to_string()];
        let m = parse(&metric("CUSTOM_METRIC_TYPE_AGGREGATE", "avg(log({{ input_column }}))"), &cols, &[]).unwrap();
        assert_eq!(m[0].output_type, DataType::Float64);
        assert_eq!(render(&m[0], Some("x")).unwrap(), "avg(log(\"x\"))");
        let d = parse(&metric("CUSTOM_METRIC_TYPE_DRIFT", "{{current_df}}.m - {{base_df}}.m"), &cols, &[]).unwrap();
        assert_eq!(render(&d[0], None).unwrap(), "current_df.m - base_df.m");
        assert!(parse(&metric("CUSTOM_METRIC_TYPE_MEDIAN", "x"), &cols, &[]).is_err());
        assert!(render(&d[0], Some("x")).is_ok());
        let bad = parse(&metric("CUSTOM_METRIC_TYPE_DERIVED", "{{ current_df }}.m"), &cols, &[]).unwrap();
        assert!(render(&bad[0], None).is_err());
        assert!(parse(&metric("CUSTOM_METRIC_TYPE_AGGREGATE", "avg(x)"), &cols, &["m"]).is_err());
    }

    #[test]
    fn definitions_are_planned_against_the_table_and_the_profile() {
        let cols = vec!["x".to_string()];
        let ctx = SessionContext::new();
        let table = DFSchema::try_from(Schema::new(vec![Field::new("x", DataType::Float64, true)])).unwrap();
        let check = |kind: &str, definition: &str| {
            let m = parse(&metric(kind, definition), &cols, &[]).unwrap();
            check_against(&ctx, &table, &m).map_err(|e| e.to_string())
        };
        check("CUSTOM_METRIC_TYPE_AGGREGATE", "avg(log({{input_column}}))").unwrap();
        assert!(check("CUSTOM_METRIC_TYPE_AGGREGATE", "{{input_column}} + 1").unwrap_err().contains("must aggregate"));
        assert!(check("CUSTOM_METRIC_TYPE_AGGREGATE", "avg(nope)").unwrap_err().contains("nope"));
        check("CUSTOM_METRIC_TYPE_DERIVED", "sqrt(m / count)").unwrap();
        assert!(check("CUSTOM_METRIC_TYPE_DERIVED", "sum(count)").unwrap_err().contains("only aggregate"));
        check("CUSTOM_METRIC_TYPE_DRIFT", "{{current_df}}.avg - {{base_df}}.avg").unwrap();
    }
}
