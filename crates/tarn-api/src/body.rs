//! Request extractors whose rejections are Databricks errors, not text.

use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use crate::error::ApiFailure;
use tarn_core::ApiError;

/// A JSON body; an empty body reads as `{}` (clients send none for some
/// POSTs), anything unparsable is MALFORMED_REQUEST.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiFailure;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiFailure(ApiError::malformed(format!("Could not read the request body: {e}"))))?;
        let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &bytes };
        serde_json::from_slice(text)
            .map(JsonBody)
            .map_err(|e| ApiFailure(ApiError::malformed(format!("Invalid JSON given in the body of the request: {e}"))))
    }
}

/// The query string as (key, value) pairs, keys repeated as sent
/// (`filter_by.cluster_states=RUNNING&filter_by.cluster_states=PENDING`).
pub struct QueryPairs(pub Vec<(String, String)>);

impl QueryPairs {
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for QueryPairs {
    type Rejection = ApiFailure;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        Ok(QueryPairs(form_urlencoded::parse(query.as_bytes()).into_owned().collect()))
    }
}
