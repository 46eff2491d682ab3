//! Workspace API 2.0 (`/api/2.0/workspace/*`): notebooks, files and
//! directories, as `w.workspace` uses it. `import` takes JSON with base64
//! `content` (`import_`) or a multipart form (`upload`); `export` answers
//! base64 JSON, or the raw bytes with `direct_download=true` (`download`).
//! `workspace-files/import-file/{path}` takes a file's raw bytes, as the
//! databricks CLI uploads a bundle's files (a `.py` with the notebook
//! header becomes a notebook without its extension).
//! Every call makes sure the caller's home, `/Users/<user>`, exists.
//! Reading needs CAN_READ on the object, writing CAN_EDIT on the object
//! overwritten or on the directory written into, deleting CAN_MANAGE;
//! levels on a directory reach what is under it (`permission_objects`).

use axum::body::Body;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path as AxumPath, State};
use axum::http::HeaderValue;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tarn_core::ApiError;
use tarn_files::{FilesError, Format, Import, Language, ObjectInfo, ObjectType, Workspace};

use super::permission_objects::{WorkspaceAccess, readable_children, require_workspace};
use super::required;
use crate::body::{JsonBody, Payload, QueryPairs, encode_base64};
use crate::error::{ApiFailure, ApiResult, Surface, files_failure};
use crate::{AppState, Caller};

/// An import carries up to 10 MB, base64 in JSON.
const BODY_LIMIT: usize = 16 << 20;
/// A file uploaded raw (a bundle's wheel, say) carries up to `MAX_FILE_IMPORT`.
const FILE_BODY_LIMIT: usize = tarn_files::MAX_FILE_IMPORT + (1 << 20);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/2.0/workspace/import", post(import))
        .route("/api/2.0/workspace/export", get(export))
        .route("/api/2.0/workspace/get-status", get(get_status))
        .route("/api/2.0/workspace/list", get(list))
        .route("/api/2.0/workspace/mkdirs", post(mkdirs))
        .route("/api/2.0/workspace/delete", post(delete))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .route(
            "/api/2.0/workspace-files/import-file/{*path}",
            post(import_file).layer(DefaultBodyLimit::max(FILE_BODY_LIMIT)),
        )
}

fn fail(e: FilesError) -> ApiFailure {
    files_failure(Surface::Workspace, e)
}

/// The workspace, with the caller's home in it.
fn workspace<'a>(s: &'a AppState, caller: &Caller) -> ApiResult<&'a Workspace> {
    let workspace = s.files.workspace();
    workspace.ensure_home(&caller.0.user_name).map_err(fail)?;
    Ok(workspace)
}

#[derive(Deserialize)]
struct PathRequest {
    path: Option<String>,
    #[serde(default)]
    recursive: bool,
}

fn object_info(o: &ObjectInfo) -> Value {
    let mut info = json!({
        "object_type": o.object_type.name(),
        "path": o.path,
        "object_id": o.object_id,
        "resource_id": o.object_id.to_string(),
        "created_at": o.created_at,
        "modified_at": o.modified_at,
    });
    if let Some(language) = o.language {
        info["language"] = json!(language.name());
    }
    if let Some(size) = o.size.filter(|_| o.object_type != ObjectType::Directory) {
        info["size"] = json!(size);
    }
    info
}

fn format(value: Option<&str>, default: Format) -> ApiResult<Format> {
    match value.filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(name) => {
            Format::from_name(name).ok_or_else(|| ApiError::invalid_parameter(format!("Unknown format: {name}")).into())
        }
    }
}

async fn import(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Payload,
) -> ApiResult<Json<Value>> {
    let path = body.text("path");
    let path = required(path.as_deref(), "path")?.to_string();
    let language = match body.text("language").filter(|l| !l.is_empty()) {
        None => None,
        Some(name) => Some(
            Language::from_name(&name)
                .ok_or_else(|| ApiError::invalid_parameter(format!("Unknown language: {name}")))?,
        ),
    };
    let request = Import {
        path,
        content: body.bytes("content")?.unwrap_or_default(),
        format: format(body.text("format").as_deref(), Format::Source)?,
        language,
        overwrite: body.flag("overwrite"),
        creator: caller.0.user_name.clone(),
    };
    let workspace = workspace(&s, &caller)?;
    require_workspace(&s, &caller.0, &request.path, WorkspaceAccess::Write("CAN_EDIT"))?;
    workspace.import(request).map_err(fail)?;
    Ok(Json(json!({})))
}

/// `import-file/{path}?overwrite=`: the body is the file. An existing object
/// without `overwrite` is 409 RESOURCE_ALREADY_EXISTS and a missing parent
/// 404, which the CLI answers with `mkdirs` and a retry.
async fn import_file(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    AxumPath(path): AxumPath<String>,
    query: QueryPairs,
    content: Bytes,
) -> ApiResult<Json<Value>> {
    let request = Import {
        path: format!("/{}", path.trim_start_matches('/')),
        content: content.to_vec(),
        format: Format::Auto,
        language: None,
        overwrite: query.flag_or("overwrite", false),
        creator: caller.0.user_name.clone(),
    };
    let workspace = workspace(&s, &caller)?;
    require_workspace(&s, &caller.0, &request.path, WorkspaceAccess::Write("CAN_EDIT"))?;
    workspace.import_file(request).map_err(fail)?;
    Ok(Json(json!({})))
}

async fn export(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: QueryPairs,
) -> ApiResult<Response> {
    let path = required(query.get("path"), "path")?;
    let format = format(query.get("format"), Format::Source)?;
    let workspace = workspace(&s, &caller)?;
    require_workspace(&s, &caller.0, path, WorkspaceAccess::Object("CAN_READ"))?;
    let exported = workspace.export(path, format).map_err(fail)?;
    if !query.flag_or("direct_download", false) {
        let mut body = json!({"content": encode_base64(&exported.content)});
        if let Some(file_type) = exported.file_type {
            body["file_type"] = json!(file_type);
        }
        return Ok(Json(body).into_response());
    }
    let name = path.rsplit('/').next().unwrap_or("export");
    let name = match exported.file_type {
        Some(ext) if !name.ends_with(&format!(".{ext}")) => format!("{name}.{ext}"),
        _ => name.to_string(),
    };
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{}\"", name.replace('"', "")))
        .unwrap_or(HeaderValue::from_static("attachment"));
    let headers =
        [(CONTENT_TYPE, HeaderValue::from_static("application/octet-stream")), (CONTENT_DISPOSITION, disposition)];
    Ok((headers, Body::from(exported.content)).into_response())
}

async fn get_status(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: QueryPairs,
) -> ApiResult<Json<Value>> {
    let path = required(query.get("path"), "path")?;
    let workspace = workspace(&s, &caller)?;
    require_workspace(&s, &caller.0, path, WorkspaceAccess::Object("CAN_READ"))?;
    let info = workspace.get_status(path).map_err(fail)?;
    Ok(Json(object_info(&info)))
}

async fn list(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: QueryPairs,
) -> ApiResult<Json<Value>> {
    let path = required(query.get("path"), "path")?;
    let after = match query.get("notebooks_modified_after") {
        None => None,
        Some(v) => Some(v.parse::<i64>().map_err(|_| {
            ApiError::invalid_parameter(format!("notebooks_modified_after must be epoch milliseconds, got {v}"))
        })?),
    };
    let workspace = workspace(&s, &caller)?;
    require_workspace(&s, &caller.0, path, WorkspaceAccess::Object("CAN_READ"))?;
    let objects = workspace.list(path, after).map_err(fail)?;
    let objects = readable_children(&s, &caller.0, path, objects)?;
    let objects: Vec<Value> = objects.iter().map(object_info).collect();
    Ok(Json(if objects.is_empty() { json!({}) } else { json!({"objects": objects}) }))
}

async fn mkdirs(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(req): JsonBody<PathRequest>,
) -> ApiResult<Json<Value>> {
    let path = required(req.path.as_deref(), "path")?;
    let workspace = workspace(&s, &caller)?;
    // An existing directory is no change: reading it is enough.
    let exists = workspace.get_status(path).is_ok();
    let access = if exists { WorkspaceAccess::Object("CAN_READ") } else { WorkspaceAccess::Write("CAN_EDIT") };
    require_workspace(&s, &caller.0, path, access)?;
    workspace.mkdirs(path, &caller.0.user_name).map_err(fail)?;
    Ok(Json(json!({})))
}

async fn delete(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(req): JsonBody<PathRequest>,
) -> ApiResult<Json<Value>> {
    let path = required(req.path.as_deref(), "path")?;
    let workspace = workspace(&s, &caller)?;
    require_workspace(&s, &caller.0, path, WorkspaceAccess::Object("CAN_MANAGE"))?;
    workspace.delete(path, req.recursive).map_err(fail)?;
    Ok(Json(json!({})))
}
