//! Views: tarn keeps them in the catalog and puts their query in their place
//! before an engine sees a statement, since Sail's Unity Catalog client
//! neither creates nor reads views.
//!
//! `CREATE [OR REPLACE] VIEW` and `DROP VIEW` are answered here ([`prepare`]):
//! the query is analysed by the engine in the caller's session, so a query
//! that would fail is refused with the engine's error, and the view's
//! columns are the query's. A statement reading a view gets `(query) AS v`
//! where it named `v`, the names in that query qualified with the catalog
//! and schema the view was created in (as Spark resolves a view's names),
//! views in views expanded in turn. Temporary views stay the engine's.
//!
//! Both entry points use this: the gateway's pass (Spark Connect clients)
//! and [`crate::connect::EngineSession::views`] (statements on a warehouse).
//! What a view is stored as is the wiring's business ([`ViewCatalog`]).

mod schema;
mod statement;

use std::ops::{ControlFlow, Range};

use spark_connect_proto::{Relation, relation};
use sqlparser::ast::{ObjectName, Query, TableFactor, Visit, Visitor};
use sqlparser::dialect::DatabricksDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Location;

use tarn_sqltext::quote_name;

use crate::SqlFailure;
use crate::access::{Name, path_of};
use crate::passes::EngineCalls;
use statement::ViewStatement;

/// How deep views may read views before the reading is taken for a cycle.
const MAX_DEPTH: usize = 32;

const ANALYSIS: &str = "org.apache.spark.sql.AnalysisException";

/// A view as the catalog keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewDefinition {
    /// Catalog, schema and name.
    pub full_name: Name,
    /// The query, as written.
    pub query: String,
    /// The catalog and schema the query's names resolve in.
    pub namespace: Name,
    /// Names given to the query's columns (`CREATE VIEW v (a, b)`); empty
    /// when the query's own names are kept.
    pub column_names: Vec<String>,
}

/// A view to create, its columns learnt from the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct NewView {
    /// As written: one to three parts.
    pub name: Name,
    /// The session's catalog and schema, where the name and the query's
    /// names resolve.
    pub namespace: Name,
    pub query: String,
    /// The view's columns as Spark JSON struct fields (`name`, `type`,
    /// `nullable`, `metadata.comment`).
    pub fields: Vec<serde_json::Value>,
    /// Names given in the statement (empty: the query's own).
    pub column_names: Vec<String>,
    pub comment: Option<String>,
    pub properties: Vec<(String, String)>,
    pub replace: bool,
    /// `ALTER VIEW ... AS`: the view must exist and keeps its comment and
    /// properties.
    pub alter: bool,
    pub if_not_exists: bool,
}

/// Where views are kept; implemented over the catalog by the wiring. The
/// answers are Arrow IPC streams, as an engine would send them.
pub trait ViewCatalog: Send + Sync + 'static {
    /// The view `name` (resolved in `namespace`) is, if it is one.
    fn view(&self, name: &[String], namespace: &[String]) -> Option<ViewDefinition>;

    /// Creates (or replaces) a view as `user`.
    fn create(&self, user: &str, view: &NewView) -> Result<Vec<u8>, SqlFailure>;

    /// Drops the view `name` as `user`.
    fn drop(&self, user: &str, name: &[String], namespace: &[String], if_exists: bool) -> Result<Vec<u8>, SqlFailure>;

    /// Sets properties of the view `name` as `user`.
    fn set_properties(
        &self,
        user: &str,
        name: &[String],
        namespace: &[String],
        properties: &[(String, String)],
    ) -> Result<Vec<u8>, SqlFailure>;

    /// `SHOW VIEWS`: the views of `schema` (resolved in `namespace`; the
    /// current schema when none) `user` may see, their names matching
    /// `pattern` (Spark's: `*` any characters, `|` alternatives).
    fn show(
        &self,
        user: &str,
        schema: Option<&[String]>,
        namespace: &[String],
        pattern: Option<&str>,
    ) -> Result<Vec<u8>, SqlFailure>;
}

/// What [`prepare`] made of a statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Prepared {
    /// A view statement, answered: its result.
    Answered(Vec<u8>),
    /// The statement with the views it reads in their place.
    Expanded(String),
    /// Neither: the statement goes to the engine as it is.
    Unchanged,
}

fn failure(message: String) -> SqlFailure {
    SqlFailure { exception_class: ANALYSIS, message }
}

/// A text fit for the engine (volume paths, system names resolved), made
/// from one the user wrote.
pub type Rewrite<'a> = &'a (dyn Fn(&str) -> Result<String, String> + Sync);

/// Who runs a statement, where its names resolve, and how its text is made
/// fit for the engine: what view statements and expansions need.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    pub views: &'a dyn ViewCatalog,
    /// The session's catalog and schema.
    pub namespace: &'a [String],
    pub user: &'a str,
    pub rewrite: Rewrite<'a>,
}

/// Answers a view statement, or expands the views `sql` reads.
pub(crate) async fn prepare(engine: &dyn EngineCalls, scope: Scope<'_>, sql: &str) -> Result<Prepared, SqlFailure> {
    if let Some(answer) = answer(engine, scope, sql).await {
        return answer.map(Prepared::Answered);
    }
    Ok(match expand_text(scope.views, sql, scope.namespace, scope.rewrite)? {
        Some(expanded) => Prepared::Expanded(expanded),
        None => Prepared::Unchanged,
    })
}

/// The answer to `sql` when it is a view statement.
pub(crate) async fn answer(
    engine: &dyn EngineCalls,
    scope: Scope<'_>,
    sql: &str,
) -> Option<Result<Vec<u8>, SqlFailure>> {
    let Scope { views, namespace, user, .. } = scope;
    Some(match statement::parse(sql)? {
        Err(syntax) => Err(SqlFailure {
            exception_class: "org.apache.spark.sql.catalyst.parser.ParseException",
            message: format!("[PARSE_SYNTAX_ERROR] Syntax error: expected {syntax}. SQLSTATE: 42601"),
        }),
        Ok(ViewStatement::Drop { name, if_exists }) => views.drop(user, &name, namespace, if_exists),
        Ok(ViewStatement::SetProperties { name, properties }) => {
            views.set_properties(user, &name, namespace, &properties)
        }
        Ok(ViewStatement::Show { schema, pattern }) => {
            views.show(user, schema.as_deref(), namespace, pattern.as_deref())
        }
        Ok(ViewStatement::Create(create)) => create_view(engine, scope, create).await,
    })
}

async fn create_view(
    engine: &dyn EngineCalls,
    scope: Scope<'_>,
    create: statement::CreateView,
) -> Result<Vec<u8>, SqlFailure> {
    let Scope { views, namespace, user, rewrite } = scope;
    // Replacing a view with a query that reads it, directly or not, is a cycle.
    let replaced: Vec<Name> = views.view(&create.name, namespace).map(|v| v.full_name).into_iter().collect();
    let query = expand(views, &create.query, namespace, &replaced)?.unwrap_or_else(|| create.query.clone());
    let query = rewrite(&query).map_err(failure)?;
    let relation = Relation {
        common: None,
        rel_type: Some(relation::RelType::Sql(spark_connect_proto::Sql { query, ..Default::default() })),
    };
    let analysed = engine.analyze_schema(relation).await.map_err(|e| failure(e.to_string()))?;
    let mut fields = analysed
        .as_ref()
        .and_then(schema::fields)
        .ok_or_else(|| failure("the engine did not describe the view's query".into()))?;
    name_columns(&mut fields, &create.columns)?;
    let view = NewView {
        name: create.name,
        namespace: namespace.to_vec(),
        query: create.query,
        fields,
        column_names: create.columns.into_iter().map(|(name, _)| name).collect(),
        comment: create.comment,
        properties: create.properties,
        replace: create.replace,
        alter: create.alter,
        if_not_exists: create.if_not_exists,
    };
    views.create(user, &view)
}

/// `sql` with the views it reads expanded and made fit for the engine;
/// `None` when it reads no view.
pub(crate) fn expand_text(
    views: &dyn ViewCatalog,
    sql: &str,
    namespace: &[String],
    rewrite: Rewrite<'_>,
) -> Result<Option<String>, SqlFailure> {
    expand(views, sql, namespace, &[])?.map(|expanded| rewrite(&expanded).map_err(failure)).transpose()
}

/// The names (and comments) a `CREATE VIEW` gives its query's columns.
fn name_columns(fields: &mut [serde_json::Value], columns: &[(String, Option<String>)]) -> Result<(), SqlFailure> {
    if columns.is_empty() {
        return Ok(());
    }
    if columns.len() != fields.len() {
        return Err(failure(format!(
            "[CREATE_VIEW_COLUMN_ARITY_MISMATCH] Cannot create view: the query has {} columns, {} names were given. \
             SQLSTATE: 21S01",
            fields.len(),
            columns.len()
        )));
    }
    for (field, (name, comment)) in fields.iter_mut().zip(columns) {
        field["name"] = name.clone().into();
        if let Some(comment) = comment {
            field["metadata"]["comment"] = comment.clone().into();
        }
    }
    Ok(())
}

/// Every relation of a plan that reads a view, by name (`spark.table("v")`)
/// or in SQL text, with the view's query in its place; true when one did.
pub(crate) fn expand_reads(
    views: &dyn ViewCatalog,
    relation: &mut Relation,
    namespace: &[String],
    rewrite: Rewrite<'_>,
) -> Result<bool, SqlFailure> {
    let mut changed = false;
    match relation.rel_type.as_mut() {
        Some(relation::RelType::Read(read)) => {
            if let Some(spark_connect_proto::read::ReadType::NamedTable(table)) = &read.read_type
                && let Some(view) = views.view(&crate::access::split_name(&table.unparsed_identifier), namespace)
            {
                let select = format!("SELECT * FROM {}", quote_name(&view.full_name));
                let query = expand_text(views, &select, namespace, rewrite)?.unwrap_or(select);
                let sql = spark_connect_proto::Sql { query, ..Default::default() };
                relation.rel_type = Some(relation::RelType::Sql(sql));
                return Ok(true);
            }
        }
        Some(relation::RelType::Sql(sql)) => {
            if let Some(query) = expand_text(views, &sql.query, namespace, rewrite)? {
                sql.query = query;
                changed = true;
            }
        }
        _ => {}
    }
    for child in crate::relations::children_mut(relation) {
        changed |= expand_reads(views, child, namespace, rewrite)?;
    }
    Ok(changed)
}

/// `sql` with each view it reads replaced by the view's query. `within` are
/// the views whose queries `sql` is part of (none for a statement): a view
/// among them is a cycle, and inside a view's query other names are
/// qualified with `namespace` too. `None` when nothing changed or sqlparser
/// cannot read the text (the engine then sees it as written).
fn expand(
    views: &dyn ViewCatalog,
    sql: &str,
    namespace: &[String],
    within: &[Name],
) -> Result<Option<String>, SqlFailure> {
    let Some(references) = references(sql) else { return Ok(None) };
    let mut out = String::with_capacity(sql.len());
    let mut copied = 0;
    for reference in references {
        let replacement = match views.view(&reference.name, namespace) {
            Some(view) if within.len() >= MAX_DEPTH || within.contains(&view.full_name) => {
                return Err(failure(format!(
                    "[RECURSIVE_VIEW] Recursive view {} detected (cycle or views nested deeper than {MAX_DEPTH}). \
                     SQLSTATE: 42K0H",
                    view.full_name.join(".")
                )));
            }
            Some(view) => view_text(views, &view, reference.aliased, within)?,
            None if !within.is_empty() && reference.name.len() < 3 && path_of(&reference.name).is_none() => {
                let missing = 3 - reference.name.len();
                let mut full: Name = namespace.iter().take(missing).cloned().collect();
                full.extend(reference.name.iter().cloned());
                quote_name(&full)
            }
            None => continue,
        };
        out.push_str(sql.get(copied..reference.range.start).unwrap_or_default());
        out.push_str(&replacement);
        copied = reference.range.end;
    }
    if copied == 0 {
        return Ok(None);
    }
    out.push_str(sql.get(copied..).unwrap_or_default());
    Ok(Some(out))
}

/// What stands where a view was named: its query, in parentheses, named as
/// the view unless the statement gave it an alias.
fn view_text(
    views: &dyn ViewCatalog,
    view: &ViewDefinition,
    aliased: bool,
    within: &[Name],
) -> Result<String, SqlFailure> {
    let within = [within, std::slice::from_ref(&view.full_name)].concat();
    let query = expand(views, &view.query, &view.namespace, &within)?.unwrap_or_else(|| view.query.clone());
    let name = quote_name(&view.full_name[view.full_name.len().saturating_sub(1)..]);
    let body = if view.column_names.is_empty() {
        query
    } else {
        let columns: Vec<String> = view.column_names.iter().map(|c| tarn_sqltext::quote_identifier(c)).collect();
        format!("SELECT * FROM (\n{query}\n) AS {name}({})", columns.join(", "))
    };
    // The query on lines of its own: a `--` comment at its end stays inside.
    Ok(if aliased { format!("(\n{body}\n)") } else { format!("(\n{body}\n) AS {name}") })
}

/// A name a statement reads a relation by, and where it is written.
#[derive(Debug)]
struct Reference {
    range: Range<usize>,
    name: Name,
    aliased: bool,
}

/// The relations `sql` reads by name (CTE names left out), in text order;
/// `None` when sqlparser cannot read it.
fn references(sql: &str) -> Option<Vec<Reference>> {
    let statements = Parser::parse_sql(&DatabricksDialect {}, sql).ok()?;
    let mut found = Found { sql, lines: line_starts(sql), references: Vec::new(), ctes: Vec::new() };
    for statement in &statements {
        let _ = statement.visit(&mut found);
    }
    let ctes = found.ctes;
    let mut references: Vec<Reference> = found
        .references
        .into_iter()
        .filter(|r| !(r.name.len() == 1 && ctes.contains(&r.name[0].to_lowercase())))
        .collect();
    references.sort_by_key(|r| r.range.start);
    references.dedup_by_key(|r| r.range.start);
    Some(references)
}

struct Found<'a> {
    sql: &'a str,
    lines: Vec<usize>,
    references: Vec<Reference>,
    ctes: Vec<String>,
}

impl Found<'_> {
    /// The byte offset of a 1-based line and character column.
    fn offset(&self, at: Location) -> Option<usize> {
        let line_start = *self.lines.get(usize::try_from(at.line).ok()?.checked_sub(1)?)?;
        let column = usize::try_from(at.column).ok()?.checked_sub(1)?;
        let line = self.sql.get(line_start..)?;
        let within = line.char_indices().map(|(i, _)| i).chain([line.len()]).nth(column)?;
        Some(line_start + within)
    }

    fn range(&self, name: &ObjectName) -> Option<Range<usize>> {
        let first = name.0.first()?.as_ident()?.span.start;
        let last = name.0.last()?.as_ident()?.span.end;
        let range = self.offset(first)?..self.offset(last)?;
        (range.start < range.end).then_some(range)
    }
}

fn line_starts(sql: &str) -> Vec<usize> {
    std::iter::once(0).chain(sql.match_indices('\n').map(|(i, _)| i + 1)).collect()
}

impl Visitor for Found<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        self.ctes.extend(crate::access::cte_names(query));
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table { name, alias, args: None, .. } = factor
            && let Some(range) = self.range(name)
        {
            let name = name.0.iter().filter_map(|p| p.as_ident().map(|i| i.value.clone())).collect();
            self.references.push(Reference { range, name, aliased: alias.is_some() });
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests;
