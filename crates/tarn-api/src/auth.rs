//! Bearer-token auth for every route but the public ones.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tarn_core::ApiError;
use tarn_core::time::now_ms;
use tarn_store::User;

use crate::AppState;
use crate::error::ApiFailure;

/// The authenticated user of a request.
#[derive(Debug, Clone)]
pub struct Caller(pub User);

pub(crate) async fn require_token(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    match authenticate(&state, &req) {
        Ok(user) => {
            req.extensions_mut().insert(Caller(user));
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

fn authenticate(state: &AppState, req: &Request) -> Result<User, ApiFailure> {
    let header = req.headers().get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let Some(secret) = header.and_then(|h| h.strip_prefix("Bearer ")).map(str::trim).filter(|s| !s.is_empty()) else {
        return Err(ApiFailure(ApiError::unauthenticated(
            "Missing credentials: send a personal access token as 'Authorization: Bearer <token>'",
        )));
    };
    match state.store.find_token(secret)? {
        Some((token, user)) if token.is_live_at(now_ms()) => Ok(user),
        Some(_) => Err(ApiFailure(ApiError::unauthenticated("Token expired"))),
        None => Err(ApiFailure(ApiError::unauthenticated("Invalid access token"))),
    }
}
