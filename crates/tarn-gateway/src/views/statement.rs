//! `CREATE VIEW`, `ALTER VIEW`, `DROP VIEW` and `SHOW VIEWS` as Spark writes them, read from tokens:
//! the header is parsed, the query after `AS` is kept as the user wrote it.
//! Temporary and materialized views are not read here (the engine keeps
//! temporary views; pipelines own materialized ones).

use tarn_sqltext::{Kind, Token};

use crate::access::Name;

/// A view statement tarn answers.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ViewStatement {
    Create(CreateView),
    Drop {
        name: Name,
        if_exists: bool,
    },
    /// `ALTER VIEW name SET TBLPROPERTIES (...)`.
    SetProperties {
        name: Name,
        properties: Vec<(String, String)>,
    },
    /// `SHOW VIEWS [IN|FROM schema] [[LIKE] 'pattern']`.
    Show {
        schema: Option<Name>,
        pattern: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CreateView {
    pub name: Name,
    pub replace: bool,
    /// `ALTER VIEW name AS query`: the view must exist; only its query changes.
    pub alter: bool,
    pub if_not_exists: bool,
    /// Names (and comments) given to the query's columns.
    pub columns: Vec<(String, Option<String>)>,
    pub comment: Option<String>,
    pub properties: Vec<(String, String)>,
    /// The query, as written.
    pub query: String,
}

struct Cursor<'a> {
    tokens: Vec<Token<'a>>,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<&Token<'a>> {
        self.tokens.get(self.at)
    }

    fn word(&mut self, word: &str) -> bool {
        let found = self.peek().is_some_and(|t| t.is_word(word));
        self.at += usize::from(found);
        found
    }

    fn words(&mut self, words: &[&str]) -> bool {
        let found = words.iter().enumerate().all(|(i, w)| self.tokens.get(self.at + i).is_some_and(|t| t.is_word(w)));
        if found {
            self.at += words.len();
        }
        found
    }

    fn punct(&mut self, c: char) -> bool {
        let found = self.peek().is_some_and(|t| t.is_punct(c));
        self.at += usize::from(found);
        found
    }

    fn ident(&mut self) -> Option<String> {
        let t = self.peek().filter(|t| matches!(t.kind, Kind::Word | Kind::QuotedIdentifier))?;
        let value = t.value().into_owned();
        self.at += 1;
        Some(value)
    }

    fn name(&mut self) -> Option<Name> {
        let mut name = vec![self.ident()?];
        while self.punct('.') {
            name.push(self.ident()?);
        }
        Some(name)
    }

    fn string(&mut self) -> Option<String> {
        let t = self.peek().filter(|t| t.kind == Kind::String)?;
        let value = t.value().into_owned();
        self.at += 1;
        Some(value)
    }

    /// A property key or value: a string, a number, or dotted words.
    fn property_part(&mut self) -> Option<String> {
        if let Some(s) = self.string() {
            return Some(s);
        }
        let t = self.peek().filter(|t| t.kind == Kind::Number)?;
        let value = t.text.to_string();
        self.at += 1;
        Some(value)
    }

    fn properties(&mut self) -> Option<Vec<(String, String)>> {
        if !self.punct('(') {
            return None;
        }
        let mut properties = Vec::new();
        loop {
            let key = match self.property_part() {
                Some(key) => key,
                None => self.name()?.join("."),
            };
            self.punct('=');
            let value = match self.property_part() {
                Some(value) => value,
                None => self.ident()?,
            };
            properties.push((key, value));
            if !self.punct(',') {
                break;
            }
        }
        self.punct(')').then_some(properties)
    }

    fn at_end(&self) -> bool {
        self.tokens[self.at..].iter().all(|t| t.is_punct(';'))
    }
}

/// The view statement `sql` is; `Some(Err)` with what is wrong when it is
/// one that does not read; `None` for any other statement.
pub(crate) fn parse(sql: &str) -> Option<Result<ViewStatement, String>> {
    let tokens: Vec<Token<'_>> = tarn_sqltext::tokens(sql).filter(|t| !t.is_trivia()).collect();
    let mut c = Cursor { tokens, at: 0 };
    if c.word("drop") {
        if !c.word("view") {
            return None;
        }
        let if_exists = c.words(&["if", "exists"]);
        let statement = c.name().filter(|_| c.at_end()).map(|name| ViewStatement::Drop { name, if_exists });
        return Some(statement.ok_or_else(|| "DROP VIEW [IF EXISTS] <name>".to_string()));
    }
    if c.words(&["show", "views"]) {
        let schema = if c.word("in") || c.word("from") { c.name().map(Some) } else { Some(None) };
        let like = c.word("like");
        let pattern = c.string();
        let statement = schema
            .filter(|_| c.at_end() && (pattern.is_some() || !like))
            .map(|schema| ViewStatement::Show { schema, pattern });
        return Some(statement.ok_or_else(|| "SHOW VIEWS [IN <schema>] [LIKE '<pattern>']".to_string()));
    }
    if c.words(&["alter", "view"]) {
        return Some(
            alter(&mut c, sql)
                .ok_or_else(|| "ALTER VIEW <name> AS <query> | ALTER VIEW <name> SET TBLPROPERTIES (...)".to_string()),
        );
    }
    if !c.word("create") {
        return None;
    }
    let replace = c.words(&["or", "replace"]);
    if !c.word("view") {
        return None;
    }
    Some(create(&mut c, sql, replace).ok_or_else(|| {
        "CREATE [OR REPLACE] VIEW [IF NOT EXISTS] <name> [(<column> [COMMENT '...'], ...)] [COMMENT '...'] \
         [TBLPROPERTIES (...)] AS <query>"
            .to_string()
    }))
}

fn alter(c: &mut Cursor<'_>, sql: &str) -> Option<ViewStatement> {
    let name = c.name()?;
    if c.words(&["set", "tblproperties"]) {
        let properties = c.properties()?;
        return c.at_end().then_some(ViewStatement::SetProperties { name, properties });
    }
    if !c.word("as") {
        return None;
    }
    Some(ViewStatement::Create(CreateView {
        name,
        replace: true,
        alter: true,
        if_not_exists: false,
        columns: Vec::new(),
        comment: None,
        properties: Vec::new(),
        query: query_from(c, sql)?,
    }))
}

/// The query that starts at the cursor, as written.
fn query_from(c: &Cursor<'_>, sql: &str) -> Option<String> {
    let start = c.peek()?.start;
    let query = sql.get(start..)?.trim_end_matches(|ch: char| ch == ';' || tarn_sqltext::is_space(ch));
    Some(query.to_string())
}

fn create(c: &mut Cursor<'_>, sql: &str, replace: bool) -> Option<ViewStatement> {
    let if_not_exists = c.words(&["if", "not", "exists"]);
    let name = c.name()?;
    let mut columns = Vec::new();
    if c.punct('(') {
        loop {
            let column = c.ident()?;
            let comment = if c.word("comment") { Some(c.string()?) } else { None };
            columns.push((column, comment));
            if !c.punct(',') {
                break;
            }
        }
        if !c.punct(')') {
            return None;
        }
    }
    let (mut comment, mut properties) = (None, Vec::new());
    loop {
        if c.word("comment") {
            comment = Some(c.string()?);
        } else if c.word("tblproperties") {
            properties = c.properties()?;
        } else if c.words(&["with", "schema"]) {
            // Schema binding modes change nothing here: the query is read anew each time.
            while c.peek().is_some_and(|t| t.kind == Kind::Word && !t.is_word("as")) {
                c.at += 1;
            }
        } else {
            break;
        }
    }
    if !c.word("as") {
        return None;
    }
    Some(ViewStatement::Create(CreateView {
        name,
        replace,
        alter: false,
        if_not_exists,
        columns,
        comment,
        properties,
        query: query_from(c, sql)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create_of(sql: &str) -> CreateView {
        match parse(sql) {
            Some(Ok(ViewStatement::Create(c))) => c,
            other => panic!("not a CREATE VIEW: {other:?}"),
        }
    }

    #[test]
    fn create_view_headers_are_read_and_the_query_kept() {
        let c = create_of(
            "create or replace view `hive_metastore`.`shop`.`gold` (id COMMENT 'the id', n) \
             COMMENT 'gold ones' TBLPROPERTIES ('a.b' = 'c', d = 1) AS\n select id, count(*) n -- x\n from t ;",
        );
        assert_eq!(c.name, ["hive_metastore", "shop", "gold"]);
        assert!(c.replace && !c.if_not_exists);
        assert_eq!(c.columns, [("id".to_string(), Some("the id".to_string())), ("n".to_string(), None)]);
        assert_eq!(c.comment.as_deref(), Some("gold ones"));
        assert_eq!(c.properties, [("a.b".to_string(), "c".to_string()), ("d".to_string(), "1".to_string())]);
        assert_eq!(c.query, "select id, count(*) n -- x\n from t");

        let c = create_of("CREATE VIEW IF NOT EXISTS v AS WITH x AS (SELECT 1 AS a) SELECT * FROM x");
        assert!(c.if_not_exists && !c.replace);
        assert_eq!(c.query, "WITH x AS (SELECT 1 AS a) SELECT * FROM x");
    }

    #[test]
    fn drops_temporary_views_and_other_statements() {
        assert_eq!(
            parse("DROP VIEW IF EXISTS s.v;"),
            Some(Ok(ViewStatement::Drop { name: vec!["s".into(), "v".into()], if_exists: true }))
        );
        assert!(parse("DROP VIEW").unwrap().is_err());
        assert_eq!(
            parse("SHOW VIEWS IN main.shop LIKE 'g*'"),
            Some(Ok(ViewStatement::Show {
                schema: Some(vec!["main".into(), "shop".into()]),
                pattern: Some("g*".into())
            }))
        );
        assert_eq!(parse("show views"), Some(Ok(ViewStatement::Show { schema: None, pattern: None })));
        assert!(parse("SHOW VIEWS LIKE").unwrap().is_err());
        let Some(Ok(ViewStatement::Create(altered))) = parse("ALTER VIEW v AS SELECT 2;") else { panic!() };
        assert!(altered.alter && altered.replace && altered.query == "SELECT 2");
        assert_eq!(
            parse("alter view s.v set tblproperties ('k' = 'v')"),
            Some(Ok(ViewStatement::SetProperties {
                name: vec!["s".into(), "v".into()],
                properties: vec![("k".into(), "v".into())]
            }))
        );
        assert!(parse("ALTER VIEW v RENAME TO w").unwrap().is_err());
        assert!(parse("CREATE VIEW v").unwrap().is_err());
        for other in [
            "CREATE TEMP VIEW v AS SELECT 1",
            "CREATE OR REPLACE TEMPORARY VIEW v AS SELECT 1",
            "CREATE GLOBAL TEMPORARY VIEW v AS SELECT 1",
            "CREATE MATERIALIZED VIEW v AS SELECT 1",
            "DROP TABLE v",
            "SELECT * FROM v",
        ] {
            assert_eq!(parse(other), None, "{other}");
        }
    }
}
