//! SCIM 2.0 (`/api/2.0/preview/scim/v2`): `w.current_user`, `w.users`,
//! `w.groups` and `w.service_principals`. Errors leave in SCIM's own shape
//! (`detail`, `status`, `scimType`), which the SDK reads.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Value, json};
use tarn_identity::{Directory, IdentityError, ListQuery, Projection, ResourceKind};

use crate::body::{JsonBody, QueryPairs};
use crate::error::ApiFailure;
use crate::{AppState, Caller};

const ROOT: &str = "/api/2.0/preview/scim/v2";
const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

pub fn router() -> Router<AppState> {
    Router::new()
        .route(&format!("{ROOT}/Me"), get(me))
        .route(&format!("{ROOT}/{{kind}}"), get(list).post(create))
        .route(&format!("{ROOT}/{{kind}}/{{id}}"), get(get_one).put(replace).patch(patch_one).delete(delete_one))
}

/// An error in SCIM's shape; internal ones keep tarn's (an error id, no text).
struct ScimFailure(IdentityError);

impl From<IdentityError> for ScimFailure {
    fn from(e: IdentityError) -> Self {
        Self(e)
    }
}

impl IntoResponse for ScimFailure {
    fn into_response(self) -> Response {
        let (status, scim_type) = match &self.0 {
            IdentityError::NotFound(_) => (StatusCode::NOT_FOUND, None),
            IdentityError::AlreadyExists(_) => (StatusCode::CONFLICT, Some("uniqueness")),
            IdentityError::InvalidParameter(_) => (StatusCode::BAD_REQUEST, Some("invalidValue")),
            IdentityError::InvalidFilter(_) => (StatusCode::BAD_REQUEST, Some("invalidFilter")),
            IdentityError::PermissionDenied(_) => (StatusCode::FORBIDDEN, None),
            IdentityError::LimitExceeded(_) => (StatusCode::BAD_REQUEST, Some("tooMany")),
            IdentityError::NotImplemented(_) | IdentityError::BackendUnavailable(_) => {
                return ApiFailure::from(self.0).into_response();
            }
            IdentityError::Store(_) | IdentityError::Internal(_) => return ApiFailure::from(self.0).into_response(),
        };
        let mut body = json!({"schemas": [ERROR_SCHEMA], "detail": self.0.to_string(), "status": status.as_str()});
        if let Some(scim_type) = scim_type {
            body["scimType"] = json!(scim_type);
        }
        (status, Json(body)).into_response()
    }
}

type ScimResult<T> = Result<T, ScimFailure>;

fn kind_of(segment: &str) -> ScimResult<ResourceKind> {
    ResourceKind::from_segment(segment)
        .ok_or_else(|| ScimFailure(IdentityError::NotFound(format!("No SCIM resource type '{segment}'"))))
}

fn number(query: &QueryPairs, key: &str) -> ScimResult<Option<usize>> {
    query
        .all(key)
        .next()
        .map(|v| {
            v.parse().map_err(|_| ScimFailure(IdentityError::InvalidParameter(format!("'{key}' must be a number"))))
        })
        .transpose()
}

fn projection(query: &QueryPairs) -> Projection {
    let text = |key| query.all(key).next().map(str::to_string);
    Projection { attributes: text("attributes"), excluded_attributes: text("excludedAttributes") }
}

async fn me(State(s): State<AppState>, Extension(Caller(user)): Extension<Caller>) -> ScimResult<Response> {
    let body = Directory::new(s.store.clone()).me(&user)?;
    Ok(([("X-Databricks-Org-Id", s.workspace_id.clone())], Json(body)).into_response())
}

async fn list(State(s): State<AppState>, Path(kind): Path<String>, query: QueryPairs) -> ScimResult<Json<Value>> {
    let text = |key| query.all(key).next().map(str::to_string);
    let list = ListQuery {
        filter: text("filter"),
        start_index: number(&query, "startIndex")?,
        count: number(&query, "count")?,
        attributes: text("attributes"),
        excluded_attributes: text("excludedAttributes"),
        sort_by: text("sortBy"),
        sort_order: text("sortOrder"),
    };
    Ok(Json(Directory::new(s.store.clone()).list(kind_of(&kind)?, &list)?))
}

async fn get_one(
    State(s): State<AppState>,
    Path((kind, id)): Path<(String, String)>,
    query: QueryPairs,
) -> ScimResult<Json<Value>> {
    Ok(Json(Directory::new(s.store.clone()).get(kind_of(&kind)?, &id, &projection(&query))?))
}

async fn create(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(kind): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ScimResult<(StatusCode, Json<Value>)> {
    let created = Directory::new(s.store.clone()).create(&user, kind_of(&kind)?, &body)?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn replace(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path((kind, id)): Path<(String, String)>,
    JsonBody(body): JsonBody<Value>,
) -> ScimResult<Json<Value>> {
    Ok(Json(Directory::new(s.store.clone()).replace(&user, kind_of(&kind)?, &id, &body)?))
}

async fn patch_one(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path((kind, id)): Path<(String, String)>,
    JsonBody(body): JsonBody<Value>,
) -> ScimResult<Json<Value>> {
    Ok(Json(Directory::new(s.store.clone()).patch(&user, kind_of(&kind)?, &id, &body)?))
}

async fn delete_one(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path((kind, id)): Path<(String, String)>,
) -> ScimResult<StatusCode> {
    Directory::new(s.store.clone()).delete(&user, kind_of(&kind)?, &id)?;
    Ok(StatusCode::NO_CONTENT)
}
