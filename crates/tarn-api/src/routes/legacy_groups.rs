//! The legacy Groups API 2.0 (`/api/2.0/groups/*`), which the legacy
//! `databricks groups` command calls: groups and members addressed by
//! name, answered from the SCIM directory (tarn-identity's `Directory`), so
//! they are the groups `w.groups` sees. Errors leave in the Databricks shape
//! (`error_code`, `message`), not SCIM's.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tarn_identity::{Directory, MemberName};

use super::required;
use crate::body::{JsonBody, QueryPairs};
use crate::error::ApiResult;
use crate::{AppState, Caller};

const ROOT: &str = "/api/2.0/groups";

pub fn router() -> Router<AppState> {
    Router::new()
        .route(&format!("{ROOT}/create"), post(create))
        .route(&format!("{ROOT}/list"), get(list))
        .route(&format!("{ROOT}/list-members"), get(list_members))
        .route(&format!("{ROOT}/list-parents"), get(list_parents))
        .route(&format!("{ROOT}/add-member"), post(add_member))
        .route(&format!("{ROOT}/remove-member"), post(remove_member))
        .route(&format!("{ROOT}/delete"), post(delete))
}

#[derive(Deserialize)]
struct GroupRequest {
    group_name: Option<String>,
}

/// `parent_name` and exactly one of `user_name`, `group_name`.
#[derive(Deserialize)]
struct MemberRequest {
    parent_name: Option<String>,
    user_name: Option<String>,
    group_name: Option<String>,
}

impl MemberRequest {
    fn member(&self) -> ApiResult<MemberName> {
        Ok(MemberName::from_request(self.user_name.as_deref(), self.group_name.as_deref())?)
    }
}

fn member_json(member: MemberName) -> Value {
    match member {
        MemberName::User(name) => json!({"user_name": name}),
        MemberName::Group(name) => json!({"group_name": name}),
    }
}

async fn create(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(body): JsonBody<GroupRequest>,
) -> ApiResult<Json<Value>> {
    let name = required(body.group_name.as_deref(), "group_name")?;
    Directory::new(s.store.clone()).create_group_named(&user, name)?;
    Ok(Json(json!({"group_name": name})))
}

async fn list(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    Ok(Json(json!({"group_names": Directory::new(s.store.clone()).group_names()?})))
}

async fn list_members(State(s): State<AppState>, query: QueryPairs) -> ApiResult<Json<Value>> {
    let name = required(query.get("group_name"), "group_name")?;
    let members = Directory::new(s.store.clone()).members_named(name)?;
    Ok(Json(json!({"members": members.into_iter().map(member_json).collect::<Vec<_>>()})))
}

async fn list_parents(State(s): State<AppState>, query: QueryPairs) -> ApiResult<Json<Value>> {
    let member = MemberName::from_request(query.get("user_name"), query.get("group_name"))?;
    Ok(Json(json!({"group_names": Directory::new(s.store.clone()).parents_named(&member)?})))
}

async fn add_member(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(body): JsonBody<MemberRequest>,
) -> ApiResult<Json<Value>> {
    let parent = required(body.parent_name.as_deref(), "parent_name")?;
    Directory::new(s.store.clone()).add_member_named(&user, parent, &body.member()?)?;
    Ok(Json(json!({})))
}

async fn remove_member(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(body): JsonBody<MemberRequest>,
) -> ApiResult<Json<Value>> {
    let parent = required(body.parent_name.as_deref(), "parent_name")?;
    Directory::new(s.store.clone()).remove_member_named(&user, parent, &body.member()?)?;
    Ok(Json(json!({})))
}

async fn delete(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(body): JsonBody<GroupRequest>,
) -> ApiResult<Json<Value>> {
    let name = required(body.group_name.as_deref(), "group_name")?;
    Directory::new(s.store.clone()).delete_group_named(&user, name)?;
    Ok(Json(json!({})))
}
