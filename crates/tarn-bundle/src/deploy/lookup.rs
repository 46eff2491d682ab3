//! Variables' `lookup:` answered from the workspace: an object's id by its
//! name. The loader asks synchronously, so each question runs on a thread
//! of its own with its own runtime (the caller may be inside one).

use serde_json::Value;
use tarn_assist::{Client, ClientError, Workspace};

use crate::config::Lookup;

pub struct ApiLookup {
    workspace: Workspace,
}

impl ApiLookup {
    pub fn new(workspace: Workspace) -> Self {
        Self { workspace }
    }
}

impl Lookup for ApiLookup {
    fn resolve(&self, kind: &str, name: &str) -> Result<String, String> {
        let workspace = self.workspace.clone();
        std::thread::scope(|scope| {
            let asked = scope.spawn(|| {
                let runtime =
                    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
                runtime.block_on(async {
                    let client = Client::new(workspace).map_err(|e| e.to_string())?;
                    find(&client, kind, name).await.map_err(|e| e.to_string())
                })
            });
            asked.join().unwrap_or_else(|_| Err("the lookup failed".to_string()))
        })?
        .ok_or_else(|| format!("no {} named '{name}'", kind.replace('_', " ")))
    }
}

/// `(list call, list field, name field, id field)` of each kind.
fn listing(kind: &str) -> Option<(&'static str, &'static str, &'static str, &'static str)> {
    Some(match kind {
        "cluster" => ("/api/2.1/clusters/list", "clusters", "cluster_name", "cluster_id"),
        "warehouse" => ("/api/2.0/sql/warehouses", "warehouses", "name", "id"),
        "cluster_policy" => ("/api/2.0/policies/clusters/list", "policies", "name", "policy_id"),
        "instance_pool" => ("/api/2.0/instance-pools/list", "instance_pools", "instance_pool_name", "instance_pool_id"),
        _ => return None,
    })
}

fn id_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

async fn find(client: &Client, kind: &str, name: &str) -> Result<Option<String>, ClientError> {
    let first = |list: Value, field: &str, name_key: &str, id_key: &str| {
        let items = list.get(field).and_then(Value::as_array).cloned().unwrap_or_default();
        items
            .iter()
            .find(|i| i.get(name_key).and_then(Value::as_str) == Some(name))
            .and_then(|i| id_text(i.get(id_key)))
    };
    if let Some((path, field, name_key, id_key)) = listing(kind) {
        return Ok(first(client.get(path, &[]).await?, field, name_key, id_key));
    }
    match kind {
        "job" => {
            let list = client.get("/api/2.2/jobs/list", &[("name", name)]).await?;
            let jobs = list.get("jobs").and_then(Value::as_array).cloned().unwrap_or_default();
            Ok(jobs
                .iter()
                .find(|j| j.pointer("/settings/name").and_then(Value::as_str) == Some(name))
                .and_then(|j| id_text(j.get("job_id"))))
        }
        "pipeline" => {
            let filter = format!("name LIKE '{}'", name.replace('\'', "''"));
            let list = client.get("/api/2.0/pipelines", &[("filter", &filter)]).await?;
            Ok(first(list, "statuses", "name", "pipeline_id"))
        }
        "service_principal" => {
            let filter = format!("displayName eq \"{name}\"");
            let list = client.get("/api/2.0/preview/scim/v2/ServicePrincipals", &[("filter", &filter)]).await?;
            Ok(first(list, "Resources", "displayName", "applicationId"))
        }
        other => Err(ClientError::Invalid(format!("tarn cannot look up a `{other}` by name yet"))),
    }
}
