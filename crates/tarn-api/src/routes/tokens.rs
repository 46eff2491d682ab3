//! Personal access tokens (`/api/2.0/token/*`) of the calling user.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tarn_core::ApiError;
use tarn_core::time::now_ms;
use tarn_store::TokenRow;

use super::required;
use crate::body::JsonBody;
use crate::error::ApiResult;
use crate::{AppState, Caller};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/2.0/token/create", post(create))
        .route("/api/2.0/token/list", get(list))
        .route("/api/2.0/token/delete", post(delete))
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
