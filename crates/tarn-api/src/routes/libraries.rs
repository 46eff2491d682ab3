//! Libraries API (`/api/2.0/libraries`): install and uninstall a cluster's
//! libraries, and their statuses per cluster.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tarn_compute::libraries::{ClusterLibrary, Library};
use tarn_core::ApiError;

use super::required;
use crate::AppState;
use crate::body::{JsonBody, QueryPairs};
use crate::error::{ApiFailure, ApiResult};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/2.0/libraries/install", post(install))
        .route("/api/2.0/libraries/uninstall", post(uninstall))
        .route("/api/2.0/libraries/cluster-status", get(cluster_status))
        .route("/api/2.0/libraries/all-cluster-statuses", get(all_cluster_statuses))
}

#[derive(Deserialize)]
struct Change {
    cluster_id: String,
    #[serde(default)]
    libraries: Vec<Value>,
}

impl Change {
    fn libraries(&self) -> ApiResult<Vec<Library>> {
        let parse = |l: &Value| Library::parse(l).map_err(|e| ApiFailure(ApiError::invalid_parameter(e)));
        self.libraries.iter().map(parse).collect()
    }
}

async fn install(State(s): State<AppState>, JsonBody(body): JsonBody<Change>) -> ApiResult<Json<Value>> {
    s.clusters.install_libraries(&body.cluster_id, &body.libraries()?)?;
    Ok(Json(json!({})))
}

async fn uninstall(State(s): State<AppState>, JsonBody(body): JsonBody<Change>) -> ApiResult<Json<Value>> {
    s.clusters.uninstall_libraries(&body.cluster_id, &body.libraries()?)?;
    Ok(Json(json!({})))
}

fn statuses(cluster_id: &str, libraries: Vec<ClusterLibrary>) -> Value {
    let statuses: Vec<Value> = libraries
        .into_iter()
        .map(|l| {
            let mut status = json!({
                "library": l.library,
                "status": l.state.status.as_str(),
                "is_library_for_all_clusters": false,
            });
            if !l.state.messages.is_empty() {
                status["messages"] = json!(l.state.messages);
            }
            status
        })
        .collect();
    json!({"cluster_id": cluster_id, "library_statuses": statuses})
}

async fn cluster_status(State(s): State<AppState>, query: QueryPairs) -> ApiResult<Json<Value>> {
    let id = required(query.get("cluster_id"), "cluster_id")?;
    Ok(Json(statuses(id, s.clusters.library_statuses(id)?)))
}

async fn all_cluster_statuses(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    let mut all = Vec::new();
    for id in s.clusters.clusters_with_libraries()? {
        all.push(statuses(&id, s.clusters.library_statuses(&id)?));
    }
    Ok(Json(json!({"statuses": all})))
}
