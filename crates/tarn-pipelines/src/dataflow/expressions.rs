//! Spark Connect column expressions as SQL text, for what tarn's graph
//! keeps as SQL (AUTO CDC keys, `sequence_by` and conditions). Covers the
//! columns, literals, operators and function calls such settings are made
//! of; anything else is refused with its kind.

use spark_connect_proto::Expression;
use spark_connect_proto::expression::cast::CastToType;
use spark_connect_proto::expression::literal::LiteralType;
use spark_connect_proto::expression::{ExprType, Literal};

/// A bare column name (`"id"`, `col("id")`).
pub(super) fn column(e: &Expression) -> Result<String, String> {
    match &e.expr_type {
        Some(ExprType::UnresolvedAttribute(a)) => Ok(a.unparsed_identifier.clone()),
        Some(ExprType::ExpressionString(s)) => Ok(s.expression.trim().to_string()),
        _ => Err(format!("expected a column name, got {}", kind(e))),
    }
}

/// `e` as a Spark SQL expression.
pub(super) fn sql(e: &Expression) -> Result<String, String> {
    match &e.expr_type {
        Some(ExprType::UnresolvedAttribute(a)) => Ok(a.unparsed_identifier.clone()),
        Some(ExprType::ExpressionString(s)) => Ok(format!("({})", s.expression.trim())),
        Some(ExprType::Literal(l)) => literal(l),
        Some(ExprType::Alias(a)) => a.expr.as_deref().map_or_else(|| Err("an empty alias".to_string()), sql),
        Some(ExprType::Cast(c)) => {
            let inner = c.expr.as_deref().map_or_else(|| Err("an empty cast".to_string()), sql)?;
            match &c.cast_to_type {
                Some(CastToType::TypeStr(t)) => Ok(format!("CAST({inner} AS {t})")),
                _ => Err("a cast to a type given as a DataType; use .cast(\"type\")".into()),
            }
        }
        Some(ExprType::UnresolvedFunction(f)) => {
            let args = f.arguments.iter().map(sql).collect::<Result<Vec<_>, _>>()?;
            Ok(call(&f.function_name, &args))
        }
        _ => Err(format!("a {} expression", kind(e))),
    }
}

/// A function call, or the operator PySpark's column methods name.
fn call(name: &str, args: &[String]) -> String {
    let operator = match name {
        "==" => Some("="),
        "!=" | "<>" => Some("<>"),
        "<" | "<=" | ">" | ">=" | "<=>" | "+" | "-" | "*" | "/" | "%" => Some(name),
        "and" => Some("AND"),
        "or" => Some("OR"),
        _ => None,
    };
    match (operator, args) {
        (Some(op), [a, b]) => format!("({a} {op} {b})"),
        _ => match (name, args) {
            ("not", [a]) => format!("(NOT {a})"),
            ("isNull" | "isnull", [a]) => format!("({a} IS NULL)"),
            ("isNotNull" | "isnotnull", [a]) => format!("({a} IS NOT NULL)"),
            _ => format!("{name}({})", args.join(", ")),
        },
    }
}

fn literal(l: &Literal) -> Result<String, String> {
    Ok(match &l.literal_type {
        None | Some(LiteralType::Null(_)) => "NULL".into(),
        Some(LiteralType::Boolean(b)) => if *b { "TRUE" } else { "FALSE" }.into(),
        Some(LiteralType::Byte(v) | LiteralType::Short(v) | LiteralType::Integer(v)) => v.to_string(),
        Some(LiteralType::Long(v)) => format!("{v}L"),
        Some(LiteralType::Float(v)) => format!("CAST({v} AS FLOAT)"),
        Some(LiteralType::Double(v)) => format!("{v}D"),
        Some(LiteralType::Decimal(d)) => format!("{}BD", d.value),
        Some(LiteralType::String(s)) => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
        Some(_) => return Err("a literal of a type other than boolean, number or string".into()),
    })
}

fn kind(e: &Expression) -> &'static str {
    match &e.expr_type {
        Some(ExprType::Window(_)) => "window",
        Some(ExprType::LambdaFunction(_)) => "lambda",
        Some(ExprType::UnresolvedStar(_)) => "star",
        Some(ExprType::SortOrder(_)) => "sort order",
        Some(ExprType::CommonInlineUserDefinedFunction(_)) => "user-defined function",
        Some(ExprType::SubqueryExpression(_)) => "subquery",
        Some(_) => "complex",
        None => "empty",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spark_connect_proto::expression::{UnresolvedAttribute, UnresolvedFunction};

    fn e(expr_type: ExprType) -> Expression {
        Expression { common: None, expr_type: Some(expr_type) }
    }

    fn col(name: &str) -> Expression {
        e(ExprType::UnresolvedAttribute(UnresolvedAttribute {
            unparsed_identifier: name.into(),
            plan_id: None,
            is_metadata_column: None,
        }))
    }

    fn lit(value: LiteralType) -> Expression {
        e(ExprType::Literal(Literal { data_type: None, literal_type: Some(value) }))
    }

    fn f(name: &str, arguments: Vec<Expression>) -> Expression {
        e(ExprType::UnresolvedFunction(UnresolvedFunction {
            function_name: name.into(),
            arguments,
            ..Default::default()
        }))
    }

    #[test]
    fn conditions_read_as_sql() {
        let deleted = f("==", vec![col("op"), lit(LiteralType::String("DEL'ETE".into()))]);
        assert_eq!(sql(&deleted).unwrap(), "(op = 'DEL\\'ETE')");
        let both = f("and", vec![deleted, f("not", vec![f("isNull", vec![col("ts")])])]);
        assert_eq!(sql(&both).unwrap(), "((op = 'DEL\\'ETE') AND (NOT (ts IS NULL)))");
        assert_eq!(sql(&f("coalesce", vec![col("a"), lit(LiteralType::Long(0))])).unwrap(), "coalesce(a, 0L)");
        assert_eq!(column(&col("id")).unwrap(), "id");
        assert!(column(&f("upper", vec![col("id")])).is_err());
        assert!(sql(&e(ExprType::UnresolvedStar(Default::default()))).unwrap_err().contains("star"));
    }
}
