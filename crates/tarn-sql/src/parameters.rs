//! Statement parameters written into the statement's text as typed
//! literals (`:name` and `?` markers), before tarn-lake or the engine sees
//! it: tarn-lake takes no parameters, and the engine takes them in queries
//! only, not in commands such as `INSERT ... VALUES (:id)`. Markers are
//! found by the tokenizer, so quoted text and comments are left as they are,
//! and each value becomes a quoted string literal cast to its type, so a
//! value is never read as SQL.

use std::borrow::Cow;

use tarn_sqltext::{Kind, Token};

use crate::statements::StatementError;

/// A statement parameter: `:name` in the SQL text, or the next `?` when
/// `name` is empty. A missing value is NULL; the value is cast to
/// `type_text` (Spark SQL type syntax) when given.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlParameter {
    pub name: String,
    pub value: Option<String>,
    pub type_text: Option<String>,
}

/// `text` with each marker that names a parameter (`:name`, `` :`name` ``)
/// or stands for the next positional one (`?`) replaced by its value.
pub fn inline<'a>(text: &'a str, parameters: &[SqlParameter]) -> Result<Cow<'a, str>, StatementError> {
    if parameters.is_empty() {
        return Ok(Cow::Borrowed(text));
    }
    let tokens: Vec<Token<'_>> = tarn_sqltext::tokens(text).collect();
    let mut positional = parameters.iter().filter(|p| p.name.is_empty());
    let mut out = String::with_capacity(text.len() + 16 * parameters.len());
    let mut i = 0;
    while i < tokens.len() {
        let token = &tokens[i];
        if token.is_punct('?') {
            let p = positional.next().ok_or_else(|| {
                StatementError::bad_request(
                    "The statement has more ? markers than parameters".into(),
                    Some("07001".into()),
                )
            })?;
            out.push_str(&literal(p));
            i += 1;
            continue;
        }
        if let Some(p) = named_marker(&tokens, i, parameters) {
            out.push_str(&literal(p));
            i += 2;
            continue;
        }
        out.push_str(token.text);
        i += 1;
    }
    Ok(Cow::Owned(out))
}

/// The parameter the `:` at `i` marks, if it is a marker: not part of `::`,
/// and not a JSON path (`col:field`, written against its operand).
fn named_marker<'p>(tokens: &[Token<'_>], i: usize, parameters: &'p [SqlParameter]) -> Option<&'p SqlParameter> {
    let colon = &tokens[i];
    if !colon.is_punct(':') {
        return None;
    }
    let before = i.checked_sub(1).map(|b| &tokens[b]);
    let operand = |t: &Token<'_>| {
        matches!(t.kind, Kind::Word | Kind::QuotedIdentifier | Kind::Number) || t.is_punct(')') || t.is_punct(']')
    };
    if before.is_some_and(|t| t.is_punct(':') || operand(t)) {
        return None;
    }
    let name = tokens.get(i + 1).filter(|t| matches!(t.kind, Kind::Word | Kind::QuotedIdentifier))?;
    let name = name.value();
    parameters.iter().find(|p| !p.name.is_empty() && p.name == name)
}

/// The value as a SQL literal of its type: `NULL`, a string, or a cast string.
fn literal(p: &SqlParameter) -> String {
    let Some(value) = &p.value else {
        return match p.type_text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            Some(t) => format!("CAST(NULL AS {t})"),
            None => "NULL".into(),
        };
    };
    let quoted = format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"));
    match p.type_text.as_deref().map(str::trim) {
        None | Some("") => quoted,
        Some(t) if t.eq_ignore_ascii_case("STRING") => quoted,
        Some(t) => format!("CAST({quoted} AS {t})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str, value: Option<&str>, type_text: Option<&str>) -> SqlParameter {
        SqlParameter { name: name.into(), value: value.map(Into::into), type_text: type_text.map(Into::into) }
    }

    #[test]
    fn named_and_positional_markers_become_literals() {
        let params = [p("id", Some("7"), Some("INT")), p("my name", Some("O'Brien \\ co"), None)];
        let text = inline("INSERT INTO t VALUES (:id, :`my name`)", &params).unwrap();
        assert_eq!(text, r"INSERT INTO t VALUES (CAST('7' AS INT), 'O\'Brien \\ co')");
        let positional = [p("", Some("1"), Some("BIGINT")), p("", None, Some("DATE"))];
        assert_eq!(inline("SELECT ?, ?", &positional).unwrap(), "SELECT CAST('1' AS BIGINT), CAST(NULL AS DATE)");
        assert!(inline("SELECT ?, ?, ?", &positional).is_err());
    }

    #[test]
    fn quoted_text_casts_and_json_paths_stay() {
        let params = [p("id", Some("1"), None)];
        let text = "SELECT ':id', x::int, raw:id, /* :id */ :id -- :id";
        assert_eq!(inline(text, &params).unwrap(), "SELECT ':id', x::int, raw:id, /* :id */ '1' -- :id");
        assert_eq!(inline("SELECT :other", &params).unwrap(), "SELECT :other");
    }
}
