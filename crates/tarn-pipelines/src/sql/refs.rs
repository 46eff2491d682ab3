//! What a query reads: the datasets it names (`LIVE.x`, `STREAM(x)`,
//! `STREAM x`, table names after `FROM` and `JOIN`) and the files it streams
//! (`STREAM read_files(...)`, `cloud_files(...)`), found on tokens so that
//! names inside strings and comments do not count. [`rewrite`] replaces the
//! same references, and nothing else, in the query's text.

use std::ops::Range;

use serde_json::Value;
use tarn_sqltext::Kind;

use super::cursor::{Cursor, Name, ParseError, Parsed};
use crate::graph::{FileSource, Input};

/// How a dataset is named in a query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Via {
    /// A table name after `FROM`, `JOIN` or a comma between them.
    Plain,
    /// `LIVE.x`.
    Live,
    /// `STREAM(x)`, `STREAM(LIVE.x)` or `STREAM x`.
    Stream,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Reference {
    pub name: String,
    pub via: Via,
    /// What a rewrite replaces: the whole reference, `STREAM` included.
    pub span: Range<usize>,
    /// The name as written, without `STREAM` or `LIVE.`.
    pub written: Range<usize>,
}

/// The references and file sources of one query.
#[derive(Debug, Default)]
pub(super) struct Scan {
    pub references: Vec<Reference>,
    pub sources: Vec<FileSource>,
    /// Where each of `sources` is written, `STREAM` included.
    pub source_spans: Vec<Range<usize>>,
}

impl Scan {
    /// The datasets read, each once, in the order first read.
    pub fn inputs(&self) -> Vec<Input> {
        let mut inputs: Vec<Input> = Vec::new();
        for r in &self.references {
            let input = Input { name: r.name.clone(), streaming: r.via == Via::Stream, skip_change_commits: false };
            if !inputs.contains(&input) {
                inputs.push(input);
            }
        }
        inputs
    }
}

/// Words after `FROM` that are not table names.
const NOT_TABLES: &[&str] = &["SELECT", "VALUES", "LATERAL", "WITH", "TABLE"];

/// Words after a table name that are not its alias.
#[rustfmt::skip]
const NOT_ALIASES: &[&str] = &[
    "WHERE", "GROUP", "HAVING", "ORDER", "LIMIT", "OFFSET", "JOIN", "INNER", "LEFT", "RIGHT", "FULL", "CROSS",
    "NATURAL", "SEMI", "ANTI", "OUTER", "ON", "USING", "UNION", "EXCEPT", "INTERSECT", "MINUS", "WINDOW", "LATERAL",
    "PIVOT", "UNPIVOT", "TABLESAMPLE", "CLUSTER", "DISTRIBUTE", "SORT", "QUALIFY", "VERSION", "TIMESTAMP", "FOR",
    "WITH", "WATERMARK", "SELECT", "FROM",
];

/// The references in `query`. Errors for unclosed text or parentheses, and
/// for a streamed `read_files` or `cloud_files` whose path is not a string.
pub(super) fn scan(query: &str) -> Parsed<Scan> {
    let mut c = Cursor::new(query)?;
    let mut scan = Scan::default();
    let mut ctes = Vec::new();
    // Per open parenthesis: whether a SELECT has been seen inside it, so that
    // the FROM of `EXTRACT(YEAR FROM ts)` is not taken for a table's.
    let mut selects = vec![true];
    while let Some(t) = c.peek().copied() {
        if t.is_punct('(') {
            selects.push(false);
        } else if t.is_punct(')') {
            selects.pop();
        } else if t.is_word("SELECT") {
            if let Some(seen) = selects.last_mut() {
                *seen = true;
            }
        } else if is_cte_name(&c) {
            ctes.push(c.clone().part()?.to_ascii_lowercase());
        } else if t.is_word("JOIN") || (t.is_word("FROM") && selects.last() == Some(&true) && !after_distinct(&c)) {
            c.bump();
            tables(&mut c, &mut scan)?;
            continue;
        } else if !c.prev().is_some_and(|p| p.is_punct('.'))
            && (at_stream(&c, false) || at_live(&c) || at_cloud_files(&c))
        {
            reference(&mut c, &mut scan, false)?;
            continue;
        }
        c.bump();
    }
    scan.references.retain(|r| r.via != Via::Plain || !ctes.contains(&r.name.to_ascii_lowercase()));
    Ok(scan)
}

/// `query` with its references replaced: `LIVE.x` and plain names by
/// `resolve(x)`, `STREAM(x)` and `STREAM x` by `stream(x)`, else
/// `resolve(x)`, else `x` as written, and the i-th file source by
/// `files(i)`. Names the functions do not know stay as written, and so
/// does every other byte. A query that does not scan (unclosed strings or
/// parentheses) comes back unchanged.
pub(super) fn rewrite(
    query: &str,
    resolve: &dyn Fn(&str) -> Option<String>,
    stream: &dyn Fn(&str) -> Option<String>,
    files: &dyn Fn(usize) -> Option<String>,
) -> String {
    let Ok(scan) = scan(query) else { return query.to_string() };
    let mut replacements: Vec<(Range<usize>, String)> = Vec::new();
    for r in &scan.references {
        let written = query.get(r.written.clone()).unwrap_or_default();
        let replacement = match r.via {
            Via::Stream => Some(stream(&r.name).or_else(|| resolve(&r.name)).unwrap_or_else(|| written.to_string())),
            Via::Live | Via::Plain => resolve(&r.name),
        };
        replacements.extend(replacement.map(|text| (r.span.clone(), text)));
    }
    for (i, span) in scan.source_spans.iter().enumerate() {
        replacements.extend(files(i).map(|text| (span.clone(), text)));
    }
    replacements.sort_by_key(|(span, _)| span.start);
    let mut out = String::with_capacity(query.len());
    let mut copied = 0;
    for (span, text) in replacements {
        out.push_str(query.get(copied..span.start).unwrap_or_default());
        out.push_str(&text);
        copied = span.end;
    }
    out.push_str(query.get(copied..).unwrap_or_default());
    out
}

/// The table references after `FROM` or `JOIN`: one, or several separated
/// by commas, each with an optional alias. Stops at anything else (a
/// subquery, a table function), which the caller scans on.
fn tables(c: &mut Cursor, scan: &mut Scan) -> Parsed<()> {
    loop {
        if !reference(c, scan, true)? {
            return Ok(());
        }
        if c.eat(&["AS"]) {
            c.part()?;
        } else if c.at_name() && !NOT_ALIASES.iter().any(|w| c.at(&[w])) {
            c.bump();
        }
        if !c.punct(',') {
            return Ok(());
        }
    }
}

/// One reference at the cursor, recorded in `scan`; false (nothing read)
/// when there is none. `table`: the cursor is where a table is named (after
/// `FROM`, `JOIN` or a comma between tables), where `STREAM x` and plain
/// names count.
fn reference(c: &mut Cursor, scan: &mut Scan, table: bool) -> Parsed<bool> {
    let start = c.offset();
    if at_stream(c, table) {
        c.bump();
        if at_file_function(c) {
            let source = file_source(c)?;
            push_source(scan, source, start..c.prev_end());
        } else if c.at_punct('(') {
            let mark = c.mark();
            let mut inner = c.group_cursor()?;
            if at_file_function(&inner) {
                let source = file_source(&mut inner)?;
                push_source(scan, source, start..c.prev_end());
            } else if let Some(name) = lone_name(&mut inner) {
                push(scan, name, Via::Stream, start..c.prev_end());
            } else {
                c.reset(mark);
            }
        } else {
            let name = c.name()?;
            push(scan, name, Via::Stream, start..c.prev_end());
        }
        return Ok(true);
    }
    if at_cloud_files(c) {
        let source = file_source(c)?;
        push_source(scan, source, start..c.prev_end());
        return Ok(true);
    }
    if table && at_file_function(c) {
        // A batch `read_files`: every file, each update.
        let source = FileSource { batch: true, ..file_source(c)? };
        push_source(scan, source, start..c.prev_end());
        return Ok(true);
    }
    if at_live(c) {
        c.bump();
        c.bump();
        let bare = c.offset();
        let text = c.part()?;
        let span = start..c.prev_end();
        push(scan, Name { text, span: span.clone(), live: true, bare: bare..span.end }, Via::Live, span);
        return Ok(true);
    }
    let plain = table
        && c.at_name()
        && !NOT_TABLES.iter().any(|w| c.at(&[w]))
        && !c.peek_at(1).is_some_and(|t| t.is_punct('('));
    if plain {
        let name = c.name()?;
        let span = name.span.clone();
        push(scan, name, Via::Plain, span);
    }
    Ok(plain)
}

fn push_source(scan: &mut Scan, source: FileSource, span: Range<usize>) {
    scan.sources.push(source);
    scan.source_spans.push(span);
}

fn push(scan: &mut Scan, name: Name, via: Via, span: Range<usize>) {
    let via = if via == Via::Plain && name.live { Via::Live } else { via };
    scan.references.push(Reference { name: name.text, via, span, written: name.bare });
}

/// A name that is all of `inner`.
fn lone_name(inner: &mut Cursor) -> Option<Name> {
    let name = inner.name().ok()?;
    inner.at_end().then_some(name)
}

/// `STREAM(`, and where a table is named also `STREAM` then a name (not a
/// table named `stream`, followed by a clause or its alias).
fn at_stream(c: &Cursor, table: bool) -> bool {
    c.at(&["STREAM"])
        && c.peek_at(1).is_some_and(|t| {
            t.is_punct('(')
                || (table && t.kind == Kind::QuotedIdentifier)
                || (table && t.kind == Kind::Word && !t.is_word("AS") && !NOT_ALIASES.iter().any(|w| t.is_word(w)))
        })
}

/// `LIVE.x`.
fn at_live(c: &Cursor) -> bool {
    c.at(&["LIVE"])
        && c.peek_at(1).is_some_and(|t| t.is_punct('.'))
        && c.peek_at(2).is_some_and(|t| matches!(t.kind, Kind::Word | Kind::QuotedIdentifier))
}

fn at_cloud_files(c: &Cursor) -> bool {
    c.at(&["cloud_files"]) && c.peek_at(1).is_some_and(|t| t.is_punct('('))
}

fn at_file_function(c: &Cursor) -> bool {
    (c.at(&["read_files"]) || c.at(&["cloud_files"])) && c.peek_at(1).is_some_and(|t| t.is_punct('('))
}

/// `WITH x AS (`, `, x AS (`: the name of a common table expression.
fn is_cte_name(c: &Cursor) -> bool {
    let after_list = c.prev().is_some_and(|p| p.is_word("WITH") || p.is_word("RECURSIVE") || p.is_punct(','));
    after_list
        && c.at_name()
        && c.peek_at(1).is_some_and(|t| t.is_word("AS"))
        && c.peek_at(2).is_some_and(|t| t.is_punct('('))
}

/// `IS [NOT] DISTINCT FROM`.
fn after_distinct(c: &Cursor) -> bool {
    c.prev().is_some_and(|p| p.is_word("DISTINCT"))
}

/// `read_files('path', format => 'json', k => v, ...)` or
/// `cloud_files('path', 'json'[, map('k', 'v', ...)])`.
fn file_source(c: &mut Cursor) -> Parsed<FileSource> {
    let cloud_files = c.at(&["cloud_files"]);
    c.bump();
    let at = c.offset();
    let mut args = c.list()?.into_iter();
    let mut path = args.next().ok_or_else(|| c.error("a path"))?;
    let path_text = path.string()?;
    path.finish("',' or ')'")?;
    let mut source = FileSource { path: path_text, ..FileSource::default() };
    if cloud_files {
        cloud_files_args(&mut source, args)?;
    } else {
        // read_files infers column types unless told not to.
        source.options.insert("cloudFiles.inferColumnTypes".into(), Value::String("true".into()));
        for mut arg in args {
            let (key, value) = named_arg(&mut arg)?;
            if key.eq_ignore_ascii_case("format") {
                source.format = value;
            } else {
                source.options.insert(read_files_option(&key), Value::String(value));
            }
        }
    }
    if source.path.is_empty() {
        return Err(ParseError { message: "a file source needs a path".into(), at });
    }
    Ok(source)
}

/// Auto Loader's options as `read_files` names them (without the
/// `cloudFiles.` prefix) under the names the flow reads them by.
fn read_files_option(key: &str) -> String {
    const AUTO_LOADER: &[&str] = &[
        "inferColumnTypes",
        "schemaEvolutionMode",
        "schemaHints",
        "schemaLocation",
        "maxFilesPerTrigger",
        "includeExistingFiles",
    ];
    match AUTO_LOADER.iter().find(|o| o.eq_ignore_ascii_case(key)) {
        Some(option) => format!("cloudFiles.{option}"),
        None => key.to_string(),
    }
}

/// `cloud_files`' format and its `map('k', 'v', ...)` of options.
fn cloud_files_args<'a>(source: &mut FileSource, mut args: impl Iterator<Item = Cursor<'a>>) -> Parsed<()> {
    if let Some(mut format) = args.next() {
        source.format = format.string()?;
    }
    if let Some(mut options) = args.next() {
        options.expect(&["map"])?;
        let mut pairs = options.list()?.into_iter();
        while let Some(mut key) = pairs.next() {
            let key = key.string()?;
            let mut value = pairs.next().ok_or_else(|| options.error("a value for option"))?;
            source.options.insert(key, Value::String(value.literal()));
        }
    }
    Ok(())
}

/// `name => value`: the name, and the value's text (a string's value).
fn named_arg(arg: &mut Cursor) -> Parsed<(String, String)> {
    let key = arg.part()?;
    arg.expect_punct('=')?;
    arg.expect_punct('>')?;
    if arg.at_end() {
        return Err(arg.error("a value"));
    }
    Ok((key, arg.literal()))
}
