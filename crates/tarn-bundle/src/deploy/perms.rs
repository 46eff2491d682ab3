//! A resource's `permissions` (the Permissions API, or a secret scope's
//! ACLs) and `grants` (Unity Catalog privileges).

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
    let grants = value.get("grants").and_then(Value::as_array).filter(|g| !g.is_empty());
    if let Some(grants) = grants {
        let securable = match kind {
            "schemas" => "schema",
            "volumes" => "volume",
            "registered_models" => "function",
            other => return Err(ClientError::Invalid(format!("`{other}` resources take no grants"))),
        };
        let changes: Vec<Value> = grants
            .iter()
            .map(|g| json!({"principal": g.get("principal"), "add": g.get("privileges").cloned().unwrap_or(json!([]))}))
            .collect();
        let path = format!("/api/2.1/unity-catalog/permissions/{securable}/{id}");
        client.patch(&path, &json!({"changes": changes})).await?;
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
