//! A cursor over the significant tokens of one statement (or a piece of
//! one), as `tarn_sqltext` scans them: keyword tests, names, strings and
//! parenthesised groups, with every token's byte offset kept so that
//! clauses can be cut out of the text exactly as written.

use std::ops::Range;

use tarn_sqltext::{Kind, Token};

/// What is wrong, and where: a byte offset in the text the cursor scans.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ParseError {
    pub message: String,
    pub at: usize,
}

pub(super) type Parsed<T> = Result<T, ParseError>;

/// A name as the module keeps it (see the module doc on quoting), and where
/// it is written.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Name {
    pub text: String,
    pub span: Range<usize>,
    /// `LIVE.x` (two parts, the first the bare word `LIVE`): `text` is `x`.
    pub live: bool,
    /// Where the name is written without its `LIVE.`.
    pub bare: Range<usize>,
}

#[derive(Debug, Clone)]
pub(super) struct Cursor<'a> {
    text: &'a str,
    tokens: Vec<Token<'a>>,
    pos: usize,
    /// Where "end of statement" is reported.
    end: usize,
}

impl<'a> Cursor<'a> {
    /// The cursor over `text`; an error for a string, quoted name or
    /// comment left open, or parentheses that do not balance.
    pub fn new(text: &'a str) -> Parsed<Self> {
        let mut tokens = Vec::new();
        let mut open = Vec::new();
        for token in tarn_sqltext::tokens(text) {
            if !token.closed {
                let what = match token.kind {
                    Kind::String => "string",
                    Kind::QuotedIdentifier => "quoted name",
                    _ => "comment",
                };
                return Err(ParseError { message: format!("unterminated {what}"), at: token.start });
            }
            if token.is_punct('(') {
                open.push(token.start);
            } else if token.is_punct(')') && open.pop().is_none() {
                return Err(ParseError {
                    message: "unbalanced parentheses: ')' closes nothing".into(),
                    at: token.start,
                });
            }
            if !token.is_trivia() {
                tokens.push(token);
            }
        }
        if let Some(&at) = open.last() {
            return Err(ParseError { message: "unbalanced parentheses: '(' is never closed".into(), at });
        }
        Ok(Cursor { text, tokens, pos: 0, end: text.trim_end_matches(tarn_sqltext::is_space).len() })
    }

    pub fn peek(&self) -> Option<&Token<'a>> {
        self.peek_at(0)
    }

    pub fn peek_at(&self, n: usize) -> Option<&Token<'a>> {
        self.tokens.get(self.pos + n)
    }

    /// The token before the current one.
    pub fn prev(&self) -> Option<&Token<'a>> {
        self.pos.checked_sub(1).and_then(|at| self.tokens.get(at))
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.tokens.len()
    }

    pub fn bump(&mut self) {
        self.pos += 1;
    }

    pub fn mark(&self) -> usize {
        self.pos
    }

    pub fn reset(&mut self, mark: usize) {
        self.pos = mark;
    }

    /// Where the current token starts (the end of the text when none is left).
    pub fn offset(&self) -> usize {
        self.peek().map_or(self.end, |t| t.start)
    }

    /// Where the token before the current one ends.
    pub fn prev_end(&self) -> usize {
        self.prev().map_or(0, Token::end)
    }

    /// The keywords `words`, in order, start at the current token.
    pub fn at(&self, words: &[&str]) -> bool {
        words.iter().enumerate().all(|(n, w)| self.peek_at(n).is_some_and(|t| t.is_word(w)))
    }

    /// Takes `words` when they come next.
    pub fn eat(&mut self, words: &[&str]) -> bool {
        let found = self.at(words);
        if found {
            self.pos += words.len();
        }
        found
    }

    pub fn expect(&mut self, words: &[&str]) -> Parsed<()> {
        if self.eat(words) { Ok(()) } else { Err(self.error(&words.join(" "))) }
    }

    pub fn at_punct(&self, c: char) -> bool {
        self.peek().is_some_and(|t| t.is_punct(c))
    }

    pub fn punct(&mut self, c: char) -> bool {
        let found = self.at_punct(c);
        if found {
            self.pos += 1;
        }
        found
    }

    pub fn expect_punct(&mut self, c: char) -> Parsed<()> {
        if self.punct(c) { Ok(()) } else { Err(self.error(&format!("'{c}'"))) }
    }

    /// "expected `wanted`, found ..." at the current token.
    pub fn error(&self, wanted: &str) -> ParseError {
        // A piece of a statement ends where the token that stopped it starts.
        let stop = self.text.get(self.end..).and_then(|rest| tarn_sqltext::tokens(rest).next());
        let found = match self.peek().or(stop.as_ref()) {
            Some(t) => format!("'{}'", t.text),
            None => "end of statement".to_string(),
        };
        ParseError { message: format!("expected {wanted}, found {found}"), at: self.offset() }
    }

    /// Fails unless every token has been read.
    pub fn finish(&self, wanted: &str) -> Parsed<()> {
        if self.at_end() { Ok(()) } else { Err(self.error(wanted)) }
    }

    /// A word or quoted name comes next.
    pub fn at_name(&self) -> bool {
        self.peek().is_some_and(|t| matches!(t.kind, Kind::Word | Kind::QuotedIdentifier))
    }

    /// One part of a name.
    pub fn part(&mut self) -> Parsed<String> {
        match self.peek() {
            Some(t) if matches!(t.kind, Kind::Word | Kind::QuotedIdentifier) => {
                let part = name_part(t);
                self.pos += 1;
                Ok(part)
            }
            _ => Err(self.error("a name")),
        }
    }

    /// A name of one or more parts joined by `.`.
    pub fn name(&mut self) -> Parsed<Name> {
        let start = self.offset();
        let live = self.at(&["LIVE"]) && self.peek_at(1).is_some_and(|t| t.is_punct('.'));
        let mut parts = vec![self.part()?];
        let mut second = None;
        while self.punct('.') {
            second.get_or_insert(self.offset());
            parts.push(self.part()?);
        }
        let span = start..self.prev_end();
        if let (true, [_, last], Some(second)) = (live, parts.as_mut_slice(), second) {
            let text = std::mem::take(last);
            return Ok(Name { text, span: span.clone(), live: true, bare: second..span.end });
        }
        Ok(Name { text: parts.join("."), span: span.clone(), live: false, bare: span })
    }

    /// A string literal's value.
    pub fn string(&mut self) -> Parsed<String> {
        match self.peek() {
            Some(t) if t.kind == Kind::String => {
                let value = t.value().into_owned();
                self.pos += 1;
                Ok(value)
            }
            _ => Err(self.error("a quoted string")),
        }
    }

    /// The rest as a value: a lone string's value, or the text as written.
    pub fn literal(&mut self) -> String {
        let whole = self.text_all().to_string();
        match self.string() {
            Ok(value) if self.at_end() => value,
            _ => whole,
        }
    }

    /// `( ... )`: the text between the parentheses as written, trimmed.
    pub fn group(&mut self) -> Parsed<&'a str> {
        let items = self.group_cursor()?;
        Ok(items.text_all())
    }

    /// `( ... )`: a cursor over what is inside the parentheses.
    pub fn group_cursor(&mut self) -> Parsed<Cursor<'a>> {
        self.expect_punct('(')?;
        let close = self.closing()?;
        let inner = self.sub(self.pos, close, self.tokens[close].start);
        self.pos = close + 1;
        Ok(inner)
    }

    /// `( a, b, ... )`: a cursor over each comma-separated item (nested
    /// parentheses kept whole); an empty item is an error.
    pub fn list(&mut self) -> Parsed<Vec<Cursor<'a>>> {
        let mut inner = self.group_cursor()?;
        let mut items = Vec::new();
        loop {
            let item = inner.until(|c| c.at_punct(','));
            if item.at_end() {
                return Err(inner.error("a list item"));
            }
            items.push(item);
            if inner.at_end() {
                return Ok(items);
            }
            inner.bump();
        }
    }

    /// A list of names, parenthesised or not: `(a, b)`, `a, b`.
    pub fn names(&mut self) -> Parsed<Vec<String>> {
        if self.at_punct('(') {
            let mut names = Vec::new();
            for mut item in self.list()? {
                names.push(item.name()?.text);
                item.finish("',' or ')'")?;
            }
            return Ok(names);
        }
        let mut names = vec![self.name()?.text];
        while self.punct(',') {
            names.push(self.name()?.text);
        }
        Ok(names)
    }

    /// A cursor over the tokens from here up to (not including) the first
    /// one outside parentheses where `stop` holds, or to the end; this
    /// cursor moves past them.
    pub fn until(&mut self, stop: impl Fn(&Cursor<'a>) -> bool) -> Cursor<'a> {
        let start = self.pos;
        let mut depth = 0usize;
        while let Some(t) = self.peek() {
            if depth == 0 && stop(self) {
                break;
            }
            if t.is_punct('(') {
                depth += 1;
            } else if t.is_punct(')') {
                depth = depth.saturating_sub(1);
            }
            self.pos += 1;
        }
        self.sub(start, self.pos, self.offset())
    }

    /// The text from the current token to the last one, as written (comments
    /// between them included, none around them).
    pub fn text_all(&self) -> &'a str {
        match (self.peek(), self.tokens.last()) {
            (Some(first), Some(last)) => self.text.get(first.start..last.end()).unwrap_or_default(),
            _ => "",
        }
    }

    /// The remaining text (see [`Self::text_all`]) and where it starts; an
    /// error when nothing is left.
    pub fn rest(&mut self, wanted: &str) -> Parsed<(&'a str, usize)> {
        if self.at_end() {
            return Err(self.error(wanted));
        }
        let rest = (self.text_all(), self.offset());
        self.pos = self.tokens.len();
        Ok(rest)
    }

    /// The index of the `)` closing the group whose `(` was just read.
    fn closing(&self) -> Parsed<usize> {
        let mut depth = 0usize;
        for (at, t) in self.tokens.iter().enumerate().skip(self.pos) {
            if t.is_punct('(') {
                depth += 1;
            } else if t.is_punct(')') {
                if depth == 0 {
                    return Ok(at);
                }
                depth -= 1;
            }
        }
        Err(ParseError { message: "unbalanced parentheses: '(' is never closed".into(), at: self.prev_end() })
    }

    fn sub(&self, from: usize, to: usize, end: usize) -> Cursor<'a> {
        let tokens = self.tokens.get(from..to).unwrap_or_default().to_vec();
        Cursor { text: self.text, tokens, pos: 0, end }
    }
}

/// One part of a name as kept: a word as written; a quoted name unquoted
/// when it is a plain identifier (ASCII letters, digits and `_`, not starting
/// with a digit), else quoted again so that the dotted whole stays
/// unambiguous (`` `raw-events` ``).
fn name_part(token: &Token) -> String {
    if token.kind != Kind::QuotedIdentifier {
        return token.text.to_string();
    }
    let value = token.value();
    let plain = value.chars().next().is_some_and(|c| !c.is_ascii_digit())
        && value.chars().all(|c| c == '_' || c.is_ascii_alphanumeric());
    if plain { value.into_owned() } else { format!("`{}`", value.replace('`', "``")) }
}
