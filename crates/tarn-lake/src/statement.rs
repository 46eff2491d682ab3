//! The Delta statements tarn runs itself, recognised from SQL text.
//!
//! Only the fixed forms below are parsed; anything else is not a lake
//! statement and goes to the engine unchanged.

use tarn_sqltext::Kind;

use crate::{LakeError, Result};

/// A lake statement, with its table name as written (one to three parts).
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    DescribeHistory {
        table: Vec<String>,
        limit: Option<usize>,
    },
    DescribeDetail {
        table: Vec<String>,
    },
    Optimize {
        table: Vec<String>,
        partition_filters: Vec<(String, String)>,
        zorder_by: Vec<String>,
    },
    Vacuum {
        table: Vec<String>,
        retain_hours: Option<f64>,
        dry_run: bool,
    },
    Restore {
        table: Vec<String>,
        to: RestoreTarget,
    },
    AddColumns {
        table: Vec<String>,
        columns: Vec<NewColumn>,
    },
    SetProperties {
        table: Vec<String>,
        properties: Vec<(String, String)>,
    },
    CommentOnTable {
        table: Vec<String>,
        comment: Option<String>,
    },
    /// `COMMENT ON COLUMN t.c IS ...` and `ALTER TABLE t ALTER|CHANGE [COLUMN] c COMMENT ...`.
    CommentOnColumn {
        table: Vec<String>,
        column: String,
        comment: Option<String>,
    },
    /// `SHOW TBLPROPERTIES t [('key')]`.
    ShowProperties {
        table: Vec<String>,
        key: Option<String>,
    },
    /// `CREATE OR REPLACE TABLE t (columns) [USING DELTA] [COMMENT] [TBLPROPERTIES]`:
    /// the engine's catalog cannot replace a table, so tarn writes the new
    /// schema as the table's next version (its history is kept).
    ReplaceTable {
        table: Vec<String>,
        columns: Vec<TableColumn>,
        comment: Option<String>,
        properties: Vec<(String, String)>,
    },
}

/// A column of a table being (re)defined.
#[derive(Debug, Clone, PartialEq)]
pub struct TableColumn {
    pub column: NewColumn,
    pub nullable: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RestoreTarget {
    Version(i64),
    Timestamp(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewColumn {
    pub name: String,
    pub data_type: String,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Str(String),
    Number(String),
    Punct(char),
}

/// The tokens that mean something: comments and whitespace dropped, strings
/// and quoted names by their values (as `tarn_sqltext` reads them). A
/// string, name or comment left open is an error (the engine reports it).
fn tokenize(sql: &str) -> Result<Vec<Token>> {
    let mut tokens = Vec::new();
    for t in tarn_sqltext::tokens(sql) {
        tokens.push(match t.kind {
            _ if !t.closed => return Err(LakeError::Parse("unterminated quoted text or comment".into())),
            Kind::Whitespace | Kind::LineComment | Kind::BlockComment => continue,
            Kind::Word => Token::Word(t.text.to_string()),
            Kind::Number => Token::Number(t.text.to_string()),
            Kind::String => Token::Str(t.value().into_owned()),
            Kind::QuotedIdentifier => Token::Quoted(t.value().into_owned()),
            Kind::Punct => Token::Punct(t.text.chars().next().unwrap_or_default()),
        });
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek_keyword(&self, keyword: &str) -> bool {
        matches!(self.tokens.get(self.pos), Some(Token::Word(w)) if w.eq_ignore_ascii_case(keyword))
    }

    fn keyword(&mut self, keyword: &str) -> bool {
        let found = self.peek_keyword(keyword);
        if found {
            self.pos += 1;
        }
        found
    }

    fn expect_keyword(&mut self, keyword: &str) -> Result<()> {
        if self.keyword(keyword) { Ok(()) } else { Err(self.unexpected(keyword)) }
    }

    fn punct(&mut self, p: char) -> bool {
        let found = self.tokens.get(self.pos) == Some(&Token::Punct(p));
        if found {
            self.pos += 1;
        }
        found
    }

    fn expect_punct(&mut self, p: char) -> Result<()> {
        if self.punct(p) { Ok(()) } else { Err(self.unexpected(&format!("'{p}'"))) }
    }

    fn unexpected(&self, wanted: &str) -> LakeError {
        let found = match self.tokens.get(self.pos) {
            Some(Token::Word(w) | Token::Number(w)) => format!("'{w}'"),
            Some(Token::Quoted(w)) => format!("`{w}`"),
            Some(Token::Str(s)) => format!("'{s}'"),
            Some(Token::Punct(p)) => format!("'{p}'"),
            None => "end of input".to_string(),
        };
        LakeError::Parse(format!("expected {wanted}, found {found}"))
    }

    fn identifier(&mut self) -> Result<String> {
        self.take(|t| if let Token::Word(w) | Token::Quoted(w) = t { Some(w) } else { None }, "a name")
    }

    fn table_name(&mut self) -> Result<Vec<String>> {
        self.table_name_parts(3)
    }

    /// A dotted name of at most `max` parts.
    fn table_name_parts(&mut self, max: usize) -> Result<Vec<String>> {
        let mut parts = vec![self.identifier()?];
        while self.punct('.') {
            parts.push(self.identifier()?);
        }
        if parts.len() > max {
            return Err(LakeError::Parse(format!("table name {} has more than three parts", parts.join("."))));
        }
        Ok(parts)
    }

    /// The next token's text when `pick` takes it.
    fn take(&mut self, pick: fn(&Token) -> Option<&String>, wanted: &str) -> Result<String> {
        match self.tokens.get(self.pos).and_then(pick) {
            Some(text) => {
                let text = text.clone();
                self.pos += 1;
                Ok(text)
            }
            None => Err(self.unexpected(wanted)),
        }
    }

    fn string(&mut self) -> Result<String> {
        self.take(|t| if let Token::Str(s) = t { Some(s) } else { None }, "a quoted string")
    }

    fn number(&mut self) -> Result<String> {
        self.take(|t| if let Token::Number(n) = t { Some(n) } else { None }, "a number")
    }

    /// `(a, b)` or `a, b`.
    fn name_list(&mut self) -> Result<Vec<String>> {
        let parenthesized = self.punct('(');
        let mut names = vec![self.identifier()?];
        while self.punct(',') {
            names.push(self.identifier()?);
        }
        if parenthesized {
            self.expect_punct(')')?;
        }
        Ok(names)
    }

    fn end(&mut self) -> Result<()> {
        while self.punct(';') {}
        if self.pos < self.tokens.len() { Err(self.unexpected("end of statement")) } else { Ok(()) }
    }
}

/// Parses `sql` when it is a lake statement; `Ok(None)` when it is not one
/// (the engine runs it), an error when it is one but malformed.
pub fn parse(sql: &str) -> Result<Option<Statement>> {
    let Ok(tokens) = tokenize(sql) else { return Ok(None) };
    let mut p = Parser { tokens, pos: 0 };
    let statement = if p.keyword("DESCRIBE") || p.keyword("DESC") {
        if p.keyword("HISTORY") {
            let table = p.table_name()?;
            let limit = if p.keyword("LIMIT") { Some(parse_number(&p.number()?)?) } else { None };
            Statement::DescribeHistory { table, limit }
        } else if p.keyword("DETAIL") {
            Statement::DescribeDetail { table: p.table_name()? }
        } else {
            return Ok(None);
        }
    } else if p.keyword("OPTIMIZE") {
        optimize(&mut p)?
    } else if p.keyword("VACUUM") {
        vacuum(&mut p)?
    } else if p.keyword("RESTORE") {
        restore(&mut p)?
    } else if p.keyword("COMMENT") {
        p.expect_keyword("ON")?;
        if p.keyword("COLUMN") {
            let mut path = p.table_name_parts(4)?;
            let column = path.pop().filter(|_| !path.is_empty()).ok_or_else(|| p.unexpected("table.column"))?;
            p.expect_keyword("IS")?;
            let comment = if p.keyword("NULL") { None } else { Some(p.string()?) };
            return finish(p, Statement::CommentOnColumn { table: path, column, comment });
        }
        if !p.keyword("TABLE") {
            return Ok(None);
        }
        let table = p.table_name()?;
        p.expect_keyword("IS")?;
        let comment = if p.keyword("NULL") { None } else { Some(p.string()?) };
        Statement::CommentOnTable { table, comment }
    } else if p.keyword("SHOW") {
        if !p.keyword("TBLPROPERTIES") {
            return Ok(None);
        }
        let table = p.table_name()?;
        let key = if p.punct('(') {
            let key = match p.tokens.get(p.pos) {
                Some(Token::Str(_)) => p.string()?,
                _ => dotted_key(&mut p)?,
            };
            p.expect_punct(')')?;
            Some(key)
        } else {
            None
        };
        Statement::ShowProperties { table, key }
    } else if p.keyword("CREATE") {
        match replace_table(&mut p) {
            Some(statement) => statement,
            None => return Ok(None),
        }
    } else if p.keyword("ALTER") && p.keyword("TABLE") {
        match alter_table(&mut p)? {
            Some(statement) => statement,
            None => return Ok(None),
        }
    } else {
        return Ok(None);
    };
    p.end()?;
    Ok(Some(statement))
}

fn finish(mut p: Parser, statement: Statement) -> Result<Option<Statement>> {
    p.end()?;
    Ok(Some(statement))
}

fn parse_number<T: std::str::FromStr>(n: &str) -> Result<T> {
    n.parse().map_err(|_| LakeError::Parse(format!("'{n}' is not a valid number here")))
}

fn optimize(p: &mut Parser) -> Result<Statement> {
    let table = p.table_name()?;
    let mut partition_filters = Vec::new();
    if p.keyword("WHERE") {
        loop {
            let column = p.identifier()?;
            p.expect_punct('=')?;
            let value = match p.tokens.get(p.pos) {
                Some(Token::Number(_)) => p.number()?,
                _ => p.string()?,
            };
            partition_filters.push((column, value));
            if !p.keyword("AND") {
                break;
            }
        }
    }
    let zorder_by = if p.keyword("ZORDER") {
        p.expect_keyword("BY")?;
        p.name_list()?
    } else {
        Vec::new()
    };
    Ok(Statement::Optimize { table, partition_filters, zorder_by })
}

fn vacuum(p: &mut Parser) -> Result<Statement> {
    let table = p.table_name()?;
    let mut retain_hours = None;
    if p.keyword("RETAIN") {
        retain_hours = Some(parse_number(&p.number()?)?);
        p.expect_keyword("HOURS")?;
    }
    let dry_run = p.keyword("DRY");
    if dry_run {
        p.expect_keyword("RUN")?;
    }
    Ok(Statement::Vacuum { table, retain_hours, dry_run })
}

fn restore(p: &mut Parser) -> Result<Statement> {
    p.keyword("TABLE");
    let table = p.table_name()?;
    p.keyword("TO");
    let to = if p.keyword("VERSION") {
        p.expect_keyword("AS")?;
        p.expect_keyword("OF")?;
        RestoreTarget::Version(parse_number(&p.number()?)?)
    } else {
        p.expect_keyword("TIMESTAMP")?;
        p.expect_keyword("AS")?;
        p.expect_keyword("OF")?;
        RestoreTarget::Timestamp(p.string()?)
    };
    Ok(Statement::Restore { table, to })
}

/// `ADD COLUMNS` and `SET TBLPROPERTIES`; other `ALTER TABLE` forms go to the engine.
fn alter_table(p: &mut Parser) -> Result<Option<Statement>> {
    let table = p.table_name()?;
    if p.keyword("ADD") {
        if !(p.keyword("COLUMNS") || p.keyword("COLUMN")) {
            return Ok(None);
        }
        let parenthesized = p.punct('(');
        let mut columns = vec![new_column(p)?];
        while p.punct(',') {
            columns.push(new_column(p)?);
        }
        if parenthesized {
            p.expect_punct(')')?;
        }
        return Ok(Some(Statement::AddColumns { table, columns }));
    }
    if p.keyword("ALTER") || p.keyword("CHANGE") {
        p.keyword("COLUMN");
        let column = p.identifier()?;
        if !p.keyword("COMMENT") {
            return Ok(None);
        }
        let comment = Some(p.string()?);
        return Ok(Some(Statement::CommentOnColumn { table, column, comment }));
    }
    if p.keyword("SET") && p.keyword("TBLPROPERTIES") {
        return Ok(Some(Statement::SetProperties { table, properties: property_list(p)? }));
    }
    Ok(None)
}

/// `(key = value, ...)` after `TBLPROPERTIES`.
fn property_list(p: &mut Parser) -> Result<Vec<(String, String)>> {
    p.expect_punct('(')?;
    let mut properties = Vec::new();
    loop {
        let key = match p.tokens.get(p.pos) {
            Some(Token::Str(_)) => p.string()?,
            _ => dotted_key(p)?,
        };
        p.punct('=');
        let value = match p.tokens.get(p.pos) {
            Some(Token::Number(_)) => p.number()?,
            Some(Token::Word(_)) => p.identifier()?,
            _ => p.string()?,
        };
        properties.push((key, value));
        if !p.punct(',') {
            break;
        }
    }
    p.expect_punct(')')?;
    Ok(properties)
}

/// The replace form of `CREATE TABLE` with a column list and nothing the
/// engine must decide (no query, partitioning, clustering or location);
/// `None` leaves any other `CREATE` to the engine.
fn replace_table(p: &mut Parser) -> Option<Statement> {
    if !(p.keyword("OR") && p.keyword("REPLACE") && p.keyword("TABLE")) {
        return None;
    }
    let table = p.table_name().ok()?;
    p.expect_punct('(').ok()?;
    let mut columns = Vec::new();
    loop {
        let column = new_column(p).ok()?;
        let nullable = !(p.keyword("NOT") && p.keyword("NULL"));
        columns.push(TableColumn { column, nullable });
        if !p.punct(',') {
            break;
        }
    }
    p.expect_punct(')').ok()?;
    let (mut comment, mut properties) = (None, Vec::new());
    loop {
        if p.keyword("USING") {
            p.keyword("DELTA").then_some(())?;
        } else if p.keyword("COMMENT") {
            comment = Some(p.string().ok()?);
        } else if p.keyword("TBLPROPERTIES") {
            properties = property_list(p).ok()?;
        } else {
            break;
        }
    }
    p.end().ok()?;
    Some(Statement::ReplaceTable { table, columns, comment, properties })
}

fn dotted_key(p: &mut Parser) -> Result<String> {
    let mut key = p.identifier()?;
    while p.punct('.') {
        key.push('.');
        key.push_str(&p.identifier()?);
    }
    Ok(key)
}

fn new_column(p: &mut Parser) -> Result<NewColumn> {
    let name = p.identifier()?;
    let mut data_type = p.identifier()?.to_ascii_lowercase();
    if p.punct('(') {
        let mut args = vec![p.number()?];
        while p.punct(',') {
            args.push(p.number()?);
        }
        p.expect_punct(')')?;
        data_type = format!("{data_type}({})", args.join(","));
    }
    let comment = if p.keyword("COMMENT") { Some(p.string()?) } else { None };
    Ok(NewColumn { name, data_type, comment })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn recognises_lake_statements() {
        assert_eq!(
            parse("describe history main.s.`my t` limit 2;").unwrap(),
            Some(Statement::DescribeHistory { table: t(&["main", "s", "my t"]), limit: Some(2) })
        );
        assert_eq!(
            parse("OPTIMIZE s.t WHERE day = '2024-01-01' ZORDER BY (user_id, ts)").unwrap(),
            Some(Statement::Optimize {
                table: t(&["s", "t"]),
                partition_filters: vec![("day".into(), "2024-01-01".into())],
                zorder_by: t(&["user_id", "ts"]),
            })
        );
        assert_eq!(
            parse("VACUUM t RETAIN 0 HOURS DRY RUN").unwrap(),
            Some(Statement::Vacuum { table: t(&["t"]), retain_hours: Some(0.0), dry_run: true })
        );
        assert_eq!(
            parse("RESTORE TABLE t TO VERSION AS OF 3").unwrap(),
            Some(Statement::Restore { table: t(&["t"]), to: RestoreTarget::Version(3) })
        );
        assert_eq!(
            parse("ALTER TABLE t SET TBLPROPERTIES ('delta.appendOnly' = 'false', owner.team = ml)").unwrap(),
            Some(Statement::SetProperties {
                table: t(&["t"]),
                properties: vec![("delta.appendOnly".into(), "false".into()), ("owner.team".into(), "ml".into())],
            })
        );
        assert_eq!(
            parse("ALTER TABLE t ADD COLUMNS (price DECIMAL(10, 2) COMMENT 'it''s', n INT)").unwrap(),
            Some(Statement::AddColumns {
                table: t(&["t"]),
                columns: vec![
                    NewColumn { name: "price".into(), data_type: "decimal(10,2)".into(), comment: Some("it's".into()) },
                    NewColumn { name: "n".into(), data_type: "int".into(), comment: None },
                ],
            })
        );
        assert_eq!(
            parse("COMMENT ON TABLE t IS NULL").unwrap(),
            Some(Statement::CommentOnTable { table: t(&["t"]), comment: None })
        );
        assert_eq!(
            parse("/* nightly; it's /* nested */ */ DESCRIBE DETAIL `a``b` -- done").unwrap(),
            Some(Statement::DescribeDetail { table: t(&["a`b"]) })
        );
    }

    #[test]
    fn recognises_show_properties_and_replace_table() {
        assert_eq!(
            parse("SHOW TBLPROPERTIES `main`.`s`.`t`").unwrap(),
            Some(Statement::ShowProperties { table: t(&["main", "s", "t"]), key: None })
        );
        assert_eq!(
            parse("show tblproperties t ('delta.appendOnly')").unwrap(),
            Some(Statement::ShowProperties { table: t(&["t"]), key: Some("delta.appendOnly".into()) })
        );
        let column = |name: &str, data_type: &str, comment: Option<&str>, nullable: bool| TableColumn {
            column: NewColumn { name: name.into(), data_type: data_type.into(), comment: comment.map(Into::into) },
            nullable,
        };
        assert_eq!(
            parse(
                "create or replace table `hive_metastore`.`s`.`seed` (`id` bigint NOT NULL, `amount` decimal(10,2) \
                 COMMENT 'in €' ,`at` timestamp ) using delta COMMENT 'seeded' TBLPROPERTIES ('a' = 'b')"
            )
            .unwrap(),
            Some(Statement::ReplaceTable {
                table: t(&["hive_metastore", "s", "seed"]),
                columns: vec![
                    column("id", "bigint", None, false),
                    column("amount", "decimal(10,2)", Some("in €"), true),
                    column("at", "timestamp", None, true),
                ],
                comment: Some("seeded".into()),
                properties: vec![("a".into(), "b".into())],
            })
        );
    }

    #[test]
    fn recognises_column_comments() {
        let comment = |table: &[&str], column: &str, comment: Option<&str>| Statement::CommentOnColumn {
            table: t(table),
            column: column.into(),
            comment: comment.map(Into::into),
        };
        assert_eq!(
            parse("COMMENT ON COLUMN `hive_metastore`.`s`.`t`.`id` IS 'The customer\\'s id'").unwrap(),
            Some(comment(&["hive_metastore", "s", "t"], "id", Some("The customer's id")))
        );
        assert_eq!(parse("comment on column t.id is null").unwrap(), Some(comment(&["t"], "id", None)));
        assert_eq!(
            parse("ALTER TABLE s.t ALTER COLUMN id COMMENT 'x'").unwrap(),
            Some(comment(&["s", "t"], "id", Some("x")))
        );
        assert_eq!(parse("ALTER TABLE t CHANGE id COMMENT 'x'").unwrap(), Some(comment(&["t"], "id", Some("x"))));
        assert_eq!(parse("ALTER TABLE t ALTER COLUMN id SET NOT NULL").unwrap(), None);
        assert!(parse("COMMENT ON COLUMN id IS 'x'").is_err());
    }

    #[test]
    fn leaves_other_sql_to_the_engine() {
        for sql in [
            "SELECT 1",
            "DESCRIBE TABLE t",
            "ALTER TABLE t RENAME TO u",
            "COMMENT ON SCHEMA s IS 'x'",
            "-- DESCRIBE HISTORY t\nSELECT 1",
            "VACUUM t /* left open",
            "COMMENT ON TABLE t IS 'left open",
            "SHOW TABLES IN s",
            "CREATE TABLE t (a INT) USING DELTA",
            "CREATE OR REPLACE TABLE t USING DELTA AS SELECT 1",
            "CREATE OR REPLACE TABLE t (a INT) USING DELTA AS SELECT 1",
            "CREATE OR REPLACE TABLE t (a INT) USING parquet",
            "CREATE OR REPLACE TABLE t (a INT) PARTITIONED BY (a)",
            "CREATE OR REPLACE TABLE t (a INT) CLUSTER BY (a)",
            "CREATE OR REPLACE TABLE t (a ARRAY<INT>)",
            "CREATE OR REPLACE VIEW v AS SELECT 1",
        ] {
            assert_eq!(parse(sql).unwrap(), None, "{sql}");
        }
    }

    #[test]
    fn malformed_lake_statements_are_errors() {
        for sql in ["DESCRIBE HISTORY", "VACUUM t RETAIN x HOURS", "RESTORE t TO VERSION AS OF", "OPTIMIZE t junk"] {
            assert!(matches!(parse(sql), Err(LakeError::Parse(_))), "{sql}");
        }
    }
}
