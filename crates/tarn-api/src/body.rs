//! Request extractors whose rejections are Databricks errors, not text.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::multipart::{Multipart, MultipartError};
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

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

    /// An integer parameter, if sent; anything else is INVALID_PARAMETER_VALUE.
    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiFailure> {
        self.get(key)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| ApiFailure(ApiError::invalid_parameter(format!("{key} must be an integer, got {v}"))))
            })
            .transpose()
    }

    /// A boolean parameter read by [`flag`], if sent as one.
    pub fn flag(&self, key: &str) -> Option<bool> {
        self.get(key).and_then(flag)
    }

    /// A boolean parameter, or `default` when it is not sent as one.
    pub fn flag_or(&self, key: &str, default: bool) -> bool {
        self.flag(key).unwrap_or(default)
    }
}

/// The one rule for boolean parameters: `true` or `false` in any letter case;
/// any other value counts as not sent, so the parameter's default applies.
/// The official clients send `true`/`false` (older Python ones `True`), and
/// Databricks does not refuse a value it cannot read: it ignores it.
pub fn flag(value: &str) -> Option<bool> {
    if value.eq_ignore_ascii_case("true") {
        Some(true)
    } else if value.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for QueryPairs {
    type Rejection = ApiFailure;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        Ok(QueryPairs(form_urlencoded::parse(query.as_bytes()).into_owned().collect()))
    }
}

/// A body sent as JSON or as multipart/form-data (the SDK's `upload`
/// helpers post forms). Fields are read by name either way: text as given,
/// content base64-decoded from JSON or taken as sent from a form part.
pub enum Payload {
    Json(Map<String, Value>),
    Form(HashMap<String, Bytes>),
}

impl Payload {
    /// A text field; JSON numbers and booleans read as their text.
    pub fn text(&self, key: &str) -> Option<String> {
        match self {
            Payload::Json(map) => match map.get(key)? {
                Value::String(s) => Some(s.clone()),
                Value::Null => None,
                other => Some(other.to_string()),
            },
            Payload::Form(parts) => parts.get(key).map(|b| String::from_utf8_lossy(b).into_owned()),
        }
    }

    /// A boolean field ([`flag`]'s rule; JSON `true` reads as its text);
    /// anything else, or nothing, is false.
    pub fn flag(&self, key: &str) -> bool {
        self.text(key).and_then(|v| flag(&v)).unwrap_or(false)
    }

    /// A content field: base64 in JSON, raw bytes in a form.
    pub fn bytes(&self, key: &str) -> Result<Option<Vec<u8>>, ApiFailure> {
        match self {
            Payload::Json(_) => self.text(key).map(|text| decode_base64(&text, key)).transpose(),
            Payload::Form(parts) => Ok(parts.get(key).map(|b| b.to_vec())),
        }
    }
}

/// Base64 (standard alphabet, padded) as Databricks APIs carry content.
pub fn decode_base64(text: &str, field: &str) -> Result<Vec<u8>, ApiFailure> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| ApiFailure(ApiError::invalid_parameter(format!("{field} is not valid base64"))))
}

pub fn encode_base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

impl<S: Send + Sync> FromRequest<S> for Payload {
    type Rejection = ApiFailure;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !content_type.starts_with("multipart/form-data") {
            return JsonBody::from_request(req, state).await.map(|JsonBody(map)| Payload::Json(map));
        }
        let malformed = |e: MultipartError| ApiFailure(ApiError::malformed(format!("Invalid multipart form: {e}")));
        let mut form = Multipart::from_request(req, state)
            .await
            .map_err(|e| ApiFailure(ApiError::malformed(format!("Invalid multipart form: {e}"))))?;
        let mut parts = HashMap::new();
        while let Some(field) = form.next_field().await.map_err(malformed)? {
            let name = field.name().unwrap_or_default().to_string();
            let bytes = field.bytes().await.map_err(malformed)?;
            parts.insert(name, bytes);
        }
        Ok(Payload::Form(parts))
    }
}
