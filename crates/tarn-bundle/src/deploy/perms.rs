//! A resource's `permissions` (the Permissions API, or a secret scope's
//! ACLs) and `grants` (Unity Catalog privileges): set by a deploy, read
//! before and put back when the deploy fails later.

use serde_json::{Map, Value, json};
use tarn_assist::{Client, ClientError};

/// The Permissions API's object type for a resource type.
fn object_type(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "jobs" => "jobs",
        "pipelines" => "pipelines",
        "experiments" => "experiments",
        "models" => "registered-models",
        "model_serving_endpoints" => "serving-endpoints",
        "clusters" => "clusters",
        _ => return None,
    })
}

const PRINCIPALS: [&str; 3] = ["user_name", "group_name", "service_principal_name"];

/// An entry as the Permissions API's ACL item (`level` → `permission_level`).
fn acl_item(entry: &Value, level: &str) -> Value {
    let mut item = Map::new();
    for key in PRINCIPALS {
        if let Some(v) = entry.get(key) {
            item.insert(key.into(), v.clone());
        }
    }
    item.insert("permission_level".into(), json!(level));
    Value::Object(item)
}

fn level_of(entry: &Value) -> Option<&str> {
    entry.get("permission_level").or_else(|| entry.get("level")).and_then(Value::as_str)
}

/// The ACL a resource should carry (the loader has appended the
/// bundle's top-level `permissions`, mapped to the type's levels).
pub fn desired_acl(value: &Value) -> Vec<Value> {
    let own = value.get("permissions").and_then(Value::as_array).into_iter().flatten();
    own.filter_map(|e| Some(acl_item(e, level_of(e)?))).collect()
}

/// The bundle's top-level `permissions` on its root folder, as the
/// databricks CLI sets them: a level that means nothing on a folder maps to
/// the folder level it grants (CAN_VIEW reads, CAN_RUN runs).
pub async fn apply_root(client: &Client, root_path: &str, permissions: &[Value]) -> Result<(), ClientError> {
    let acl: Vec<Value> = permissions
        .iter()
        .filter_map(|e| {
            let level = match level_of(e)? {
                "CAN_MANAGE" | "IS_OWNER" => "CAN_MANAGE",
                "CAN_RUN" | "CAN_MANAGE_RUN" => "CAN_RUN",
                "CAN_EDIT" => "CAN_EDIT",
                _ => "CAN_READ",
            };
            Some(acl_item(e, level))
        })
        .collect();
    if acl.is_empty() {
        return Ok(());
    }
    let status = client.get("/api/2.0/workspace/get-status", &[("path", root_path)]).await?;
    let object_id = status
        .get("object_id")
        .and_then(Value::as_i64)
        .ok_or_else(|| ClientError::Invalid(format!("{root_path} has no object_id")))?;
    let body = json!({"access_control_list": acl});
    client.put(&format!("/api/2.0/permissions/directories/{object_id}"), &body).await?;
    Ok(())
}

/// Sets the resource's permissions and grants, when it has any.
pub async fn apply(client: &Client, kind: &str, id: &str, value: &Value) -> Result<(), ClientError> {
    let acl = desired_acl(value);
    if !acl.is_empty() {
        if kind == "secret_scopes" {
            scope_acls(client, id, &acl).await?;
        } else if let Some(ty) = object_type(kind) {
            let object_id = permission_id(client, kind, id).await?;
            let body = json!({"access_control_list": acl});
            client.put(&format!("/api/2.0/permissions/{ty}/{object_id}"), &body).await?;
        }
    }
    if let Some(grants) = desired_grants(value) {
        let changes: Vec<Value> = grants
            .iter()
            .map(|g| json!({"principal": g.get("principal"), "add": g.get("privileges").cloned().unwrap_or(json!([]))}))
            .collect();
        client.patch(&grants_path(kind, id)?, &json!({"changes": changes})).await?;
    }
    Ok(())
}

fn desired_grants(value: &Value) -> Option<&Vec<Value>> {
    value.get("grants").and_then(Value::as_array).filter(|g| !g.is_empty())
}

fn grants_path(kind: &str, id: &str) -> Result<String, ClientError> {
    let securable = match kind {
        "schemas" => "schema",
        "volumes" => "volume",
        "registered_models" => "function",
        other => return Err(ClientError::Invalid(format!("`{other}` resources take no grants"))),
    };
    Ok(format!("/api/2.1/unity-catalog/permissions/{securable}/{id}"))
}

/// What [`apply`] would change, as it was before: the direct ACL (or a
/// scope's ACLs) and the grants, each read only where the resource sets it.
pub struct Previous {
    acl: Option<Vec<Value>>,
    grants: Option<Value>,
    desired: Value,
}

/// Reads what [`apply`] is about to change.
pub async fn read(client: &Client, kind: &str, id: &str, value: &Value) -> Result<Previous, ClientError> {
    let desired = json!({"permissions": value.get("permissions"), "grants": value.get("grants")});
    let mut previous = Previous { acl: None, grants: None, desired };
    if !desired_acl(value).is_empty() {
        if kind == "secret_scopes" {
            let listed = client.get("/api/2.0/secrets/acls/list", &[("scope", id)]).await?;
            previous.acl = Some(listed.get("items").and_then(Value::as_array).cloned().unwrap_or_default());
        } else if let Some(ty) = object_type(kind) {
            let object_id = permission_id(client, kind, id).await?;
            let read = client.get(&format!("/api/2.0/permissions/{ty}/{object_id}"), &[]).await?;
            previous.acl = Some(direct_entries(&read));
        }
    }
    if desired_grants(value).is_some() {
        previous.grants = Some(client.get(&grants_path(kind, id)?, &[]).await?);
    }
    Ok(previous)
}

/// The entries set on the object itself (not inherited), as ACL items.
fn direct_entries(read: &Value) -> Vec<Value> {
    let entries = read.get("access_control_list").and_then(Value::as_array).into_iter().flatten();
    let mut out = Vec::new();
    for entry in entries {
        let levels = entry.get("all_permissions").and_then(Value::as_array).into_iter().flatten();
        for level in levels.filter(|l| l.get("inherited").and_then(Value::as_bool) != Some(true)) {
            if let Some(level) = level.get("permission_level").and_then(Value::as_str) {
                out.push(acl_item(entry, level));
            }
        }
    }
    out
}

/// Puts back what [`read`] found: the ACL as it was, and the grants the
/// deploy added taken away again.
pub async fn restore(client: &Client, kind: &str, id: &str, previous: &Previous) -> Result<(), ClientError> {
    if let Some(acl) = &previous.acl {
        if kind == "secret_scopes" {
            restore_scope_acls(client, id, acl, &desired_acl(&previous.desired)).await?;
        } else if let Some(ty) = object_type(kind) {
            let object_id = permission_id(client, kind, id).await?;
            let body = json!({"access_control_list": acl});
            client.put(&format!("/api/2.0/permissions/{ty}/{object_id}"), &body).await?;
        }
    }
    if let (Some(before), Some(desired)) = (&previous.grants, desired_grants(&previous.desired)) {
        let changes = added_grants(before, desired);
        if !changes.is_empty() {
            client.patch(&grants_path(kind, id)?, &json!({"changes": changes})).await?;
        }
    }
    Ok(())
}

/// `remove` changes for the privileges the deploy granted that the
/// principal did not hold before.
fn added_grants(before: &Value, desired: &[Value]) -> Vec<Value> {
    let held = |principal: &str| -> Vec<Value> {
        let assignments = before.get("privilege_assignments").and_then(Value::as_array).into_iter().flatten();
        let mine = assignments.filter(|a| a.get("principal").and_then(Value::as_str) == Some(principal));
        mine.flat_map(|a| a.get("privileges").and_then(Value::as_array).cloned().unwrap_or_default()).collect()
    };
    let mut changes = Vec::new();
    for grant in desired {
        let Some(principal) = grant.get("principal").and_then(Value::as_str) else { continue };
        let had = held(principal);
        let wanted = grant.get("privileges").and_then(Value::as_array).into_iter().flatten();
        let new: Vec<Value> = wanted.filter(|p| !had.contains(p)).cloned().collect();
        if !new.is_empty() {
            changes.push(json!({"principal": principal, "remove": new}));
        }
    }
    changes
}

/// A scope's ACL for each principal the deploy set: the previous
/// permission again, or none.
async fn restore_scope_acls(client: &Client, scope: &str, before: &[Value], set: &[Value]) -> Result<(), ClientError> {
    for item in set {
        let Some(principal) = PRINCIPALS.iter().find_map(|k| item.get(*k)).and_then(Value::as_str) else { continue };
        let had = before.iter().find(|b| b.get("principal").and_then(Value::as_str) == Some(principal));
        match had.and_then(|b| b.get("permission")) {
            Some(permission) => {
                let body = json!({"scope": scope, "principal": principal, "permission": permission});
                client.post("/api/2.0/secrets/acls/put", &body).await?;
            }
            None => {
                client.post("/api/2.0/secrets/acls/delete", &json!({"scope": scope, "principal": principal})).await?;
            }
        }
    }
    Ok(())
}

/// The id the Permissions API knows the object by: a workspace model's
/// internal id rather than its name.
async fn permission_id(client: &Client, kind: &str, id: &str) -> Result<String, ClientError> {
    if kind != "models" {
        return Ok(id.to_string());
    }
    let found = client.get("/api/2.0/mlflow/databricks/registered-models/get", &[("name", id)]).await?;
    Ok(found.pointer("/registered_model_databricks/id").and_then(Value::as_str).unwrap_or(id).to_string())
}

async fn scope_acls(client: &Client, scope: &str, acl: &[Value]) -> Result<(), ClientError> {
    for item in acl {
        let principal = PRINCIPALS.iter().find_map(|k| item.get(*k)).cloned().unwrap_or(Value::Null);
        let body = json!({"scope": scope, "principal": principal, "permission": item.get("permission_level")});
        client.post("/api/2.0/secrets/acls/put", &body).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_grants_the_principal_lacked_are_taken_back() {
        let before = json!({"privilege_assignments": [{"principal": "bob", "privileges": ["USE_SCHEMA"]}]});
        let desired = [json!({"principal": "bob", "privileges": ["USE_SCHEMA", "CREATE_TABLE"]})];
        assert_eq!(added_grants(&before, &desired), vec![json!({"principal": "bob", "remove": ["CREATE_TABLE"]})]);
        assert!(added_grants(&before, &[json!({"principal": "bob", "privileges": ["USE_SCHEMA"]})]).is_empty());
    }

    #[test]
    fn inherited_levels_are_not_put_back() {
        let read = json!({"access_control_list": [
            {"user_name": "a@x", "all_permissions": [{"permission_level": "IS_OWNER", "inherited": false}]},
            {"group_name": "admins", "all_permissions": [{"permission_level": "CAN_MANAGE", "inherited": true}]}
        ]});
        assert_eq!(direct_entries(&read), vec![json!({"user_name": "a@x", "permission_level": "IS_OWNER"})]);
    }

    #[test]
    fn bundle_levels_become_acl_items() {
        let value = json!({"permissions": [{"level": "CAN_MANAGE", "user_name": "a@x"}, {"permission_level": "CAN_READ", "group_name": "users"}]});
        assert_eq!(
            desired_acl(&value),
            vec![
                json!({"user_name": "a@x", "permission_level": "CAN_MANAGE"}),
                json!({"group_name": "users", "permission_level": "CAN_READ"})
            ]
        );
    }
}
