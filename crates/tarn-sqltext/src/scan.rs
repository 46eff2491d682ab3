//! The tokenizer: SQL text cut into spans that cover it exactly, each with
//! its kind. Fine enough for the keyword-level parsing tarn does (words,
//! numbers, single punctuation characters), exact about what is quoted or
//! commented out.

use std::borrow::Cow;

/// What a [`Token`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A run of whitespace ([`is_space`]).
    Whitespace,
    /// `-- ...` up to the line break, which is not part of it.
    LineComment,
    /// `/* ... */`, nested comments included.
    BlockComment,
    /// A name or keyword: word characters, not starting with an ASCII digit.
    /// Word characters are ASCII letters and digits, `_`, and any non-ASCII
    /// character that is not whitespace.
    Word,
    /// An ASCII digit, then word characters and dots (`1`, `2.5`, `10L`).
    Number,
    /// `'...'`, `"..."`, `R'...'` or `R"..."`, quotes included.
    String,
    /// `` `...` ``, backticks included.
    QuotedIdentifier,
    /// Any other single character (`;`, `(`, `.`, `*`, the `/*+` of a hint...).
    Punct,
}

impl Kind {
    pub fn is_comment(self) -> bool {
        matches!(self, Kind::LineComment | Kind::BlockComment)
    }
}

/// One span of the scanned text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token<'a> {
    pub kind: Kind,
    /// The text as written, quotes and comment markers included.
    pub text: &'a str,
    /// Where `text` starts in the scanned text, in bytes.
    pub start: usize,
    /// False for a string, quoted identifier or block comment that the end
    /// of the text cut off (it then runs to the end); true otherwise.
    pub closed: bool,
}

impl<'a> Token<'a> {
    /// Where `text` ends in the scanned text, in bytes.
    pub fn end(&self) -> usize {
        self.start + self.text.len()
    }

    /// Whitespace or a comment: what separates tokens and means nothing.
    pub fn is_trivia(&self) -> bool {
        self.kind == Kind::Whitespace || self.kind.is_comment()
    }

    /// This is the word `word`, in any case (a keyword test).
    pub fn is_word(&self, word: &str) -> bool {
        self.kind == Kind::Word && self.text.eq_ignore_ascii_case(word)
    }

    pub fn is_punct(&self, c: char) -> bool {
        self.kind == Kind::Punct && self.text.starts_with(c)
    }

    /// A string or quoted identifier as its opening quote (`'`, `R'`, `` ` ``...),
    /// the text between the quotes as written, and its closing quote (empty
    /// when not closed). Other tokens are `("", text, "")`.
    pub fn split_quotes(&self) -> (&'a str, &'a str, &'a str) {
        let open = match self.kind {
            Kind::String if !self.text.starts_with(['\'', '"']) => 2,
            Kind::String | Kind::QuotedIdentifier => 1,
            _ => return ("", self.text, ""),
        };
        let close = usize::from(self.closed);
        let (open, rest) = self.text.split_at(open);
        let (inner, close) = rest.split_at(rest.len() - close);
        (open, inner, close)
    }

    /// What the token stands for: a string's characters with its escapes
    /// resolved as Spark resolves them, a quoted identifier's name; any other
    /// token's text as written.
    pub fn value(&self) -> Cow<'a, str> {
        let (open, inner, _) = self.split_quotes();
        match self.kind {
            Kind::String if open.len() == 2 => Cow::Borrowed(inner),
            Kind::String => crate::value::unescape(inner, open.starts_with('"')),
            Kind::QuotedIdentifier if inner.contains("``") => Cow::Owned(inner.replace("``", "`")),
            Kind::QuotedIdentifier => Cow::Borrowed(inner),
            _ => Cow::Borrowed(self.text),
        }
    }
}

/// Spark's whitespace (its lexer's `WS` rule): ASCII spaces, tabs, line
/// breaks, vertical tab and form feed, and the Unicode spaces it lists.
pub fn is_space(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t' | '\n' | '\r' | '\u{0B}' | '\u{0C}' | '\u{A0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200A}' | '\u{2028}' | '\u{202F}' | '\u{205F}' | '\u{3000}'
    )
}

fn is_word_char(c: char) -> bool {
    c == '_' || c.is_ascii_alphanumeric() || (!c.is_ascii() && !is_space(c))
}

/// The tokens of `sql`, in order; together they are exactly `sql`.
pub fn tokens(sql: &str) -> Tokens<'_> {
    Tokens { sql, pos: 0 }
}

/// The iterator [`tokens`] returns.
#[derive(Debug, Clone)]
pub struct Tokens<'a> {
    sql: &'a str,
    pos: usize,
}

impl<'a> Iterator for Tokens<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        let rest = self.sql.get(self.pos..)?;
        let first = rest.chars().next()?;
        let (kind, len, closed) = scan(rest, first);
        let token = Token { kind, text: rest.get(..len)?, start: self.pos, closed };
        self.pos += len;
        Some(token)
    }
}

/// The kind and byte length of the token at the start of `rest`, which
/// begins with `first`, and whether it is closed.
fn scan(rest: &str, first: char) -> (Kind, usize, bool) {
    let bytes = rest.as_bytes();
    match first {
        c if is_space(c) => (Kind::Whitespace, run(rest, is_space), true),
        '-' if rest.starts_with("--") => (Kind::LineComment, line_comment(bytes), true),
        '/' if opens_comment(bytes) => {
            let (len, closed) = block_comment(bytes);
            (Kind::BlockComment, len, closed)
        }
        '\'' | '"' => {
            let (len, closed) = quoted(bytes, true);
            (Kind::String, len, closed)
        }
        '`' => {
            let (len, closed) = quoted(bytes, false);
            (Kind::QuotedIdentifier, len, closed)
        }
        c if c.is_ascii_digit() => (Kind::Number, run(rest, |c| c == '.' || is_word_char(c)), true),
        c if is_word_char(c) => {
            let len = run(rest, is_word_char);
            if len == 1 && matches!(c, 'r' | 'R') && matches!(bytes.get(1), Some(b'\'' | b'"')) {
                let (len, closed) = raw(bytes);
                (Kind::String, len, closed)
            } else {
                (Kind::Word, len, true)
            }
        }
        c => (Kind::Punct, c.len_utf8(), true),
    }
}

/// The length of the run of `pred` characters starting `rest`.
fn run(rest: &str, pred: impl Fn(char) -> bool) -> usize {
    rest.char_indices().find(|(_, c)| !pred(*c)).map_or(rest.len(), |(i, _)| i)
}

/// `/*` that is not the `/*+` of a hint.
fn opens_comment(bytes: &[u8]) -> bool {
    bytes.starts_with(b"/*") && bytes.get(2) != Some(&b'+')
}

/// Up to the `\r` or `\n` that ends the comment; `\` + `\n` continues it.
fn line_comment(bytes: &[u8]) -> usize {
    let mut i = 2;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if bytes.get(i + 1) == Some(&b'\n') => i += 2,
            b'\r' | b'\n' => return i,
            _ => i += 1,
        }
    }
    bytes.len()
}

fn block_comment(bytes: &[u8]) -> (usize, bool) {
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        if opens_comment(rest) {
            depth += 1;
            i += 2;
        } else if rest.starts_with(b"*/") {
            depth = depth.saturating_sub(1);
            i += 2;
            if depth == 0 {
                return (i, true);
            }
        } else {
            i += 1;
        }
    }
    (bytes.len(), false)
}

/// The quoted text opening `bytes`: a doubled quote stays inside,
/// and with `backslash` a backslash escapes the next character. Quotes and
/// backslashes are ASCII, so scanning bytes never stops inside a character.
fn quoted(bytes: &[u8], backslash: bool) -> (usize, bool) {
    let quote = bytes[0];
    let mut i = 1;
    while i < bytes.len() {
        if backslash && bytes[i] == b'\\' {
            i += 2;
        } else if bytes[i] == quote {
            if bytes.get(i + 1) != Some(&quote) {
                return (i + 1, true);
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    (bytes.len(), false)
}

/// `R'...'`: up to the next quote, no escapes.
fn raw(bytes: &[u8]) -> (usize, bool) {
    let quote = bytes[1];
    match bytes[2..].iter().position(|b| *b == quote) {
        Some(at) => (at + 3, true),
        None => (bytes.len(), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(sql: &str) -> Vec<(Kind, &str, bool)> {
        tokens(sql).map(|t| (t.kind, t.text, t.closed)).collect()
    }

    #[test]
    fn tokens_cover_the_text() {
        for sql in ["SELECT 'é;' -- ü\n/* /* */ */ `x``y` r'\\' 1.5é", "'", "/*", "--", "\\", "é€"] {
            assert_eq!(tokens(sql).map(|t| t.text).collect::<String>(), sql);
        }
    }

    #[test]
    fn quotes_and_comments() {
        use Kind::*;
        assert_eq!(
            kinds("a'b\\'c'`d`/*+ e */"),
            [
                (Word, "a", true),
                (String, "'b\\'c'", true),
                (QuotedIdentifier, "`d`", true),
                (Punct, "/", true),
                (Punct, "*", true),
                (Punct, "+", true),
                (Whitespace, " ", true),
                (Word, "e", true),
                (Whitespace, " ", true),
                (Punct, "*", true),
                (Punct, "/", true),
            ]
        );
        assert_eq!(kinds("\"a\\"), [(String, "\"a\\", false)]);
        assert_eq!(kinds("/* /* */"), [(BlockComment, "/* /* */", false)]);
    }

    #[test]
    fn quote_parts() {
        let parts = |sql| tokens(sql).next().map(|t| t.split_quotes());
        assert_eq!(parts("R'a'"), Some(("R'", "a", "'")));
        assert_eq!(parts("'a"), Some(("'", "a", "")));
        assert_eq!(parts("`a``b`"), Some(("`", "a``b", "`")));
        assert_eq!(parts("ab"), Some(("", "ab", "")));
    }
}
