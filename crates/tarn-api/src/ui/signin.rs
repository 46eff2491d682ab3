//! Signing in with a personal access token: the form, the HTTP-only cookie
//! it sets, and signing out.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::html;
use tarn_core::time::now_ms;
use tarn_ui::layout;

use super::COOKIE;
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/login", get(form).post(sign_in)).route("/logout", post(sign_out))
}

#[derive(serde::Deserialize)]
struct Next {
    #[serde(default)]
    next: Option<String>,
}

/// Only a path on this server: `//host` or `https://...` would send a
/// signed-in user elsewhere.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.starts_with("/\\") => n,
        _ => "/",
    }
}

fn page(next: &str, failed: bool) -> Html<String> {
    let body = html! {
        @if failed { p.error role="alert" { "That token is not valid (unknown, revoked or expired)." } }
        form.signin method="post" action="/login" {
            label for="token" { "Personal access token" }
            input #token type="password" name="token" autocomplete="off" required autofocus;
            input type="hidden" name="next" value=(next);
            button.primary type="submit" { "Sign in" }
        }
        p.dim { "Create one with " code { "tarn token create" } " or under the API's " code { "/api/2.0/token/create" } "." }
    };
    Html(layout::bare("Sign in to tarn", body).into_string())
}

async fn form(Query(q): Query<Next>) -> Html<String> {
    page(safe_next(q.next.as_deref()), false)
}

async fn sign_in(State(state): State<AppState>, body: Bytes) -> Response {
    let fields: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let next = safe_next(field("next")).to_string();
    let token = field("token").map(str::trim).unwrap_or_default();
    if token.is_empty() || state.store.authenticate(token, now_ms()).is_err() {
        return (StatusCode::UNAUTHORIZED, page(&next, true)).into_response();
    }
    // The token is the session: it expires or is revoked as the token does.
    let cookie = format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax");
    ([(header::SET_COOKIE, cookie)], Redirect::to(&next)).into_response()
}

async fn sign_out() -> Response {
    let cookie = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn next_stays_on_this_server() {
        assert_eq!(super::safe_next(Some("/jobs/1")), "/jobs/1");
        assert_eq!(super::safe_next(Some("//evil.example")), "/");
        assert_eq!(super::safe_next(Some("https://evil.example")), "/");
        assert_eq!(super::safe_next(None), "/");
    }
}
