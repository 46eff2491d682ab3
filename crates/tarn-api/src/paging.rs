//! Paged listings at the edge: the [`Page`] a request asks for (its
//! `page_token`, and the size under the name its API family uses) and the
//! [`Paged`] answer in that family's shape.
//!
//! A page token is the offset of the next page ([`tarn_core::page`]); a bad
//! one is INVALID_PARAMETER_VALUE "Invalid page token: ..." in every family.

use std::marker::PhantomData;

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value, json};
use tarn_core::{ApiError, page};

use crate::body::QueryPairs;
use crate::error::ApiFailure;

/// How one API family names, bounds and checks its page size.
pub trait PageRule: Send + Sync + 'static {
    /// The query parameter carrying the page size (`page_size`,
    /// `max_results`, `limit`).
    const SIZE: &'static str;
    /// The size served when none or 0 is asked, and the most served.
    const MAX: usize;
    /// Whether an `offset` parameter is read when no page token is sent (the
    /// jobs APIs take either).
    const OFFSET: bool = false;

    /// Why the size `raw` (`parsed` when it is an integer) is refused;
    /// `None` accepts it, and a negative or non-integer size then serves
    /// [`PageRule::MAX`].
    fn refusal(raw: &str, parsed: Option<i64>) -> Option<String>;
}

/// Where a listing starts and how much of it to return.
pub struct Page<R> {
    /// Items to skip: the page token's offset (or `offset`), else 0.
    pub offset: usize,
    /// Items to return: the size asked, bounded by the family's maximum.
    pub size: usize,
    /// The size as sent, when it is an integer, for a domain that bounds it
    /// itself (jobs).
    pub requested: Option<i64>,
    rule: PhantomData<R>,
}

impl<R: PageRule> Page<R> {
    /// Reads the page from a query string's pairs.
    pub fn from_query(query: &QueryPairs) -> Result<Self, ApiFailure> {
        let raw = query.get(R::SIZE);
        let requested = raw.and_then(|v| v.parse::<i64>().ok());
        if let Some(why) = raw.and_then(|v| R::refusal(v, requested)) {
            return Err(ApiError::invalid_parameter(why).into());
        }
        let size = match requested {
            Some(n) if n > 0 => usize::try_from(n).unwrap_or(R::MAX).min(R::MAX),
            _ => R::MAX,
        };
        let offset = match query.get("page_token").filter(|t| !t.is_empty()) {
            Some(token) => page::decode(token)?,
            None if R::OFFSET => usize::try_from(query.int("offset")?.unwrap_or(0).max(0)).unwrap_or(0),
            None => 0,
        };
        Ok(Self { offset, size, requested, rule: PhantomData })
    }

    /// This page of `items` (the whole listing, filtered and ordered), under
    /// `key`, with the next page's token when items remain.
    pub fn slice<T: Clone>(&self, key: &'static str, items: &[T]) -> Paged<T> {
        let (items, next) = page::slice(items, self.offset, self.size);
        Paged::new(key, items).next_page_token(next)
    }

    /// A page the domain cut itself (`offset` and `requested` passed on):
    /// `has_more` always, and the next token after these items when true.
    pub fn answer<T>(&self, key: &'static str, items: Vec<T>, has_more: bool) -> Paged<T> {
        let next = has_more.then(|| page::encode(self.offset.saturating_add(items.len())));
        Paged::new(key, items).next_page_token(next).has_more(has_more)
    }

    /// The token of the page before this one, when this is not the first.
    pub fn prev_page_token(&self) -> Option<String> {
        (self.offset > 0).then(|| page::encode(self.offset.saturating_sub(self.size)))
    }
}

impl<S: Send + Sync, R: PageRule> FromRequestParts<S> for Page<R> {
    type Rejection = ApiFailure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Self::from_query(&QueryPairs::from_request_parts(parts, state).await?)
    }
}

/// One page of a listing as its family answers it: the items under their
/// key, `next_page_token` only when more remain, and the family's extras.
#[derive(Debug, Clone, PartialEq)]
pub struct Paged<T> {
    key: &'static str,
    items: Vec<T>,
    next_page_token: Option<String>,
    prev_page_token: Option<String>,
    has_more: Option<bool>,
    omit_empty: bool,
    extra: Map<String, Value>,
}

impl<T> Paged<T> {
    pub fn new(key: &'static str, items: Vec<T>) -> Self {
        Self {
            key,
            items,
            next_page_token: None,
            prev_page_token: None,
            has_more: None,
            omit_empty: false,
            extra: Map::new(),
        }
    }

    pub fn next_page_token(mut self, token: Option<String>) -> Self {
        self.next_page_token = token;
        self
    }

    /// Adds `prev_page_token` (clusters/list) when there is one.
    pub fn prev_page_token(mut self, token: Option<String>) -> Self {
        self.prev_page_token = token;
        self
    }

    /// Adds `has_more`, always sent (jobs).
    pub fn has_more(mut self, has_more: bool) -> Self {
        self.has_more = Some(has_more);
        self
    }

    /// Leaves the items' key out when there are none (jobs, the Files API).
    pub fn omit_empty(mut self) -> Self {
        self.omit_empty = true;
        self
    }

    /// Adds a field of the family's own (`total_count`, `next_page`).
    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.to_string(), value);
        self
    }

    /// Converts the items, keeping the page.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Paged<U> {
        Paged {
            key: self.key,
            items: self.items.into_iter().map(f).collect(),
            next_page_token: self.next_page_token,
            prev_page_token: self.prev_page_token,
            has_more: self.has_more,
            omit_empty: self.omit_empty,
            extra: self.extra,
        }
    }
}

impl<T: Serialize> Paged<T> {
    /// The answer as JSON (an object, so its keys go out sorted).
    pub fn to_json(&self) -> Value {
        let mut out = self.extra.clone();
        if !(self.omit_empty && self.items.is_empty()) {
            out.insert(self.key.to_string(), json!(self.items));
        }
        let tokens = [("next_page_token", &self.next_page_token), ("prev_page_token", &self.prev_page_token)];
        for (key, token) in tokens {
            if let Some(token) = token {
                out.insert(key.to_string(), json!(token));
            }
        }
        if let Some(has_more) = self.has_more {
            out.insert("has_more".into(), json!(has_more));
        }
        Value::Object(out)
    }
}

impl<T: Serialize> IntoResponse for Paged<T> {
    fn into_response(self) -> Response {
        Json(self.to_json()).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Strict;
    impl PageRule for Strict {
        const SIZE: &'static str = "page_size";
        const MAX: usize = 3;
        fn refusal(raw: &str, parsed: Option<i64>) -> Option<String> {
            match parsed {
                None => Some(format!("page_size must be an integer, got {raw}")),
                Some(n) if n < 0 => Some(format!("page_size must be >= 0, got {n}")),
                Some(_) => None,
            }
        }
    }

    struct Offsets;
    impl PageRule for Offsets {
        const SIZE: &'static str = "limit";
        const MAX: usize = 100;
        const OFFSET: bool = true;
        fn refusal(_: &str, _: Option<i64>) -> Option<String> {
            None
        }
    }

    fn read<R: PageRule>(query: &str) -> Result<Page<R>, String> {
        let pairs = QueryPairs(form_urlencoded::parse(query.as_bytes()).into_owned().collect());
        Page::<R>::from_query(&pairs).map_err(|e| e.0.message)
    }

    /// (offset, size, requested), or the refusal.
    fn page<R: PageRule>(query: &str) -> Result<(usize, usize, Option<i64>), String> {
        read::<R>(query).map(|p| (p.offset, p.size, p.requested))
    }

    #[test]
    fn sizes_tokens_and_offsets() {
        assert_eq!(page::<Strict>(""), Ok((0, 3, None)));
        assert_eq!(page::<Strict>("page_size=2&page_token=o4"), Ok((4, 2, Some(2))));
        assert_eq!(page::<Strict>("page_size=0&page_token="), Ok((0, 3, Some(0))));
        assert_eq!(page::<Strict>("page_size=50"), Ok((0, 3, Some(50))));
        assert_eq!(page::<Strict>("page_size=x"), Err("page_size must be an integer, got x".into()));
        assert_eq!(page::<Strict>("page_size=-1"), Err("page_size must be >= 0, got -1".into()));
        assert_eq!(page::<Strict>("page_token=nope"), Err("Invalid page token: nope".into()));
        // `offset` counts only where the family reads it, and a token wins.
        assert_eq!(page::<Strict>("offset=5"), Ok((0, 3, None)));
        assert_eq!(page::<Offsets>("offset=5"), Ok((5, 100, None)));
        assert_eq!(page::<Offsets>("offset=-5"), Ok((0, 100, None)));
        assert_eq!(page::<Offsets>("offset=5&page_token=o7"), Ok((7, 100, None)));
        assert_eq!(page::<Offsets>("offset=x"), Err("offset must be an integer, got x".into()));
        assert_eq!(page::<Offsets>("limit=-2"), Ok((0, 100, Some(-2))));
    }

    #[test]
    fn answers_keep_each_familys_shape() {
        let p = read::<Strict>("page_token=o3").unwrap();
        let items = [1, 2, 3, 4, 5, 6, 7];
        let paged = p.slice("clusters", &items).prev_page_token(p.prev_page_token());
        assert_eq!(paged.to_json(), json!({"clusters": [4, 5, 6], "next_page_token": "o6", "prev_page_token": "o0"}));
        let last = read::<Strict>("page_token=o6").unwrap().slice("tables", &items);
        assert_eq!(last.to_json(), json!({"tables": [7]}));
        let none: Paged<i32> = Paged::new("contents", vec![]).omit_empty();
        assert_eq!(none.to_json(), json!({}));
        let jobs = read::<Offsets>("offset=2").unwrap().answer("jobs", vec![10, 11], true).omit_empty();
        assert_eq!(jobs.to_json(), json!({"jobs": [10, 11], "has_more": true, "next_page_token": "o4"}));
        let done = read::<Offsets>("").unwrap().answer("runs", Vec::<i32>::new(), false).omit_empty();
        assert_eq!(done.to_json(), json!({"has_more": false}));
    }
}
