//! Names in engine requests that only tarn can resolve. Users read and
//! write `/Volumes/<catalog>/<schema>/<volume>/...` (or `dbfs:/Volumes/...`),
//! which no engine's file system has; the gateway replaces each such path,
//! in data source reads, path writes and SQL text, by where the volume is
//! stored. And `system.compute|access|billing|lakeflow.*` (tarn's system tables)
//! are renamed to the catalog engines mount them under, as Sail keeps the
//! name `system` for its own. `event_log('<pipeline_id>')`, Databricks'
//! table function over a pipeline's event log, becomes a read of the
//! Delta table tarn publishes it to.
//!
//! The first pass of the pipeline: what later passes and the engine read
//! must already name what engines can reach.

use std::borrow::Cow;

use spark_connect_proto::{Command, ExecutePlanRequest, Relation, command, plan, read, relation, write_operation};
use tarn_sqltext::Kind;

use tarn_compute::engine::SYSTEM_CATALOG_MOUNT;

use super::{Outcome, PassContext};
use crate::GatewayError;

/// Where a volume path is stored; implemented over the catalog by the wiring.
pub trait PathResolver: Send + Sync + 'static {
    /// The local path for `path` (`/Volumes/...`), or why there is none
    /// (no such volume, a path escaping it).
    fn resolve(&self, path: &str) -> Result<String, String>;

    /// The Delta table directory `event_log('<pipeline_id>')` reads, or why
    /// there is none (no such pipeline, no update run yet).
    fn event_log(&self, pipeline_id: &str) -> Result<String, String> {
        Err(format!("event_log('{pipeline_id}') is not available on this server"))
    }
}

const PREFIXES: [&str; 2] = ["dbfs:/Volumes/", "/Volumes/"];

fn volume_path(path: &str) -> Option<&str> {
    PREFIXES.iter().find_map(|p| path.strip_prefix(p).map(|_| path.trim_start_matches("dbfs:")))
}

fn map_path(path: &mut String, resolver: &dyn PathResolver) -> Result<bool, String> {
    let Some(volume) = volume_path(path) else { return Ok(false) };
    *path = resolver.resolve(volume)?;
    Ok(true)
}

/// `text` with every quoted volume path ('...', "..." or `...`) resolved,
/// and tarn's system tables named by the catalog engines mount them as;
/// comments are left as they are (`tarn_sqltext` finds the quotes).
pub fn rewrite_sql_text<'a>(text: &'a str, resolver: &dyn PathResolver) -> Result<Cow<'a, str>, String> {
    let lower = text.to_ascii_lowercase();
    if !text.contains("/Volumes/") && !lower.contains("system") && !lower.contains("event_log") {
        return Ok(Cow::Borrowed(text));
    }
    let mut out = String::with_capacity(text.len());
    let mut code = 0;
    for token in tarn_sqltext::tokens(text) {
        let quoted = matches!(token.kind, Kind::String | Kind::QuotedIdentifier);
        if (!quoted && !token.kind.is_comment()) || token.start < code {
            continue;
        }
        let before = text.get(code..token.start).unwrap_or_default();
        let (open, inner, close) = token.split_quotes();
        if token.kind == Kind::String
            && token.closed
            && let Some((call, after)) = event_log_call(before, text.get(token.end()..).unwrap_or_default())
        {
            out.push_str(&system_names(before.get(..call).unwrap_or_default()));
            out.push_str(&format!("delta.`{}`", resolver.event_log(inner)?.replace('`', "``")));
            code = token.end() + after;
            continue;
        }
        out.push_str(&system_names(before));
        code = token.end();
        let replaced = match volume_path(inner) {
            Some(volume) if quoted && token.closed => Some(resolver.resolve(volume)?),
            None if token.kind == Kind::QuotedIdentifier
                && inner.eq_ignore_ascii_case("system")
                && starts_system_schema(text.get(code..).unwrap_or_default()) =>
            {
                Some(SYSTEM_CATALOG_MOUNT.to_string())
            }
            _ => None,
        };
        match replaced {
            Some(inner) => out.extend([open, inner.as_str(), close]),
            None => out.push_str(token.text),
        }
    }
    out.push_str(&system_names(text.get(code..).unwrap_or_default()));
    Ok(if out == text { Cow::Borrowed(text) } else { Cow::Owned(out) })
}

/// A string argument that is all of an `event_log( ... )` call: where the
/// call starts in `before` (the code before the string) and how much of
/// `after` its closing parenthesis takes.
fn event_log_call(before: &str, after: &str) -> Option<(usize, usize)> {
    let head = before.trim_end().strip_suffix('(')?.trim_end();
    let start = head.len().checked_sub("event_log".len())?;
    let name = head.get(start..)?;
    let standalone =
        head[..start].chars().next_back().is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'));
    if !name.eq_ignore_ascii_case("event_log") || !standalone {
        return None;
    }
    let trimmed = after.trim_start();
    trimmed.starts_with(')').then(|| after.len() - trimmed.len() + 1).map(|after| (start, after))
}

/// The schemas of tarn's `system` catalog (Sail's own `system` has others).
const SYSTEM_SCHEMAS: [&str; 4] = ["compute", "access", "billing", "lakeflow"];

/// True when `rest` (what follows a `system` identifier) continues with
/// one of those schemas (`.compute`, `.billing`...), backticked or not.
fn starts_system_schema(rest: &str) -> bool {
    let Some(schema) = rest.strip_prefix('.') else { return false };
    let schema = schema.strip_prefix('`').unwrap_or(schema);
    SYSTEM_SCHEMAS.iter().any(|s| {
        schema.get(..s.len()).is_some_and(|p| p.eq_ignore_ascii_case(s))
            && schema.as_bytes().get(s.len()).is_some_and(|c| !c.is_ascii_alphanumeric() && *c != b'_')
    })
}

/// Unquoted SQL with `system.compute...` / `system.access...` renamed.
fn system_names(sql: &str) -> Cow<'_, str> {
    let lower = sql.to_ascii_lowercase();
    let mut out = String::new();
    let mut copied = 0;
    for (at, _) in lower.match_indices("system") {
        let before = lower[..at].chars().next_back();
        let standalone = before.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'));
        if standalone && starts_system_schema(&sql[at + "system".len()..]) {
            out.push_str(&sql[copied..at]);
            out.push_str(SYSTEM_CATALOG_MOUNT);
            copied = at + "system".len();
        }
    }
    if copied == 0 {
        return Cow::Borrowed(sql);
    }
    out.push_str(&sql[copied..]);
    Cow::Owned(out)
}

/// The paths pass: resolves volume paths and renames system tables when
/// the wiring gave a resolver, and notes a system table read by name.
pub(crate) fn pass(request: &mut ExecutePlanRequest, cx: &mut PassContext<'_>) -> Result<Outcome, GatewayError> {
    let Some(resolver) = cx.hooks.paths.as_deref() else { return Ok(Outcome::Unchanged) };
    let rewritten = rewrite(request, resolver)?;
    cx.reads_system_tables |= rewritten.reads_system_tables;
    Ok(if rewritten.changed { Outcome::Changed } else { Outcome::Unchanged })
}

/// What [`rewrite`] did to a request.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Rewritten {
    changed: bool,
    /// A table of tarn's `system` catalog is read by name (`spark.table`).
    reads_system_tables: bool,
}

/// Resolves the volume paths and system table names of an `ExecutePlan`.
fn rewrite(request: &mut ExecutePlanRequest, resolver: &dyn PathResolver) -> Result<Rewritten, GatewayError> {
    let Some(op) = request.plan.as_mut().and_then(|p| p.op_type.as_mut()) else { return Ok(Rewritten::default()) };
    let mut walk = Walk { resolver, changed: false, reads_system_tables: false };
    let walked = match op {
        plan::OpType::Root(relation) => walk.relation(relation),
        plan::OpType::Command(c) => walk.command(c),
        _ => Ok(()),
    };
    walked.map_err(GatewayError::Path)?;
    Ok(Rewritten { changed: walk.changed, reads_system_tables: walk.reads_system_tables })
}

struct Walk<'a> {
    resolver: &'a dyn PathResolver,
    changed: bool,
    reads_system_tables: bool,
}

impl Walk<'_> {
    fn command(&mut self, command: &mut Command) -> Result<(), String> {
        match command.command_type.as_mut() {
            Some(command::CommandType::WriteOperation(write)) => {
                if let Some(write_operation::SaveType::Path(path)) = write.save_type.as_mut() {
                    self.changed |= map_path(path, self.resolver)?;
                }
                self.optional(write.input.as_mut())
            }
            Some(command::CommandType::WriteOperationV2(write)) => self.optional(write.input.as_mut()),
            Some(command::CommandType::CreateDataframeView(view)) => self.optional(view.input.as_mut()),
            Some(command::CommandType::SqlCommand(sql)) => {
                #[allow(deprecated)]
                if let Cow::Owned(text) = rewrite_sql_text(&sql.sql, self.resolver)? {
                    sql.sql = text;
                    self.changed = true;
                }
                self.optional(sql.input.as_mut())
            }
            _ => Ok(()),
        }
    }

    fn optional(&mut self, relation: Option<&mut Relation>) -> Result<(), String> {
        relation.map_or(Ok(()), |r| self.relation(r))
    }

    fn relation(&mut self, relation: &mut Relation) -> Result<(), String> {
        match relation.rel_type.as_mut() {
            Some(relation::RelType::Read(r)) => match r.read_type.as_mut() {
                Some(read::ReadType::DataSource(source)) => {
                    for path in &mut source.paths {
                        self.changed |= map_path(path, self.resolver)?;
                    }
                    if let Some(path) = source.options.get_mut("path") {
                        self.changed |= map_path(path, self.resolver)?;
                    }
                }
                Some(read::ReadType::NamedTable(table)) => {
                    if let Cow::Owned(name) = system_names(&table.unparsed_identifier) {
                        table.unparsed_identifier = name;
                        self.changed = true;
                        self.reads_system_tables = true;
                    }
                }
                None => {}
            },
            Some(relation::RelType::Sql(sql)) => {
                if let Cow::Owned(text) = rewrite_sql_text(&sql.query, self.resolver)? {
                    sql.query = text;
                    self.changed = true;
                }
            }
            _ => {}
        }
        crate::relations::children_mut(relation).into_iter().try_for_each(|child| self.relation(child))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spark_connect_proto::{Filter, Plan, Read};

    struct Fixed;

    impl PathResolver for Fixed {
        fn resolve(&self, path: &str) -> Result<String, String> {
            match path.strip_prefix("/Volumes/c/s/v") {
                Some(rest) if !rest.contains("..") => Ok(format!("/lake/v{rest}")),
                _ => Err(format!("no volume for {path}")),
            }
        }

        fn event_log(&self, pipeline_id: &str) -> Result<String, String> {
            match pipeline_id {
                "p-1" => Ok("/lake/pipelines/p-1/log".into()),
                _ => Err(format!("no pipeline {pipeline_id}")),
            }
        }
    }

    #[test]
    fn event_log_calls_read_the_published_table() {
        let text = "SELECT details FROM EVENT_LOG ( 'p-1' ) e WHERE e.message <> 'event_log(''x'')'";
        assert_eq!(
            rewrite_sql_text(text, &Fixed).unwrap(),
            "SELECT details FROM delta.`/lake/pipelines/p-1/log` e WHERE e.message <> 'event_log(''x'')'"
        );
        let text = "SELECT * FROM event_log('p-1') JOIN system.access.audit ON my_event_log('p-1') = 1";
        assert_eq!(
            rewrite_sql_text(text, &Fixed).unwrap(),
            "SELECT * FROM delta.`/lake/pipelines/p-1/log` JOIN tarn_system.access.audit ON my_event_log('p-1') = 1"
        );
        assert!(rewrite_sql_text("SELECT * FROM event_log('nope')", &Fixed).unwrap_err().contains("nope"));
    }

    #[test]
    fn sql_text_paths_are_resolved_inside_quotes_only() {
        let text = "SELECT * FROM csv.`/Volumes/c/s/v/a.csv` WHERE p = '/Volumes/c/s/v/b' -- /Volumes/x";
        assert_eq!(
            rewrite_sql_text(text, &Fixed).unwrap(),
            "SELECT * FROM csv.`/lake/v/a.csv` WHERE p = '/lake/v/b' -- /Volumes/x"
        );
        let text = "SELECT 1 -- it's here\n, '/Volumes/c/s/v/a' /* '/Volumes/c/s/v/b' */, 'it\\'s /Volumes/c/s/v/c'";
        assert_eq!(
            rewrite_sql_text(text, &Fixed).unwrap(),
            "SELECT 1 -- it's here\n, '/lake/v/a' /* '/Volumes/c/s/v/b' */, 'it\\'s /Volumes/c/s/v/c'"
        );
        assert!(matches!(rewrite_sql_text("SELECT 1", &Fixed).unwrap(), Cow::Borrowed(_)));
        assert!(rewrite_sql_text("SELECT * FROM json.`dbfs:/Volumes/c/s/v/../../x`", &Fixed).is_err());
    }

    #[test]
    fn system_tables_are_renamed_outside_strings() {
        let text = "SELECT * FROM System.access.audit a JOIN `system`.`compute`.clusters c \
                    WHERE a.x = 'system.access.audit' AND mysystem.access.t = system.information_schema.x";
        assert_eq!(
            rewrite_sql_text(text, &Fixed).unwrap(),
            "SELECT * FROM tarn_system.access.audit a JOIN `tarn_system`.`compute`.clusters c \
                    WHERE a.x = 'system.access.audit' AND mysystem.access.t = system.information_schema.x"
        );
        assert!(matches!(rewrite_sql_text("SELECT system_id FROM t", &Fixed).unwrap(), Cow::Borrowed(_)));
        assert!(matches!(rewrite_sql_text("SELECT * FROM system.comp€", &Fixed).unwrap(), Cow::Borrowed(_)));
    }

    #[test]
    fn data_source_paths_under_other_relations_are_resolved() {
        let read = Relation {
            common: None,
            rel_type: Some(relation::RelType::Read(Read {
                read_type: Some(read::ReadType::DataSource(read::DataSource {
                    paths: vec!["/Volumes/c/s/v/in.json".into(), "/tmp/other".into()],
                    ..Default::default()
                })),
                ..Default::default()
            })),
        };
        let filter = Relation {
            common: None,
            rel_type: Some(relation::RelType::Filter(Box::new(Filter {
                input: Some(Box::new(read)),
                condition: None,
            }))),
        };
        let mut request =
            ExecutePlanRequest { plan: Some(Plan { op_type: Some(plan::OpType::Root(filter)) }), ..Default::default() };
        assert_eq!(rewrite(&mut request, &Fixed).unwrap(), Rewritten { changed: true, reads_system_tables: false });
        let text = format!("{request:?}");
        assert!(text.contains("\"/lake/v/in.json\"") && text.contains("\"/tmp/other\""), "{text}");
    }
}
