//! Unity Catalog grants (`w.grants`): the privileges granted on a catalog,
//! schema, table or volume (`permissions`), those a principal holds there
//! through the containers above too (`effective-permissions`), and changes
//! to them. `tarn_catalog` holds the rules.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Map, Value, json};
use tarn_catalog::{Action, GrantChange, Kind};
use tarn_core::ApiError;

use super::{PREFIX, principal};
use crate::body::{JsonBody, QueryPairs};
use crate::error::ApiResult;
use crate::{AppState, Caller};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route(&format!("{PREFIX}/permissions/{{securable_type}}/{{full_name}}"), get(get_grants).patch(update))
        .route(&format!("{PREFIX}/effective-permissions/{{securable_type}}/{{full_name}}"), get(effective))
}

/// The kind a securable type names (`table` or `TABLE`).
fn securable(raw: &str) -> ApiResult<Kind> {
    match raw.to_ascii_lowercase().as_str() {
        "catalog" => Ok(Kind::Catalog),
        "schema" => Ok(Kind::Schema),
        "table" => Ok(Kind::Table),
        "volume" => Ok(Kind::Volume),
        "metastore" | "function" | "external_location" | "storage_credential" | "connection" | "share" | "model"
        | "credential" => {
            Err(ApiError::not_implemented(format!("Grants on a {raw} are not implemented by tarn yet")).into())
        }
        _ => Err(ApiError::invalid_parameter(format!("'{raw}' is not a securable type")).into()),
    }
}

fn assignments(grants: impl IntoIterator<Item = (String, Vec<String>)>) -> Value {
    let list: Vec<Value> =
        grants.into_iter().map(|(p, privileges)| json!({"principal": p, "privileges": privileges})).collect();
    json!({"privilege_assignments": list})
}

async fn get_grants(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path((securable_type, full_name)): Path<(String, String)>,
    query: QueryPairs,
) -> ApiResult<Json<Value>> {
    let kind = securable(&securable_type)?;
    s.catalog.authorize(&principal(&s, &user)?, kind, &full_name, Action::Browse)?;
    Ok(Json(assignments(s.catalog.grants(kind, &full_name, query.get("principal"))?)))
}

async fn effective(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path((securable_type, full_name)): Path<(String, String)>,
    query: QueryPairs,
) -> ApiResult<Json<Value>> {
    let kind = securable(&securable_type)?;
    s.catalog.authorize(&principal(&s, &user)?, kind, &full_name, Action::Browse)?;
    let held = s.catalog.effective_grants(kind, &full_name, query.get("principal"))?;
    let list: Vec<Value> = held
        .into_iter()
        .map(|(p, privileges)| {
            let privileges: Vec<Value> = privileges
                .into_iter()
                .map(|h| {
                    let mut out = json!({"privilege": h.privilege});
                    if let Some((kind, name)) = h.inherited_from {
                        out["inherited_from_type"] = json!(kind.as_str().to_uppercase());
                        out["inherited_from_name"] = json!(name);
                    }
                    out
                })
                .collect();
            json!({"principal": p, "privileges": privileges})
        })
        .collect();
    Ok(Json(json!({"privilege_assignments": list})))
}

fn strings(change: &Map<String, Value>, key: &str) -> ApiResult<Vec<String>> {
    match change.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| ApiError::invalid_parameter(format!("{key} must list privilege names")).into())
            })
            .collect(),
        Some(_) => Err(ApiError::invalid_parameter(format!("{key} must be an array")).into()),
    }
}

fn changes(body: &Map<String, Value>) -> ApiResult<Vec<GrantChange>> {
    let Some(Value::Array(list)) = body.get("changes") else {
        return Err(ApiError::invalid_parameter("changes must be an array of {principal, add, remove}").into());
    };
    list.iter()
        .map(|change| {
            let change =
                change.as_object().ok_or_else(|| ApiError::invalid_parameter("each change must be an object"))?;
            let principal = change
                .get("principal")
                .and_then(Value::as_str)
                .filter(|p| !p.is_empty())
                .ok_or_else(|| ApiError::invalid_parameter("Missing required field: principal"))?;
            Ok(GrantChange {
                principal: principal.to_string(),
                add: strings(change, "add")?,
                remove: strings(change, "remove")?,
            })
        })
        .collect()
}

async fn update(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path((securable_type, full_name)): Path<(String, String)>,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> ApiResult<Json<Value>> {
    let kind = securable(&securable_type)?;
    let changes = changes(&body)?;
    s.catalog.update_grants(&principal(&s, &user)?, kind, &full_name, &changes)?;
    Ok(Json(assignments(s.catalog.grants(kind, &full_name, None)?)))
}
