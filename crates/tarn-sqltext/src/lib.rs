//! SQL text as Spark's lexer sees it: where strings, quoted names and
//! comments begin and end, and where one statement stops and the next starts.
//! Every part of tarn that looks inside SQL text (the lake's statements, the
//! gateway's rewrite passes, SQL tasks) scans it here, so they agree with each
//! other and with the engine. The Python worker's `split_sql`
//! (`python/tarn/kernel.py`) mirrors [`tokens`] and [`split_statements`];
//! `cases.json` is the table of cases both sides run.
//!
//! The rules are those of Spark 4's `SqlBaseLexer.g4`:
//! - `'...'` and `"..."` are strings. A backslash escapes the character after
//!   it, and a doubled quote stands for itself (`'it''s'`, `"a""b"`).
//!   `R'...'` / `R"..."` (either case) are raw strings: no escapes at all.
//! - `` `...` `` is a quoted identifier; a doubled backtick stands for itself
//!   and a backslash is an ordinary character.
//! - `--` starts a comment that ends at the line break, except that a
//!   backslash right before a `\n` continues it onto the next line.
//! - `/* ... */` comments nest (`/* a /* b */ c */` is one comment), and one
//!   left open runs to the end of the text. `/*+` opens a hint, which is code,
//!   not a comment, and does not nest inside a comment either.
//! - Statements are separated by `;` outside all of the above; a statement of
//!   only whitespace and comments is no statement (Spark's CLI drops it too),
//!   but a comment left open is kept so that the engine reports it.
//!
//! Sail, the default engine, reads the same text the same way except for the
//! backslash-continued `--` comment and a `/*+` inside a comment, which it
//! does not know; tarn follows Spark, as Databricks does.
//!
//! The inverse for names: [`quote_identifier`] and [`quote_name`] write a
//! name back as a quoted identifier the scanner reads as that name.
//!
//! This crate owns scanning only: it knows no keywords and parses nothing.
//! It depends on no other crate.

mod scan;
mod value;

pub use scan::{Kind, Token, Tokens, is_space, tokens};

/// `` `part` `` with its backticks doubled: read back as `part`, whatever it holds.
pub fn quote_identifier(part: &str) -> String {
    format!("`{}`", part.replace('`', "``"))
}

/// A multi-part name as quoted identifiers joined by dots (`` `c`.`s`.`t` ``).
pub fn quote_name<S: AsRef<str>>(parts: &[S]) -> String {
    parts.iter().map(|p| quote_identifier(p.as_ref())).collect::<Vec<_>>().join(".")
}

/// The statements of `sql`: split on `;` outside strings, quoted names and
/// comments, each trimmed of whitespace, without the `;`, and with its
/// comments kept. Pieces holding only whitespace and closed comments are
/// left out.
pub fn split_statements(sql: &str) -> Vec<&str> {
    let mut statements = Vec::new();
    let mut start = 0;
    let mut significant = false;
    let piece = |from: usize, to: usize| sql.get(from..to).unwrap_or_default().trim_matches(is_space);
    for token in tokens(sql) {
        if token.is_punct(';') {
            if significant {
                statements.push(piece(start, token.start));
            }
            start = token.end();
            significant = false;
        } else if !(token.is_trivia() && token.closed) {
            significant = true;
        }
    }
    if significant {
        statements.push(piece(start, sql.len()));
    }
    statements
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_names_read_back_as_written() {
        let name = quote_name(&["main", "odd`name", "a.b"]);
        assert_eq!(name, "`main`.`odd``name`.`a.b`");
        let parts: Vec<String> =
            tokens(&name).filter(|t| t.kind == Kind::QuotedIdentifier).map(|t| t.value().into_owned()).collect();
        assert_eq!(parts, ["main", "odd`name", "a.b"]);
    }

    #[test]
    fn statements_are_slices_of_the_text() {
        let sql = "SELECT 1;\n  SELECT 'a;b' -- c\n";
        let statements = split_statements(sql);
        assert_eq!(statements, ["SELECT 1", "SELECT 'a;b' -- c"]);
        assert!(statements.iter().all(|s| sql.contains(s)));
    }
}
