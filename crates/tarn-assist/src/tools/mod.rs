//! The three tools: their arguments (the JSON schema an MCP client sees is
//! derived from these) and what each does through the REST API.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

mod run;

use crate::{Client, ClientError};
pub use run::{ExecuteCodeArgs, execute_code};

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ListComputeArgs {
    /// What to list; `clusters` is the one resource.
    #[serde(default)]
    pub resource: Option<String>,
    /// Also suggest which cluster to use: `suggestions` (running clusters,
    /// best first) and `startable_clusters` (terminated ones).
    #[serde(default)]
    pub auto_select: bool,
}

fn cluster_summary(c: &Value) -> Value {
    json!({
        "cluster_id": c.get("cluster_id"),
        "cluster_name": c.get("cluster_name"),
        "state": c.get("state"),
        "creator_user_name": c.get("creator_user_name"),
        "num_workers": c.get("num_workers"),
        "node_type_id": c.get("node_type_id"),
    })
}

fn state(c: &Value) -> &str {
    c.get("state").and_then(Value::as_str).unwrap_or("")
}

pub async fn list_compute(client: &Client, args: ListComputeArgs) -> Result<Value, ClientError> {
    let resource = args.resource.as_deref().unwrap_or("clusters");
    if resource != "clusters" {
        return Err(ClientError::Invalid(format!("Unknown resource {resource}; list_compute lists clusters")));
    }
    let listed = client.get("/api/2.1/clusters/list", &[]).await?;
    let clusters: Vec<Value> = listed.get("clusters").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut out = json!({"clusters": clusters.iter().map(cluster_summary).collect::<Vec<_>>()});
    if args.auto_select {
        let mut running: Vec<&Value> = clusters.iter().filter(|c| state(c) == "RUNNING").collect();
        // Most recently used first: it is warm and likely holds the user's work.
        running.sort_by_key(|c| std::cmp::Reverse(c.get("last_activity_time").and_then(Value::as_i64).unwrap_or(0)));
        let startable = clusters.iter().filter(|c| state(c) == "TERMINATED");
        out["suggestions"] = running.into_iter().map(cluster_summary).collect();
        out["startable_clusters"] = startable.map(cluster_summary).collect();
    }
    Ok(out)
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ManageClusterArgs {
    /// One of `create`, `start`, `stop` (terminate, keeping the cluster),
    /// `delete` (permanently) and `get`.
    pub action: String,
    /// The cluster, for every action but `create`.
    #[serde(default)]
    pub cluster_id: Option<String>,
    /// For `create`.
    #[serde(default)]
    pub cluster_name: Option<String>,
    /// For `create`: workers besides the driver (default 0, single node).
    #[serde(default)]
    pub num_workers: Option<i64>,
    /// For `create`: the workspace's default when left out.
    #[serde(default)]
    pub node_type_id: Option<String>,
    /// For `create`: the newest runtime when left out.
    #[serde(default)]
    pub spark_version: Option<String>,
    /// For `create` (default 60).
    #[serde(default)]
    pub autotermination_minutes: Option<i64>,
}

pub async fn manage_cluster(client: &Client, args: ManageClusterArgs) -> Result<Value, ClientError> {
    let id = || {
        args.cluster_id
            .clone()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| ClientError::Invalid(format!("manage_cluster {} needs a cluster_id", args.action)))
    };
    let body = |cluster_id: String| json!({"cluster_id": cluster_id});
    match args.action.as_str() {
        "create" => create_cluster(client, &args).await,
        "start" => client.post("/api/2.1/clusters/start", &body(id()?)).await.map(|_| json!({"cluster_id": id().ok()})),
        "stop" => client.post("/api/2.1/clusters/delete", &body(id()?)).await.map(|_| json!({"cluster_id": id().ok()})),
        "delete" => client
            .post("/api/2.1/clusters/permanent-delete", &body(id()?))
            .await
            .map(|_| json!({"cluster_id": id().ok(), "deleted": true})),
        "get" => client.get("/api/2.1/clusters/get", &[("cluster_id", &id()?)]).await.map(|c| {
            let mut summary = cluster_summary(&c);
            summary["state_message"] = c.get("state_message").cloned().unwrap_or(Value::Null);
            summary
        }),
        other => Err(ClientError::Invalid(format!(
            "Unknown action {other}; manage_cluster takes create, start, stop, delete or get"
        ))),
    }
}

async fn create_cluster(client: &Client, args: &ManageClusterArgs) -> Result<Value, ClientError> {
    let spark_version = match &args.spark_version {
        Some(v) => v.clone(),
        None => first_key(&client.get("/api/2.1/clusters/spark-versions", &[]).await?, "versions", "key")?,
    };
    let node_type_id = match &args.node_type_id {
        Some(n) => n.clone(),
        None => first_key(&client.get("/api/2.1/clusters/list-node-types", &[]).await?, "node_types", "node_type_id")?,
    };
    let spec = json!({
        "cluster_name": args.cluster_name.clone().unwrap_or_else(|| "assistant".to_string()),
        "spark_version": spark_version,
        "node_type_id": node_type_id,
        "num_workers": args.num_workers.unwrap_or(0),
        "autotermination_minutes": args.autotermination_minutes.unwrap_or(60),
    });
    let created = client.post("/api/2.1/clusters/create", &spec).await?;
    Ok(json!({"cluster_id": created.get("cluster_id"), "state": "PENDING"}))
}

fn first_key(listing: &Value, list: &str, key: &str) -> Result<String, ClientError> {
    listing
        .get(list)
        .and_then(Value::as_array)
        .and_then(|items| items.first())
        .and_then(|item| item.get(key))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| ClientError::Invalid(format!("the workspace lists no {list}")))
}
