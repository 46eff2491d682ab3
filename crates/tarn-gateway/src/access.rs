//! What a plan or a SQL text reaches in the catalog: the tables it reads,
//! writes, creates or drops, the schemas it creates, the files it reads or
//! writes by path, and a `USE` that moves the session. The gateway (for a
//! Spark Connect session) and tarn-sql (for a statement on the warehouse)
//! hand this to an [`AccessControl`] with the caller before an engine runs
//! anything, so grants bind every path to the data, not only the REST API.
//!
//! SQL is read with sqlparser's Databricks dialect. Text it cannot read is
//! scanned instead: every dotted name in it counts as a table written (or,
//! for statements that only read, read), so a statement tarn cannot parse
//! is never let through unchecked. `GRANT`, `REVOKE` and `SHOW GRANTS` are
//! read here too ([`GrantStatement`]) and answered by the access control.

use std::ops::ControlFlow;

use spark_connect_proto::{
    AnalyzePlanRequest, ExecutePlanRequest, Plan, Relation, analyze_plan_request, command, plan, read, relation,
};
use sqlparser::ast::{self, ObjectName, Query, Statement, Visit, Visitor};
use sqlparser::dialect::DatabricksDialect;
use sqlparser::parser::Parser;
use tarn_sqltext::Kind as TokenKind;

use crate::relations::children_mut;

/// How a statement uses a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// Reads its metadata only (`DESCRIBE`).
    Describe,
    Read,
    /// Writes rows (INSERT, UPDATE, DELETE, MERGE, an append).
    Write,
    /// Creates it (or replaces it): CREATE_TABLE on its schema.
    Create,
    /// Drops, alters or renames it: ownership or MANAGE.
    Manage,
}

/// A name as written: one to three parts, not yet resolved against the
/// session's current catalog and schema.
pub type Name = Vec<String>;

/// What a request or statement reaches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    pub tables: Vec<(Name, Use)>,
    /// `CREATE SCHEMA` names.
    pub schemas: Vec<Name>,
    /// Files read (false) or written (true) by path.
    pub paths: Vec<(String, bool)>,
    /// A `USE` that moves the session's current catalog or schema.
    pub namespace: Option<Name>,
}

impl Access {
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty() && self.schemas.is_empty() && self.paths.is_empty()
    }

    fn merge(&mut self, other: Access) {
        self.tables.extend(other.tables);
        self.schemas.extend(other.schemas);
        self.paths.extend(other.paths);
        if other.namespace.is_some() {
            self.namespace = other.namespace;
        }
    }
}

/// `GRANT`, `REVOKE` or `SHOW GRANTS`, as Databricks SQL writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantStatement {
    pub verb: GrantVerb,
    /// Privilege names as written (`SELECT`, `USE SCHEMA`, `ALL PRIVILEGES`).
    pub privileges: Vec<String>,
    /// `CATALOG`, `SCHEMA`, `TABLE` or `VOLUME` (a bare name is a table).
    pub securable_type: String,
    pub name: Name,
    /// The grantee; for SHOW GRANTS, the principal asked about, if any.
    pub principal: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantVerb {
    Grant,
    Revoke,
    Show,
}

/// Checks a caller's access and answers grant statements, with the
/// catalog's rules (plugged in by the wiring).
pub trait AccessControl: Send + Sync + 'static {
    /// Refuses with the reason unless the user named `user` may do
    /// everything in `access`; unqualified names resolve in `namespace`
    /// (catalog, schema). Tables the access creates are claimed for the
    /// user, who will own them.
    fn check(&self, user: &str, access: &Access, namespace: &[String]) -> Result<(), String>;

    /// Runs a grant statement as `user`: its result as an Arrow IPC stream.
    fn grant(&self, user: &str, statement: &GrantStatement, namespace: &[String])
    -> Result<Vec<u8>, crate::SqlFailure>;
}

/// Formats a file's data source reads by path.
const PATH_FORMATS: &[&str] = &["delta", "parquet", "csv", "json", "orc", "text", "avro", "binaryfile"];

fn parts(name: &ObjectName) -> Name {
    name.0.iter().map(|p| p.as_ident().map_or_else(|| p.to_string(), |i| i.value.clone())).collect()
}

/// A `delta.`/path`` name: a read of files by path.
pub(crate) fn path_of(name: &Name) -> Option<String> {
    match name.as_slice() {
        [format, path] if PATH_FORMATS.contains(&format.to_lowercase().as_str()) && looks_like_path(path) => {
            Some(path.clone())
        }
        _ => None,
    }
}

fn looks_like_path(text: &str) -> bool {
    text.starts_with('/') || text.contains("://")
}

/// Every relation a statement names, CTE names left out.
#[derive(Default)]
struct Relations {
    names: Vec<Name>,
    ctes: Vec<String>,
}

impl Visitor for Relations {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        self.ctes.extend(cte_names(query));
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<()> {
        self.names.push(parts(relation));
        ControlFlow::Continue(())
    }
}

/// The names a query's `WITH` gives its common table expressions, lower-cased.
pub(crate) fn cte_names(query: &Query) -> impl Iterator<Item = String> + '_ {
    query.with.iter().flat_map(|with| with.cte_tables.iter().map(|c| c.alias.name.value.to_lowercase()))
}

/// The tables a parsed statement writes, creates or manages; every other
/// relation it names is read.
fn targets(statement: &Statement) -> (Vec<(Name, Use)>, Vec<Name>) {
    let one = |name: &ObjectName, how: Use| (vec![(parts(name), how)], Vec::new());
    match statement {
        Statement::Insert(insert) => match &insert.table {
            ast::TableObject::TableName(name) => one(name, Use::Write),
            _ => (Vec::new(), Vec::new()),
        },
        Statement::Update(update) => match &update.table.relation {
            ast::TableFactor::Table { name, .. } => one(name, Use::Write),
            _ => (Vec::new(), Vec::new()),
        },
        Statement::Delete(delete) => {
            let tables = match &delete.from {
                ast::FromTable::WithFromKeyword(t) | ast::FromTable::WithoutKeyword(t) => t,
            };
            let names = tables.iter().filter_map(|t| match &t.relation {
                ast::TableFactor::Table { name, .. } => Some((parts(name), Use::Write)),
                _ => None,
            });
            (names.collect(), Vec::new())
        }
        Statement::Merge(merge) => match &merge.table {
            ast::TableFactor::Table { name, .. } => one(name, Use::Write),
            _ => (Vec::new(), Vec::new()),
        },
        Statement::CreateTable(create) => one(&create.name, Use::Create),
        Statement::CreateView(view) => one(&view.name, Use::Create),
        Statement::AlterTable(alter) => one(&alter.name, Use::Manage),
        Statement::Truncate(truncate) => {
            (truncate.table_names.iter().map(|t| (parts(&t.name), Use::Write)).collect(), Vec::new())
        }
        Statement::Drop {
            object_type: ast::ObjectType::Table | ast::ObjectType::View | ast::ObjectType::MaterializedView,
            names,
            ..
        } => (names.iter().map(|n| (parts(n), Use::Manage)).collect(), Vec::new()),
        Statement::Query(query) => match query.body.as_ref() {
            ast::SetExpr::Insert(inner)
            | ast::SetExpr::Update(inner)
            | ast::SetExpr::Delete(inner)
            | ast::SetExpr::Merge(inner) => targets(inner),
            _ => (Vec::new(), Vec::new()),
        },
        Statement::CreateSchema { schema_name, .. } => {
            let name = match schema_name {
                ast::SchemaName::Simple(n) | ast::SchemaName::NamedAuthorization(n, _) => parts(n),
                ast::SchemaName::UnnamedAuthorization(i) => vec![i.value.clone()],
            };
            (Vec::new(), vec![name])
        }
        _ => (Vec::new(), Vec::new()),
    }
}

/// A `USE ...` statement's new namespace.
fn namespace_of(statement: &Statement) -> Option<Name> {
    let Statement::Use(u) = statement else { return None };
    match u {
        ast::Use::Catalog(n) => Some(vec![parts(n).join("."), "default".into()]),
        ast::Use::Schema(n) | ast::Use::Database(n) | ast::Use::Object(n) => Some(parts(n)),
        _ => None,
    }
}

fn of_statement(statement: &Statement) -> Access {
    let mut access = Access { namespace: namespace_of(statement), ..Access::default() };
    let (written, schemas) = targets(statement);
    access.schemas = schemas;
    let mut relations = Relations::default();
    let _ = statement.visit(&mut relations);
    let describes = matches!(statement, Statement::ExplainTable { .. } | Statement::ShowColumns { .. });
    for name in relations.names {
        if name.len() == 1 && relations.ctes.contains(&name[0].to_lowercase()) {
            continue;
        }
        if let Some(path) = path_of(&name) {
            access.paths.push((path, false));
        } else if !written.iter().any(|(w, _)| *w == name) {
            access.tables.push((name, if describes { Use::Describe } else { Use::Read }));
        }
    }
    access.tables.extend(written);
    access
}

/// Statements that only read, for text that does not parse.
const READING: &[&str] = &["select", "with", "describe", "desc", "show", "explain", "values", "table", "from"];

/// Text sqlparser could not read: every dotted name counts, as a read in a
/// statement that only reads and as a write otherwise (names that are no
/// table, such as columns, resolve to nothing and cost nothing).
fn scanned(sql: &str) -> Access {
    let tokens: Vec<_> = tarn_sqltext::tokens(sql).filter(|t| !t.is_trivia()).collect();
    let reads_only = tokens.first().is_some_and(|t| READING.iter().any(|w| t.is_word(w)));
    let how = if reads_only { Use::Read } else { Use::Write };
    let mut access = Access::default();
    let mut i = 0;
    while i < tokens.len() {
        let is_name = |t: &tarn_sqltext::Token<'_>| matches!(t.kind, TokenKind::Word | TokenKind::QuotedIdentifier);
        if !is_name(&tokens[i]) {
            i += 1;
            continue;
        }
        let mut name = vec![tokens[i].value().into_owned()];
        while i + 2 < tokens.len() && tokens[i + 1].is_punct('.') && is_name(&tokens[i + 2]) {
            name.push(tokens[i + 2].value().into_owned());
            i += 2;
        }
        i += 1;
        if let Some(path) = path_of(&name) {
            access.paths.push((path, how == Use::Write));
        } else {
            access.tables.push((name, how));
        }
    }
    access
}

/// Whether [`of_statement`] knows where this kind of statement names
/// tables; any other is scanned.
fn understood(statement: &Statement) -> bool {
    matches!(
        statement,
        Statement::Query(_)
            | Statement::Insert(_)
            | Statement::Update(_)
            | Statement::Delete(_)
            | Statement::Merge(_)
            | Statement::CreateTable(_)
            | Statement::CreateView(_)
            | Statement::AlterTable(_)
            | Statement::Truncate(_)
            | Statement::Drop { .. }
            | Statement::CreateSchema { .. }
            | Statement::Use(_)
            | Statement::ExplainTable { .. }
            | Statement::ShowColumns { .. }
            | Statement::ShowTables { .. }
            | Statement::ShowDatabases { .. }
            | Statement::ShowSchemas { .. }
            | Statement::ShowCatalogs { .. }
            | Statement::ShowFunctions { .. }
            | Statement::Set(_)
    )
}

/// What a SQL text reaches, all its statements together.
pub fn of_sql(sql: &str) -> Access {
    let mut access = Access::default();
    for text in tarn_sqltext::split_statements(sql) {
        match Parser::parse_sql(&DatabricksDialect {}, text) {
            Ok(statements) if statements.iter().all(understood) => {
                statements.iter().for_each(|s| access.merge(of_statement(s)));
            }
            _ => access.merge(scanned(text)),
        }
    }
    access
}

/// What a relation tree reads: tables by name, files by path, and SQL.
fn walk(relation: &mut Relation, access: &mut Access) {
    match relation.rel_type.as_ref() {
        Some(relation::RelType::Read(r)) => match &r.read_type {
            Some(read::ReadType::NamedTable(t)) => {
                access.tables.push((split_name(&t.unparsed_identifier), Use::Read));
            }
            Some(read::ReadType::DataSource(source)) => {
                let option = source.options.iter().filter(|(k, _)| k.eq_ignore_ascii_case("path")).map(|(_, v)| v);
                access.paths.extend(source.paths.iter().chain(option).map(|p| (p.clone(), false)));
            }
            None => {}
        },
        Some(relation::RelType::Sql(sql)) => access.merge(of_sql(&sql.query)),
        Some(relation::RelType::Catalog(catalog)) => {
            use spark_connect_proto::catalog::CatType;
            match &catalog.cat_type {
                Some(CatType::SetCurrentDatabase(db)) => access.namespace = Some(split_name(&db.db_name)),
                Some(CatType::SetCurrentCatalog(c)) => {
                    access.namespace = Some(vec![c.catalog_name.clone(), "default".into()])
                }
                _ => {}
            }
        }
        _ => {}
    }
    for child in children_mut(relation) {
        walk(child, access);
    }
}

/// What a relation (a DataFrame's plan) reads. Mutable only because the
/// plan walk (`children_mut`) is; nothing is changed.
pub fn of_relation(relation: &mut Relation) -> Access {
    let mut access = Access::default();
    walk(relation, &mut access);
    access
}

/// A dotted identifier as Spark writes it (backticks quote a part).
pub fn split_name(text: &str) -> Name {
    let mut parts = Vec::new();
    let mut part = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '`' if quoted && chars.peek() == Some(&'`') => {
                chars.next();
                part.push('`');
            }
            '`' => quoted = !quoted,
            '.' if !quoted => parts.push(std::mem::take(&mut part)),
            c => part.push(c),
        }
    }
    parts.push(part);
    parts
}

/// What an `ExecutePlan` reaches (read in place: a plan can carry a
/// large local relation, which is not copied).
pub fn of_plan(request: &mut ExecutePlanRequest) -> Access {
    request.plan.as_mut().map(of_plan_message).unwrap_or_default()
}

/// What an `AnalyzePlan` reaches: a DataFrame's schema or plan is the
/// table's metadata, checked as a read.
pub fn of_analysis(request: &mut AnalyzePlanRequest) -> Access {
    if let Some(analyze_plan_request::Analyze::Persist(a)) = &mut request.analyze {
        return a.relation.as_mut().map(of_relation).unwrap_or_default();
    }
    let mut access = Access::default();
    for plan in analysed_plans(request) {
        access.merge(of_plan_message(plan));
    }
    access
}

/// The plans an analysis is of (a persisted relation aside).
pub(crate) fn analysed_plans(request: &mut AnalyzePlanRequest) -> Vec<&mut Plan> {
    use analyze_plan_request::Analyze;
    match &mut request.analyze {
        Some(Analyze::Schema(a)) => a.plan.iter_mut().collect(),
        Some(Analyze::Explain(a)) => a.plan.iter_mut().collect(),
        Some(Analyze::TreeString(a)) => a.plan.iter_mut().collect(),
        Some(Analyze::IsLocal(a)) => a.plan.iter_mut().collect(),
        Some(Analyze::IsStreaming(a)) => a.plan.iter_mut().collect(),
        Some(Analyze::InputFiles(a)) => a.plan.iter_mut().collect(),
        Some(Analyze::SemanticHash(a)) => a.plan.iter_mut().collect(),
        Some(Analyze::SameSemantics(a)) => a.target_plan.iter_mut().chain(a.other_plan.iter_mut()).collect(),
        _ => Vec::new(),
    }
}

fn of_plan_message(plan: &mut Plan) -> Access {
    let mut access = Access::default();
    let Some(op) = plan.op_type.as_mut() else { return access };
    match op {
        plan::OpType::Root(relation) => walk(relation, &mut access),
        plan::OpType::Command(c) => of_command(c, &mut access),
        // Compressed plans are forwarded undecoded; tarn's clients send none.
        _ => {}
    }
    access
}

fn of_command(c: &mut spark_connect_proto::Command, access: &mut Access) {
    use command::CommandType;
    match c.command_type.as_mut() {
        Some(CommandType::SqlCommand(sql)) => {
            #[allow(deprecated)]
            if !sql.sql.is_empty() {
                access.merge(of_sql(&sql.sql));
            }
            if let Some(input) = sql.input.as_mut() {
                walk(input, access);
            }
        }
        Some(CommandType::WriteOperation(write)) => {
            use spark_connect_proto::write_operation::{SaveMode, SaveType};
            let creates = matches!(
                SaveMode::try_from(write.mode),
                Ok(SaveMode::Unspecified | SaveMode::Overwrite | SaveMode::ErrorIfExists | SaveMode::Ignore)
            );
            match &write.save_type {
                Some(SaveType::Table(table)) => {
                    access.tables.push((split_name(&table.table_name), if creates { Use::Create } else { Use::Write }));
                }
                Some(SaveType::Path(path)) => access.paths.push((path.clone(), true)),
                None => {}
            }
            if let Some(path) = write.options.iter().find(|(k, _)| k.eq_ignore_ascii_case("path")).map(|(_, v)| v) {
                access.paths.push((path.clone(), true));
            }
            if let Some(input) = write.input.as_mut() {
                walk(input, access);
            }
        }
        Some(CommandType::WriteOperationV2(write)) => {
            use spark_connect_proto::write_operation_v2::Mode;
            let creates =
                matches!(Mode::try_from(write.mode), Ok(Mode::Create | Mode::CreateOrReplace | Mode::Replace));
            access.tables.push((split_name(&write.table_name), if creates { Use::Create } else { Use::Write }));
            if let Some(input) = write.input.as_mut() {
                walk(input, access);
            }
        }
        Some(CommandType::CreateDataframeView(view)) => {
            if let Some(input) = view.input.as_mut() {
                walk(input, access);
            }
        }
        Some(CommandType::WriteStreamOperationStart(write)) => {
            use spark_connect_proto::write_stream_operation_start::SinkDestination;
            match &write.sink_destination {
                Some(SinkDestination::Path(path)) => access.paths.push((path.clone(), true)),
                Some(SinkDestination::TableName(name)) => access.tables.push((split_name(name), Use::Write)),
                None => {}
            }
            if let Some(input) = write.input.as_mut() {
                walk(input, access);
            }
        }
        _ => {}
    }
}

/// A `GRANT`, `REVOKE` or `SHOW GRANTS` statement, if `sql` is one.
pub fn grant_statement(sql: &str) -> Option<Result<GrantStatement, String>> {
    let tokens: Vec<_> = tarn_sqltext::tokens(sql.trim().trim_end_matches(';')).filter(|t| !t.is_trivia()).collect();
    let verb = match tokens.first()? {
        t if t.is_word("grant") => GrantVerb::Grant,
        t if t.is_word("revoke") => GrantVerb::Revoke,
        t if t.is_word("show") && tokens.get(1).is_some_and(|t| t.is_word("grants") || t.is_word("grant")) => {
            GrantVerb::Show
        }
        _ => return None,
    };
    Some(grant_parts(verb, &tokens))
}

fn grant_parts(verb: GrantVerb, tokens: &[tarn_sqltext::Token<'_>]) -> Result<GrantStatement, String> {
    let words: Vec<String> = tokens.iter().map(|t| t.value().into_owned()).collect();
    let at = |w: &str| tokens.iter().position(|t| t.is_word(w));
    let on = at("on").ok_or("expected ON <securable>")?;
    let (privileges, principal_at) = match verb {
        GrantVerb::Show => (Vec::new(), (on > 2).then_some(2)),
        _ => {
            let list = words[1..on].join(" ");
            let privileges = list.split(',').map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect();
            let to =
                at(if verb == GrantVerb::Grant { "to" } else { "from" }).ok_or("expected TO or FROM <principal>")?;
            (privileges, Some(to + 1))
        }
    };
    let end = match verb {
        GrantVerb::Show => tokens.len(),
        _ => principal_at.map_or(tokens.len(), |p| p - 1),
    };
    let mut rest = &tokens[on + 1..end];
    let securable_type = match rest.first() {
        Some(t)
            if ["catalog", "schema", "database", "table", "volume"].iter().any(|w| t.is_word(w)) && rest.len() > 1 =>
        {
            let kind = t.text.to_uppercase();
            rest = &rest[1..];
            if kind == "DATABASE" { "SCHEMA".to_string() } else { kind }
        }
        _ => "TABLE".to_string(),
    };
    let name: Name = rest.iter().filter(|t| !t.is_punct('.')).map(|t| t.value().into_owned()).collect();
    if name.is_empty() {
        return Err("expected the securable's name after ON".into());
    }
    let principal = principal_at.and_then(|p| tokens.get(p)).map(|t| t.value().into_owned());
    if verb != GrantVerb::Show && principal.is_none() {
        return Err("expected the principal".into());
    }
    Ok(GrantStatement { verb, privileges, securable_type, name, principal })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(access: &Access, how: Use) -> Vec<String> {
        access.tables.iter().filter(|(_, h)| *h == how).map(|(n, _)| n.join(".")).collect()
    }

    #[test]
    fn statements_read_and_write_what_they_name() {
        let a = of_sql("WITH x AS (SELECT * FROM main.s.a) INSERT INTO s.b SELECT * FROM x JOIN c ON true");
        assert_eq!(names(&a, Use::Read), ["main.s.a", "c"]);
        assert_eq!(names(&a, Use::Write), ["s.b"]);
        let a = of_sql("SELECT * FROM t WHERE id IN (SELECT id FROM u)");
        assert_eq!(names(&a, Use::Read), ["t", "u"]);
        let a = of_sql("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET t.v = s.v");
        assert_eq!((names(&a, Use::Write), names(&a, Use::Read)), (vec!["t".to_string()], vec!["s".to_string()]));
        let a = of_sql("CREATE TABLE main.default.n AS SELECT * FROM main.default.o");
        assert_eq!(
            (names(&a, Use::Create), names(&a, Use::Read)),
            (vec!["main.default.n".into()], vec!["main.default.o".into()])
        );
        assert_eq!(names(&of_sql("DROP TABLE a.b"), Use::Manage), ["a.b"]);
        assert_eq!(of_sql("CREATE SCHEMA c.s").schemas, [vec!["c".to_string(), "s".to_string()]]);
        assert_eq!(of_sql("SELECT * FROM delta.`/lake/x`").paths, [("/lake/x".to_string(), false)]);
        assert_eq!(of_sql("USE main.s1").namespace, Some(vec!["main".to_string(), "s1".to_string()]));
    }

    #[test]
    fn text_that_does_not_parse_is_scanned() {
        let a = of_sql("OPTIMIZE main.default.t ZORDER BY (id)");
        assert!(a.tables.contains(&(vec!["main".into(), "default".into(), "t".into()], Use::Write)), "{a:?}");
        let a = of_sql("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET *");
        assert!(["t", "s"].iter().all(|n| a.tables.contains(&(vec![n.to_string()], Use::Write))), "{a:?}");
        let a = of_sql("DESCRIBE HISTORY main.default.t");
        assert!(a.tables.contains(&(vec!["main".into(), "default".into(), "t".into()], Use::Read)), "{a:?}");
    }

    #[test]
    fn grant_statements_are_read() {
        let g = grant_statement("GRANT USE SCHEMA, SELECT ON SCHEMA main.s TO `bob@x.com`").unwrap().unwrap();
        assert_eq!(g.privileges, ["USE SCHEMA", "SELECT"]);
        assert_eq!((g.securable_type.as_str(), g.name.join(".")), ("SCHEMA", "main.s".to_string()));
        assert_eq!(g.principal.as_deref(), Some("bob@x.com"));
        let r = grant_statement("revoke select on main.s.t from analysts").unwrap().unwrap();
        assert_eq!((r.verb, r.securable_type.as_str()), (GrantVerb::Revoke, "TABLE"));
        let s = grant_statement("SHOW GRANTS `bob` ON TABLE main.s.t").unwrap().unwrap();
        assert_eq!((s.verb, s.principal.as_deref()), (GrantVerb::Show, Some("bob")));
        let s = grant_statement("SHOW GRANTS ON CATALOG main").unwrap().unwrap();
        assert_eq!((s.securable_type.as_str(), s.principal), ("CATALOG", None));
        assert!(grant_statement("SELECT 1").is_none());
        assert!(grant_statement("GRANT SELECT TO bob").unwrap().is_err());
    }

    #[test]
    fn spark_names_split_on_unquoted_dots() {
        assert_eq!(split_name("main.`a.b`.t"), ["main", "a.b", "t"]);
    }
}
