//! The Files API (`/api/2.0/fs/files{path}`, `/api/2.0/fs/directories{path}`)
//! over Unity Catalog volumes, as `w.files` uses it: raw bytes in and out,
//! metadata in headers, `Range` and `If-Unmodified-Since` on downloads.
//!
//! `w.files.upload` starts a multipart upload for 50 MB and more and asks
//! for presigned part URLs; tarn serves none, so the SDK falls back to one
//! streamed PUT (logging a warning that it could not abort the multipart
//! session). Downloads likewise fall back from `create-download-url`.

use std::io::SeekFrom;
use std::time::{Duration, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header::{ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LAST_MODIFIED};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use axum::{Extension, Json, Router};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tarn_core::{ApiError, ErrorCode};
use tarn_files::{Entry, FilesError, Location, Overwrite};
use tarn_store::User;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::body::QueryPairs;
use crate::error::{ApiFailure, ApiResult, Surface, files_failure};
use crate::paging::{Page, PageRule, Paged};
use crate::{AppState, Caller};

pub fn router() -> Router<AppState> {
    let presigned = post(presigned_urls);
    Router::new()
        .route(
            "/api/2.0/fs/files/{*path}",
            put(upload).get(download).head(file_metadata).delete(delete_file).post(file_action),
        )
        .route(
            "/api/2.0/fs/directories/{*path}",
            put(create_directory).get(list_directory).head(directory_metadata).delete(delete_directory),
        )
        .route("/api/2.0/fs/create-upload-part-urls", presigned.clone())
        .route("/api/2.0/fs/create-abort-upload-url", presigned.clone())
        .route("/api/2.0/fs/create-resumable-upload-url", presigned.clone())
        .route("/api/2.0/fs/create-download-url", presigned)
}

fn fail(e: FilesError) -> ApiFailure {
    files_failure(Surface::Files, e)
}

/// A volume path the caller may read (or, with `write`, write), or the
/// MLflow client's path for tracking artifacts (under a `databricks`
/// tracking URI it reaches them through this API).
fn locate(s: &AppState, user: &User, path: &str, write: bool) -> ApiResult<Location> {
    if tarn_mlflow::Artifacts::is_workspace_internal(path) {
        return s.artifacts.workspace_internal(path).map_err(fail);
    }
    let location = s.files.volumes().locate(&format!("/{path}")).map_err(fail)?;
    if !user.admin {
        let volume_file = format!("/{}", path.trim_start_matches('/'));
        s.catalog.authorize_volume_file(&s.catalog.principal(user)?, &volume_file, write)?;
    }
    Ok(location)
}

/// `overwrite` defaults to true, as on Databricks.
fn overwrite(query: &QueryPairs) -> bool {
    query.flag_or("overwrite", true)
}

async fn upload(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(path): Path<String>,
    query: QueryPairs,
    body: Body,
) -> ApiResult<StatusCode> {
    let location = locate(&s, &user, &path, true)?;
    let overwrite = overwrite(&query);
    if !overwrite && location.stat().is_ok() {
        return Err(fail(FilesError::AlreadyExists { path: location.shown().to_string() }));
    }
    let mut staged = location.create_file().map_err(fail)?;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::malformed(format!("Could not read the request body: {e}")))?;
        staged.write(&chunk).map_err(fail)?;
    }
    staged.commit(Overwrite::from_flag(overwrite)).map_err(fail)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `?action=initiate-upload` opens a multipart session the SDK cannot use
/// (see the module doc); the path is checked first so errors come early.
async fn file_action(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(path): Path<String>,
    query: QueryPairs,
) -> ApiResult<Json<Value>> {
    let location = locate(&s, &user, &path, true)?;
    match query.get("action") {
        Some("initiate-upload") => {
            if location.stat().is_ok_and(|e| e.is_dir) || (!overwrite(&query) && location.stat().is_ok()) {
                return Err(fail(FilesError::AlreadyExists { path: location.shown().to_string() }));
            }
            let token = tarn_core::id::random_hex(16);
            Ok(Json(json!({"multipart_upload": {"session_token": token}})))
        }
        other => Err(ApiError::invalid_parameter(format!("Unsupported action: {}", other.unwrap_or(""))).into()),
    }
}

async fn presigned_urls(method: Method, uri: axum::http::Uri) -> ApiFailure {
    ApiFailure(ApiError::new(
        ErrorCode::EndpointNotFound,
        format!("tarn serves no presigned URLs ({method} {}); files go through /api/2.0/fs/files", uri.path()),
    ))
}

fn http_date(ms: i64) -> HeaderValue {
    let time = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    HeaderValue::from_str(&httpdate::fmt_http_date(time)).unwrap_or(HeaderValue::from_static(""))
}

fn metadata_headers(entry: &Entry, length: u64) -> [(axum::http::HeaderName, HeaderValue); 4] {
    [
        (CONTENT_TYPE, HeaderValue::from_static("application/octet-stream")),
        (CONTENT_LENGTH, HeaderValue::from(length)),
        (LAST_MODIFIED, http_date(entry.modified_ms)),
        (ACCEPT_RANGES, HeaderValue::from_static("bytes")),
    ]
}

async fn file_metadata(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(path): Path<String>,
) -> ApiResult<Response> {
    let entry = locate(&s, &user, &path, false)?.stat().map_err(fail)?;
    if entry.is_dir {
        return Err(fail(FilesError::IsADirectory { path: entry.path }));
    }
    Ok((metadata_headers(&entry, entry.size), Body::empty()).into_response())
}

/// Refuses the download if the file changed after `If-Unmodified-Since`
/// (compared in whole seconds, as HTTP dates are).
fn check_unmodified(headers: &HeaderMap, entry: &Entry) -> ApiResult<()> {
    let Some(since) = headers.get("if-unmodified-since").and_then(|v| v.to_str().ok()) else { return Ok(()) };
    let since = httpdate::parse_http_date(since)
        .map_err(|_| ApiError::invalid_parameter(format!("Invalid If-Unmodified-Since: {since}")))?;
    let since_s = since.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    if u64::try_from(entry.modified_ms / 1000).unwrap_or(0) > since_s {
        let message = format!("{} was modified after {}", entry.path, httpdate::fmt_http_date(since));
        return Err(ApiError::new(ErrorCode::PreconditionFailed, message).into());
    }
    Ok(())
}

/// The byte range a `Range: bytes=a-b | a- | -n` header asks for, as
/// `(start, end inclusive)`. Other forms (several ranges, other units) are
/// ignored and the whole file is served, as RFC 9110 allows.
fn byte_range(headers: &HeaderMap, size: u64) -> ApiResult<Option<(u64, u64)>> {
    let Some(spec) = headers.get("range").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("bytes=")) else {
        return Ok(None);
    };
    let Some((a, b)) = spec.trim().split_once('-').filter(|_| !spec.contains(',')) else { return Ok(None) };
    let (start, end) = match (a.parse::<u64>().ok(), b.parse::<u64>().ok()) {
        (Some(start), Some(end)) if end >= start => (start, end.min(size.saturating_sub(1))),
        (Some(start), None) if b.is_empty() => (start, size.saturating_sub(1)),
        (None, Some(n)) if a.is_empty() && n > 0 => (size.saturating_sub(n), size.saturating_sub(1)),
        _ => return Ok(None),
    };
    if start >= size {
        let message = format!("Range {spec} starts past the end of the file ({size} bytes)");
        return Err(ApiError::new(ErrorCode::RangeNotSatisfiable, message).into());
    }
    Ok(Some((start, end)))
}

async fn download(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    serve_file(&locate(&s, &user, &path, false)?, &headers).await
}

/// A file's bytes, or the range of them `headers` ask for.
pub(crate) async fn serve_file(location: &Location, headers: &HeaderMap) -> ApiResult<Response> {
    let (file, entry) = location.open_file().map_err(fail)?;
    check_unmodified(headers, &entry)?;
    let range = byte_range(headers, entry.size)?;
    let (start, length) = range.map_or((0, entry.size), |(a, b)| (a, b - a + 1));
    let mut file = tokio::fs::File::from_std(file);
    if start > 0 {
        file.seek(SeekFrom::Start(start))
            .await
            .map_err(|e| ApiError::internal(format!("reading {}: {e}", entry.path)))?;
    }
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file.take(length)));
    let mut response = (metadata_headers(&entry, length), body).into_response();
    if let Some((a, b)) = range {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        let value = HeaderValue::from_str(&format!("bytes {a}-{b}/{}", entry.size));
        response.headers_mut().insert(CONTENT_RANGE, value.unwrap_or(HeaderValue::from_static("")));
    }
    Ok(response)
}

async fn delete_file(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(path): Path<String>,
) -> ApiResult<StatusCode> {
    locate(&s, &user, &path, true)?.delete_file().map_err(fail)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn create_directory(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(path): Path<String>,
) -> ApiResult<StatusCode> {
    locate(&s, &user, &path, true)?.mkdirs().map_err(fail)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn directory_metadata(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(path): Path<String>,
) -> ApiResult<StatusCode> {
    let entry = locate(&s, &user, &path, false)?.stat().map_err(fail)?;
    if !entry.is_dir {
        return Err(fail(FilesError::NotADirectory { path: entry.path }));
    }
    Ok(StatusCode::OK)
}

async fn delete_directory(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(path): Path<String>,
) -> ApiResult<StatusCode> {
    locate(&s, &user, &path, true)?.delete_dir().map_err(fail)?;
    Ok(StatusCode::NO_CONTENT)
}

/// A directory entry; a directory's path ends in `/`, as Databricks lists
/// them, and has no size.
fn directory_entry(e: &Entry) -> Value {
    if e.is_dir {
        json!({"path": format!("{}/", e.path), "name": e.name, "is_directory": true, "last_modified": e.modified_ms})
    } else {
        json!({"path": e.path, "name": e.name, "is_directory": false, "file_size": e.size,
               "last_modified": e.modified_ms})
    }
}

/// Directory listings: `page_size` up to 1000; an empty page has no
/// `contents`.
struct ListPage;

impl PageRule for ListPage {
    const SIZE: &'static str = "page_size";
    const MAX: usize = 1000;
    fn refusal(_: &str, parsed: Option<i64>) -> Option<String> {
        parsed.is_none_or(|n| n < 0).then(|| "page_size must be a positive number".into())
    }
}

async fn list_directory(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(path): Path<String>,
    page: Page<ListPage>,
) -> ApiResult<Paged<Value>> {
    let entries = locate(&s, &user, &path, false)?.list().map_err(fail)?;
    Ok(page.slice("contents", &entries).map(|e| directory_entry(&e)).omit_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(header: &str, size: u64) -> Result<Option<(u64, u64)>, u16> {
        let mut headers = HeaderMap::new();
        headers.insert("range", HeaderValue::from_str(header).unwrap());
        byte_range(&headers, size).map_err(|e| e.0.status())
    }

    #[test]
    fn ranges() {
        assert_eq!(range("bytes=0-9", 100), Ok(Some((0, 9))));
        assert_eq!(range("bytes=90-", 100), Ok(Some((90, 99))));
        assert_eq!(range("bytes=90-200", 100), Ok(Some((90, 99))));
        assert_eq!(range("bytes=-10", 100), Ok(Some((90, 99))));
        assert_eq!(range("bytes=100-", 100), Err(416));
        assert_eq!(range("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(range("items=0-1", 100), Ok(None));
        assert_eq!(range("bytes=5-1", 100), Ok(None));
    }
}
