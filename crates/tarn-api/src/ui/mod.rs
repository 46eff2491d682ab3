//! The workspace in a browser: server-rendered pages at the URL paths
//! Databricks and MLflow print (`/jobs/{id}/runs/{run}`,
//! `/ml/experiments/{id}`, `/explore/data/...`), built with maud from
//! `tarn-ui`'s pieces and updated in place by htmx.
//!
//! Who may look: an `Authorization: Bearer` header as on the API, else the
//! `tarn_token` cookie the sign-in form sets (HTTP-only), else, where
//! anonymous access is on (loopback by default, as for MLflow), the admin.
//! Pages show only what their viewer may read, checked as the API checks it.
//! Actions (start a cluster, run a job) are POSTs that must come from htmx
//! (`HX-Request`), which a cross-site form cannot send.

mod catalog;
mod compute;
mod costs;
mod experiments;
mod home;
mod jobs;
mod models;
mod monitors;
mod pipelines;
mod serving;
mod signin;
mod sql;

use axum::Router;
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{Markup, html};
use tarn_core::time::now_ms;
use tarn_store::User;
use tarn_ui::layout::{self, Section};

use crate::AppState;

use crate::error::ApiFailure;
pub use costs::usage::UsageMemo;

/// The pages, the sign-in form and the static files.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .merge(tarn_ui::assets::router())
        .merge(signin::router())
        .merge(home::router())
        .merge(compute::router())
        .merge(costs::router())
        .merge(jobs::router())
        .merge(pipelines::router())
        .merge(monitors::router())
        .merge(experiments::router())
        .merge(models::router())
        .merge(serving::router())
        .merge(catalog::router())
        .merge(sql::router())
}

/// Text as a URL query value carries it.
pub(crate) fn encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Text as one URL path segment: everything but unreserved characters
/// escaped, so any name (a UC model's dots, a space) makes a link that
/// routes back to it.
pub(crate) fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The cookie the sign-in form sets: the token itself, HTTP-only.
pub(crate) const COOKIE: &str = "tarn_token";

/// The person looking at a page.
#[derive(Debug, Clone)]
pub(crate) struct Viewer {
    pub user: User,
    /// Signed in with a token (header or cookie) rather than anonymous.
    pub signed_in: bool,
}

impl Viewer {
    /// A whole page in the shell, for this viewer.
    pub fn page(&self, title: &str, section: Section, crumbs: &[(&str, &str)], body: Markup) -> Html<String> {
        let viewer = layout::Viewer { user_name: &self.user.user_name, signed_in: self.signed_in };
        Html(layout::page(title, section, &viewer, crumbs, body).into_string())
    }
}

/// Why a request has no viewer: sent to the sign-in form (htmx requests
/// are told to go there with `HX-Redirect`).
pub(crate) struct SignIn {
    next: String,
    htmx: bool,
}

impl IntoResponse for SignIn {
    fn into_response(self) -> Response {
        let target = format!("/login?next={}", encode(&self.next));
        match self.htmx {
            true => (StatusCode::UNAUTHORIZED, [("HX-Redirect", target)], "sign in again").into_response(),
            false => Redirect::to(&target).into_response(),
        }
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = SignIn;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, SignIn> {
        let sign_in = || SignIn {
            next: parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string(),
            htmx: parts.headers.contains_key("HX-Request"),
        };
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim);
        if let Some(secret) = bearer.or_else(|| cookie(&parts.headers, COOKIE)).filter(|s| !s.is_empty()) {
            return match state.store.authenticate(secret, now_ms()) {
                Ok(user) => Ok(Viewer { user, signed_in: true }),
                Err(_) => Err(sign_in()),
            };
        }
        match &state.mlflow_anonymous {
            Some(user) => Ok(Viewer { user: user.clone(), signed_in: false }),
            None => Err(sign_in()),
        }
    }
}

impl OptionalFromRequestParts<AppState> for Viewer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Option<Self>, Self::Rejection> {
        Ok(<Viewer as FromRequestParts<AppState>>::from_request_parts(parts, state).await.ok())
    }
}

/// A cookie's value from the request's `Cookie` headers.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The guard of every action: the request came from htmx on a tarn page.
/// A cross-site form can neither set the header nor, without CORS, a script.
pub(crate) struct Action;

impl<S: Send + Sync> FromRequestParts<S> for Action {
    type Rejection = ApiFailure;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiFailure> {
        match parts.headers.get("HX-Request").and_then(|v| v.to_str().ok()) {
            Some("true") => Ok(Action),
            _ => Err(ApiFailure(tarn_core::ApiError::invalid_parameter(
                "actions are taken from tarn's pages (the HX-Request header is missing)",
            ))),
        }
    }
}

/// What an action answers when it worked: the page reloads to show it, or
/// goes to `to`.
pub(crate) fn done(to: Option<&str>) -> Response {
    match to {
        Some(to) => match HeaderValue::from_str(to) {
            Ok(v) => (StatusCode::NO_CONTENT, [("HX-Location", v)]).into_response(),
            Err(_) => (StatusCode::NO_CONTENT, [("HX-Refresh", "true")]).into_response(),
        },
        None => (StatusCode::NO_CONTENT, [("HX-Refresh", "true")]).into_response(),
    }
}

/// A page that could not be shown: the API's error as an HTML page with its
/// status (an internal error shows only its id, as on the API).
#[derive(Debug)]
pub(crate) struct PageError(pub ApiFailure);

impl<E: Into<ApiFailure>> From<E> for PageError {
    fn from(e: E) -> Self {
        Self(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, code, message, _) = self.0.for_client();
        let body = html! {
            p.error role="alert" { (message) }
            p.dim { (code.as_str()) " · " (status.as_u16()) }
            p { a href="/" { "Home" } }
        };
        (status, Html(layout::bare(status.canonical_reason().unwrap_or("Error"), body).into_string())).into_response()
    }
}

/// What a page handler returns.
pub(crate) type PageResult = Result<Html<String>, PageError>;

/// `offset` and `limit` of a paged list (limit 1 to 200, default 50).
#[derive(Debug, Clone, Copy, serde::Deserialize)]
pub(crate) struct Paging {
    #[serde(default)]
    pub offset: u64,
    #[serde(default = "default_limit")]
    pub limit: u64,
}

fn default_limit() -> u64 {
    50
}

impl Paging {
    pub fn limit(&self) -> u64 {
        self.limit.clamp(1, 200)
    }
}
