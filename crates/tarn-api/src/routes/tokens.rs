//! Personal access tokens: the caller's own (`/api/2.0/token/*`,
//! `w.tokens`) and, for admins, everyone's (`/api/2.0/token-management`,
//! `w.token_management`), including tokens on behalf of a service principal.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tarn_core::ApiError;
use tarn_core::time::now_ms;
use tarn_store::TokenRow;

use tarn_identity::TokenManagement;

use super::required;
use crate::body::{JsonBody, QueryPairs};
use crate::error::ApiResult;
use crate::{AppState, Caller};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/2.0/token/create", post(create))
        .route("/api/2.0/token/list", get(list))
        .route("/api/2.0/token/delete", post(delete))
        .route("/api/2.0/token-management/tokens", get(manage_list))
        .route("/api/2.0/token-management/tokens/{token_id}", get(manage_get).delete(manage_revoke))
        .route("/api/2.0/token-management/on-behalf-of/tokens", post(create_on_behalf_of))
}

#[derive(Deserialize)]
struct CreateToken {
    lifetime_seconds: Option<i64>,
    comment: Option<String>,
}

#[derive(Deserialize)]
struct DeleteToken {
    token_id: Option<String>,
}

fn token_info(t: &TokenRow) -> Value {
    json!({"token_id": t.token_id, "creation_time": t.creation_time, "expiry_time": t.expiry_time, "comment": t.comment})
}

async fn create(
    State(state): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(req): JsonBody<CreateToken>,
) -> ApiResult<Json<Value>> {
    let comment = req.comment.unwrap_or_default();
    let (secret, row) = state.store.create_token(&user, &comment, req.lifetime_seconds, now_ms())?;
    Ok(Json(json!({"token_value": secret, "token_info": token_info(&row)})))
}

async fn list(State(state): State<AppState>, Extension(Caller(user)): Extension<Caller>) -> ApiResult<Json<Value>> {
    let infos: Vec<Value> = state.store.list_tokens(user.id)?.iter().map(token_info).collect();
    Ok(Json(json!({"token_infos": infos})))
}

async fn delete(
    State(state): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(req): JsonBody<DeleteToken>,
) -> ApiResult<Json<Value>> {
    let token_id = required(req.token_id.as_deref(), "token_id")?;
    if !state.store.delete_token(user.id, token_id)? {
        return Err(ApiError::not_found(format!("Token {token_id} does not exist")).into());
    }
    Ok(Json(json!({})))
}

fn management(s: &AppState) -> TokenManagement {
    TokenManagement::new(s.store.clone())
}

async fn manage_list(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    query: QueryPairs,
) -> ApiResult<Json<Value>> {
    let created_by_id = query.int("created_by_id")?;
    let infos = management(&s).list(&user, created_by_id, query.get("created_by_username"))?;
    Ok(Json(json!({"token_infos": infos})))
}

async fn manage_get(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(token_id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!({"token_info": management(&s).get(&user, &token_id)?})))
}

async fn manage_revoke(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(token_id): Path<String>,
) -> ApiResult<Json<Value>> {
    management(&s).revoke(&user, &token_id)?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct CreateOboToken {
    application_id: Option<String>,
    comment: Option<String>,
    lifetime_seconds: Option<i64>,
}

async fn create_on_behalf_of(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(req): JsonBody<CreateOboToken>,
) -> ApiResult<Json<Value>> {
    let application_id = required(req.application_id.as_deref(), "application_id")?;
    let comment = req.comment.unwrap_or_default();
    Ok(Json(management(&s).create_on_behalf_of(&user, application_id, &comment, req.lifetime_seconds)?))
}
