//! Unity Catalog REST under `/api/2.1/unity-catalog`, in the shapes both
//! `databricks-sdk` (`w.catalogs`, `w.schemas`, `w.tables`, `w.volumes`) and
//! Sail's `unity` catalog provider use, including staging tables, Delta
//! commit coordination and registered models (`models`).

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{Map, Value, json};
use tarn_catalog::{Action, CommitRequest, CreateRequest, Kind, Principal, Properties, UpdateRequest};
use tarn_core::ApiError;
use tarn_store::{DeltaCommit, User};

use crate::body::{JsonBody, QueryPairs};
use crate::error::ApiResult;
use crate::paging::{Page, PageRule, Paged};
use crate::{AppState, Caller};

mod grants;
mod models;

const PREFIX: &str = "/api/2.1/unity-catalog";
/// Collection path segment, kind, the list answer's key, and the query
/// parameters that name the parent.
const COLLECTIONS: [(&str, Kind, &[&str]); 4] = [
    ("catalogs", Kind::Catalog, &[]),
    ("schemas", Kind::Schema, &["catalog_name"]),
    ("tables", Kind::Table, &["catalog_name", "schema_name"]),
    ("volumes", Kind::Volume, &["catalog_name", "schema_name"]),
];

pub fn router() -> Router<AppState> {
    let mut router = Router::new()
        .route(&format!("{PREFIX}/staging-tables"), post(create_staging))
        .route(&format!("{PREFIX}/tables/{{full_name}}/exists"), get(table_exists))
        .route(&format!("{PREFIX}/delta/preview/commits"), get(get_commits).post(commit))
        .merge(grants::router())
        .merge(models::router());
    for (segment, kind, parents) in COLLECTIONS {
        router = router
            .route(
                &format!("{PREFIX}/{segment}"),
                post(move |s, c, b| create(s, c, b, kind))
                    .get(move |s, c, q, p| list(s, c, q, p, segment, kind, parents)),
            )
            .route(
                &format!("{PREFIX}/{segment}/{{full_name}}"),
                get(move |s, c, p| read(s, c, p, kind))
                    .patch(move |s, c, p, b| update(s, c, p, b, kind))
                    .delete(move |s, c, p, q| delete(s, c, p, q, kind)),
            );
    }
    router
}

type Body = JsonBody<Map<String, Value>>;

/// The caller as grants name it.
pub(crate) fn principal(s: &AppState, user: &User) -> ApiResult<Principal> {
    Ok(s.catalog.principal(user)?)
}

/// Refuses unless the caller may create an object of `kind` in its parent
/// (a catalog: admins only, as CREATE CATALOG on the metastore).
fn authorize_create(s: &AppState, user: &User, kind: Kind, req: &CreateRequest) -> ApiResult<()> {
    let parent = match kind {
        Kind::Catalog if user.admin => return Ok(()),
        Kind::Catalog => {
            return Err(ApiError::permission_denied("User does not have CREATE CATALOG on Metastore.").into());
        }
        Kind::Schema => (Kind::Catalog, req.catalog_name.clone().unwrap_or_default()),
        _ => (
            Kind::Schema,
            format!(
                "{}.{}",
                req.catalog_name.as_deref().unwrap_or_default(),
                req.schema_name.as_deref().unwrap_or_default()
            ),
        ),
    };
    let action = Action::Create(if kind == Kind::Staging { Kind::Table } else { kind });
    Ok(s.catalog.authorize(&principal(s, user)?, parent.0, &parent.1, action)?)
}

/// A text field; anything but a string counts as not given.
pub(super) fn text(body: &Map<String, Value>, key: &str) -> Option<String> {
    body.get(key).and_then(Value::as_str).map(str::to_string)
}

/// `properties`: an object of strings; `null` empties them.
fn properties(body: &Map<String, Value>) -> ApiResult<Option<Properties>> {
    let refused = || ApiError::invalid_parameter("properties must be an object of string values");
    match body.get("properties") {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(Properties::new())),
        Some(Value::Object(m)) => {
            let pairs = m.iter().map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())).ok_or_else(refused));
            Ok(Some(pairs.collect::<Result<_, _>>()?))
        }
        Some(_) => Err(refused().into()),
    }
}

/// A create body as the catalog reads it; only a table reads `columns`.
fn create_request(kind: Kind, body: &Map<String, Value>) -> ApiResult<CreateRequest> {
    let columns = match body.get("columns") {
        Some(Value::Array(c)) if kind == Kind::Table => c.clone(),
        None | Some(Value::Null) => Vec::new(),
        Some(_) if kind == Kind::Table => return Err(ApiError::invalid_parameter("columns must be an array").into()),
        Some(_) => Vec::new(),
    };
    Ok(CreateRequest {
        name: text(body, "name"),
        catalog_name: text(body, "catalog_name"),
        schema_name: text(body, "schema_name"),
        comment: text(body, "comment"),
        properties: properties(body)?,
        storage_root: text(body, "storage_root"),
        storage_location: text(body, "storage_location"),
        table_type: text(body, "table_type"),
        data_source_format: text(body, "data_source_format"),
        volume_type: text(body, "volume_type"),
        columns,
        view_definition: text(body, "view_definition"),
    })
}

async fn create(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(body): Body,
    kind: Kind,
) -> ApiResult<Json<Value>> {
    let request = create_request(kind, &body)?;
    authorize_create(&s, &user, kind, &request)?;
    Ok(Json(s.catalog.create(kind, &request, &user.user_name)?))
}

async fn create_staging(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(body): Body,
) -> ApiResult<Json<Value>> {
    let request = create_request(Kind::Staging, &body)?;
    authorize_create(&s, &user, Kind::Staging, &request)?;
    Ok(Json(s.catalog.create(Kind::Staging, &request, &user.user_name)?))
}

async fn read(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(full_name): Path<String>,
    kind: Kind,
) -> ApiResult<Json<Value>> {
    s.catalog.authorize(&principal(&s, &user)?, kind, &full_name, Action::Browse)?;
    Ok(Json(s.catalog.get(kind, &full_name)?))
}

async fn table_exists(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(full_name): Path<String>,
) -> ApiResult<Json<Value>> {
    let seen = s.catalog.authorize(&principal(&s, &user)?, Kind::Table, &full_name, Action::Browse);
    let exists = match seen.and_then(|()| s.catalog.get(Kind::Table, &full_name)) {
        Ok(_) => true,
        Err(tarn_catalog::CatalogError::NotFound { .. }) => false,
        Err(e) => return Err(e.into()),
    };
    Ok(Json(json!({"table_exists": exists})))
}

/// Listings: `max_results` up to 1000.
pub(super) struct ListPage;

impl PageRule for ListPage {
    const SIZE: &'static str = "max_results";
    const MAX: usize = 1000;
    fn refusal(raw: &str, parsed: Option<i64>) -> Option<String> {
        parsed.is_none_or(|n| n < 0).then(|| format!("max_results must be >= 0, got {raw}"))
    }
}

async fn list(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    query: QueryPairs,
    page: Page<ListPage>,
    segment: &'static str,
    kind: Kind,
    parents: &'static [&'static str],
) -> ApiResult<Paged<Value>> {
    let parent = parents
        .iter()
        .map(|p| {
            query
                .get(p)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| ApiError::invalid_parameter(format!("Missing required parameter: {p}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let caller = principal(&s, &user)?;
    let mut items = s.catalog.list(kind, &parent)?;
    items.retain(|info| {
        info.get("full_name").and_then(Value::as_str).is_some_and(|name| s.catalog.visible(&caller, kind, name))
    });
    Ok(page.slice(segment, &items))
}

async fn update(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(full_name): Path<String>,
    JsonBody(body): Body,
    kind: Kind,
) -> ApiResult<Json<Value>> {
    let patch = UpdateRequest {
        comment: text(&body, "comment"),
        owner: text(&body, "owner"),
        properties: properties(&body)?,
        new_name: text(&body, "new_name"),
    };
    s.catalog.authorize(&principal(&s, &user)?, kind, &full_name, Action::Manage)?;
    Ok(Json(s.catalog.update(kind, &full_name, &patch, &user.user_name)?))
}

async fn delete(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(full_name): Path<String>,
    query: QueryPairs,
    kind: Kind,
) -> ApiResult<Json<Value>> {
    s.catalog.authorize(&principal(&s, &user)?, kind, &full_name, Action::Manage)?;
    let force = query.flag_or("force", false);
    let models = models::contained(&s, kind, &full_name, force)?;
    s.catalog.delete(kind, &full_name, force)?;
    models::drop_all(&s, &models)?;
    Ok(Json(json!({})))
}

fn field<'a>(body: &'a Map<String, Value>, key: &str) -> ApiResult<&'a str> {
    body.get(key)
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::invalid_parameter(format!("Missing required field: {key}")).into())
}

fn int(body: &Value, key: &str) -> Option<i64> {
    body.get(key).and_then(|v| v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok())))
}

/// Refuses unless the caller may `action` the table with this id.
fn authorize_table_id(s: &AppState, user: &User, table_id: &str, action: Action) -> ApiResult<()> {
    if user.admin {
        return Ok(());
    }
    let table = s
        .store
        .get_uc_object_by_id(table_id)?
        .ok_or_else(|| ApiError::not_found(format!("Table with id {table_id} does not exist.")))?;
    Ok(s.catalog.authorize(&principal(s, user)?, Kind::Table, &table.full_name, action)?)
}

/// Sail sends this GET with a JSON body; clients that cannot may use the query.
async fn get_commits(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    query: QueryPairs,
    JsonBody(body): Body,
) -> ApiResult<Json<Value>> {
    let mut body = Value::Object(body);
    for (k, v) in &query.0 {
        body[k.as_str()] = json!(v);
    }
    let table_id = body
        .get("table_id")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::invalid_parameter("Missing required field: table_id"))?;
    authorize_table_id(&s, &user, table_id, Action::Select)?;
    let uri = body.get("table_uri").and_then(Value::as_str);
    let commits =
        s.catalog.delta_commits(table_id, uri, int(&body, "start_version").unwrap_or(0), int(&body, "end_version"))?;
    let list: Vec<Value> = commits
        .commits
        .iter()
        .map(|c| {
            json!({"version": c.version, "timestamp": c.timestamp, "file_name": c.file_name, "file_size": c.file_size,
                   "file_modification_timestamp": c.file_modification_timestamp})
        })
        .collect();
    Ok(Json(json!({"commits": list, "latest_table_version": commits.latest_table_version})))
}

async fn commit(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(body): Body,
) -> ApiResult<Json<Value>> {
    let info = body.get("commit_info").cloned().unwrap_or(Value::Null);
    let version =
        int(&info, "version").ok_or_else(|| ApiError::invalid_parameter("commit_info.version is required"))?;
    let commit = DeltaCommit {
        version,
        timestamp: int(&info, "timestamp").unwrap_or(0),
        file_name: info.get("file_name").and_then(Value::as_str).unwrap_or_default().to_string(),
        file_size: int(&info, "file_size").unwrap_or(0),
        file_modification_timestamp: int(&info, "file_modification_timestamp").unwrap_or(0),
    };
    authorize_table_id(&s, &user, field(&body, "table_id")?, Action::Modify)?;
    let request = CommitRequest {
        table_id: field(&body, "table_id")?.to_string(),
        table_uri: body.get("table_uri").and_then(Value::as_str).map(str::to_string),
        commit,
        latest_backfilled_version: int(&Value::Object(body.clone()), "latest_backfilled_version"),
        metadata: body.get("metadata").cloned().filter(|m| !m.is_null()),
    };
    s.catalog.commit(request).await?;
    Ok(Json(json!({})))
}
