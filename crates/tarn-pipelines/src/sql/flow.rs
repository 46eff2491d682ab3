//! Flows: the flow of a dataset's query, `CREATE FLOW ... AS INSERT INTO`,
//! and the AUTO CDC forms (`CREATE FLOW ... AS AUTO CDC INTO`, `CREATE
//! STREAMING TABLE ... FLOW AUTO CDC`, the legacy `APPLY CHANGES INTO`).

use super::cursor::{Cursor, ParseError, Parsed};
use super::refs;
use crate::graph::{Cdc, FileSource, Flow, Input, Query};

/// The flow writing `query` (at byte `at` of the statement) to `target`.
pub(super) fn query_flow(name: &str, target: &str, query: &str, at: usize) -> Parsed<Flow> {
    let scan = refs::scan(query).map_err(|e| ParseError { at: at + e.at, ..e })?;
    Ok(Flow {
        name: name.to_string(),
        target: target.to_string(),
        query: Some(Query::Sql(query.to_string())),
        inputs: scan.inputs(),
        sources: scan
            .sources
            .into_iter()
            .enumerate()
            .map(|(i, source)| FileSource { view: Some(files_view(name, i)), ..source })
            .collect(),
        once: false,
        cdc: None,
        location: Default::default(),
    })
}

/// The view a flow's i-th file source is read through; named after the
/// flow, as a flow also reads the file sources of the views it reads.
fn files_view(flow: &str, i: usize) -> String {
    format!("__tarn_files__{}_{i}", crate::flows::relation::view_part(flow))
}

/// `CREATE FLOW name [COMMENT '...'] AS INSERT INTO [ONCE] target BY NAME
/// query` or `... AS AUTO CDC [ONCE] INTO target ...`, after `CREATE [OR
/// REFRESH] FLOW`.
pub(super) fn create_flow(c: &mut Cursor) -> Parsed<Flow> {
    let name = c.name()?.text;
    if c.eat(&["COMMENT"]) {
        c.string()?;
    }
    c.expect(&["AS"])?;
    if c.eat(&["INSERT", "INTO"]) {
        let once = c.eat(&["ONCE"]);
        let target = c.name()?.text;
        c.expect(&["BY", "NAME"])?;
        let (query, at) = c.rest("a query")?;
        return Ok(Flow { once, ..query_flow(&name, &target, query, at)? });
    }
    if c.eat(&["AUTO", "CDC"]) {
        let once = c.eat(&["ONCE"]);
        c.expect(&["INTO"])?;
        let target = c.name()?.text;
        return Ok(Flow { once, ..auto_cdc(c, &name, &target)? });
    }
    Err(c.error("INSERT INTO or AUTO CDC"))
}

/// `APPLY CHANGES INTO [LIVE.]target FROM ...`: a flow named as its target.
pub(super) fn apply_changes(c: &mut Cursor) -> Parsed<Flow> {
    c.expect(&["APPLY", "CHANGES", "INTO"])?;
    let target = c.name()?.text;
    auto_cdc(c, &target, &target)
}

/// Clause keywords of AUTO CDC, by which an expression before them ends.
const CLAUSES: &[&[&str]] = &[
    &["IGNORE", "NULL"],
    &["APPLY", "AS"],
    &["SEQUENCE", "BY"],
    &["SYSTEM", "SEQUENCE"],
    &["COLUMNS"],
    &["STORED", "AS"],
    &["TRACK", "HISTORY"],
];

/// `FROM source KEYS (k, ...)` and the clauses after it, in any order, up to
/// the end of the statement.
pub(super) fn auto_cdc(c: &mut Cursor, name: &str, target: &str) -> Parsed<Flow> {
    c.expect(&["FROM"])?;
    let source = cdc_source(c)?;
    c.expect(&["KEYS"])?;
    let keys = c.names()?;
    let mut cdc = Cdc {
        source: source.clone(),
        keys,
        sequence_by: String::new(),
        apply_as_deletes: None,
        apply_as_truncates: None,
        column_list: None,
        except_column_list: None,
        stored_as_scd_type: 1,
        track_history_column_list: None,
        track_history_except_column_list: None,
        ignore_null_updates: false,
    };
    while !c.at_end() {
        cdc_clause(c, &mut cdc)?;
    }
    if cdc.sequence_by.is_empty() {
        return Err(c.error("SEQUENCE BY"));
    }
    Ok(Flow {
        name: name.to_string(),
        target: target.to_string(),
        query: None,
        inputs: vec![Input { name: source, streaming: true, skip_change_commits: false }],
        sources: Vec::new(),
        once: false,
        cdc: Some(cdc),
        location: Default::default(),
    })
}

/// `STREAM(x)`, `STREAM x` or `x`, `LIVE.` left out.
fn cdc_source(c: &mut Cursor) -> Parsed<String> {
    if c.eat(&["STREAM"]) && c.at_punct('(') {
        let mut inner = c.group_cursor()?;
        let name = inner.name()?.text;
        inner.finish("')'")?;
        return Ok(name);
    }
    Ok(c.name()?.text)
}

/// One clause after `KEYS (...)`.
fn cdc_clause(c: &mut Cursor, cdc: &mut Cdc) -> Parsed<()> {
    if c.eat(&["IGNORE", "NULL", "UPDATES"]) {
        if c.at(&["ON"]) {
            return Err(c.error("a clause after IGNORE NULL UPDATES (IGNORE NULL UPDATES ON columns is not supported)"));
        }
        cdc.ignore_null_updates = true;
    } else if c.eat(&["APPLY", "AS", "DELETE", "WHEN"]) {
        cdc.apply_as_deletes = Some(expression(c)?);
    } else if c.eat(&["APPLY", "AS", "TRUNCATE", "WHEN"]) {
        cdc.apply_as_truncates = Some(expression(c)?);
    } else if c.eat(&["SEQUENCE", "BY"]) {
        cdc.sequence_by = expression(c)?;
    } else if c.eat(&["COLUMNS"]) {
        (cdc.column_list, cdc.except_column_list) = columns(c)?;
    } else if c.eat(&["STORED", "AS", "SCD", "TYPE"]) {
        cdc.stored_as_scd_type = match c.peek().map(|t| t.text) {
            Some("1") => 1,
            Some("2") => 2,
            _ => return Err(c.error("1 or 2")),
        };
        c.bump();
    } else if c.eat(&["TRACK", "HISTORY", "ON"]) {
        (cdc.track_history_column_list, cdc.track_history_except_column_list) = columns(c)?;
    } else {
        return Err(c.error(
            "IGNORE NULL UPDATES, APPLY AS DELETE WHEN, APPLY AS TRUNCATE WHEN, SEQUENCE BY, COLUMNS, \
             STORED AS SCD TYPE or TRACK HISTORY ON",
        ));
    }
    Ok(())
}

/// An expression as written, up to the next clause.
fn expression(c: &mut Cursor) -> Parsed<String> {
    let expression = c.until(|c| CLAUSES.iter().any(|words| c.at(words)));
    if expression.at_end() {
        return Err(c.error("an expression"));
    }
    Ok(expression.text_all().to_string())
}

/// `a, b`, `(a, b)` or `* EXCEPT (a, b)`: (the columns, the columns excepted).
type Columns = (Option<Vec<String>>, Option<Vec<String>>);

fn columns(c: &mut Cursor) -> Parsed<Columns> {
    if c.punct('*') {
        c.expect(&["EXCEPT"])?;
        return Ok((None, Some(c.names()?)));
    }
    if c.at(&["TO", "UPDATE"]) {
        return Err(c.error("a column list (COLUMNS TO UPDATE is not supported)"));
    }
    Ok((Some(c.names()?), None))
}
