//! A string literal's value, its escapes resolved as Spark's
//! `SparkParserUtils.unescapeSQLString` resolves them.

use std::borrow::Cow;

/// The value of the text between a string's quotes (`double` for `"..."`):
/// a doubled quote is one quote; `\uXXXX`, `\UXXXXXXXX` and three-digit octal
/// `\[01][0-7][0-7]` are that character (U+FFFD where there is none);
/// `\0 \b \n \r \t \Z` are NUL, backspace, line feed, carriage return, tab
/// and Ctrl-Z; `\%` and `\_` stay as written (for LIKE patterns); a
/// backslash before any other character is dropped.
pub(crate) fn unescape(inner: &str, double: bool) -> Cow<'_, str> {
    let quote = if double { '"' } else { '\'' };
    let doubled = if double { "\"\"" } else { "''" };
    if !inner.contains('\\') && !inner.contains(doubled) {
        return Cow::Borrowed(inner);
    }
    let mut out = String::with_capacity(inner.len());
    let mut rest = inner;
    while let Some(c) = rest.chars().next() {
        rest = &rest[c.len_utf8()..];
        if c == quote && rest.starts_with(quote) {
            out.push(quote);
            rest = &rest[1..];
        } else if c != '\\' || rest.is_empty() {
            out.push(c);
        } else if let Some((decoded, used)) = numeric(rest) {
            out.push(decoded);
            rest = &rest[used..];
        } else if let Some(escaped) = rest.chars().next() {
            rest = &rest[escaped.len_utf8()..];
            match escaped {
                '0' => out.push('\0'),
                'b' => out.push('\u{08}'),
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'Z' => out.push('\u{1A}'),
                '%' | '_' => {
                    out.push('\\');
                    out.push(escaped);
                }
                other => out.push(other),
            }
        }
    }
    Cow::Owned(out)
}

/// `uXXXX`, `UXXXXXXXX` or three octal digits at the start of `rest` (what
/// follows a backslash): the character and how many bytes it took.
fn numeric(rest: &str) -> Option<(char, usize)> {
    let hex = |digits: usize| {
        let text = rest.get(1..=digits).filter(|t| t.bytes().all(|b| b.is_ascii_hexdigit()))?;
        let code = u32::from_str_radix(text, 16).ok()?;
        Some((char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER), digits + 1))
    };
    match rest.as_bytes() {
        [b'u', ..] => hex(4),
        [b'U', ..] => hex(8),
        [first @ (b'0' | b'1'), second @ b'0'..=b'7', third @ b'0'..=b'7', ..] => {
            let code = u32::from(first - b'0') * 64 + u32::from(second - b'0') * 8 + u32::from(third - b'0');
            Some((char::from_u32(code)?, 3))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::unescape;

    #[test]
    fn escapes_resolve_as_in_spark() {
        assert_eq!(unescape(r"it''s \'q\' \\ \n\t\Z\0", false), "it's 'q' \\ \n\t\u{1A}\0");
        assert_eq!(unescape(r"\u00e9\U0001F600\101\1\%\_\q\", false), "é😀A1\\%\\_q\\");
        assert_eq!(unescape(r#"a""b ''"#, true), "a\"b ''");
        assert_eq!(unescape(r"\uD800 \u12", false), "\u{FFFD} u12");
    }
}
