//! `CREATE TABLE ... AS SELECT` as Databricks users write it. Sail 0.7.2
//! fails a Delta CTAS whose query has nullable columns ("Delta table already
//! exists with different metadata"), as it fails `saveAsTable`; so a CTAS is
//! split the same way: the query's schema is asked for, the table created
//! with it, and what remains to run is an `INSERT` of the query.
//!
//! The third pass of the pipeline; [`split`] also serves the SQL tarn runs
//! on an engine itself ([`crate::connect`]).

use spark_connect_proto::{Command, ExecutePlanRequest, command, plan, relation};
use tarn_sqltext::{Kind, Token};

use super::save_as_table::struct_ddl;
use super::{EngineCalls, Outcome, PassContext};
use crate::{EngineCallError, GatewayError};

/// A CTAS this module knows how to split. Anything else (column lists,
/// `LOCATION`, other formats) goes to the engine unchanged. `CLUSTER BY`
/// (liquid clustering, which Sail refuses) is accepted and left out: it
/// lays files out, it changes no result, and tarn does not cluster.
#[derive(Debug, PartialEq)]
struct Ctas<'a> {
    table: &'a str,
    or_replace: bool,
    if_not_exists: bool,
    /// `PARTITIONED BY (...)`, `COMMENT '...'` and `TBLPROPERTIES (...)` as written.
    clauses: Vec<&'a str>,
    query: &'a str,
}

/// One token of the statement's head: its text and where it ends. A
/// possibly dotted, possibly backticked name is one token, and so is a
/// parenthesised group; comments are skipped (`tarn_sqltext` scans the text).
fn tokens(sql: &str) -> Vec<(&str, usize)> {
    let scanned: Vec<Token> = tarn_sqltext::tokens(sql).filter(|t| !t.kind.is_comment()).collect();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(first) = scanned.get(i) {
        let last = match first.kind {
            Kind::Whitespace => {
                i += 1;
                continue;
            }
            Kind::Word | Kind::Number | Kind::QuotedIdentifier => name_end(&scanned, i),
            Kind::Punct if first.is_punct('(') => group_end(&scanned, i),
            _ => i,
        };
        let end = scanned.get(last).map_or(sql.len(), Token::end);
        out.push((sql.get(first.start..end).unwrap_or_default(), end));
        i = last + 1;
    }
    out
}

/// The last token of the name starting at `i`: names and dots that touch.
fn name_end(scanned: &[Token], mut i: usize) -> usize {
    while let Some(next) = scanned.get(i + 1) {
        let part = matches!(next.kind, Kind::Word | Kind::Number | Kind::QuotedIdentifier) || next.is_punct('.');
        if !part || next.start != scanned[i].end() {
            break;
        }
        i += 1;
    }
    i
}

/// The `)` closing the group opening at `i` (the last token when none does).
fn group_end(scanned: &[Token], i: usize) -> usize {
    let mut depth = 0usize;
    for (at, token) in scanned.iter().enumerate().skip(i) {
        if token.is_punct('(') {
            depth += 1;
        } else if token.is_punct(')') {
            depth = depth.saturating_sub(1);
            if depth == 0 {
                return at;
            }
        }
    }
    scanned.len().saturating_sub(1)
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
            let [query] = tarn_sqltext::split_statements(sql.get(start..)?)[..] else { return None };
            return Some(Ctas { table, or_replace, if_not_exists, clauses, query });
        } else if word(i, "USING") && word(i + 1, "DELTA") {
            i += 2;
        } else if word(i, "CLUSTER")
            && word(i + 1, "BY")
            && (toks.get(i + 2)?.0.starts_with('(') || word(i + 2, "AUTO") || word(i + 2, "NONE"))
        {
            i += 3;
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
    if let Some(create) = replace_as_create(sql) {
        return Ok(Some(create));
    }
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

/// `CREATE OR REPLACE TABLE t (columns) ...` without a query, as `CREATE
/// TABLE`: the engine's catalog refuses `REPLACE`, and tarn-lake replaces
/// an existing table before the engine sees the statement, so one that
/// reaches the engine names a table that is not there.
fn replace_as_create(sql: &str) -> Option<String> {
    let toks = tokens(sql);
    let word = |i: usize, w: &str| toks.get(i).is_some_and(|(t, _)| t.eq_ignore_ascii_case(w));
    let head = word(0, "CREATE") && word(1, "OR") && word(2, "REPLACE") && word(3, "TABLE");
    let columns = toks.get(5).is_some_and(|(t, _)| t.starts_with('('));
    if !head || !columns || toks.iter().any(|(t, _)| t.eq_ignore_ascii_case("AS")) {
        return None;
    }
    let after_replace = toks.get(2)?.1;
    Some(format!("CREATE{}", sql.get(after_replace..)?))
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
        let commented = parse("CREATE TABLE t -- it's (a note\n/* ( */ COMMENT 'a;b' AS SELECT 1; -- done").unwrap();
        assert_eq!((commented.table, commented.clauses, commented.query), ("t", vec!["COMMENT 'a;b'"], "SELECT 1"));
        let clustered =
            parse("create or replace table t using delta cluster by (a, b) as select 1 as a, 2 as b").unwrap();
        assert_eq!((clustered.table, clustered.clauses.len(), clustered.query), ("t", 0, "select 1 as a, 2 as b"));
        assert!(parse("CREATE TABLE t CLUSTER BY AUTO AS SELECT 1").is_some());
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

    #[test]
    fn replacing_a_missing_table_creates_it() {
        assert_eq!(
            replace_as_create("create or replace table `s`.`t` (`a` bigint, b string) using delta COMMENT 'x'")
                .as_deref(),
            Some("CREATE table `s`.`t` (`a` bigint, b string) using delta COMMENT 'x'")
        );
        for other in [
            "CREATE OR REPLACE TABLE t AS SELECT 1",
            "CREATE OR REPLACE TABLE t (a INT) AS SELECT 1",
            "CREATE TABLE t (a INT)",
            "CREATE OR REPLACE VIEW v (a) AS SELECT 1",
        ] {
            assert_eq!(replace_as_create(other), None, "{other}");
        }
    }
}
