//! SCIM list filters (RFC 7644 §3.4.2.2): `attrPath op value` and `attrPath
//! pr`, joined by `and`, `or` and `not`, with parentheses. Evaluated on a
//! resource's SCIM JSON; attribute names and string values compare without
//! regard to case, and a multi-valued attribute matches when any value does.

use serde_json::Value;

use crate::error::{IdentityError, Result};

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Compare { path: Vec<String>, op: Op, value: Value },
    Present(Vec<String>),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Op {
    fn parse(word: &str) -> Option<Self> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => Self::Eq,
            "ne" => Self::Ne,
            "co" => Self::Co,
            "sw" => Self::Sw,
            "ew" => Self::Ew,
            "gt" => Self::Gt,
            "ge" => Self::Ge,
            "lt" => Self::Lt,
            "le" => Self::Le,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Text(String),
    Open,
    Close,
}

fn invalid(message: impl Into<String>) -> IdentityError {
    IdentityError::InvalidFilter(message.into())
}

fn tokens(text: &str) -> Result<Vec<Token>> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' => {
                chars.next();
                out.push(if c == '(' { Token::Open } else { Token::Close });
            }
            '"' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some('\\') => s.push(chars.next().ok_or_else(|| invalid("a string ends in an escape"))?),
                        Some('"') => break,
                        Some(c) => s.push(c),
                        None => return Err(invalid("a string is not closed")),
                    }
                }
                out.push(Token::Text(s));
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || c == '(' || c == ')' || c == '"' {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                out.push(Token::Word(word));
            }
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek_word(&self, word: &str) -> bool {
        matches!(self.tokens.get(self.at), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn or(&mut self) -> Result<Filter> {
        let mut left = self.and()?;
        while self.peek_word("or") {
            self.at += 1;
            left = Filter::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter> {
        let mut left = self.not()?;
        while self.peek_word("and") {
            self.at += 1;
            left = Filter::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Filter> {
        if self.peek_word("not") {
            self.at += 1;
            return Ok(Filter::Not(Box::new(self.atom()?)));
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<Filter> {
        match self.next() {
            Some(Token::Open) => {
                let inner = self.or()?;
                match self.next() {
                    Some(Token::Close) => Ok(inner),
                    _ => Err(invalid("a parenthesis is not closed")),
                }
            }
            Some(Token::Word(attr)) => {
                if attr.contains('[') {
                    return Err(invalid(format!("value filters such as '{attr}' are not supported")));
                }
                let path: Vec<String> = attr.split('.').map(str::to_string).collect();
                let op = match self.next() {
                    Some(Token::Word(op)) if op.eq_ignore_ascii_case("pr") => return Ok(Filter::Present(path)),
                    Some(Token::Word(op)) => {
                        Op::parse(&op).ok_or_else(|| invalid(format!("unknown operator '{op}'")))?
                    }
                    _ => return Err(invalid(format!("an operator must follow '{attr}'"))),
                };
                let value = match self.next() {
                    Some(Token::Text(s)) => Value::String(s),
                    Some(Token::Word(w)) => match w.as_str() {
                        "true" => Value::Bool(true),
                        "false" => Value::Bool(false),
                        "null" => Value::Null,
                        _ => w.parse::<f64>().map(Value::from).map_err(|_| invalid(format!("'{w}' is not a value")))?,
                    },
                    _ => return Err(invalid(format!("a value must follow '{attr}'"))),
                };
                Ok(Filter::Compare { path, op, value })
            }
            _ => Err(invalid("an attribute name was expected")),
        }
    }
}

impl Filter {
    pub fn parse(text: &str) -> Result<Self> {
        let mut parser = Parser { tokens: tokens(text)?, at: 0 };
        let filter = parser.or()?;
        if parser.at < parser.tokens.len() {
            return Err(invalid(format!("unexpected text at the end of filter '{text}'")));
        }
        Ok(filter)
    }

    pub fn matches(&self, resource: &Value) -> bool {
        match self {
            Self::And(a, b) => a.matches(resource) && b.matches(resource),
            Self::Or(a, b) => a.matches(resource) || b.matches(resource),
            Self::Not(a) => !a.matches(resource),
            Self::Present(path) => values_at(resource, path).iter().any(|v| !v.is_null() && v != &Value::from("")),
            Self::Compare { path, op, value } => {
                let found = values_at(resource, path);
                match op {
                    Op::Ne => !found.iter().any(|v| compare(v, Op::Eq, value)),
                    _ => found.iter().any(|v| compare(v, *op, value)),
                }
            }
        }
    }
}

/// The values at `path` (case-insensitive names), flattening arrays and
/// reading `value` of a multi-valued attribute's items when the path stops
/// at the attribute (`members eq "1"` means `members.value eq "1"`).
fn values_at(resource: &Value, path: &[String]) -> Vec<Value> {
    let mut current = vec![resource.clone()];
    for name in path {
        current = current
            .iter()
            .flat_map(|v| match v {
                Value::Array(items) => items.clone(),
                other => vec![other.clone()],
            })
            .filter_map(|v| field(&v, name).cloned())
            .collect();
    }
    current
        .into_iter()
        .flat_map(|v| match v {
            Value::Array(items) => items.into_iter().map(|i| field(&i, "value").cloned().unwrap_or(i)).collect(),
            other => vec![other],
        })
        .collect()
}

pub(crate) fn field<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    value.as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

fn compare(found: &Value, op: Op, wanted: &Value) -> bool {
    if let (Some(a), Some(b)) = (found.as_str(), wanted.as_str()) {
        let (a, b) = (a.to_lowercase(), b.to_lowercase());
        return match op {
            Op::Eq => a == b,
            Op::Ne => a != b,
            Op::Co => a.contains(&b),
            Op::Sw => a.starts_with(&b),
            Op::Ew => a.ends_with(&b),
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Lt => a < b,
            Op::Le => a <= b,
        };
    }
    if let (Some(a), Some(b)) = (found.as_f64(), wanted.as_f64()) {
        return match op {
            Op::Eq => a == b,
            Op::Ne => a != b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Co | Op::Sw | Op::Ew => false,
        };
    }
    match op {
        Op::Eq => found == wanted,
        Op::Ne => found != wanted,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn filters_match_as_scim_says() {
        let user = json!({"userName": "Ana@Example.com", "active": true, "name": {"givenName": "Ana"},
                          "emails": [{"value": "ana@example.com"}], "groups": [{"value": "7", "display": "team"}]});
        for (text, expected) in [
            ("userName eq \"ana@example.com\"", true),
            ("username sw \"ana\" and active eq true", true),
            ("name.givenName co \"n\"", true),
            ("emails.value ew \"example.com\"", true),
            ("groups eq \"7\"", true),
            ("groups.display eq \"team\" and not (userName eq \"x\")", true),
            ("displayName pr", false),
            ("userName ne \"ana@example.com\" or active eq false", false),
        ] {
            assert_eq!(Filter::parse(text).unwrap().matches(&user), expected, "{text}");
        }
        for bad in ["userName", "userName xx \"a\"", "(userName eq \"a\"", "emails[type eq \"work\"]", "userName eq"] {
            assert!(matches!(Filter::parse(bad), Err(IdentityError::InvalidFilter(_))), "{bad}");
        }
    }
}
