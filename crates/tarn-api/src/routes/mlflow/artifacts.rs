//! `/api/2.0/mlflow-artifacts/artifacts`: the proxied artifact store the
//! client reaches through `mlflow-artifacts:/` URIs (upload, download,
//! list, delete). A path's first segment is its experiment, whose levels
//! guard it (`guard::artifact_path`); a part of a multipart upload is
//! addressed by its upload's id, which only its creator was given.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Extension, Json, Router};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tarn_files::Overwrite;
use tarn_mlflow::{Access, ArtifactFile, MlflowError};

use super::guard;
use crate::body::{JsonBody, QueryPairs};
use crate::error::ApiResult;
use crate::{AppState, Caller};

const ROOT: &str = "/api/2.0/mlflow-artifacts/artifacts";
const MPU: &str = "/api/2.0/mlflow-artifacts/mpu";

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/2.0/mlflow/artifacts/credentials-for-write",
            post(credentials_for_write).get(credentials_for_write),
        )
        .route("/api/2.0/mlflow/artifacts/credentials-for-read", post(credentials_for_read).get(credentials_for_read))
        .route(ROOT, get(list))
        .route(&format!("{ROOT}/{{*path}}"), get(download).put(upload).delete(delete))
        .route(&format!("{MPU}/create/{{*path}}"), post(create_upload))
        .route(&format!("{MPU}/complete/{{*path}}"), post(complete_upload))
        .route(&format!("{MPU}/abort/{{*path}}"), post(abort_upload))
}

/// The part URLs of multipart uploads, which the client calls without
/// credentials (as it would a presigned URL): the upload id admits them.
pub fn part_router() -> Router<AppState> {
    Router::new()
        .route(&format!("{MPU}/parts/{{upload_id}}/{{part_number}}"), put(upload_part))
        .route(&format!("{SIGNED}/{{token}}"), get(signed_download).put(signed_upload))
}

/// Signed download URLs (`model-versions/get-signed-download-uri`).
pub(super) const SIGNED: &str = "/api/2.0/mlflow-artifacts/signed";

async fn signed_download(
    State(s): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    crate::routes::files::serve_file(&s.artifacts.signed(&token, Access::Read)?, &headers).await
}

async fn signed_upload(State(s): State<AppState>, Path(token): Path<String>, body: Body) -> ApiResult<Json<Value>> {
    write_file(s.artifacts.signed(&token, Access::Write)?, body).await
}

/// What the Databricks artifact repository of `mlflow` 2.x asks for
/// (`credentials-for-write` / `-for-read`): a signed URL per path of a
/// run's artifacts, which it then PUTs or GETs as it would a cloud store's.
#[derive(serde::Deserialize)]
struct CredentialsRequest {
    run_id: String,
    #[serde(default)]
    path: Vec<String>,
}

async fn credentials_for_write(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    headers: HeaderMap,
    JsonBody(b): JsonBody<CredentialsRequest>,
) -> ApiResult<Json<Value>> {
    guard::run(&s, &user, &b.run_id, "CAN_EDIT")?;
    credentials(&s, &headers, &b, Access::Write)
}

async fn credentials_for_read(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    headers: HeaderMap,
    JsonBody(b): JsonBody<CredentialsRequest>,
) -> ApiResult<Json<Value>> {
    guard::run(&s, &user, &b.run_id, "CAN_READ")?;
    credentials(&s, &headers, &b, Access::Read)
}

fn credentials(s: &AppState, headers: &HeaderMap, b: &CredentialsRequest, access: Access) -> ApiResult<Json<Value>> {
    let run = s.tracking.run(&b.run_id)?;
    let base = base_url(headers);
    let infos = b
        .path
        .iter()
        .map(|path| {
            let token = s.artifacts.sign(&run.artifact_uri, path, access)?;
            // A GCP-style signed URL: the client PUTs or GETs it whole.
            Ok(json!({
                "run_id": run.run_uuid,
                "path": path,
                "signed_uri": format!("{base}{SIGNED}/{token}"),
                "type": "GCP_SIGNED_URL",
                "headers": [],
            }))
        })
        .collect::<ApiResult<Vec<Value>>>()?;
    Ok(Json(json!({"credential_infos": infos})))
}

/// This server's base URL as the client reached it.
pub(super) fn base_url(headers: &HeaderMap) -> String {
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    let scheme = headers.get("x-forwarded-proto").and_then(|h| h.to_str().ok()).unwrap_or("http");
    format!("{scheme}://{host}")
}

async fn upload(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(path): Path<String>,
    body: Body,
) -> ApiResult<Json<Value>> {
    guard::artifact_path(&s, &user, &path, "CAN_EDIT")?;
    write_file(s.artifacts.location(&path)?, body).await
}

/// Streams a request body into `location`, replacing it only when whole.
async fn write_file(location: tarn_files::Location, body: Body) -> ApiResult<Json<Value>> {
    let mut staged = location.create_file().map_err(tarn_mlflow::files_error)?;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| MlflowError::InvalidParameter(format!("Could not read the upload: {e}")))?;
        staged.write(&chunk).map_err(tarn_mlflow::files_error)?;
    }
    staged.commit(Overwrite::Allow).map_err(tarn_mlflow::files_error)?;
    Ok(Json(json!({})))
}

async fn download(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(path): Path<String>,
) -> ApiResult<Response> {
    guard::artifact_path(&s, &user, &path, "CAN_READ")?;
    let (file, _) = s.artifacts.location(&path)?.open_file().map_err(tarn_mlflow::files_error)?;
    let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file));
    Ok(([("content-type", "application/octet-stream")], Body::from_stream(stream)).into_response())
}

async fn list(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    guard::artifact_path(&s, &user, q.get("path").unwrap_or(""), "CAN_READ")?;
    let files = s.artifacts.list(q.get("path").unwrap_or(""))?;
    let names: Vec<ArtifactFile> = files
        .into_iter()
        .map(|f| ArtifactFile { path: f.path.rsplit('/').next().unwrap_or(&f.path).to_string(), ..f })
        .collect();
    Ok(Json(json!({"files": files_json(&names)})))
}

/// File infos as MLflow writes them: directories without a size.
pub(super) fn files_json(files: &[ArtifactFile]) -> Vec<Value> {
    files
        .iter()
        .map(|f| {
            if f.is_dir {
                json!({"path": f.path, "is_dir": true})
            } else {
                json!({"path": f.path, "is_dir": false, "file_size": f.file_size})
            }
        })
        .collect()
}

async fn delete(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(path): Path<String>,
) -> ApiResult<Json<Value>> {
    guard::artifact_path(&s, &user, &path, "CAN_EDIT")?;
    s.artifacts.delete(&path)?;
    Ok(Json(json!({})))
}

#[derive(Debug, Default, serde::Deserialize)]
struct UploadBody {
    path: Option<String>,
    #[serde(default, deserialize_with = "super::de_i64")]
    num_parts: Option<i64>,
    upload_id: Option<String>,
    #[serde(default)]
    parts: Vec<UploadedPart>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct UploadedPart {
    #[serde(default, deserialize_with = "super::de_i64")]
    part_number: Option<i64>,
    etag: Option<String>,
}

impl UploadBody {
    fn file(&self) -> Result<&str, MlflowError> {
        super::required(self.path.as_deref(), "path")
    }

    fn upload_id(&self) -> Result<&str, MlflowError> {
        super::required(self.upload_id.as_deref(), "upload_id")
    }
}

/// Starts a multipart upload of `path`'s file into the directory `dir`,
/// with a URL on this server for each part.
async fn create_upload(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(dir): Path<String>,
    headers: HeaderMap,
    JsonBody(b): JsonBody<UploadBody>,
) -> ApiResult<Json<Value>> {
    guard::artifact_path(&s, &user, &dir, "CAN_EDIT")?;
    let parts = b.num_parts.unwrap_or(1);
    let id = s.uploads.create(&dir, b.file()?, parts)?;
    let base = base_url(&headers);
    let credentials: Vec<Value> = (1..=parts)
        .map(|n| json!({"part_number": n, "url": format!("{base}{MPU}/parts/{id}/{n}"), "headers": {}}))
        .collect();
    Ok(Json(json!({"upload_id": id, "credentials": credentials})))
}

async fn upload_part(
    State(s): State<AppState>,
    Path((upload_id, part_number)): Path<(String, String)>,
    body: Body,
) -> ApiResult<Response> {
    let number = part_number
        .parse()
        .map_err(|_| MlflowError::InvalidParameter(format!("Invalid part number '{part_number}'")))?;
    let mut part = s.uploads.begin_part(&upload_id, number)?;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| MlflowError::InvalidParameter(format!("Could not read the part: {e}")))?;
        part.write(&chunk)?;
    }
    let etag = part.finish()?;
    Ok(([("etag", format!("\"{etag}\""))], Json(json!({}))).into_response())
}

async fn complete_upload(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(dir): Path<String>,
    JsonBody(b): JsonBody<UploadBody>,
) -> ApiResult<Json<Value>> {
    guard::artifact_path(&s, &user, &dir, "CAN_EDIT")?;
    let parts = b
        .parts
        .iter()
        .map(|p| {
            let number =
                p.part_number.ok_or_else(|| MlflowError::InvalidParameter("A part has no part_number".into()))?;
            Ok((number, p.etag.clone().unwrap_or_default()))
        })
        .collect::<Result<Vec<_>, MlflowError>>()?;
    s.uploads.complete(b.upload_id()?, &dir, b.file()?, &parts)?;
    Ok(Json(json!({})))
}

async fn abort_upload(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(dir): Path<String>,
    JsonBody(b): JsonBody<UploadBody>,
) -> ApiResult<Json<Value>> {
    guard::artifact_path(&s, &user, &dir, "CAN_EDIT")?;
    s.uploads.abort(b.upload_id()?, &dir, b.file()?)?;
    Ok(Json(json!({})))
}
