//! Pipeline definitions in SQL: this module owns reading the dataset and
//! flow statements of a `.sql` file or SQL notebook cell into the graph
//! ([`definitions`]), the `SET` statements among them ([`settings`]), and
//! the rewriting of a flow's query for execution ([`rewrite_references`]).
//! It scans with `tarn_sqltext` and parses only the statement heads and
//! clauses below; queries are kept as text for the engine.
//!
//! Statements (keywords in any case; `OR REFRESH`, or `OR REPLACE`, may
//! follow `CREATE`, and `PRIVATE` may precede the kind, which the graph does
//! not record):
//! - `CREATE MATERIALIZED VIEW`, `CREATE STREAMING TABLE` (query-less, with
//!   `AS query`, or with `FLOW AUTO CDC ...`), the legacy `CREATE LIVE TABLE`
//!   (a streaming table when its query reads a stream) and `CREATE STREAMING
//!   LIVE TABLE`, each with an optional `(columns and constraints)` list,
//!   `COMMENT`, `PARTITIONED BY`, `CLUSTER BY` and `TBLPROPERTIES`;
//! - `CREATE [TEMPORARY | TEMP] [LIVE] VIEW name [(constraints)] [COMMENT]
//!   AS query`;
//! - `CREATE FLOW name [COMMENT] AS INSERT INTO [ONCE] target BY NAME query`
//!   and `CREATE FLOW name AS AUTO CDC [ONCE] INTO target ...`;
//! - the legacy `APPLY CHANGES INTO target ...`, a flow named as its target;
//! - `SET key = value`, which defines nothing (see [`settings`]).
//!
//! Anything else, `USE` and `SET CATALOG | SCHEMA` included (tarn does not
//! yet qualify later names by them), is a `ParseException` at the line of the
//! token where reading stopped.
//!
//! Names are kept as written, parts joined by `.`, except that a backticked
//! part loses its backticks when it is a plain identifier (ASCII letters,
//! digits and `_`, not starting with a digit) and is otherwise kept quoted
//! (`` `raw-events` ``), and a two-part `LIVE.x` is `x`. Queries,
//! conditions, expressions and column definitions are kept as written, from
//! their first token to their last.

mod cursor;
mod dataset;
mod flow;
mod refs;

use cursor::{Cursor, ParseError, Parsed};

use crate::graph::{Dataset, DefinitionError, Definitions, Flow, Location};

/// What one statement defines.
#[derive(Debug, Default)]
struct Defined {
    dataset: Option<Dataset>,
    flow: Option<Flow>,
}

const STATEMENTS: &str = "CREATE MATERIALIZED VIEW, CREATE STREAMING TABLE, CREATE LIVE TABLE, CREATE VIEW, \
                          CREATE FLOW, APPLY CHANGES INTO or SET";

/// The datasets, flows and errors defined by the SQL `text`, which is the
/// file `path` (or a notebook cell of it). Lines are counted from
/// `first_line`: 1 for a file, the cell's first line for a notebook cell.
/// One statement's error does not stop the others from being read.
pub fn definitions(path: &str, text: &str, first_line: u32) -> Definitions {
    let mut defs = Definitions::default();
    for statement in tarn_sqltext::split_statements(text) {
        let base = (statement.as_ptr() as usize).saturating_sub(text.as_ptr() as usize);
        let location =
            |at: usize| Location { path: path.to_string(), line: Some(line_at(text, base + at, first_line)) };
        match parse(statement) {
            Ok((defined, at)) => {
                defs.datasets.extend(defined.dataset.map(|d| Dataset { location: location(at), ..d }));
                defs.flows.extend(defined.flow.map(|f| Flow { location: location(at), ..f }));
            }
            Err(e) => defs.errors.push(DefinitionError {
                message: e.message,
                class: Some("ParseException".to_string()),
                location: Some(location(e.at)),
            }),
        }
    }
    defs
}

/// The `SET key = value` statements of `text`, in order: the key as
/// written (one pair of backticks around it removed), the value as written,
/// or a lone string's value.
pub fn settings(text: &str) -> Vec<(String, String)> {
    let mut settings = Vec::new();
    for statement in tarn_sqltext::split_statements(text) {
        let Ok(mut c) = Cursor::new(statement) else { continue };
        if !c.eat(&["SET"]) {
            continue;
        }
        let key = c.until(|c| c.at_punct('=')).text_all();
        if key.is_empty() || !c.punct('=') {
            continue;
        }
        let key =
            key.strip_prefix('`').and_then(|k| k.strip_suffix('`')).map_or(key.to_string(), |k| k.replace("``", "`"));
        settings.push((key, c.literal()));
    }
    settings
}

/// `query` rewritten for execution: `LIVE.x` and table names after `FROM`
/// and `JOIN` become `resolve(x)` (the full name) when it is `Some`;
/// `STREAM(x)`, `STREAM(LIVE.x)` and `STREAM x` become `stream(x)` (where to
/// read x's new rows), else `resolve(x)`, else `x` as written. Every other
/// byte, strings, comments and spacing included, is kept; a query whose
/// quotes or parentheses do not close comes back unchanged. The i-th file
/// source (`STREAM read_files(...)`, `cloud_files(...)`, a batch
/// `read_files(...)`) becomes `files(i)`, the view of the flow's i-th
/// [`FileSource`](crate::graph::FileSource), when it is `Some`.
pub fn rewrite_references(
    query: &str,
    resolve: &dyn Fn(&str) -> Option<String>,
    stream: &dyn Fn(&str) -> Option<String>,
    files: &dyn Fn(usize) -> Option<String>,
) -> String {
    refs::rewrite(query, resolve, stream, files)
}

/// One statement: what it defines and where its first token is.
fn parse(statement: &str) -> Parsed<(Defined, usize)> {
    let mut c = Cursor::new(statement)?;
    let at = c.offset();
    let defined = if c.eat(&["CREATE"]) {
        let _ = c.eat(&["OR", "REFRESH"]) || c.eat(&["OR", "REPLACE"]);
        if c.eat(&["FLOW"]) {
            Defined { dataset: None, flow: Some(flow::create_flow(&mut c)?) }
        } else {
            dataset::create(&mut c)?
        }
    } else if c.at(&["APPLY", "CHANGES"]) {
        Defined { dataset: None, flow: Some(flow::apply_changes(&mut c)?) }
    } else if c.eat(&["SET"]) {
        if c.at(&["CATALOG"]) || c.at(&["SCHEMA"]) || c.at(&["DATABASE"]) {
            return Err(unsupported_use(&c));
        }
        Defined::default()
    } else if c.at(&["USE"]) {
        return Err(unsupported_use(&c));
    } else {
        return Err(c.error(STATEMENTS));
    };
    Ok((defined, at))
}

fn unsupported_use(c: &Cursor) -> ParseError {
    let message = "USE and SET CATALOG/SCHEMA are not supported in pipeline SQL: qualify the names, or set the \
                   pipeline's catalog and schema";
    ParseError { message: message.to_string(), at: c.offset() }
}

/// The line of byte `at` of `text`, whose first line is `first_line`.
fn line_at(text: &str, at: usize, first_line: u32) -> u32 {
    let breaks = text.get(..at).unwrap_or(text).matches('\n').count();
    first_line.saturating_add(u32::try_from(breaks).unwrap_or(u32::MAX))
}
