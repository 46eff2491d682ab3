//! `/api/2.0/mlflow-artifacts/artifacts`: the proxied artifact store the
//! client reaches through `mlflow-artifacts:/` URIs (upload, download,
//! list, delete).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tarn_files::Overwrite;
use tarn_mlflow::MlflowError;

use crate::AppState;
use crate::body::QueryPairs;
use crate::error::ApiResult;

const ROOT: &str = "/api/2.0/mlflow-artifacts/artifacts";

pub fn router() -> Router<AppState> {
    Router::new().route(ROOT, get(list)).route(&format!("{ROOT}/{{*path}}"), get(download).put(upload).delete(delete))
}

async fn upload(State(s): State<AppState>, Path(path): Path<String>, body: Body) -> ApiResult<Json<Value>> {
    let location = s.artifacts.location(&path)?;
    let mut staged = location.create_file().map_err(tarn_mlflow::files_error)?;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| MlflowError::InvalidParameter(format!("Could not read the upload: {e}")))?;
        staged.write(&chunk).map_err(tarn_mlflow::files_error)?;
    }
    staged.commit(Overwrite::Allow).map_err(tarn_mlflow::files_error)?;
    Ok(Json(json!({})))
}

async fn download(State(s): State<AppState>, Path(path): Path<String>) -> ApiResult<Response> {
    let (file, _) = s.artifacts.location(&path)?.open_file().map_err(tarn_mlflow::files_error)?;
    let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file));
    Ok(([("content-type", "application/octet-stream")], Body::from_stream(stream)).into_response())
}

async fn list(State(s): State<AppState>, q: QueryPairs) -> ApiResult<Json<Value>> {
    let files = s.artifacts.list(q.get("path").unwrap_or(""))?;
    let files: Vec<Value> = files
        .iter()
        .map(|f| {
            let name = f.path.rsplit('/').next().unwrap_or(&f.path);
            if f.is_dir {
                json!({"path": name, "is_dir": true})
            } else {
                json!({"path": name, "is_dir": false, "file_size": f.file_size})
            }
        })
        .collect();
    Ok(Json(json!({"files": files})))
}

async fn delete(State(s): State<AppState>, Path(path): Path<String>) -> ApiResult<Json<Value>> {
    s.artifacts.delete(&path)?;
    Ok(Json(json!({})))
}
