//! `CREATE [OR REFRESH] ... MATERIALIZED VIEW | STREAMING TABLE | LIVE TABLE
//! | VIEW`: the dataset, its column list and expectations, its clauses, and
//! the flow of its query.

use serde_json::{Map, Value};

use super::Defined;
use super::cursor::{Cursor, Parsed};
use super::flow;
use crate::graph::{Action, Dataset, DatasetKind, Expectation, Flow};

/// The statement after `CREATE [OR REFRESH]`.
pub(super) fn create(c: &mut Cursor) -> Parsed<Defined> {
    let (kind, legacy) = head(c)?;
    let mut dataset = Dataset {
        name: c.name()?.text,
        kind,
        comment: None,
        table_properties: Map::new(),
        partition_cols: Vec::new(),
        cluster_by: Vec::new(),
        schema: None,
        expectations: Vec::new(),
        location: Default::default(),
    };
    if c.at_punct('(') {
        columns(c, &mut dataset)?;
    }
    clauses(c, &mut dataset)?;
    let flow = body(c, &dataset)?;
    if legacy && flow.as_ref().is_some_and(|f| !f.sources.is_empty() || f.inputs.iter().any(|i| i.streaming)) {
        dataset.kind = DatasetKind::StreamingTable;
    }
    Ok(Defined { dataset: Some(dataset), flow })
}

const VIEWS: &[&[&str]] = &[
    &["VIEW"],
    &["LIVE", "VIEW"],
    &["TEMPORARY", "VIEW"],
    &["TEMPORARY", "LIVE", "VIEW"],
    &["TEMP", "VIEW"],
    &["TEMP", "LIVE", "VIEW"],
];

/// The kind, and whether it is the legacy `LIVE TABLE` (a materialized
/// view unless its query reads a stream).
fn head(c: &mut Cursor) -> Parsed<(DatasetKind, bool)> {
    c.eat(&["PRIVATE"]);
    if c.eat(&["MATERIALIZED", "VIEW"]) {
        Ok((DatasetKind::MaterializedView, false))
    } else if c.eat(&["STREAMING", "TABLE"]) || c.eat(&["STREAMING", "LIVE", "TABLE"]) {
        Ok((DatasetKind::StreamingTable, false))
    } else if c.eat(&["LIVE", "TABLE"]) {
        Ok((DatasetKind::MaterializedView, true))
    } else if VIEWS.iter().any(|words| c.eat(words)) {
        Ok((DatasetKind::View, false))
    } else {
        Err(c.error("MATERIALIZED VIEW, STREAMING TABLE, LIVE TABLE, [TEMPORARY] VIEW or FLOW"))
    }
}

/// `AS query`; for a streaming table also `FLOW AUTO CDC ...` or nothing.
fn body(c: &mut Cursor, dataset: &Dataset) -> Parsed<Option<Flow>> {
    let name = &dataset.name;
    if c.eat(&["AS"]) {
        let (query, at) = c.rest("a query")?;
        return Ok(Some(flow::query_flow(name, name, query, at)?));
    }
    let wanted = match dataset.kind {
        DatasetKind::View => "COMMENT or AS",
        DatasetKind::MaterializedView => "COMMENT, PARTITIONED BY, CLUSTER BY, TBLPROPERTIES or AS",
        DatasetKind::StreamingTable => {
            if c.eat(&["FLOW", "AUTO", "CDC"]) {
                return Ok(Some(flow::auto_cdc(c, name, name)?));
            }
            "COMMENT, PARTITIONED BY, CLUSTER BY, TBLPROPERTIES, AS, FLOW AUTO CDC or the end of the statement"
        }
    };
    if dataset.kind == DatasetKind::StreamingTable && c.at_end() {
        return Ok(None);
    }
    Err(c.error(wanted))
}

/// `(column definitions and constraints)`: the columns become the schema
/// (as written), `CONSTRAINT name EXPECT (...)` an expectation. Other
/// constraints (`PRIMARY KEY`, `FOREIGN KEY`, `CHECK`) are informational
/// here and left out.
fn columns(c: &mut Cursor, dataset: &mut Dataset) -> Parsed<()> {
    let mut columns = Vec::new();
    for mut item in c.list()? {
        let named = item.eat(&["CONSTRAINT"]);
        if named {
            let name = item.part()?;
            if item.eat(&["EXPECT"]) {
                dataset.expectations.push(expectation(&mut item, name)?);
                continue;
            }
        }
        let check = item.at(&["CHECK"]) && item.peek_at(1).is_some_and(|t| t.is_punct('('));
        if check || item.at(&["PRIMARY", "KEY"]) || item.at(&["FOREIGN", "KEY"]) {
            continue;
        } else if named {
            return Err(item.error("EXPECT, PRIMARY KEY, FOREIGN KEY or CHECK"));
        } else if !item.at_name() {
            return Err(item.error("a column definition or CONSTRAINT"));
        }
        columns.push(item.text_all());
    }
    if !columns.is_empty() {
        dataset.schema = Some(columns.join(", "));
    }
    Ok(())
}

/// `EXPECT (condition) [ON VIOLATION DROP ROW | ON VIOLATION FAIL UPDATE]`,
/// after `EXPECT`.
fn expectation(item: &mut Cursor, name: String) -> Parsed<Expectation> {
    let condition = item.group()?.to_string();
    if condition.is_empty() {
        return Err(item.error("a condition inside EXPECT ( )"));
    }
    let action = if item.eat(&["ON", "VIOLATION"]) {
        if item.eat(&["DROP", "ROW"]) {
            Action::Drop
        } else if item.eat(&["FAIL", "UPDATE"]) {
            Action::Fail
        } else {
            return Err(item.error("DROP ROW or FAIL UPDATE"));
        }
    } else {
        Action::Warn
    };
    item.finish("ON VIOLATION, ',' or ')'")?;
    Ok(Expectation { name, condition, action })
}

/// `COMMENT`, `PARTITIONED BY`, `CLUSTER BY` and `TBLPROPERTIES`, in any
/// order (a view takes only `COMMENT`). `CLUSTER BY AUTO` and `CLUSTER BY
/// NONE` leave `cluster_by` empty.
fn clauses(c: &mut Cursor, dataset: &mut Dataset) -> Parsed<()> {
    loop {
        if c.eat(&["COMMENT"]) {
            dataset.comment = Some(c.string()?);
        } else if dataset.kind == DatasetKind::View {
            return Ok(());
        } else if c.eat(&["PARTITIONED", "BY"]) {
            dataset.partition_cols = c.names()?;
        } else if c.eat(&["CLUSTER", "BY"]) {
            if !(c.eat(&["AUTO"]) || c.eat(&["NONE"])) {
                dataset.cluster_by = c.names()?;
            }
        } else if c.eat(&["TBLPROPERTIES"]) {
            properties(c, &mut dataset.table_properties)?;
        } else {
            return Ok(());
        }
    }
}

/// `('k' = 'v', a.b = true, ...)`: keys as strings' values or dotted words,
/// values as strings' values or as written.
fn properties(c: &mut Cursor, properties: &mut Map<String, Value>) -> Parsed<()> {
    for mut item in c.list()? {
        let key = match item.string() {
            Ok(key) => key,
            Err(_) => {
                let mut parts = vec![item.part()?];
                while item.punct('.') {
                    parts.push(item.part()?);
                }
                parts.join(".")
            }
        };
        item.punct('=');
        if item.at_end() {
            return Err(item.error("a property value"));
        }
        properties.insert(key, Value::String(item.literal()));
    }
    Ok(())
}
