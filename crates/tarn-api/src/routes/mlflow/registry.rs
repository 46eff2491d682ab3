//! `registered-models/*` and `model-versions/*`: the model registry.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tarn_mlflow::{ModelVersionRow, NewVersion, RegisteredModelRow};

use super::guard;
use super::{KeyValue, key_values, page_json, pairs, required, route};
use crate::body::{JsonBody, QueryPairs};
use crate::error::ApiResult;
use crate::paging::Paged;
use crate::{AppState, Caller};
use tarn_store::User;

pub fn router() -> Router<AppState> {
    [
        ("registered-models/create", post(create_model)),
        ("registered-models/get", get(get_model)),
        ("registered-models/update", axum::routing::patch(update_model)),
        ("registered-models/rename", post(rename_model)),
        ("registered-models/delete", axum::routing::delete(delete_model)),
        ("registered-models/search", get(search_models)),
        ("registered-models/get-latest-versions", post(latest_versions).get(latest_versions_get)),
        ("registered-models/set-tag", post(set_model_tag)),
        ("registered-models/delete-tag", axum::routing::delete(delete_model_tag)),
        ("registered-models/alias", post(set_alias).delete(delete_alias).get(get_by_alias)),
        ("model-versions/create", post(create_version)),
        ("model-versions/get", get(get_version)),
        ("model-versions/update", axum::routing::patch(update_version)),
        ("model-versions/delete", axum::routing::delete(delete_version)),
        ("model-versions/search", get(search_versions)),
        ("model-versions/get-download-uri", get(download_uri)),
        ("model-versions/list-artifacts", get(list_version_artifacts)),
        ("model-versions/get-signed-download-uri", get(signed_download_uri)),
        ("model-versions/transition-stage", post(transition_stage)),
        ("model-versions/set-tag", post(set_version_tag)),
        ("model-versions/delete-tag", axum::routing::delete(delete_version_tag)),
        ("databricks/registered-models/get", get(get_model_databricks)),
        ("databricks/model-versions/transition-stage", post(transition_stage_databricks)),
    ]
    .into_iter()
    .fold(Router::new(), |router, (path, handler)| route(router, path, handler))
}

pub(crate) fn version_json(v: &ModelVersionRow) -> Value {
    let mut out = json!({
        "name": v.name,
        "version": v.version.to_string(),
        "creation_timestamp": v.creation_time,
        "last_updated_timestamp": v.last_updated_time,
        "user_id": v.user_id,
        "current_stage": v.current_stage,
        "description": v.description,
        "source": v.source,
        "status": v.status,
        "tags": key_values(&v.tags),
        "aliases": v.aliases,
    });
    for (field, value) in [("run_id", &v.run_id), ("run_link", &v.run_link), ("model_id", &v.model_id)] {
        if let Some(value) = value {
            out[field] = json!(value);
        }
    }
    out
}

fn model_json(s: &AppState, m: &RegisteredModelRow) -> ApiResult<Value> {
    let latest = s.tracking.latest_versions(&m.name, &[])?;
    Ok(json!({
        "name": m.name,
        "creation_timestamp": m.creation_time,
        "last_updated_timestamp": m.last_updated_time,
        "description": m.description,
        "latest_versions": latest.iter().map(version_json).collect::<Vec<_>>(),
        "tags": key_values(&m.tags),
        "aliases": m.aliases.iter().map(|(a, v)| json!({"alias": a, "version": v.to_string()})).collect::<Vec<_>>(),
    }))
}

#[derive(Debug, Default, Deserialize)]
struct Body {
    name: Option<String>,
    new_name: Option<String>,
    description: Option<String>,
    #[serde(default)]
    tags: Vec<KeyValue>,
    key: Option<String>,
    value: Option<String>,
    alias: Option<String>,
    version: Option<Value>,
    #[serde(default)]
    stages: Vec<String>,
    source: Option<String>,
    run_id: Option<String>,
    run_link: Option<String>,
    model_id: Option<String>,
    stage: Option<String>,
    #[serde(default)]
    archive_existing_versions: bool,
}

impl Body {
    fn name(&self) -> Result<&str, tarn_mlflow::MlflowError> {
        required(self.name.as_deref(), "name")
    }

    /// Versions travel as strings, some clients send numbers.
    fn version(&self) -> Result<String, tarn_mlflow::MlflowError> {
        match &self.version {
            Some(Value::String(v)) => Ok(v.clone()),
            Some(Value::Number(n)) => Ok(n.to_string()),
            _ => required(None, "version").map(str::to_string),
        }
    }
}

async fn create_model(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(b): JsonBody<Body>,
) -> ApiResult<Json<Value>> {
    let model =
        s.tracking.create_registered_model(b.name()?, &user.user_name, b.description.as_deref(), &pairs(&b.tags))?;
    Ok(Json(json!({"registered_model": model_json(&s, &model)?})))
}

async fn get_model(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    guard::model(&s, &user, required(q.get("name"), "name")?, "CAN_READ")?;
    let model = s.tracking.registered_model(required(q.get("name"), "name")?)?;
    Ok(Json(json!({"registered_model": model_json(&s, &model)?})))
}

/// The workspace registry's own view of a model (`w.model_registry.get_model`):
/// its id, which the Permissions API names it by, and the caller's level.
async fn get_model_databricks(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    let name = required(q.get("name"), "name")?;
    guard::model(&s, &user, name, "CAN_READ")?;
    let model = s.tracking.registered_model(name)?;
    let object = crate::routes::permission_objects::registered_model(&model)?;
    let level = crate::routes::permissions::permissions(&s).level(&user, &object)?;
    let mut out = model_json(&s, &model)?;
    out["id"] = json!(model.id);
    out["user_id"] = json!(model.creator);
    out["permission_level"] = json!(level);
    Ok(Json(json!({"registered_model_databricks": out})))
}

async fn update_model(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(b): JsonBody<Body>,
) -> ApiResult<Json<Value>> {
    guard::model(&s, &user, b.name()?, "CAN_EDIT")?;
    let model = s.tracking.update_registered_model(b.name()?, b.description.as_deref())?;
    Ok(Json(json!({"registered_model": model_json(&s, &model)?})))
}

async fn rename_model(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(b): JsonBody<Body>,
) -> ApiResult<Json<Value>> {
    guard::model(&s, &user, b.name()?, "CAN_MANAGE")?;
    let model = s.tracking.rename_registered_model(b.name()?, required(b.new_name.as_deref(), "new_name")?)?;
    Ok(Json(json!({"registered_model": model_json(&s, &model)?})))
}

async fn delete_model(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    q: QueryPairs,
    JsonBody(b): JsonBody<Body>,
) -> ApiResult<Json<Value>> {
    // databricks-sdk sends the name in the query string.
    let name = required(b.name.as_deref().or(q.get("name")), "name")?;
    guard::model(&s, &user, name, "CAN_MANAGE")?;
    s.tracking.delete_registered_model(name)?;
    Ok(Json(json!({})))
}

async fn search_models(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    q: QueryPairs,
) -> ApiResult<Paged<Value>> {
    let max = q.get("max_results").and_then(|m| m.parse().ok());
    let page = s.tracking.search_registered_models(
        &|m| guard::reads_model(&s, &user, m),
        q.get("filter"),
        max,
        q.get("page_token"),
    )?;
    let items = page.items.iter().map(|m| model_json(&s, m)).collect::<Result<Vec<_>, _>>()?;
    Ok(page_json("registered_models", items, page.next_page_token))
}

async fn latest_versions(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(b): JsonBody<Body>,
) -> ApiResult<Json<Value>> {
    guard::model(&s, &user, b.name()?, "CAN_READ")?;
    let versions = s.tracking.latest_versions(b.name()?, &b.stages)?;
    Ok(Json(json!({"model_versions": versions.iter().map(version_json).collect::<Vec<_>>()})))
}

async fn latest_versions_get(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    guard::model(&s, &user, required(q.get("name"), "name")?, "CAN_READ")?;
    let stages: Vec<String> = q.all("stages").map(str::to_string).collect();
    let versions = s.tracking.latest_versions(required(q.get("name"), "name")?, &stages)?;
    Ok(Json(json!({"model_versions": versions.iter().map(version_json).collect::<Vec<_>>()})))
}

async fn set_model_tag(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(b): JsonBody<Body>,
) -> ApiResult<Json<Value>> {
    guard::model(&s, &user, b.name()?, "CAN_EDIT")?;
    let key = required(b.key.as_deref(), "key")?;
    s.tracking.set_registered_model_tag(b.name()?, key, b.value.as_deref().unwrap_or(""))?;
    Ok(Json(json!({})))
}

async fn delete_model_tag(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(b): JsonBody<Body>,
) -> ApiResult<Json<Value>> {
    guard::model(&s, &user, b.name()?, "CAN_EDIT")?;
    s.tracking.delete_registered_model_tag(b.name()?, required(b.key.as_deref(), "key")?)?;
    Ok(Json(json!({})))
}

async fn set_alias(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(b): JsonBody<Body>,
) -> ApiResult<Json<Value>> {
    guard::model(&s, &user, b.name()?, "CAN_MANAGE_PRODUCTION_VERSIONS")?;
    s.tracking.set_alias(b.name()?, required(b.alias.as_deref(), "alias")?, &b.version()?)?;
    Ok(Json(json!({})))
}

async fn delete_alias(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    q: QueryPairs,
    JsonBody(b): JsonBody<Body>,
) -> ApiResult<Json<Value>> {
    // The client sends DELETE parameters in the query string.
    let name = b.name.as_deref().or(q.get("name"));
    let alias = b.alias.as_deref().or(q.get("alias"));
    guard::model(&s, &user, required(name, "name")?, "CAN_MANAGE_PRODUCTION_VERSIONS")?;
    s.tracking.delete_alias(required(name, "name")?, required(alias, "alias")?)?;
    Ok(Json(json!({})))
}

async fn get_by_alias(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    guard::model(&s, &user, required(q.get("name"), "name")?, "CAN_READ")?;
    let version = s.tracking.version_by_alias(required(q.get("name"), "name")?, required(q.get("alias"), "alias")?)?;
    Ok(Json(json!({"model_version": version_json(&version)})))
}

async fn create_version(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(b): JsonBody<Body>,
) -> ApiResult<Json<Value>> {
    guard::model(&s, &user, b.name()?, "CAN_EDIT")?;
    let new = NewVersion {
        name: b.name()?.to_string(),
        source: b.source.clone().unwrap_or_default(),
        run_id: b.run_id.clone(),
        run_link: b.run_link.clone(),
        description: b.description.clone(),
        model_id: b.model_id.clone(),
        tags: pairs(&b.tags),
        user_id: user.user_name.clone(),
    };
    Ok(Json(json!({"model_version": version_json(&s.tracking.create_model_version(new)?)})))
}

async fn get_version(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    guard::model(&s, &user, required(q.get("name"), "name")?, "CAN_READ")?;
    let v = s.tracking.model_version(required(q.get("name"), "name")?, required(q.get("version"), "version")?)?;
    Ok(Json(json!({"model_version": version_json(&v)})))
}

async fn update_version(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(b): JsonBody<Body>,
) -> ApiResult<Json<Value>> {
    guard::model(&s, &user, b.name()?, "CAN_EDIT")?;
    let v = s.tracking.update_model_version(b.name()?, &b.version()?, b.description.as_deref())?;
    Ok(Json(json!({"model_version": version_json(&v)})))
}

async fn delete_version(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(b): JsonBody<Body>,
) -> ApiResult<Json<Value>> {
    guard::model(&s, &user, b.name()?, "CAN_MANAGE")?;
    s.tracking.delete_model_version(b.name()?, &b.version()?)?;
    Ok(Json(json!({})))
}

async fn search_versions(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    q: QueryPairs,
) -> ApiResult<Paged<Value>> {
    let max = q.get("max_results").and_then(|m| m.parse().ok());
    let page = s.tracking.search_model_versions(
        &|name| guard::reads_model_named(&s, &user, name),
        q.get("filter"),
        max,
        q.get("page_token"),
    )?;
    Ok(page_json("model_versions", page.items.iter().map(version_json).collect(), page.next_page_token))
}

async fn download_uri(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    guard::model(&s, &user, required(q.get("name"), "name")?, "CAN_READ")?;
    let uri = s.tracking.download_uri(required(q.get("name"), "name")?, required(q.get("version"), "version")?)?;
    Ok(Json(json!({"artifact_uri": uri})))
}

async fn transition_stage(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(b): JsonBody<Body>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!({"model_version": version_json(&transition(&s, &user, &b)?)})))
}

/// The workspace registry's transition (`w.model_registry.transition_stage`).
async fn transition_stage_databricks(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(b): JsonBody<Body>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!({"model_version_databricks": version_json(&transition(&s, &user, &b)?)})))
}

/// Moving a version to or from Production needs that level, to or from
/// Staging (or Archived) Staging's.
fn transition(s: &AppState, user: &User, b: &Body) -> ApiResult<ModelVersionRow> {
    let stage = required(b.stage.as_deref(), "stage")?;
    if !user.admin {
        let current = s.tracking.model_version(b.name()?, &b.version()?)?.current_stage;
        guard::model(s, user, b.name()?, guard::transition_level(&current, stage))?;
    }
    Ok(s.tracking.transition_stage(b.name()?, &b.version()?, stage, b.archive_existing_versions)?)
}

async fn set_version_tag(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(b): JsonBody<Body>,
) -> ApiResult<Json<Value>> {
    guard::model(&s, &user, b.name()?, "CAN_EDIT")?;
    let key = required(b.key.as_deref(), "key")?;
    s.tracking.set_model_version_tag(b.name()?, &b.version()?, key, b.value.as_deref().unwrap_or(""))?;
    Ok(Json(json!({})))
}

async fn delete_version_tag(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(b): JsonBody<Body>,
) -> ApiResult<Json<Value>> {
    guard::model(&s, &user, b.name()?, "CAN_EDIT")?;
    s.tracking.delete_model_version_tag(b.name()?, &b.version()?, required(b.key.as_deref(), "key")?)?;
    Ok(Json(json!({})))
}

/// A version's files under `path` (the workspace registry's call, which the
/// client makes under a `databricks` registry URI).
async fn list_version_artifacts(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    guard::model(&s, &user, required(q.get("name"), "name")?, "CAN_READ")?;
    let uri = s.tracking.download_uri(required(q.get("name"), "name")?, required(q.get("version"), "version")?)?;
    let files = s.artifacts.list_root(&uri, q.get("path"))?;
    Ok(Json(json!({"files": super::artifacts::files_json(&files)})))
}

/// A URL that downloads one file of a version without credentials.
async fn signed_download_uri(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    headers: axum::http::HeaderMap,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    guard::model(&s, &user, required(q.get("name"), "name")?, "CAN_READ")?;
    let uri = s.tracking.download_uri(required(q.get("name"), "name")?, required(q.get("version"), "version")?)?;
    let token = s.artifacts.sign(&uri, q.get("path").unwrap_or(""), tarn_mlflow::Access::Read)?;
    let url = format!("{}{}/{token}", super::artifacts::base_url(&headers), super::artifacts::SIGNED);
    Ok(Json(json!({"signed_uri": url, "headers": []})))
}
