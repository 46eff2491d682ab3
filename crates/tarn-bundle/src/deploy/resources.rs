//! Each resource type's REST calls: create, read, update in place, delete.
//! Ids are what the type's API keys objects by (a job's number, a
//! pipeline's uuid, a schema's full name, an endpoint's name), as strings.

use serde_json::{Map, Value, json};
use tarn_assist::{Client, ClientError};

/// The resource types tarn deploys, in the order they are created (what
/// others refer to first) and destroyed (reversed).
pub const ORDER: [&str; 11] = [
    "secret_scopes",
    "schemas",
    "volumes",
    "experiments",
    "models",
    "registered_models",
    "clusters",
    "pipelines",
    "jobs",
    "model_serving_endpoints",
    "quality_monitors",
];

/// Keys of a resource's value that are the bundle's, not the API's.
const BUNDLE_KEYS: [&str; 3] = ["permissions", "grants", "lifecycle"];

/// What a job or pipeline carries to say a bundle owns it.
pub struct Deployment<'a> {
    pub metadata_file_path: &'a str,
}

impl Deployment<'_> {
    fn value(&self) -> Value {
        json!({"kind": "BUNDLE", "metadata_file_path": self.metadata_file_path})
    }
}

/// The API's part of a resource's value.
pub fn api_settings(value: &Value) -> Map<String, Value> {
    let mut settings = value.as_object().cloned().unwrap_or_default();
    for key in BUNDLE_KEYS {
        settings.remove(key);
    }
    settings
}

fn text<'a>(settings: &'a Map<String, Value>, key: &str) -> Result<&'a str, ClientError> {
    settings
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| ClientError::Invalid(format!("the resource has no `{key}`")))
}

fn id_of(answer: &Value, key: &str) -> Result<String, ClientError> {
    match answer.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        _ => Err(ClientError::Invalid(format!("the API answered no `{key}`"))),
    }
}

/// A UC object's full name: `catalog.schema[.name]`.
fn full_name(settings: &Map<String, Value>, parent: &[&str]) -> Result<String, ClientError> {
    let mut parts: Vec<&str> = Vec::new();
    for key in parent {
        parts.push(text(settings, key)?);
    }
    parts.push(text(settings, "name")?);
    Ok(parts.join("."))
}

/// Creates the resource; its id.
pub async fn create(
    client: &Client,
    kind: &str,
    value: &Value,
    deployment: &Deployment<'_>,
) -> Result<String, ClientError> {
    let s = bundle_settings(kind, value, deployment);
    match kind {
        "jobs" => id_of(&client.post("/api/2.2/jobs/create", &Value::Object(s)).await?, "job_id"),
        "pipelines" => id_of(&client.post("/api/2.0/pipelines", &Value::Object(s)).await?, "pipeline_id"),
        "experiments" => create_experiment(client, s).await,
        "models" => {
            client.post("/api/2.0/mlflow/registered-models/create", &Value::Object(s.clone())).await?;
            Ok(text(&s, "name")?.to_string())
        }
        "registered_models" => create_uc(client, "models", s, &["catalog_name", "schema_name"]).await,
        "schemas" => create_uc(client, "schemas", s, &["catalog_name"]).await,
        "volumes" => create_uc(client, "volumes", s, &["catalog_name", "schema_name"]).await,
        "model_serving_endpoints" => {
            let name = text(&s, "name")?.to_string();
            client.post("/api/2.0/serving-endpoints", &Value::Object(s)).await?;
            Ok(name)
        }
        "quality_monitors" => {
            let table = text(&s, "table_name")?.to_string();
            client.post(&format!("/api/2.1/unity-catalog/tables/{table}/monitor"), &Value::Object(s)).await?;
            Ok(table)
        }
        "secret_scopes" => {
            let name = text(&s, "name")?.to_string();
            let mut body = s.clone();
            body.remove("name");
            body.insert("scope".into(), json!(name));
            client.post("/api/2.0/secrets/scopes/create", &Value::Object(body)).await?;
            Ok(name)
        }
        "clusters" => id_of(&client.post("/api/2.1/clusters/create", &Value::Object(s)).await?, "cluster_id"),
        other => Err(unsupported(other)),
    }
}

/// Creates an experiment, or brings back a deleted one of the same name:
/// a deleted experiment keeps its name, so the experiment of a destroyed
/// or rolled back deployment would otherwise block the next deploy.
async fn create_experiment(client: &Client, s: Map<String, Value>) -> Result<String, ClientError> {
    let name = text(&s, "name")?.to_string();
    let refused = match client.post("/api/2.0/mlflow/experiments/create", &Value::Object(s)).await {
        Ok(answer) => return id_of(&answer, "experiment_id"),
        Err(e) if matches!(&e, ClientError::Api { code, .. } if code == "RESOURCE_ALREADY_EXISTS") => e,
        Err(e) => return Err(e),
    };
    let found = client.get("/api/2.0/mlflow/experiments/get-by-name", &[("experiment_name", &name)]).await?;
    let experiment = found.get("experiment").cloned().unwrap_or_default();
    if experiment.get("lifecycle_stage").and_then(Value::as_str) != Some("deleted") {
        return Err(refused);
    }
    let id = id_of(&experiment, "experiment_id")?;
    client.post("/api/2.0/mlflow/experiments/restore", &json!({"experiment_id": id})).await?;
    Ok(id)
}

/// Creates a UC object; its full name.
async fn create_uc(client: &Client, api: &str, s: Map<String, Value>, parent: &[&str]) -> Result<String, ClientError> {
    let full = full_name(&s, parent)?;
    client.post(&format!("/api/2.1/unity-catalog/{api}"), &Value::Object(s)).await?;
    Ok(full)
}

fn unsupported(kind: &str) -> ClientError {
    ClientError::Invalid(format!("tarn does not deploy `{kind}` resources yet"))
}

/// The object's settings as its API reads them back, or `None` when it is
/// gone; what an update that fails later is rolled back to.
pub async fn read(client: &Client, kind: &str, id: &str) -> Result<Option<Value>, ClientError> {
    let answer = match kind {
        "jobs" => client.get("/api/2.2/jobs/get", &[("job_id", id)]).await.map(|v| v.get("settings").cloned()),
        "pipelines" => client.get(&format!("/api/2.0/pipelines/{id}"), &[]).await.map(|v| v.get("spec").cloned()),
        "experiments" => client.get("/api/2.0/mlflow/experiments/get", &[("experiment_id", id)]).await.map(|v| {
            v.get("experiment").filter(|e| e.get("lifecycle_stage").and_then(Value::as_str) != Some("deleted")).cloned()
        }),
        "models" => client
            .get("/api/2.0/mlflow/registered-models/get", &[("name", id)])
            .await
            .map(|v| v.get("registered_model").cloned()),
        "registered_models" => client.get(&format!("/api/2.1/unity-catalog/models/{id}"), &[]).await.map(Some),
        "schemas" => client.get(&format!("/api/2.1/unity-catalog/schemas/{id}"), &[]).await.map(Some),
        "volumes" => client.get(&format!("/api/2.1/unity-catalog/volumes/{id}"), &[]).await.map(Some),
        "model_serving_endpoints" => client.get(&format!("/api/2.0/serving-endpoints/{id}"), &[]).await.map(Some),
        "quality_monitors" => client.get(&format!("/api/2.1/unity-catalog/tables/{id}/monitor"), &[]).await.map(Some),
        "secret_scopes" => {
            let scopes = client.get("/api/2.0/secrets/scopes/list", &[]).await?;
            let mut all = scopes.get("scopes").and_then(Value::as_array).into_iter().flatten();
            return Ok(all.find(|s| s.get("name").and_then(Value::as_str) == Some(id)).cloned());
        }
        "clusters" => client.get("/api/2.1/clusters/get", &[("cluster_id", id)]).await.map(|v| {
            // A permanently deleted cluster is gone even where the API still answers.
            Some(v).filter(|c| c.get("state").and_then(Value::as_str) != Some("DELETED"))
        }),
        other => return Err(unsupported(other)),
    };
    match answer {
        Ok(v) => Ok(v),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Updates the object in place to `value`; its id afterwards (a UC
/// object's full name changes with its name).
pub async fn update(
    client: &Client,
    kind: &str,
    id: &str,
    value: &Value,
    deployment: &Deployment<'_>,
) -> Result<String, ClientError> {
    send_update(client, kind, id, bundle_settings(kind, value, deployment)).await
}

/// The settings a deploy sends: jobs and pipelines marked as the bundle's
/// (`deployment`), jobs locked in the UI as the databricks CLI locks them.
fn bundle_settings(kind: &str, value: &Value, deployment: &Deployment<'_>) -> Map<String, Value> {
    let mut s = api_settings(value);
    if matches!(kind, "jobs" | "pipelines") {
        s.insert("deployment".into(), deployment.value());
    }
    if kind == "jobs" {
        s.insert("edit_mode".into(), json!("UI_LOCKED"));
        s.insert("format".into(), json!("MULTI_TASK"));
    }
    s
}

/// The type's update call with settings ready to send: a deploy's, or
/// those read back before it (a rollback).
async fn send_update(client: &Client, kind: &str, id: &str, mut s: Map<String, Value>) -> Result<String, ClientError> {
    match kind {
        "jobs" => {
            let job_id: i64 = id.parse().map_err(|_| ClientError::Invalid(format!("job id `{id}` is not a number")))?;
            client.post("/api/2.2/jobs/reset", &json!({"job_id": job_id, "new_settings": s})).await?;
            Ok(id.to_string())
        }
        "pipelines" => {
            s.insert("id".into(), json!(id));
            client.put(&format!("/api/2.0/pipelines/{id}"), &Value::Object(s)).await?;
            Ok(id.to_string())
        }
        "experiments" => {
            let body = json!({"experiment_id": id, "new_name": text(&s, "name")?});
            client.post("/api/2.0/mlflow/experiments/update", &body).await?;
            Ok(id.to_string())
        }
        "models" => update_workspace_model(client, id, &s).await,
        "registered_models" => update_uc(client, "models", id, &s, &["catalog_name", "schema_name"]).await,
        "schemas" => update_uc(client, "schemas", id, &s, &["catalog_name"]).await,
        "volumes" => update_uc(client, "volumes", id, &s, &["catalog_name", "schema_name"]).await,
        "model_serving_endpoints" => {
            if let Some(config) = s.get("config") {
                client.put(&format!("/api/2.0/serving-endpoints/{id}/config"), config).await?;
            }
            Ok(id.to_string())
        }
        "quality_monitors" => {
            client.put(&format!("/api/2.1/unity-catalog/tables/{id}/monitor"), &Value::Object(s)).await?;
            Ok(id.to_string())
        }
        // A scope has nothing to update but its ACLs, which permissions set.
        "secret_scopes" => Ok(id.to_string()),
        "clusters" => {
            settle_cluster(client, id).await?;
            s.insert("cluster_id".into(), json!(id));
            client.post("/api/2.1/clusters/edit", &Value::Object(s)).await?;
            Ok(id.to_string())
        }
        other => Err(unsupported(other)),
    }
}

/// States a cluster passes through on its own; `clusters/edit` refuses
/// them (INVALID_STATE), as Databricks does.
const CLUSTER_TRANSIENT: [&str; 4] = ["PENDING", "RESTARTING", "RESIZING", "TERMINATING"];

/// How long an update waits for a cluster the last deploy created (still
/// starting) to settle: a cold start pulls its runtime.
const CLUSTER_SETTLE: std::time::Duration = std::time::Duration::from_secs(20 * 60);

/// Waits until the cluster is in a state `clusters/edit` takes (running,
/// terminated), so that a redeploy right after a deploy edits it rather
/// than failing.
async fn settle_cluster(client: &Client, id: &str) -> Result<(), ClientError> {
    let deadline = tokio::time::Instant::now() + CLUSTER_SETTLE;
    loop {
        let cluster = client.get("/api/2.1/clusters/get", &[("cluster_id", id)]).await?;
        let state = cluster.get("state").and_then(Value::as_str).unwrap_or_default();
        if !CLUSTER_TRANSIENT.contains(&state) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ClientError::Invalid(format!(
                "cluster {id} stayed {state} for {} minutes; it cannot be edited until it settles",
                CLUSTER_SETTLE.as_secs() / 60
            )));
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

async fn update_workspace_model(client: &Client, id: &str, s: &Map<String, Value>) -> Result<String, ClientError> {
    let name = text(s, "name")?;
    if name != id {
        client.post("/api/2.0/mlflow/registered-models/rename", &json!({"name": id, "new_name": name})).await?;
    }
    let description = s.get("description").cloned().unwrap_or(json!(""));
    client
        .patch("/api/2.0/mlflow/registered-models/update", &json!({"name": name, "description": description}))
        .await?;
    Ok(name.to_string())
}

/// PATCHes a UC object's mutable fields (comment, properties, owner; a new
/// name where it changed).
async fn update_uc(
    client: &Client,
    api: &str,
    id: &str,
    s: &Map<String, Value>,
    parent: &[&str],
) -> Result<String, ClientError> {
    let full = full_name(s, parent)?;
    let mut body = Map::new();
    for key in ["comment", "properties", "owner", "enable_predictive_optimization"] {
        if let Some(v) = s.get(key) {
            body.insert(key.into(), v.clone());
        }
    }
    if full != id {
        body.insert("new_name".into(), json!(text(s, "name")?));
    }
    if !body.is_empty() {
        client.patch(&format!("/api/2.1/unity-catalog/{api}/{id}"), &Value::Object(body)).await?;
    }
    Ok(full)
}

/// Deletes the object; one already gone is no error.
pub async fn delete(client: &Client, kind: &str, id: &str) -> Result<(), ClientError> {
    let done = match kind {
        "jobs" => match id.parse::<i64>() {
            Ok(job_id) => client.post("/api/2.2/jobs/delete", &json!({"job_id": job_id})).await,
            Err(_) => return Err(ClientError::Invalid(format!("job id `{id}` is not a number"))),
        },
        "pipelines" => client.delete(&format!("/api/2.0/pipelines/{id}"), &[]).await,
        "experiments" => client.post("/api/2.0/mlflow/experiments/delete", &json!({"experiment_id": id})).await,
        "models" => client.delete("/api/2.0/mlflow/registered-models/delete", &[("name", id)]).await,
        "registered_models" => client.delete(&format!("/api/2.1/unity-catalog/models/{id}"), &[]).await,
        "schemas" => client.delete(&format!("/api/2.1/unity-catalog/schemas/{id}"), &[("force", "true")]).await,
        "volumes" => client.delete(&format!("/api/2.1/unity-catalog/volumes/{id}"), &[]).await,
        "model_serving_endpoints" => client.delete(&format!("/api/2.0/serving-endpoints/{id}"), &[]).await,
        "quality_monitors" => client.delete(&format!("/api/2.1/unity-catalog/tables/{id}/monitor"), &[]).await,
        "secret_scopes" => client.post("/api/2.0/secrets/scopes/delete", &json!({"scope": id})).await,
        "clusters" => client.post("/api/2.1/clusters/permanent-delete", &json!({"cluster_id": id})).await,
        other => return Err(unsupported(other)),
    };
    match done {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e),
    }
}

/// What of a type's read-back its update call takes back on a rollback
/// (`None`: all of it), and the fields whose absence must be sent as
/// empty so that one the failed deploy set is cleared.
struct Restorable {
    kind: &'static str,
    fields: Option<&'static [&'static str]>,
    cleared: &'static [&'static str],
}

const UC_FIELDS: [&str; 6] = ["catalog_name", "schema_name", "name", "comment", "properties", "owner"];

const RESTORABLE: [Restorable; 11] = [
    Restorable { kind: "jobs", fields: None, cleared: &[] },
    Restorable { kind: "pipelines", fields: None, cleared: &[] },
    Restorable { kind: "experiments", fields: Some(&["name"]), cleared: &[] },
    Restorable { kind: "models", fields: Some(&["name", "description"]), cleared: &["description"] },
    Restorable { kind: "registered_models", fields: Some(&UC_FIELDS), cleared: &["comment"] },
    Restorable { kind: "schemas", fields: Some(&UC_FIELDS), cleared: &["comment", "properties"] },
    Restorable { kind: "volumes", fields: Some(&UC_FIELDS), cleared: &["comment"] },
    Restorable { kind: "model_serving_endpoints", fields: Some(&["config"]), cleared: &[] },
    Restorable { kind: "quality_monitors", fields: Some(&MONITOR_FIELDS), cleared: &[] },
    Restorable { kind: "clusters", fields: Some(&CLUSTER_FIELDS), cleared: &[] },
    // A scope's only settings are its ACLs, which permissions put back.
    Restorable { kind: "secret_scopes", fields: Some(&[]), cleared: &[] },
];

const MONITOR_FIELDS: [&str; 11] = [
    "output_schema_name",
    "baseline_table_name",
    "custom_metrics",
    "data_classification_config",
    "inference_log",
    "notifications",
    "schedule",
    "slicing_exprs",
    "snapshot",
    "time_series",
    "dashboard_id",
];

const CLUSTER_FIELDS: [&str; 24] = [
    "cluster_name",
    "spark_version",
    "node_type_id",
    "driver_node_type_id",
    "num_workers",
    "autoscale",
    "spark_conf",
    "spark_env_vars",
    "custom_tags",
    "autotermination_minutes",
    "data_security_mode",
    "single_user_name",
    "runtime_engine",
    "policy_id",
    "instance_pool_id",
    "driver_instance_pool_id",
    "enable_elastic_disk",
    "init_scripts",
    "cluster_log_conf",
    "ssh_public_keys",
    "kind",
    "is_single_node",
    "use_ml_runtime",
    "docker_image",
];

/// A serving endpoint's config as read back, less what the server adds
/// (versions, states) that `PUT config` does not take.
const SERVING_CONFIG_FIELDS: [&str; 4] = ["served_entities", "served_models", "traffic_config", "auto_capture_config"];

/// The settings to send back for `previous`, read before an update.
fn restorable_settings(kind: &str, previous: &Value) -> Result<Map<String, Value>, ClientError> {
    let spec = RESTORABLE.iter().find(|r| r.kind == kind).ok_or_else(|| unsupported(kind))?;
    let all = previous.as_object().cloned().unwrap_or_default();
    let Some(fields) = spec.fields else { return Ok(all) };
    let mut s: Map<String, Value> =
        fields.iter().filter_map(|f| all.get(*f).map(|v| (f.to_string(), v.clone()))).collect();
    for field in spec.cleared {
        let empty = if *field == "properties" { json!({}) } else { json!("") };
        s.entry(field.to_string()).or_insert(empty);
    }
    if let Some(Value::Object(config)) = s.get_mut("config") {
        config.retain(|k, _| SERVING_CONFIG_FIELDS.contains(&k.as_str()));
    }
    Ok(s)
}

/// Puts back settings read before an update (the rollback of a failed
/// deploy) through the type's update call, at the id the update left.
pub async fn restore(client: &Client, kind: &str, id: &str, previous: &Value) -> Result<(), ClientError> {
    let settings = restorable_settings(kind, previous)?;
    if kind == "secret_scopes" {
        return Ok(());
    }
    send_update(client, kind, id, settings).await.map(|_| ())
}

/// The page of the object in the workspace UI, relative to the host.
pub fn url(kind: &str, id: &str) -> Option<String> {
    let dotted = |id: &str| id.replace('.', "/");
    Some(match kind {
        "jobs" => format!("/jobs/{id}"),
        "pipelines" => format!("/pipelines/{id}"),
        "experiments" => format!("/ml/experiments/{id}"),
        "models" => format!("/ml/models/{id}"),
        "registered_models" => format!("/explore/data/models/{}", dotted(id)),
        "schemas" | "quality_monitors" => format!("/explore/data/{}", dotted(id)),
        "volumes" => format!("/explore/data/volumes/{}", dotted(id)),
        "model_serving_endpoints" => format!("/ml/endpoints/{id}"),
        "clusters" => format!("/compute/clusters/{id}"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_deployed_type_can_be_restored() {
        for kind in ORDER {
            assert!(RESTORABLE.iter().any(|r| r.kind == kind), "{kind} has no rollback");
        }
    }

    #[test]
    fn a_schema_is_restored_from_its_read_back() {
        let read =
            json!({"catalog_name": "main", "name": "shop", "full_name": "main.shop", "owner": "a@x", "created_at": 1});
        let s = restorable_settings("schemas", &read).unwrap_or_default();
        assert_eq!(
            Value::Object(s),
            json!({"catalog_name": "main", "name": "shop", "owner": "a@x", "comment": "", "properties": {}})
        );
    }

    #[test]
    fn a_serving_config_is_restored_without_what_the_server_adds() {
        let read = json!({"name": "e", "config": {"served_entities": [], "config_version": 3}, "state": {}});
        let s = restorable_settings("model_serving_endpoints", &read).unwrap_or_default();
        assert_eq!(Value::Object(s), json!({"config": {"served_entities": []}}));
    }
}
