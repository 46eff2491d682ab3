//! An alert's condition and how a query result meets it: the operand
//! column's value (the first row's, or an aggregation over all rows as
//! alerts v2 allow) compared with a threshold value or another column.
//! Values come as the warehouse's text; a number threshold compares
//! numbers, a bool threshold bools, a string threshold text.

use std::cmp::Ordering;

use serde_json::Value;
use tarn_sql::result::ResultSet;

use crate::error::{Result, invalid};

/// What an evaluation found, as alerts report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Unknown,
    Ok,
    Triggered,
    /// Only alerts v2 report a failed evaluation as a state.
    Error,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Unknown => "UNKNOWN",
            State::Ok => "OK",
            State::Triggered => "TRIGGERED",
            State::Error => "ERROR",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [State::Unknown, State::Ok, State::Triggered, State::Error].into_iter().find(|s| s.as_str() == text)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Equal,
    NotEqual,
    GreaterThan,
    GreaterThanOrEqual,
    LessThan,
    LessThanOrEqual,
    IsNull,
    IsNotNull,
}

const OPS: &[(&str, Op)] = &[
    ("EQUAL", Op::Equal),
    ("NOT_EQUAL", Op::NotEqual),
    ("GREATER_THAN", Op::GreaterThan),
    ("GREATER_THAN_OR_EQUAL", Op::GreaterThanOrEqual),
    ("LESS_THAN", Op::LessThan),
    ("LESS_THAN_OR_EQUAL", Op::LessThanOrEqual),
    ("IS_NULL", Op::IsNull),
    ("IS_NOT_NULL", Op::IsNotNull),
];

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::Equal => "==",
            Op::NotEqual => "!=",
            Op::GreaterThan => ">",
            Op::GreaterThanOrEqual => ">=",
            Op::LessThan => "<",
            Op::LessThanOrEqual => "<=",
            Op::IsNull => "is null",
            Op::IsNotNull => "is not null",
        }
    }

    fn holds(self, ordering: Ordering) -> bool {
        match self {
            Op::Equal => ordering.is_eq(),
            Op::NotEqual => ordering.is_ne(),
            Op::GreaterThan => ordering.is_gt(),
            Op::GreaterThanOrEqual => ordering.is_ge(),
            Op::LessThan => ordering.is_lt(),
            Op::LessThanOrEqual => ordering.is_le(),
            Op::IsNull | Op::IsNotNull => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregation {
    Sum,
    Count,
    CountDistinct,
    Avg,
    Median,
    Min,
    Max,
    Stddev,
}

const AGGREGATIONS: &[(&str, Aggregation)] = &[
    ("SUM", Aggregation::Sum),
    ("COUNT", Aggregation::Count),
    ("COUNT_DISTINCT", Aggregation::CountDistinct),
    ("AVG", Aggregation::Avg),
    ("MEDIAN", Aggregation::Median),
    ("MIN", Aggregation::Min),
    ("MAX", Aggregation::Max),
    ("STDDEV", Aggregation::Stddev),
];

/// A column of the result, maybe aggregated over its rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Operand {
    pub column: String,
    pub aggregation: Option<Aggregation>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Threshold {
    Number(f64),
    Bool(bool),
    Text(String),
    Column(Operand),
    /// IS_NULL and IS_NOT_NULL take none.
    None,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub operand: Operand,
    pub op: Op,
    pub threshold: Threshold,
    /// The state an empty result gives.
    pub empty_result_state: State,
}

/// What one evaluation found.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub state: State,
    /// The operand's value, for notifications.
    pub value: Option<String>,
}

fn lookup<T: Copy>(table: &[(&str, T)], what: &str, text: &str) -> Result<T> {
    table.iter().find(|(name, _)| *name == text).map(|(_, v)| *v).ok_or_else(|| {
        let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
        invalid(format!("Invalid {what} '{text}'; expected one of {}", names.join(", ")))
    })
}

/// A `{name, aggregation}` operand column.
pub fn operand(column: &Value, field: &str) -> Result<Operand> {
    let name = column.get("name").and_then(Value::as_str).filter(|n| !n.is_empty());
    let name = name.ok_or_else(|| invalid(format!("{field}.name is required")))?;
    let aggregation = match column.get("aggregation").and_then(Value::as_str) {
        Some(a) => Some(lookup(AGGREGATIONS, "aggregation", a)?),
        None => None,
    };
    Ok(Operand { column: name.to_string(), aggregation })
}

pub fn op(text: Option<&str>, field: &str) -> Result<Op> {
    lookup(OPS, field, text.ok_or_else(|| invalid(format!("{field} is required")))?)
}

/// An `{bool_value | double_value | string_value}` threshold value.
pub fn threshold_value(value: &Value, field: &str) -> Result<Threshold> {
    if let Some(b) = value.get("bool_value").and_then(Value::as_bool) {
        return Ok(Threshold::Bool(b));
    }
    if let Some(d) = value.get("double_value").and_then(Value::as_f64) {
        return Ok(Threshold::Number(d));
    }
    if let Some(s) = value.get("string_value").and_then(Value::as_str) {
        return Ok(Threshold::Text(s.to_string()));
    }
    Err(invalid(format!("{field} needs one of bool_value, double_value, string_value")))
}

pub fn empty_result_state(text: Option<&str>) -> Result<State> {
    match text {
        None => Ok(State::Unknown),
        Some(t) => State::parse(t)
            .filter(|s| *s != State::Error)
            .ok_or_else(|| invalid(format!("Invalid empty_result_state '{t}'"))),
    }
}

impl Condition {
    /// Checks the threshold fits the operator.
    pub fn checked(self) -> Result<Self> {
        let needs_threshold = !matches!(self.op, Op::IsNull | Op::IsNotNull);
        if needs_threshold && self.threshold == Threshold::None {
            return Err(invalid("The condition's operator needs a threshold"));
        }
        Ok(self)
    }

    /// The condition in words, for notifications.
    pub fn describe(&self) -> String {
        let threshold = match &self.threshold {
            Threshold::Number(n) => n.to_string(),
            Threshold::Bool(b) => b.to_string(),
            Threshold::Text(t) => format!("'{t}'"),
            Threshold::Column(c) => c.column.clone(),
            Threshold::None => String::new(),
        };
        format!("{} {} {threshold}", self.operand.column, self.op.symbol()).trim_end().to_string()
    }

    /// Evaluates the condition on a query's result.
    pub fn evaluate(&self, result: &ResultSet) -> std::result::Result<Finding, String> {
        let rows: Vec<&Vec<Option<String>>> = result.chunks.iter().flat_map(|c| c.rows.iter()).collect();
        if rows.is_empty() {
            return Ok(Finding { state: self.empty_result_state, value: None });
        }
        let value = resolve(result, &rows, &self.operand)?;
        let holds = match (&self.op, &self.threshold) {
            (Op::IsNull, _) => value.is_none(),
            (Op::IsNotNull, _) => value.is_some(),
            (_, Threshold::Column(other)) => {
                let other = resolve(result, &rows, other)?;
                compare_texts(value.as_deref(), other.as_deref()).is_some_and(|o| self.op.holds(o))
            }
            (op, threshold) => compare(value.as_deref(), threshold).is_some_and(|o| op.holds(o)),
        };
        Ok(Finding { state: if holds { State::Triggered } else { State::Ok }, value })
    }
}

/// The operand's value: its column in the first row, or aggregated.
fn resolve(
    result: &ResultSet,
    rows: &[&Vec<Option<String>>],
    operand: &Operand,
) -> std::result::Result<Option<String>, String> {
    let index = result
        .columns
        .iter()
        .position(|c| c.name == operand.column)
        .ok_or_else(|| format!("The query's result has no column '{}'", operand.column))?;
    let cells = rows.iter().map(|r| r.get(index).cloned().flatten());
    match operand.aggregation {
        None => Ok(rows[0].get(index).cloned().flatten()),
        Some(aggregation) => Ok(aggregate(aggregation, cells.collect())),
    }
}

fn aggregate(aggregation: Aggregation, cells: Vec<Option<String>>) -> Option<String> {
    let present: Vec<String> = cells.into_iter().flatten().collect();
    match aggregation {
        Aggregation::Count => return Some(present.len().to_string()),
        Aggregation::CountDistinct => {
            let distinct: std::collections::HashSet<&String> = present.iter().collect();
            return Some(distinct.len().to_string());
        }
        _ => {}
    }
    let mut numbers: Vec<f64> = present.iter().filter_map(|v| v.trim().parse().ok()).collect();
    if numbers.is_empty() {
        return None;
    }
    let n = numbers.len() as f64;
    let mean = numbers.iter().sum::<f64>() / n;
    let value = match aggregation {
        Aggregation::Sum => numbers.iter().sum(),
        Aggregation::Avg => mean,
        Aggregation::Min => numbers.iter().copied().fold(f64::INFINITY, f64::min),
        Aggregation::Max => numbers.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        Aggregation::Median => {
            numbers.sort_by(f64::total_cmp);
            let mid = numbers.len() / 2;
            if numbers.len().is_multiple_of(2) { (numbers[mid - 1] + numbers[mid]) / 2.0 } else { numbers[mid] }
        }
        // The sample standard deviation, as SQL's STDDEV.
        Aggregation::Stddev if numbers.len() > 1 => {
            (numbers.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        }
        Aggregation::Stddev => return None,
        Aggregation::Count | Aggregation::CountDistinct => return None,
    };
    Some(value.to_string())
}

fn compare(value: Option<&str>, threshold: &Threshold) -> Option<Ordering> {
    let value = value?.trim();
    match threshold {
        Threshold::Number(t) => value.parse::<f64>().ok()?.partial_cmp(t),
        Threshold::Bool(t) => Some(value.parse::<bool>().ok()?.cmp(t)),
        Threshold::Text(t) => Some(value.cmp(t.as_str())),
        Threshold::Column(_) | Threshold::None => None,
    }
}

/// Two result values: as numbers when both are, else as text.
fn compare_texts(a: Option<&str>, b: Option<&str>) -> Option<Ordering> {
    let (a, b) = (a?.trim(), b?.trim());
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.partial_cmp(&y),
        _ => Some(a.cmp(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tarn_sql::result::{Chunk, ResultColumn};

    fn result(column: &str, values: &[Option<&str>]) -> ResultSet {
        let rows: Vec<Vec<Option<String>>> = values.iter().map(|v| vec![v.map(str::to_string)]).collect();
        ResultSet {
            columns: vec![ResultColumn {
                name: column.into(),
                position: 0,
                type_text: "DOUBLE".into(),
                type_name: "DOUBLE",
                precision: None,
                scale: None,
            }],
            total_rows: rows.len(),
            chunks: vec![Chunk { index: 0, row_offset: 0, rows, byte_count: 0 }],
            total_bytes: 0,
            truncated: false,
        }
    }

    fn condition(op: Op, threshold: Threshold, aggregation: Option<Aggregation>) -> Condition {
        Condition {
            operand: Operand { column: "drift".into(), aggregation },
            op,
            threshold,
            empty_result_state: State::Unknown,
        }
    }

    #[test]
    fn first_row_values_compare_as_numbers() {
        let c = condition(Op::GreaterThan, Threshold::Number(0.2), None);
        assert_eq!(c.evaluate(&result("drift", &[Some("0.35"), Some("0.01")])).unwrap().state, State::Triggered);
        assert_eq!(c.evaluate(&result("drift", &[Some("0.1"), Some("0.9")])).unwrap().state, State::Ok);
        // 10 > 9 as numbers, though "10" < "9" as text.
        let c = condition(Op::GreaterThan, Threshold::Number(9.0), None);
        assert_eq!(c.evaluate(&result("drift", &[Some("10")])).unwrap().state, State::Triggered);
    }

    #[test]
    fn aggregations_empty_results_and_nulls() {
        let values = [Some("1"), Some("4"), None, Some("4")];
        let sum = condition(Op::Equal, Threshold::Number(9.0), Some(Aggregation::Sum));
        assert_eq!(sum.evaluate(&result("drift", &values)).unwrap().value.as_deref(), Some("9"));
        let distinct = condition(Op::Equal, Threshold::Number(2.0), Some(Aggregation::CountDistinct));
        assert_eq!(distinct.evaluate(&result("drift", &values)).unwrap().state, State::Triggered);
        let median = condition(Op::Equal, Threshold::Number(4.0), Some(Aggregation::Median));
        assert_eq!(median.evaluate(&result("drift", &values)).unwrap().state, State::Triggered);

        let mut empty = condition(Op::GreaterThan, Threshold::Number(0.0), None);
        empty.empty_result_state = State::Triggered;
        assert_eq!(empty.evaluate(&result("drift", &[])).unwrap().state, State::Triggered);
        let null = condition(Op::IsNull, Threshold::None, None);
        assert_eq!(null.evaluate(&result("drift", &[None])).unwrap().state, State::Triggered);
        let missing = condition(Op::IsNull, Threshold::None, None);
        assert!(missing.evaluate(&result("other", &[None])).unwrap_err().contains("no column 'drift'"));
    }

    #[test]
    fn thresholds_must_fit_the_operator() {
        assert!(condition(Op::LessThan, Threshold::None, None).checked().is_err());
        assert!(op(Some("ABOUT"), "op").unwrap_err().to_string().contains("GREATER_THAN"));
        let text = condition(Op::Equal, Threshold::Text("down".into()), None);
        assert_eq!(text.evaluate(&result("drift", &[Some("down")])).unwrap().state, State::Triggered);
    }
}
