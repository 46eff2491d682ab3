//! The Permissions API (`/api/2.0/permissions/{type}/{id}`, `w.permissions`
//! and the per-service wrappers such as `w.jobs.set_permissions`): get, set
//! (PUT), update (PATCH) and `permissionLevels`. This module finds the
//! object and its creator; `tarn_identity::Permissions` holds the rules.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::Value;
use tarn_core::ApiError;
use tarn_identity::{Object, ObjectType, Permissions};
use tarn_store::User;

use crate::body::JsonBody;
use crate::error::{ApiFailure, ApiResult};
use crate::{AppState, Caller};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/2.0/permissions/{object_type}/{object_id}", get(get_permissions).put(set).patch(update))
        .route("/api/2.0/permissions/{object_type}/{object_id}/permissionLevels", get(levels))
}

pub(crate) fn permissions(s: &AppState) -> Permissions {
    Permissions::new(s.store.clone())
}

fn object_type(path: &str) -> Result<&'static ObjectType, ApiFailure> {
    ObjectType::of(path)
        .ok_or_else(|| ApiError::invalid_parameter(format!("'{path}' is not a permissions object type")).into())
}

/// The object a Permissions API path names, with its creator; 404 if it
/// does not exist.
pub(crate) fn find(s: &AppState, path: &str, id: &str) -> Result<Object, ApiFailure> {
    let ty = object_type(path)?;
    if let Some(object) = super::permission_objects::find(s, path, id)? {
        return Ok(object);
    }
    let creator = match path {
        "jobs" => {
            let job_id = id.parse().map_err(|_| ApiError::invalid_parameter(format!("Invalid job id '{id}'")))?;
            s.jobs.get(job_id)?.creator_user_name
        }
        "clusters" => s.clusters.get(id)?.row.creator,
        "pipelines" => {
            s.store
                .get_pipeline(id)?
                .ok_or_else(|| ApiError::not_found(format!("Pipeline {id} does not exist")))?
                .creator_user_name
        }
        "serving-endpoints" => {
            s.store
                .get_endpoint(id)?
                .ok_or_else(|| ApiError::not_found(format!("Serving endpoint {id} does not exist")))?
                .creator
        }
        other => {
            return Err(
                ApiError::not_implemented(format!("Permissions on {other} are not implemented by tarn yet")).into()
            );
        }
    };
    Ok(Object::new(ty, id, creator))
}

/// Refuses with PERMISSION_DENIED unless `user` holds `level` on the
/// object (404 first if it does not exist).
pub(crate) fn require(s: &AppState, user: &User, path: &str, id: &str, level: &str) -> Result<(), ApiFailure> {
    // Admins hold every level; the operation itself answers for a missing object.
    if user.admin {
        return Ok(());
    }
    Ok(permissions(s).check(user, &find(s, path, id)?, level)?)
}

/// Whether `user` holds any level on the object (one gone counts as not,
/// but for admins).
pub(crate) fn visible(s: &AppState, user: &User, path: &str, id: &str) -> Result<bool, ApiFailure> {
    let Ok(object) = find(s, path, id) else { return Ok(user.admin) };
    Ok(permissions(s).level(user, &object)?.is_some())
}

/// A job or pipeline may run as its caller; as another principal only when an admin
/// says so (which gives that principal's grants and permissions to
/// whoever may run the job).
pub(crate) fn check_run_as(s: &AppState, user: &User, name: Option<&str>) -> Result<(), ApiFailure> {
    let Some(name) = name.filter(|n| *n != user.user_name) else { return Ok(()) };
    if s.store.find_user(name)?.is_none() {
        return Err(ApiError::invalid_parameter(format!("run_as: principal {name} does not exist")).into());
    }
    if !user.admin {
        return Err(ApiError::permission_denied(format!(
            "Only admins can make a job run as another principal ({name})"
        ))
        .into());
    }
    Ok(())
}

/// A job as an object of the Permissions API.
pub(crate) fn job(s: &AppState, job_id: i64) -> Result<Object, ApiFailure> {
    find(s, "jobs", &job_id.to_string())
}

async fn get_permissions(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path((object_type, object_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let object = find(&s, &object_type, &object_id)?;
    Ok(Json(permissions(&s).view(&user, &object)?))
}

fn acl(body: &Value) -> Vec<Value> {
    body.get("access_control_list").and_then(Value::as_array).cloned().unwrap_or_default()
}

async fn set(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path((object_type, object_id)): Path<(String, String)>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    let object = find(&s, &object_type, &object_id)?;
    Ok(Json(permissions(&s).change(&user, &object, &acl(&body), true)?))
}

async fn update(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path((object_type, object_id)): Path<(String, String)>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    let object = find(&s, &object_type, &object_id)?;
    Ok(Json(permissions(&s).change(&user, &object, &acl(&body), false)?))
}

async fn levels(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path((object_type, object_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let object = find(&s, &object_type, &object_id)?;
    permissions(&s).view(&user, &object)?;
    Ok(Json(Permissions::levels(object.ty)))
}
