//! MLflow's search grammar: `metrics.acc > 0.8 and params.model = 'cnn' and
//! tags.team LIKE 'ml-%' and attributes.status = 'FINISHED'`, and
//! `order_by` entries (`metrics.acc DESC`), parsed into the store's query
//! terms.

use tarn_store::mlflow::{Clause, Comparison, Entity, OrderBy, SqlValue, attribute_column};

use crate::MlflowError;

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    /// A quoted identifier part (backticks or double quotes after a dot).
    Quoted(String),
    Text(String),
    Number(f64),
    Op(&'static str),
    Dot,
    Open,
    Close,
    Comma,
}

fn invalid(filter: &str, why: impl std::fmt::Display) -> MlflowError {
    MlflowError::InvalidParameter(format!("Invalid filter '{filter}': {why}"))
}

fn tokens(filter: &str) -> Result<Vec<Token>, MlflowError> {
    let chars: Vec<char> = filter.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Token::Open);
                i += 1;
            }
            ')' => {
                out.push(Token::Close);
                i += 1;
            }
            ',' => {
                out.push(Token::Comma);
                i += 1;
            }
            '.' if !chars.get(i + 1).is_some_and(char::is_ascii_digit) => {
                out.push(Token::Dot);
                i += 1;
            }
            '\'' | '"' | '`' => {
                let end =
                    chars[i + 1..].iter().position(|&x| x == c).ok_or_else(|| invalid(filter, "unclosed quote"))?;
                let text: String = chars[i + 1..i + 1 + end].iter().collect();
                // After a dot, a quoted word is part of a name (`tags."my tag"`).
                let is_name = c == '`' || matches!(out.last(), Some(Token::Dot));
                out.push(if is_name { Token::Quoted(text) } else { Token::Text(text) });
                i += end + 2;
            }
            '=' => {
                out.push(Token::Op("="));
                i += 1;
            }
            '!' | '<' | '>' => {
                let two = chars.get(i + 1) == Some(&'=');
                let op = match (c, two) {
                    ('!', true) => "!=",
                    ('<', true) => "<=",
                    ('>', true) => ">=",
                    ('<', false) => "<",
                    ('>', false) => ">",
                    _ => return Err(invalid(filter, "'!' must be followed by '='")),
                };
                out.push(Token::Op(op));
                i += if two { 2 } else { 1 };
            }
            c if c.is_ascii_digit() || c == '-' || c == '.' => {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '.' | '-' | '+')) {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                out.push(Token::Number(text.parse().map_err(|_| invalid(filter, format!("bad number {text}")))?));
            }
            c if c.is_alphanumeric() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '-' | '/' | ':')) {
                    i += 1;
                }
                out.push(Token::Word(chars[start..i].iter().collect()));
            }
            other => return Err(invalid(filter, format!("unexpected character '{other}'"))),
        }
    }
    Ok(out)
}

fn entity(prefix: &str) -> Option<Entity> {
    Some(match prefix.to_ascii_lowercase().as_str() {
        "metric" | "metrics" => Entity::Metric,
        "param" | "params" | "parameter" | "parameters" => Entity::Param,
        "tag" | "tags" => Entity::Tag,
        "attribute" | "attributes" | "attr" | "run" => Entity::Attribute,
        _ => return None,
    })
}

/// Reads `entity.key` from the front of `toks`; a bare name is an attribute.
fn identifier(
    toks: &[Token],
    i: &mut usize,
    text: &str,
    is_attribute: &dyn Fn(&str) -> bool,
) -> Result<(Entity, String), MlflowError> {
    let first = match toks.get(*i) {
        Some(Token::Word(w) | Token::Quoted(w)) => w.clone(),
        other => return Err(invalid(text, format!("expected a key, found {other:?}"))),
    };
    *i += 1;
    let (entity, key) = if toks.get(*i) == Some(&Token::Dot) {
        let entity = entity(&first).ok_or_else(|| invalid(text, format!("unknown entity '{first}'")))?;
        *i += 1;
        let key = match toks.get(*i) {
            Some(Token::Word(w) | Token::Quoted(w)) => w.clone(),
            _ => return Err(invalid(text, format!("expected a key after '{first}.'"))),
        };
        *i += 1;
        // Keys may hold dots: tags.mlflow.runName.
        let mut key = key;
        while toks.get(*i) == Some(&Token::Dot) {
            match toks.get(*i + 1) {
                Some(Token::Word(w) | Token::Quoted(w)) => {
                    key = format!("{key}.{w}");
                    *i += 2;
                }
                _ => break,
            }
        }
        (entity, key)
    } else {
        (Entity::Attribute, first)
    };
    if entity == Entity::Attribute && !is_attribute(&key) {
        return Err(invalid(text, format!("unknown attribute '{key}'")));
    }
    Ok((entity, key))
}

fn comparison(toks: &[Token], i: &mut usize, text: &str) -> Result<Comparison, MlflowError> {
    let op = match toks.get(*i) {
        Some(Token::Op(op)) => match *op {
            "=" => Comparison::Eq,
            "!=" => Comparison::Ne,
            "<" => Comparison::Lt,
            "<=" => Comparison::Le,
            ">" => Comparison::Gt,
            _ => Comparison::Ge,
        },
        Some(Token::Word(w)) => match w.to_ascii_uppercase().as_str() {
            "LIKE" => Comparison::Like,
            "ILIKE" => Comparison::ILike,
            "IN" => Comparison::In,
            "IS" => {
                let not = matches!(toks.get(*i + 1), Some(Token::Word(n)) if n.eq_ignore_ascii_case("NOT"));
                let null = if not { *i + 2 } else { *i + 1 };
                if !matches!(toks.get(null), Some(Token::Word(n)) if n.eq_ignore_ascii_case("NULL")) {
                    return Err(invalid(text, "IS must be followed by NULL or NOT NULL"));
                }
                *i = null;
                if not { Comparison::IsNotNull } else { Comparison::IsNull }
            }
            "NOT" if matches!(toks.get(*i + 1), Some(Token::Word(n)) if n.eq_ignore_ascii_case("IN")) => {
                *i += 1;
                Comparison::NotIn
            }
            other => return Err(invalid(text, format!("unknown comparator '{other}'"))),
        },
        other => return Err(invalid(text, format!("expected a comparator, found {other:?}"))),
    };
    *i += 1;
    Ok(op)
}

fn value(toks: &[Token], i: &mut usize, text: &str) -> Result<SqlValue, MlflowError> {
    let v = match toks.get(*i) {
        Some(Token::Number(n)) => SqlValue::Number(*n),
        Some(Token::Text(t)) => SqlValue::Text(t.clone()),
        Some(Token::Open) => {
            let mut items = Vec::new();
            *i += 1;
            loop {
                match toks.get(*i) {
                    Some(Token::Text(t)) => items.push(t.clone()),
                    Some(Token::Number(n)) => items.push(n.to_string()),
                    _ => return Err(invalid(text, "expected a quoted value in the list")),
                }
                *i += 1;
                match toks.get(*i) {
                    Some(Token::Comma) => *i += 1,
                    Some(Token::Close) => break,
                    _ => return Err(invalid(text, "expected ',' or ')' in the list")),
                }
            }
            SqlValue::List(items)
        }
        other => return Err(invalid(text, format!("expected a value, found {other:?}"))),
    };
    *i += 1;
    Ok(v)
}

/// Which values each kind of key may be compared with, and how.
fn check(
    entity: Entity,
    key: &str,
    op: Comparison,
    v: &SqlValue,
    text: &str,
    numeric: &dyn Fn(&str) -> bool,
) -> Result<(), MlflowError> {
    let numeric_attribute = numeric(key);
    if matches!(op, Comparison::IsNull | Comparison::IsNotNull) {
        return match entity {
            Entity::Tag | Entity::Param => Ok(()),
            _ => Err(invalid(text, "IS NULL / IS NOT NULL is only supported for tags and params")),
        };
    }
    let list_op = matches!(op, Comparison::In | Comparison::NotIn);
    match (entity, v) {
        (_, SqlValue::List(_)) if !list_op => Err(invalid(text, "a list needs IN or NOT IN")),
        (_, _) if list_op && entity != Entity::Attribute => {
            Err(invalid(text, "IN and NOT IN apply to attributes (run_id, run_name, status, ...)"))
        }
        (Entity::Metric, SqlValue::Number(_)) if !matches!(op, Comparison::Like | Comparison::ILike) => Ok(()),
        (Entity::Metric, _) => Err(invalid(text, format!("metric '{key}' must be compared with a number"))),
        (Entity::Attribute, SqlValue::Number(_)) if numeric_attribute => Ok(()),
        (Entity::Attribute, _) if numeric_attribute => {
            Err(invalid(text, format!("attribute '{key}' must be compared with a number")))
        }
        (_, SqlValue::Number(_)) => Err(invalid(text, format!("'{key}' must be compared with a quoted string"))),
        (_, _) if !matches!(op, Comparison::Eq | Comparison::Ne | Comparison::Like | Comparison::ILike) && !list_op => {
            Err(invalid(text, format!("'{key}' takes =, !=, LIKE or ILIKE")))
        }
        _ => Ok(()),
    }
}

/// Parses a `runs/search` filter; empty means no clauses.
pub fn parse_filter(filter: &str) -> Result<Vec<Clause>, MlflowError> {
    parse_clauses(filter, &|k| attribute_column(k).is_some(), &|k| matches!(k, "start_time" | "end_time"))
}

/// Parses a filter whose attributes are those `is_attribute` admits
/// (`numeric` ones compared with numbers).
pub fn parse_clauses(
    filter: &str,
    is_attribute: &dyn Fn(&str) -> bool,
    numeric: &dyn Fn(&str) -> bool,
) -> Result<Vec<Clause>, MlflowError> {
    let toks = tokens(filter)?;
    let mut clauses = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        if !clauses.is_empty() {
            match toks.get(i) {
                Some(Token::Word(w)) if w.eq_ignore_ascii_case("and") => i += 1,
                _ => return Err(invalid(filter, "clauses are joined with AND (OR is not supported)")),
            }
        }
        let (entity, key) = identifier(&toks, &mut i, filter, is_attribute)?;
        let op = comparison(&toks, &mut i, filter)?;
        let value = if matches!(op, Comparison::IsNull | Comparison::IsNotNull) {
            SqlValue::Null
        } else {
            value(&toks, &mut i, filter)?
        };
        check(entity, &key, op, &value, filter, numeric)?;
        clauses.push(Clause { entity, key, op, value });
    }
    Ok(clauses)
}

/// Parses one `order_by` entry: `metrics.acc DESC`, `start_time`, `params.lr ASC`.
pub fn parse_order_by(entry: &str) -> Result<OrderBy, MlflowError> {
    let toks = tokens(entry)?;
    let mut i = 0;
    let (entity, key) = identifier(&toks, &mut i, entry, &|k| attribute_column(k).is_some())?;
    let ascending = match toks.get(i) {
        None => true,
        Some(Token::Word(w)) if w.eq_ignore_ascii_case("asc") => true,
        Some(Token::Word(w)) if w.eq_ignore_ascii_case("desc") => false,
        Some(other) => {
            return Err(MlflowError::InvalidParameter(format!("Invalid order_by clause '{entry}': {other:?}")));
        }
    };
    if toks.len() > i + 1 {
        return Err(MlflowError::InvalidParameter(format!("Invalid order_by clause '{entry}'")));
    }
    Ok(OrderBy { entity, key, ascending })
}

const EXPERIMENT_ATTRIBUTES: &[&str] = &["name", "creation_time", "last_update_time", "experiment_id"];

/// Parses an `experiments/search` filter: `name`, `experiment_id`, the
/// times and `tags.<key>`.
pub fn parse_experiment_filter(filter: &str) -> Result<Vec<Clause>, MlflowError> {
    let clauses = parse_clauses(filter, &|k| EXPERIMENT_ATTRIBUTES.contains(&k), &|k| k.ends_with("_time"))?;
    if clauses.iter().any(|c| !matches!(c.entity, Entity::Tag | Entity::Attribute)) {
        return Err(invalid(filter, "experiments are searched by name, times and tags"));
    }
    Ok(clauses)
}

fn like(pattern: &str, text: &str, fold: bool) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = if fold {
        (pattern.to_lowercase().chars().collect(), text.to_lowercase().chars().collect())
    } else {
        (pattern.chars().collect(), text.chars().collect())
    };
    fn go(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('%', rest)) => (0..=t.len()).any(|k| go(rest, &t[k..])),
            Some(('_', rest)) => !t.is_empty() && go(rest, &t[1..]),
            Some((c, rest)) => t.first() == Some(c) && go(rest, &t[1..]),
        }
    }
    go(&p, &t)
}

pub fn compare_text(op: Comparison, actual: &str, expected: &SqlValue) -> bool {
    match (op, expected) {
        (Comparison::Eq, SqlValue::Text(v)) => actual == v,
        (Comparison::Ne, SqlValue::Text(v)) => actual != v,
        (Comparison::Like, SqlValue::Text(v)) => like(v, actual, false),
        (Comparison::ILike, SqlValue::Text(v)) => like(v, actual, true),
        (Comparison::In, SqlValue::List(vs)) => vs.iter().any(|v| v == actual),
        (Comparison::NotIn, SqlValue::List(vs)) => !vs.iter().any(|v| v == actual),
        _ => false,
    }
}

/// A text clause on a key that may be absent: `IS NULL` and `IS NOT NULL`
/// test its presence, any other comparison fails without a value.
pub fn compare_present(op: Comparison, actual: Option<&str>, expected: &SqlValue) -> bool {
    match (op, actual) {
        (Comparison::IsNull, a) => a.is_none(),
        (Comparison::IsNotNull, a) => a.is_some(),
        (_, Some(a)) => compare_text(op, a, expected),
        (_, None) => false,
    }
}

pub fn compare_number(op: Comparison, actual: f64, expected: &SqlValue) -> bool {
    let SqlValue::Number(v) = expected else { return false };
    match op {
        Comparison::Eq => actual == *v,
        Comparison::Ne => actual != *v,
        Comparison::Lt => actual < *v,
        Comparison::Le => actual <= *v,
        Comparison::Gt => actual > *v,
        Comparison::Ge => actual >= *v,
        _ => false,
    }
}

/// Whether an experiment passes one clause of [`parse_experiment_filter`].
pub fn experiment_admits(e: &tarn_store::mlflow::ExperimentRow, c: &Clause) -> bool {
    if c.entity == Entity::Tag {
        let tag = e.tags.iter().find(|(k, _)| k == &c.key).map(|(_, v)| v.as_str());
        return compare_present(c.op, tag, &c.value);
    }
    match c.key.as_str() {
        "name" => compare_text(c.op, &e.name, &c.value),
        "experiment_id" => compare_text(c.op, &e.experiment_id.to_string(), &c.value),
        "creation_time" => compare_number(c.op, e.creation_time as f64, &c.value),
        _ => compare_number(c.op, e.last_update_time as f64, &c.value),
    }
}

/// Orders experiments by `order_by` entries (`name`, `creation_time`,
/// `last_update_time`, `experiment_id`), then by id descending as MLflow does.
pub fn sort_experiments(
    experiments: &mut [tarn_store::mlflow::ExperimentRow],
    order_by: &[String],
) -> Result<(), MlflowError> {
    let mut keys = Vec::new();
    for entry in order_by {
        let toks = tokens(entry)?;
        let mut i = 0;
        let (_, key) = identifier(&toks, &mut i, entry, &|k| EXPERIMENT_ATTRIBUTES.contains(&k))?;
        let ascending = !matches!(toks.get(i), Some(Token::Word(w)) if w.eq_ignore_ascii_case("desc"));
        keys.push((key, ascending));
    }
    experiments.sort_by(|a, b| {
        for (key, ascending) in &keys {
            let ordering = match key.as_str() {
                "name" => a.name.cmp(&b.name),
                "creation_time" => a.creation_time.cmp(&b.creation_time),
                "last_update_time" => a.last_update_time.cmp(&b.last_update_time),
                _ => a.experiment_id.cmp(&b.experiment_id),
            };
            let ordering = if *ascending { ordering } else { ordering.reverse() };
            if ordering.is_ne() {
                return ordering;
            }
        }
        b.experiment_id.cmp(&a.experiment_id)
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grammar_of_mlflow_filters() {
        let clauses = parse_filter(
            "metrics.acc > 0.8 and params.model = 'cnn' AND tags.`my team` LIKE 'ml-%' \
             and attributes.status != \"FAILED\" and tags.mlflow.runName = 'r1' and run_id IN ('a', 'b')",
        )
        .unwrap();
        let summary: Vec<(Entity, &str, Comparison)> =
            clauses.iter().map(|c| (c.entity, c.key.as_str(), c.op)).collect();
        assert_eq!(
            summary,
            [
                (Entity::Metric, "acc", Comparison::Gt),
                (Entity::Param, "model", Comparison::Eq),
                (Entity::Tag, "my team", Comparison::Like),
                (Entity::Attribute, "status", Comparison::Ne),
                (Entity::Tag, "mlflow.runName", Comparison::Eq),
                (Entity::Attribute, "run_id", Comparison::In),
            ]
        );
        assert_eq!(clauses[0].value, SqlValue::Number(0.8));
        assert_eq!(clauses[5].value, SqlValue::List(vec!["a".into(), "b".into()]));
        assert_eq!(parse_filter(" ").unwrap(), vec![]);
        assert_eq!(parse_filter("metrics.loss <= -1.5e-3").unwrap()[0].value, SqlValue::Number(-1.5e-3));
    }

    #[test]
    fn bad_filters_are_refused() {
        for bad in [
            "metrics.acc > 'high'",
            "params.p > 3",
            "metrics.acc > 0.8 or params.p = 'a'",
            "nonsense.x = 'a'",
            "attributes.colour = 'red'",
            "params.p = 'unclosed",
            "tags.t IN ('a')",
            "metrics.m IS NULL",
            "tags.t IS 'a'",
        ] {
            assert!(matches!(parse_filter(bad), Err(MlflowError::InvalidParameter(_))), "{bad}");
        }
    }

    #[test]
    fn null_tests_on_tags_and_params() {
        let clauses = parse_filter("tags.t IS NULL and params.p is not null").unwrap();
        assert_eq!((clauses[0].op, &clauses[0].value), (Comparison::IsNull, &SqlValue::Null));
        assert_eq!((clauses[1].entity, clauses[1].op), (Entity::Param, Comparison::IsNotNull));
        assert!(compare_present(Comparison::IsNull, None, &SqlValue::Null));
        assert!(!compare_present(Comparison::IsNotNull, None, &SqlValue::Null));
        assert!(!compare_present(Comparison::Eq, None, &SqlValue::Text("a".into())));
    }

    #[test]
    fn order_by_entries() {
        assert_eq!(
            parse_order_by("metrics.`val loss` DESC").unwrap(),
            OrderBy { entity: Entity::Metric, key: "val loss".into(), ascending: false }
        );
        assert!(parse_order_by("start_time").unwrap().ascending);
        assert!(parse_order_by("metrics.acc sideways").is_err());
    }

    #[test]
    fn experiment_filters_match_names_and_tags() {
        let e = tarn_store::mlflow::ExperimentRow {
            experiment_id: 3,
            name: "Fraud-Model".into(),
            artifact_location: String::new(),
            lifecycle_stage: "active".into(),
            creation_time: 10,
            last_update_time: 20,
            creator: String::new(),
            tags: vec![("team".into(), "risk".into())],
        };
        let admits = |f: &str| parse_experiment_filter(f).unwrap().iter().all(|c| experiment_admits(&e, c));
        assert!(admits("name LIKE 'Fraud%'"));
        assert!(!admits("name LIKE 'fraud%'"));
        assert!(admits("name ILIKE 'fraud%' and tags.team = 'risk'"));
        assert!(admits("creation_time > 5"));
        assert!(!admits("tags.team != 'risk'"));
    }
}
