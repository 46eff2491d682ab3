//! DBFS API 2.0 (`/api/2.0/dbfs/*`) as `w.dbfs` uses it: JSON with base64
//! content, streaming writes through `create`/`add-block`/`close` handles,
//! `put` also as a multipart form. `/Volumes/...` paths reach volumes.

use axum::extract::multipart::{Multipart, MultipartError};
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tarn_core::ApiError;
use tarn_files::{Entry, FilesError, Overwrite};

use super::required;
use crate::AppState;
use crate::body::{JsonBody, Payload, QueryPairs, decode_base64, encode_base64, flag};
use crate::error::{ApiFailure, ApiResult, Surface, files_failure};

/// Bodies carry at most 1 MB of base64 in JSON, but `put` may post a
/// larger multipart form.
const BODY_LIMIT: usize = 16 << 20;
/// A `put` form's limit, the legacy CLI's line between `put` and
/// `create`/`add-block`/`close`.
const FORM_LIMIT: usize = 2 << 30;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/2.0/dbfs/create", post(create))
        .route("/api/2.0/dbfs/add-block", post(add_block))
        .route("/api/2.0/dbfs/close", post(close))
        .route("/api/2.0/dbfs/put", post(put).layer(DefaultBodyLimit::max(FORM_LIMIT)))
        .route("/api/2.0/dbfs/read", get(read))
        .route("/api/2.0/dbfs/get-status", get(get_status))
        .route("/api/2.0/dbfs/list", get(list))
        .route("/api/2.0/dbfs/mkdirs", post(mkdirs))
        .route("/api/2.0/dbfs/move", post(rename))
        .route("/api/2.0/dbfs/delete", post(delete))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

fn fail(e: FilesError) -> ApiFailure {
    files_failure(Surface::Dbfs, e)
}

#[derive(Deserialize)]
struct PathRequest {
    path: Option<String>,
    #[serde(default)]
    overwrite: bool,
    #[serde(default)]
    recursive: bool,
}

#[derive(Deserialize)]
struct HandleRequest {
    handle: Option<i64>,
    data: Option<String>,
}

#[derive(Deserialize)]
struct MoveRequest {
    source_path: Option<String>,
    destination_path: Option<String>,
}

fn handle(req: &HandleRequest) -> ApiResult<i64> {
    req.handle.ok_or_else(|| ApiError::invalid_parameter("Missing required field: handle").into())
}

/// A DBFS FileInfo.
fn file_info(e: &Entry) -> Value {
    json!({"path": e.path, "is_dir": e.is_dir, "file_size": e.size, "modification_time": e.modified_ms})
}

async fn create(State(s): State<AppState>, JsonBody(req): JsonBody<PathRequest>) -> ApiResult<Json<Value>> {
    let path = required(req.path.as_deref(), "path")?;
    let handle = s.files.dbfs().create(path, req.overwrite).map_err(fail)?;
    Ok(Json(json!({"handle": handle})))
}

async fn add_block(State(s): State<AppState>, JsonBody(req): JsonBody<HandleRequest>) -> ApiResult<Json<Value>> {
    let data = decode_base64(required(req.data.as_deref(), "data")?, "data")?;
    s.files.dbfs().add_block(handle(&req)?, &data).map_err(fail)?;
    Ok(Json(json!({})))
}

async fn close(State(s): State<AppState>, JsonBody(req): JsonBody<HandleRequest>) -> ApiResult<Json<Value>> {
    s.files.dbfs().close(handle(&req)?).map_err(fail)?;
    Ok(Json(json!({})))
}

/// JSON `contents` is limited to one block; a form's file part is not
/// (it is streamed to disk, as the legacy CLI's `fs cp` posts every file
/// under 2 GB this way).
async fn put(State(s): State<AppState>, request: Request) -> ApiResult<Json<Value>> {
    let content_type = request.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if content_type.starts_with("multipart/form-data") {
        put_form(&s, request).await?;
        return Ok(Json(json!({})));
    }
    // This route's limit is the form's; a JSON body keeps the others'.
    let bytes = axum::body::to_bytes(request.into_body(), BODY_LIMIT)
        .await
        .map_err(|e| ApiError::malformed(format!("Could not read the request body: {e}")))?;
    let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &bytes };
    let body = Payload::Json(
        serde_json::from_slice(text)
            .map_err(|e| ApiError::malformed(format!("Invalid JSON given in the body of the request: {e}")))?,
    );
    let path = body.text("path");
    let path = required(path.as_deref(), "path")?;
    let contents = body.bytes("contents")?.unwrap_or_default();
    tarn_files::check_block(contents.len()).map_err(fail)?;
    s.files.dbfs().put(path, &contents, body.flag("overwrite")).map_err(fail)?;
    Ok(Json(json!({})))
}

/// A `put` form: `path`, `overwrite` and the file as `contents` (the
/// SDK's name) or `file` (the legacy CLI's). Clients send the fields
/// first, so the file goes straight to its staging file; one sent before
/// `path` is held until the path comes.
async fn put_form(s: &AppState, request: Request) -> ApiResult<()> {
    let malformed = |e: MultipartError| ApiFailure(ApiError::malformed(format!("Invalid multipart form: {e}")));
    let mut form = Multipart::from_request(request, s)
        .await
        .map_err(|e| ApiFailure(ApiError::malformed(format!("Invalid multipart form: {e}"))))?;
    let (mut path, mut overwrite, mut staged, mut early) = (None::<String>, false, None, None);
    while let Some(mut field) = form.next_field().await.map_err(malformed)? {
        match field.name().unwrap_or_default() {
            "path" => path = Some(field.text().await.map_err(malformed)?),
            "overwrite" => overwrite = flag(&field.text().await.map_err(malformed)?).unwrap_or(false),
            "contents" | "file" => match path.as_deref() {
                Some(p) => {
                    let mut file = s.files.dbfs().locate(p).and_then(|l| l.create_file()).map_err(fail)?;
                    while let Some(chunk) = field.chunk().await.map_err(malformed)? {
                        file.write(&chunk).map_err(fail)?;
                    }
                    staged = Some(file);
                }
                None => early = Some(field.bytes().await.map_err(malformed)?),
            },
            _ => {}
        }
    }
    let path = required(path.as_deref(), "path")?;
    let file = match staged {
        Some(file) => file,
        None => {
            let mut file = s.files.dbfs().locate(path).and_then(|l| l.create_file()).map_err(fail)?;
            file.write(early.as_deref().unwrap_or_default()).map_err(fail)?;
            file
        }
    };
    file.commit(Overwrite::from_flag(overwrite)).map_err(fail)?;
    Ok(())
}

async fn read(State(s): State<AppState>, query: QueryPairs) -> ApiResult<Json<Value>> {
    let path = required(query.get("path"), "path")?;
    let (offset, length) = (query.int("offset")?.unwrap_or(0), query.int("length")?);
    let data = s.files.dbfs().read(path, offset, length).map_err(fail)?;
    Ok(Json(json!({"bytes_read": data.len(), "data": encode_base64(&data)})))
}

async fn get_status(State(s): State<AppState>, query: QueryPairs) -> ApiResult<Json<Value>> {
    let path = required(query.get("path"), "path")?;
    let entry = s.files.dbfs().locate(path).and_then(|l| l.stat()).map_err(fail)?;
    Ok(Json(file_info(&entry)))
}

/// A directory's entries, or the file itself.
async fn list(State(s): State<AppState>, query: QueryPairs) -> ApiResult<Json<Value>> {
    let path = required(query.get("path"), "path")?;
    let location = s.files.dbfs().locate(path).map_err(fail)?;
    let entry = location.stat().map_err(fail)?;
    let entries = if entry.is_dir { location.list().map_err(fail)? } else { vec![entry] };
    let files: Vec<Value> = entries.iter().map(file_info).collect();
    Ok(Json(if files.is_empty() { json!({}) } else { json!({"files": files}) }))
}

async fn mkdirs(State(s): State<AppState>, JsonBody(req): JsonBody<PathRequest>) -> ApiResult<Json<Value>> {
    let path = required(req.path.as_deref(), "path")?;
    s.files.dbfs().locate(path).and_then(|l| l.mkdirs()).map_err(fail)?;
    Ok(Json(json!({})))
}

async fn rename(State(s): State<AppState>, JsonBody(req): JsonBody<MoveRequest>) -> ApiResult<Json<Value>> {
    let from = required(req.source_path.as_deref(), "source_path")?;
    let to = required(req.destination_path.as_deref(), "destination_path")?;
    s.files.dbfs().rename(from, to).map_err(fail)?;
    Ok(Json(json!({})))
}

async fn delete(State(s): State<AppState>, JsonBody(req): JsonBody<PathRequest>) -> ApiResult<Json<Value>> {
    let path = required(req.path.as_deref(), "path")?;
    s.files.dbfs().delete(path, req.recursive).map_err(fail)?;
    Ok(Json(json!({})))
}
