//! Unity Catalog registered models and their versions
//! (`w.registered_models`, `w.model_versions`, a bundle's
//! `registered_models`). A UC model is the MLflow registry's model named
//! `catalog.schema.model`, so the MLflow client and these routes see the
//! same models and versions. Its schema must exist; creating needs
//! USE_CATALOG, USE_SCHEMA and CREATE_MODEL there, reading needs the
//! schema's usage, and changing a model needs its owner (the creator) or a
//! manager of its schema.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Map, Value, json};
use tarn_catalog::{Action, CatalogError, FullName, Kind};
use tarn_core::{ApiError, ErrorCode};
use tarn_mlflow::{ModelVersionRow, RegisteredModelRow};
use tarn_store::User;

use super::{ListPage, PREFIX, principal, text};
use crate::body::{JsonBody, QueryPairs};
use crate::error::{ApiFailure, ApiResult};
use crate::paging::{Page, Paged};
use crate::{AppState, Caller};

pub(super) fn router() -> Router<AppState> {
    let model = format!("{PREFIX}/models/{{full_name}}");
    Router::new()
        .route(&format!("{PREFIX}/models"), get(list).post(create))
        .route(&model, get(read).patch(update).delete(delete))
        .route(&format!("{model}/aliases/{{alias}}"), get(by_alias).put(set_alias).delete(delete_alias))
        .route(&format!("{model}/versions"), get(list_versions))
        .route(&format!("{model}/versions/{{version}}"), get(read_version).patch(update_version).delete(delete_version))
}

type Body = JsonBody<Map<String, Value>>;

/// A missing catalog or schema as Unity Catalog names it.
fn uc_error(e: CatalogError) -> ApiFailure {
    let code = match &e {
        CatalogError::NotFound { kind: Kind::Catalog, .. } => ErrorCode::CatalogDoesNotExist,
        CatalogError::NotFound { kind: Kind::Schema, .. } => ErrorCode::SchemaDoesNotExist,
        _ => return e.into(),
    };
    ApiError::new(code, e.to_string()).into()
}

/// `catalog.schema.model`, validated and lower-cased as the catalog's names are.
fn model_name(full_name: &str) -> ApiResult<FullName> {
    let parts: Vec<&str> = full_name.split('.').collect();
    if parts.len() != 3 {
        let why = format!("Invalid registered model name '{full_name}': expected catalog.schema.model");
        return Err(ApiError::invalid_parameter(why).into());
    }
    Ok(FullName::from_parts(&parts)?)
}

/// Refuses unless the model's schema exists and the caller may `action` it.
fn in_schema(s: &AppState, user: &User, name: &FullName, action: Action) -> ApiResult<()> {
    s.catalog.authorize(&principal(s, user)?, Kind::Schema, &name.parent(), action).map_err(uc_error)
}

/// The model, once the caller may read it.
fn readable(s: &AppState, user: &User, full_name: &str) -> ApiResult<(FullName, RegisteredModelRow)> {
    let name = model_name(full_name)?;
    in_schema(s, user, &name, Action::Use)?;
    Ok((name.clone(), s.tracking.registered_model(&name.full())?))
}

/// The model, once the caller may change it: its owner, or a manager of
/// the schema above it.
fn manageable(s: &AppState, user: &User, full_name: &str) -> ApiResult<(FullName, RegisteredModelRow)> {
    let (name, model) = readable(s, user, full_name)?;
    let caller = principal(s, user)?;
    let owns = caller.admin || caller.is(&model.creator);
    if !owns && s.catalog.authorize(&caller, Kind::Schema, &name.parent(), Action::Manage).is_err() {
        let why = format!("User is not an owner of Registered model '{}' and does not manage its schema.", name.full());
        return Err(ApiError::permission_denied(why).into());
    }
    Ok((name, model))
}

fn aliases<'a>(pairs: impl IntoIterator<Item = (&'a str, i64)>) -> Value {
    pairs.into_iter().map(|(alias, version)| json!({"alias_name": alias, "version_num": version})).collect()
}

fn model_info(s: &AppState, name: &FullName, m: &RegisteredModelRow, with_aliases: bool) -> Value {
    // Models keep no storage of their own in tarn: their versions' files
    // stay where MLflow logged them; this is where a managed model would be.
    let root = s.catalog.get(Kind::Schema, &name.parent()).ok();
    let root = root.as_ref().and_then(|info| info.get("storage_location")).and_then(Value::as_str);
    let mut out = json!({
        "name": name.name(), "catalog_name": name.parts[0], "schema_name": name.parts[1], "full_name": name.full(),
        "comment": m.description, "owner": m.creator, "created_at": m.creation_time, "created_by": m.creator,
        "updated_at": m.last_updated_time,
    });
    if let Some(root) = root {
        out["storage_location"] = json!(format!("{}/models/{}", root.trim_end_matches('/'), m.id));
    }
    if m.last_updated_time == m.creation_time {
        out["updated_by"] = json!(m.creator);
    }
    if with_aliases {
        out["aliases"] = aliases(m.aliases.iter().map(|(a, v)| (a.as_str(), *v)));
    }
    out
}

fn version_info(name: &FullName, v: &ModelVersionRow) -> Value {
    let mut out = json!({
        "model_name": name.name(), "catalog_name": name.parts[0], "schema_name": name.parts[1],
        "version": v.version, "source": v.source, "status": v.status, "comment": v.description,
        "created_at": v.creation_time, "created_by": v.user_id, "updated_at": v.last_updated_time,
        "storage_location": v.storage_location,
        "aliases": aliases(v.aliases.iter().map(|a| (a.as_str(), v.version))),
    });
    if let Some(run_id) = &v.run_id {
        out["run_id"] = json!(run_id);
    }
    out
}

async fn create(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(body): Body,
) -> ApiResult<Json<Value>> {
    let parts = ["catalog_name", "schema_name", "name"].map(|k| text(&body, k).unwrap_or_default());
    if let Some(missing) = ["catalog_name", "schema_name", "name"].iter().zip(&parts).find(|(_, v)| v.is_empty()) {
        return Err(ApiError::invalid_parameter(format!("Missing required field: {}", missing.0)).into());
    }
    let name = FullName::from_parts(&parts.each_ref().map(String::as_str))?;
    in_schema(&s, &user, &name, Action::CreateModel)?;
    let comment = text(&body, "comment");
    let model = s.tracking.create_registered_model(&name.full(), &user.user_name, comment.as_deref(), &[])?;
    Ok(Json(model_info(&s, &name, &model, true)))
}

async fn read(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(full_name): Path<String>,
    query: QueryPairs,
) -> ApiResult<Json<Value>> {
    let (name, model) = readable(&s, &user, &full_name)?;
    Ok(Json(model_info(&s, &name, &model, query.flag_or("include_aliases", false))))
}

/// The registry-name prefix a listing covers, once its catalog (and schema) exist.
fn list_prefix(s: &AppState, user: &User, query: &QueryPairs) -> ApiResult<String> {
    let given = |k: &str| query.get(k).filter(|v| !v.is_empty());
    match (given("catalog_name"), given("schema_name")) {
        (None, None) => Ok(String::new()),
        (None, Some(_)) => Err(ApiError::invalid_parameter("schema_name needs catalog_name").into()),
        (Some(catalog), None) => {
            let catalog = FullName::from_parts(&[catalog])?.full();
            s.catalog.get(Kind::Catalog, &catalog).map_err(uc_error)?;
            Ok(format!("{catalog}."))
        }
        (Some(catalog), Some(schema)) => {
            let schema = FullName::from_parts(&[catalog, schema, "_"])?;
            in_schema(s, user, &schema, Action::Use)?;
            Ok(format!("{}.", schema.parent()))
        }
    }
}

async fn list(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    query: QueryPairs,
    page: Page<ListPage>,
) -> ApiResult<Paged<Value>> {
    let prefix = list_prefix(&s, &user, &query)?;
    let caller = principal(&s, &user)?;
    let mut usable: HashMap<String, bool> = HashMap::new();
    let mut items = Vec::new();
    for model in s.tracking.registered_models_under(&prefix)? {
        // Workspace-registry models (no three-part name) are not UC's.
        let Ok(name) = model_name(&model.name) else { continue };
        let schema = name.parent();
        let ok = *usable
            .entry(schema.clone())
            .or_insert_with(|| s.catalog.authorize(&caller, Kind::Schema, &schema, Action::Use).is_ok());
        if ok && name.full() == model.name {
            items.push(model_info(&s, &name, &model, false));
        }
    }
    Ok(page.slice("registered_models", &items))
}

async fn update(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(full_name): Path<String>,
    JsonBody(body): Body,
) -> ApiResult<Json<Value>> {
    let (mut name, mut model) = manageable(&s, &user, &full_name)?;
    if let Some(comment) = text(&body, "comment") {
        model = s.tracking.update_registered_model(&model.name, Some(&comment))?;
    }
    if let Some(owner) = text(&body, "owner").filter(|o| *o != model.creator) {
        model = s.tracking.set_registered_model_owner(&model.name, &owner)?;
    }
    if let Some(new_name) = text(&body, "new_name").filter(|n| !n.is_empty()) {
        // UC renames within the schema: `new_name` is the model's own name.
        let renamed = FullName::from_parts(&[&name.parts[0], &name.parts[1], &new_name])?;
        if renamed != name {
            model = s.tracking.rename_registered_model(&model.name, &renamed.full())?;
            name = renamed;
        }
    }
    Ok(Json(model_info(&s, &name, &model, true)))
}

async fn delete(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(full_name): Path<String>,
) -> ApiResult<Json<Value>> {
    let (_, model) = manageable(&s, &user, &full_name)?;
    s.tracking.delete_registered_model(&model.name)?;
    Ok(Json(json!({})))
}

async fn set_alias(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path((full_name, alias)): Path<(String, String)>,
    JsonBody(body): Body,
) -> ApiResult<Json<Value>> {
    let (name, model) = manageable(&s, &user, &full_name)?;
    let version = body
        .get("version_num")
        .and_then(|v| v.as_i64().or_else(|| v.as_str().and_then(|t| t.parse().ok())))
        .ok_or_else(|| ApiError::invalid_parameter("Missing required field: version_num"))?;
    s.tracking.set_alias(&model.name, &alias, &version.to_string())?;
    Ok(Json(json!({
        "alias_name": alias, "version_num": version, "model_name": name.name(),
        "catalog_name": name.parts[0], "schema_name": name.parts[1],
    })))
}

async fn delete_alias(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path((full_name, alias)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (_, model) = manageable(&s, &user, &full_name)?;
    s.tracking.delete_alias(&model.name, &alias)?;
    Ok(Json(json!({})))
}

async fn by_alias(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path((full_name, alias)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (name, model) = readable(&s, &user, &full_name)?;
    Ok(Json(version_info(&name, &s.tracking.version_by_alias(&model.name, &alias)?)))
}

async fn list_versions(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(full_name): Path<String>,
    page: Page<ListPage>,
) -> ApiResult<Paged<Value>> {
    let (name, model) = readable(&s, &user, &full_name)?;
    let items: Vec<Value> = s.tracking.model_versions(&model.name)?.iter().map(|v| version_info(&name, v)).collect();
    Ok(page.slice("model_versions", &items))
}

async fn read_version(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path((full_name, version)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (name, model) = readable(&s, &user, &full_name)?;
    Ok(Json(version_info(&name, &s.tracking.model_version(&model.name, &version)?)))
}

async fn update_version(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path((full_name, version)): Path<(String, String)>,
    JsonBody(body): Body,
) -> ApiResult<Json<Value>> {
    let (name, model) = manageable(&s, &user, &full_name)?;
    let comment = text(&body, "comment");
    Ok(Json(version_info(&name, &s.tracking.update_model_version(&model.name, &version, comment.as_deref())?)))
}

async fn delete_version(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path((full_name, version)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (_, model) = manageable(&s, &user, &full_name)?;
    s.tracking.delete_model_version(&model.name, &version)?;
    Ok(Json(json!({})))
}

/// The registry names of the models a catalog or schema about to be
/// deleted holds; without `force`, any refuses the delete as the catalog
/// refuses a container that still holds objects.
pub(super) fn contained(s: &AppState, kind: Kind, full_name: &str, force: bool) -> ApiResult<Vec<String>> {
    if !matches!(kind, Kind::Catalog | Kind::Schema) {
        return Ok(Vec::new());
    }
    let container = FullName::parse(kind, full_name)?.full();
    let names: Vec<String> = s
        .tracking
        .registered_models_under(&format!("{container}."))?
        .into_iter()
        .map(|m| m.name)
        .filter(|n| model_name(n).is_ok())
        .collect();
    if !force && !names.is_empty() {
        let count = i64::try_from(names.len()).unwrap_or(i64::MAX);
        return Err(CatalogError::NotEmpty { kind, name: container, count }.into());
    }
    Ok(names)
}

/// Drops the models of a container that is gone.
pub(super) fn drop_all(s: &AppState, names: &[String]) -> ApiResult<()> {
    for name in names {
        s.tracking.delete_registered_model(name)?;
    }
    Ok(())
}
