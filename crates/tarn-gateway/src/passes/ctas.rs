//! `CREATE TABLE ... AS SELECT` as Databricks users write it. Sail 0.7.2
//! fails a Delta CTAS whose query has nullable columns ("Delta table already
//! exists with different metadata"), as it fails `saveAsTable`; so a CTAS is
//! split the same way: the query's schema is asked for, the table created
//! with it, and what remains to run is an `INSERT` of the query.
//!
//! The third pass of the pipeline; [`split`] also serves the SQL tarn runs
//! on an engine itself ([`crate::connect`]).

use spark_connect_proto::{Command, ExecutePlanRequest, command, plan, relation};

use super::save_as_table::struct_ddl;
use super::{EngineCalls, Outcome, PassContext};
use crate::{EngineCallError, GatewayError};

/// A CTAS this module knows how to split. Anything else (column lists,
/// `LOCATION`, `CLUSTER BY`, other formats) goes to the engine unchanged.
#[derive(Debug, PartialEq)]
struct Ctas<'a> {
    table: &'a str,
    or_replace: bool,
    if_not_exists: bool,
    /// `PARTITIONED BY (...)`, `COMMENT '...'` and `TBLPROPERTIES (...)` as written.
    clauses: Vec<&'a str>,
    query: &'a str,
}

/// One token of the statement's head: its text and where it ends.
fn tokens(sql: &str) -> Vec<(&str, usize)> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        match bytes[i] {
            b if b.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            b'\'' | b'"' => i = quoted_end(bytes, i),
            b'(' => i = group_end(bytes, i),
            b if is_word(b) || b == b'`' => i = name_end(bytes, i),
            _ => i += 1,
        }
        let end = i.min(bytes.len());
        out.push((sql.get(start..end).unwrap_or_default(), end));
    }
    out
}

/// Where a possibly dotted, possibly backticked name starting at `i` ends.
fn name_end(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() {
        match bytes[i] {
            b'`' => i = quoted_end(bytes, i),
            b if is_word(b) || b == b'.' => i += 1,
            _ => break,
        }
    }
    i.min(bytes.len())
}

/// Where the string or quoted name opening at `i` ends (just past its
/// closing quote); a backslash escapes the next character in strings.
fn quoted_end(bytes: &[u8], mut i: usize) -> usize {
    let quote = bytes[i];
    i += 1;
    while i < bytes.len() && bytes[i] != quote {
        i += if bytes[i] == b'\\' && quote != b'`' { 2 } else { 1 };
    }
    (i + 1).min(bytes.len())
}

/// Where the parenthesised group opening at `i` ends, quotes inside it skipped.
fn group_end(bytes: &[u8], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' | b'"' | b'`' => {
                i = quoted_end(bytes, i);
                continue;
            }
            b'(' => depth += 1,
            b')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    bytes.len()
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn parse(sql: &str) -> Option<Ctas<'_>> {
    let toks = tokens(sql);
    let word = |i: usize, w: &str| toks.get(i).is_some_and(|(t, _)| t.eq_ignore_ascii_case(w));
    if !word(0, "CREATE") {
        return None;
    }
    let mut i = 1;
    let or_replace = word(i, "OR") && word(i + 1, "REPLACE");
    if or_replace {
        i += 2;
    }
    if !word(i, "TABLE") {
        return None;
    }
    i += 1;
    let if_not_exists = word(i, "IF") && word(i + 1, "NOT") && word(i + 2, "EXISTS");
    if if_not_exists {
        i += 3;
    }
    let table = toks.get(i)?.0;
    i += 1;
    let mut clauses = Vec::new();
    loop {
        if word(i, "AS") {
            let start = toks.get(i)?.1;
            let query = sql.get(start..)?.trim().trim_end_matches(';').trim();
            return (!query.is_empty()).then_some(Ctas { table, or_replace, if_not_exists, clauses, query });
        } else if word(i, "USING") && word(i + 1, "DELTA") {
            i += 2;
        } else if word(i, "PARTITIONED") && word(i + 1, "BY") && toks.get(i + 2)?.0.starts_with('(') {
            clauses.push(span(sql, &toks, i, i + 2)?);
            i += 3;
        } else if (word(i, "COMMENT") && toks.get(i + 1)?.0.starts_with('\''))
            || (word(i, "TBLPROPERTIES") && toks.get(i + 1)?.0.starts_with('('))
        {
            clauses.push(span(sql, &toks, i, i + 1)?);
            i += 2;
        } else {
            return None;
        }
    }
}

/// The text from token `from` to the end of token `to`.
fn span<'a>(sql: &'a str, toks: &[(&'a str, usize)], from: usize, to: usize) -> Option<&'a str> {
    let (first, first_end) = toks.get(from)?;
    let start = first_end - first.len();
    sql.get(start..toks.get(to)?.1)
}

/// Splits a Delta CTAS on `engine`: creates the table from the query's
/// schema in the caller's session and returns the `INSERT` that remains to
/// run. `None` when `sql` is not a CTAS this knows, or the table exists and
/// the statement says `IF NOT EXISTS` (the engine then runs it as written).
/// An error is the engine's answer, for the client.
pub(crate) async fn split(engine: &dyn EngineCalls, sql: &str) -> Result<Option<String>, EngineCallError> {
    let Some(ctas) = parse(sql) else { return Ok(None) };
    let query = spark_connect_proto::Relation {
        common: None,
        rel_type: Some(spark_connect_proto::relation::RelType::Sql(spark_connect_proto::Sql {
            query: ctas.query.to_string(),
            ..Default::default()
        })),
    };
    let schema = engine.analyze_schema(query).await?;
    let Some(columns) = schema.as_ref().and_then(struct_ddl) else { return Ok(None) };
    let mut create = format!("CREATE TABLE {} ({columns}) USING DELTA", ctas.table);
    for clause in &ctas.clauses {
        create.push(' ');
        create.push_str(clause);
    }
    match engine.run_sql(create).await {
        Ok(()) => Ok(Some(format!("INSERT INTO {} {}", ctas.table, ctas.query))),
        Err(e) if e.already_exists() => {
            if ctas.or_replace {
                Ok(Some(format!("INSERT OVERWRITE TABLE {} {}", ctas.table, ctas.query)))
            } else if ctas.if_not_exists {
                Ok(None)
            } else {
                Err(e)
            }
        }
        Err(e) => Err(e),
    }
}

/// The CTAS pass: a `spark.sql` CTAS becomes its `INSERT` once the table is
/// created on the engine.
pub(crate) async fn pass(req: &mut ExecutePlanRequest, cx: &mut PassContext<'_>) -> Result<Outcome, GatewayError> {
    let Some(plan::OpType::Command(Command { command_type: Some(command::CommandType::SqlCommand(cmd)) })) =
        req.plan.as_mut().and_then(|p| p.op_type.as_mut())
    else {
        return Ok(Outcome::Unchanged);
    };
    #[allow(deprecated)]
    let text = match cmd.input.as_mut().and_then(|r| r.rel_type.as_mut()) {
        Some(relation::RelType::Sql(sql)) => &mut sql.query,
        _ => &mut cmd.sql,
    };
    match split(cx.engine, text).await.map_err(GatewayError::Ctas)? {
        Some(insert) => {
            *text = insert;
            Ok(Outcome::Changed)
        }
        None => Ok(Outcome::Unchanged),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctas_forms_are_recognised() {
        let c = parse(
            "create or replace table main.s.`t 1` USING delta PARTITIONED BY (day, `k`) COMMENT 'it\\'s' \
             TBLPROPERTIES ('a' = 'x\\')') AS SELECT * FROM src WHERE x = '(';",
        )
        .unwrap();
        assert_eq!(c.table, "main.s.`t 1`");
        assert!(c.or_replace && !c.if_not_exists);
        assert_eq!(c.clauses, ["PARTITIONED BY (day, `k`)", "COMMENT 'it\\'s'", "TBLPROPERTIES ('a' = 'x\\')')"]);
        assert_eq!(c.query, "SELECT * FROM src WHERE x = '('");
        let plain = parse("CREATE TABLE IF NOT EXISTS t AS (SELECT 1 AS a)").unwrap();
        assert_eq!((plain.table, plain.if_not_exists, plain.query), ("t", true, "(SELECT 1 AS a)"));
        for other in [
            "CREATE TABLE t (a INT) USING DELTA",
            "CREATE TABLE t USING parquet AS SELECT 1",
            "CREATE TABLE t LOCATION '/x' AS SELECT 1",
            "CREATE VIEW v AS SELECT 1",
            "SELECT 1",
            "CREATE TABLE t AS",
        ] {
            assert_eq!(parse(other), None, "{other}");
        }
    }
}
