//! Secrets (`/api/2.0/secrets`, `w.secrets` and `dbutils.secrets`): scopes,
//! values (base64 on the wire, as the SDK sends and reads them) and ACLs.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};
use tarn_core::ApiError;
use tarn_identity::Backend;

use super::required;
use crate::body::{JsonBody, QueryPairs};
use crate::error::ApiResult;
use crate::{AppState, Caller};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/2.0/secrets/scopes/create", post(create_scope))
        .route("/api/2.0/secrets/scopes/delete", post(delete_scope))
        .route("/api/2.0/secrets/scopes/list", get(list_scopes))
        .route("/api/2.0/secrets/put", post(put))
        .route("/api/2.0/secrets/get", get(get_secret))
        .route("/api/2.0/secrets/list", get(list))
        .route("/api/2.0/secrets/delete", post(delete))
        .route("/api/2.0/secrets/acls/put", post(put_acl))
        .route("/api/2.0/secrets/acls/delete", post(delete_acl))
        .route("/api/2.0/secrets/acls/get", get(get_acl))
        .route("/api/2.0/secrets/acls/list", get(list_acls))
}

#[derive(Deserialize)]
struct SecretRequest {
    scope: Option<String>,
    key: Option<String>,
    string_value: Option<String>,
    bytes_value: Option<String>,
}

#[derive(Deserialize)]
struct AclRequest {
    scope: Option<String>,
    principal: Option<String>,
    permission: Option<String>,
}

/// `scope_backend_type` DATABRICKS (the default), or tarn's VAULT (with
/// `backend_vault`: `address`, `mount`, `path`) or ENV (with `backend_env`: `prefix`).
async fn create_scope(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    let scope = required(body.get("scope").and_then(Value::as_str), "scope")?;
    let backend = Backend::from_request(body.get("scope_backend_type").and_then(Value::as_str), &body)?;
    let initial = body.get("initial_manage_principal").and_then(Value::as_str);
    s.secrets.create_scope(&user, scope, initial, &backend)?;
    Ok(Json(json!({})))
}

async fn delete_scope(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    s.secrets.delete_scope(&user, required(body.get("scope").and_then(Value::as_str), "scope")?)?;
    Ok(Json(json!({})))
}

async fn list_scopes(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    let scopes: Vec<Value> =
        s.secrets.list_scopes()?.iter().map(|sc| json!({"name": sc.name, "backend_type": sc.backend_type})).collect();
    Ok(Json(json!({"scopes": scopes})))
}

async fn put(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(req): JsonBody<SecretRequest>,
) -> ApiResult<Json<Value>> {
    let scope = required(req.scope.as_deref(), "scope")?;
    let key = required(req.key.as_deref(), "key")?;
    let value = match (req.string_value, req.bytes_value) {
        (Some(text), None) => text.into_bytes(),
        (None, Some(encoded)) => STANDARD
            .decode(encoded.as_bytes())
            .map_err(|_| ApiError::invalid_parameter("bytes_value must be base64"))?,
        _ => return Err(ApiError::invalid_parameter("Exactly one of string_value and bytes_value is required").into()),
    };
    s.secrets.put(&user, scope, key, &value)?;
    Ok(Json(json!({})))
}

async fn get_secret(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    query: QueryPairs,
) -> ApiResult<Json<Value>> {
    let scope = required(query.get("scope"), "scope")?;
    let key = required(query.get("key"), "key")?;
    let value = s.secrets.get(&user, scope, key).await?;
    Ok(Json(json!({"key": key, "value": STANDARD.encode(value)})))
}

async fn list(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    query: QueryPairs,
) -> ApiResult<Json<Value>> {
    let scope = required(query.get("scope"), "scope")?;
    let secrets: Vec<Value> = s
        .secrets
        .list(&user, scope)
        .await?
        .into_iter()
        .map(|(key, updated)| json!({"key": key, "last_updated_timestamp": updated}))
        .collect();
    Ok(Json(json!({"secrets": secrets})))
}

async fn delete(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(req): JsonBody<SecretRequest>,
) -> ApiResult<Json<Value>> {
    let scope = required(req.scope.as_deref(), "scope")?;
    s.secrets.delete(&user, scope, required(req.key.as_deref(), "key")?)?;
    Ok(Json(json!({})))
}

async fn put_acl(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(req): JsonBody<AclRequest>,
) -> ApiResult<Json<Value>> {
    let scope = required(req.scope.as_deref(), "scope")?;
    let principal = required(req.principal.as_deref(), "principal")?;
    s.secrets.put_acl(&user, scope, principal, required(req.permission.as_deref(), "permission")?)?;
    Ok(Json(json!({})))
}

async fn delete_acl(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(req): JsonBody<AclRequest>,
) -> ApiResult<Json<Value>> {
    let scope = required(req.scope.as_deref(), "scope")?;
    s.secrets.delete_acl(&user, scope, required(req.principal.as_deref(), "principal")?)?;
    Ok(Json(json!({})))
}

async fn get_acl(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    query: QueryPairs,
) -> ApiResult<Json<Value>> {
    let scope = required(query.get("scope"), "scope")?;
    let principal = required(query.get("principal"), "principal")?;
    let acl = s
        .secrets
        .acls(&user, scope)?
        .into_iter()
        .find(|a| a.principal == principal)
        .ok_or_else(|| ApiError::not_found(format!("No ACL for principal {principal} in scope {scope}")))?;
    Ok(Json(json!({"principal": acl.principal, "permission": acl.permission})))
}

async fn list_acls(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    query: QueryPairs,
) -> ApiResult<Json<Value>> {
    let scope = required(query.get("scope"), "scope")?;
    let items: Vec<Value> = s
        .secrets
        .acls(&user, scope)?
        .iter()
        .map(|a| json!({"principal": a.principal, "permission": a.permission}))
        .collect();
    Ok(Json(json!({"items": items})))
}
