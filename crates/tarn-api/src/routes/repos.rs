//! Repos (`/api/2.0/repos`, `w.repos`) and git credentials
//! (`/api/2.0/git-credentials`, `w.git_credentials`): wire shapes and
//! checks; tarn-repos clones and checks out. A repo is a workspace object
//! (`repos/<id>` to the Permissions API, its creator its owner): reading
//! it needs CAN_READ, updating CAN_EDIT, deleting CAN_MANAGE; a list
//! shows only what the caller may read.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tarn_core::ApiError;
use tarn_repos::{CreateRepo, CredentialRequest, UpdateRepo};
use tarn_store::{GitCredentialRow, RepoRow, User};

use super::permission_objects::{WorkspaceAccess, require_workspace};
use super::permissions::{permissions, require};
use crate::body::{JsonBody, QueryPairs};
use crate::error::{ApiFailure, ApiResult};
use crate::{AppState, Caller};

/// Repos a list answers at most per page.
const PAGE: usize = 100;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/2.0/repos", get(list).post(create))
        .route("/api/2.0/repos/{id}", get(get_repo).patch(update).delete(delete))
        .route("/api/2.0/git-credentials", get(list_credentials).post(create_credential))
        .route("/api/2.0/git-credentials/{id}", get(get_credential).patch(update_credential).delete(delete_credential))
}

#[derive(Deserialize, Default)]
struct SparseCheckout {
    #[serde(default)]
    patterns: Vec<String>,
}

#[derive(Deserialize)]
struct CreateBody {
    #[serde(default)]
    url: String,
    #[serde(default)]
    provider: String,
    path: Option<String>,
    sparse_checkout: Option<SparseCheckout>,
    git_credential_id: Option<i64>,
}

#[derive(Deserialize)]
struct UpdateBody {
    branch: Option<String>,
    tag: Option<String>,
    sparse_checkout: Option<SparseCheckout>,
    git_credential_id: Option<i64>,
}

fn view(row: &RepoRow) -> Value {
    let mut out = json!({
        "id": row.id,
        "path": row.path,
        "url": row.url,
        "provider": row.provider,
        "head_commit_id": row.head_commit_id,
    });
    if let Some(branch) = &row.branch {
        out["branch"] = json!(branch);
    }
    let patterns = tarn_repos::patterns(row);
    if !patterns.is_empty() {
        out["sparse_checkout"] = json!({"patterns": patterns});
    }
    out
}

fn repo_id(id: &str) -> Result<i64, ApiFailure> {
    id.parse().map_err(|_| ApiError::invalid_parameter(format!("Invalid repo id '{id}'")).into())
}

/// 404 for a repo that is gone, then `level` unless an admin.
fn check(s: &AppState, user: &User, id: i64, level: &str) -> Result<RepoRow, ApiFailure> {
    let row = s.repos.get(id)?;
    require(s, user, "repos", &id.to_string(), level)?;
    Ok(row)
}

/// A user may make repos in their own `/Repos/<user>` folder; elsewhere
/// they need CAN_EDIT on the nearest folder there is.
/// A path on the tarn server (a local path, `file://`) is cloned by admins
/// only: anyone else could read any repository the server can.
pub(crate) fn check_git_url(user: &User, url: &str) -> Result<(), ApiFailure> {
    if user.admin || tarn_repos::git::is_remote(url.trim()) {
        return Ok(());
    }
    Err(ApiError::permission_denied(format!(
        "Only workspace admins may clone a path on the tarn server ({url}); use an http(s) or ssh URL"
    ))
    .into())
}

fn check_create_path(s: &AppState, user: &User, path: Option<&str>) -> Result<(), ApiFailure> {
    let Some(path) = path.filter(|p| !p.is_empty()) else { return Ok(()) };
    let canonical = s.files.workspace().canonical(path).map_err(tarn_repos::RepoError::from)?;
    if canonical.starts_with(&format!("/Repos/{}/", user.user_name)) {
        return Ok(());
    }
    require_workspace(s, user, &canonical, WorkspaceAccess::Write("CAN_EDIT"))
}

async fn create(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(body): JsonBody<CreateBody>,
) -> ApiResult<Json<Value>> {
    check_create_path(&s, &user, body.path.as_deref())?;
    check_git_url(&user, &body.url)?;
    let request = CreateRepo {
        url: body.url,
        provider: body.provider,
        path: body.path,
        sparse_patterns: body.sparse_checkout.map(|s| s.patterns),
        git_credential_id: body.git_credential_id,
    };
    let row = s.repos.create(&user.user_name, request).await?;
    Ok(Json(view(&row)))
}

async fn get_repo(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(view(&check(&s, &user, repo_id(&id)?, "CAN_READ")?)))
}

/// Repos by id; `next_page_token` is the last id answered.
async fn list(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    query: QueryPairs,
) -> ApiResult<Json<Value>> {
    let prefix = query.get("path_prefix");
    let mut after = match query.get("next_page_token").filter(|t| !t.is_empty()) {
        Some(token) => {
            token.parse().map_err(|_| ApiError::invalid_parameter(format!("Invalid page token '{token}'")))?
        }
        None => 0,
    };
    let rules = permissions(&s);
    let mut repos = Vec::new();
    let mut more = false;
    loop {
        let batch = s.repos.list(prefix, after, PAGE + 1)?;
        let exhausted = batch.len() <= PAGE;
        for row in batch {
            if repos.len() == PAGE {
                more = true;
                break;
            }
            after = row.id;
            let object = super::permissions::find(&s, "repos", &row.id.to_string());
            let readable = user.admin || object.is_ok_and(|o| rules.allows(&user, &o, "CAN_READ").unwrap_or(false));
            if readable {
                repos.push(view(&row));
            }
        }
        if more || exhausted {
            break;
        }
    }
    let mut out = json!({"repos": repos});
    if more {
        out["next_page_token"] = json!(after.to_string());
    }
    Ok(Json(out))
}

async fn update(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateBody>,
) -> ApiResult<Json<Value>> {
    let id = repo_id(&id)?;
    check(&s, &user, id, "CAN_EDIT")?;
    let request = UpdateRepo {
        branch: body.branch,
        tag: body.tag,
        sparse_patterns: body.sparse_checkout.map(|s| s.patterns),
        git_credential_id: body.git_credential_id,
    };
    s.repos.update(&user.user_name, id, request).await?;
    Ok(Json(json!({})))
}

async fn delete(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = repo_id(&id)?;
    check(&s, &user, id, "CAN_MANAGE")?;
    s.repos.delete(id).await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct CredentialBody {
    git_provider: Option<String>,
    git_username: Option<String>,
    git_email: Option<String>,
    personal_access_token: Option<String>,
    name: Option<String>,
    is_default_for_provider: Option<bool>,
}

impl From<CredentialBody> for CredentialRequest {
    fn from(b: CredentialBody) -> Self {
        CredentialRequest {
            git_provider: b.git_provider,
            git_username: b.git_username,
            git_email: b.git_email,
            personal_access_token: b.personal_access_token,
            name: b.name,
            is_default_for_provider: b.is_default_for_provider,
        }
    }
}

/// A credential as shown: never its token.
fn credential(row: &GitCredentialRow) -> Value {
    let mut out = json!({
        "credential_id": row.credential_id,
        "git_provider": row.git_provider,
        "is_default_for_provider": row.is_default_for_provider,
    });
    for (key, value) in [("git_username", &row.git_username), ("git_email", &row.git_email), ("name", &row.name)] {
        if let Some(value) = value {
            out[key] = json!(value);
        }
    }
    out
}

fn credential_id(id: &str) -> Result<i64, ApiFailure> {
    id.parse().map_err(|_| ApiError::invalid_parameter(format!("Invalid credential id '{id}'")).into())
}

async fn create_credential(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(body): JsonBody<CredentialBody>,
) -> ApiResult<Json<Value>> {
    Ok(Json(credential(&s.repos.credentials().create(&user.user_name, body.into())?)))
}

async fn list_credentials(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
) -> ApiResult<Json<Value>> {
    let rows = s.repos.credentials().list(&user.user_name)?;
    Ok(Json(json!({"credentials": rows.iter().map(credential).collect::<Vec<_>>()})))
}

async fn get_credential(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(credential(&s.repos.credentials().get(&user.user_name, credential_id(&id)?)?)))
}

async fn update_credential(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<CredentialBody>,
) -> ApiResult<Json<Value>> {
    s.repos.credentials().update(&user.user_name, credential_id(&id)?, body.into())?;
    Ok(Json(json!({})))
}

async fn delete_credential(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    s.repos.credentials().delete(&user.user_name, credential_id(&id)?)?;
    Ok(Json(json!({})))
}
