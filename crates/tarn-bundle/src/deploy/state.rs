//! The deployment's state under `<state_path>`, in the databricks CLI's
//! shapes so either tool can pick up the other's deployment:
//! `resources.json` (each resource's id and the settings last deployed),
//! `deployment.json` (the files synced) and `metadata.json` (what jobs and
//! pipelines point back to). Also the workspace file calls they need.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use tarn_assist::{Client, ClientError};

use crate::Bundle;

/// Written into the state files where the CLI writes its own version.
pub const TOOL_VERSION: &str = concat!("tarn-", env!("CARGO_PKG_VERSION"));

/// One deployed resource: its id and the settings last sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub id: String,
    pub settings: Value,
}

/// `state/resources.json`, keyed by `(type, key)`.
#[derive(Debug, Clone, Default)]
pub struct Resources {
    pub lineage: Option<String>,
    pub serial: u64,
    pub entries: BTreeMap<(String, String), Entry>,
}

impl Resources {
    pub fn parse(value: &Value) -> Self {
        let mut entries = BTreeMap::new();
        for (name, item) in value.get("state").and_then(Value::as_object).into_iter().flatten() {
            let mut parts = name.splitn(3, '.');
            let (Some("resources"), Some(kind), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            let Some(id) = item.get("__id__").and_then(Value::as_str) else { continue };
            let settings = item.get("state").cloned().unwrap_or(Value::Null);
            entries.insert((kind.to_string(), key.to_string()), Entry { id: id.to_string(), settings });
        }
        Self {
            lineage: value.get("lineage").and_then(Value::as_str).map(str::to_string),
            serial: value.get("serial").and_then(Value::as_u64).unwrap_or(0),
            entries,
        }
    }

    pub fn to_json(&self) -> Value {
        let state: serde_json::Map<String, Value> = self
            .entries
            .iter()
            .map(|((kind, key), e)| (format!("resources.{kind}.{key}"), json!({"__id__": e.id, "state": e.settings})))
            .collect();
        json!({
            "state_version": 2,
            "cli_version": TOOL_VERSION,
            "lineage": self.lineage,
            "serial": self.serial,
            "state": state,
        })
    }
}

/// A file the last deployment synced (`deployment.json`'s `files`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncedFile {
    pub local_path: String,
    pub is_notebook: bool,
}

pub fn parse_files(deployment: &Value) -> Vec<SyncedFile> {
    let files = deployment.get("files").and_then(Value::as_array).into_iter().flatten();
    files
        .filter_map(|f| {
            Some(SyncedFile {
                local_path: f.get("local_path")?.as_str()?.to_string(),
                is_notebook: f.get("is_notebook").and_then(Value::as_bool).unwrap_or(false),
            })
        })
        .collect()
}

pub fn deployment_json(seq: u64, id: &str, files: &[SyncedFile]) -> Value {
    let files: Vec<Value> =
        files.iter().map(|f| json!({"local_path": f.local_path, "is_notebook": f.is_notebook})).collect();
    json!({
        "version": 1,
        "seq": seq,
        "cli_version": TOOL_VERSION,
        "timestamp": chrono::Utc::now().to_rfc3339(),
        "files": files,
        "id": id,
    })
}

/// `metadata.json`: the bundle's name, target and file path, and each
/// job's and pipeline's id with the file that declares it.
pub fn metadata_json(bundle: &Bundle, state: &Resources) -> Value {
    let mut resources = serde_json::Map::new();
    for ((kind, key), entry) in &state.entries {
        let declared = bundle.resources.get(kind).and_then(|g| g.get(key));
        let mut item = json!({"id": entry.id});
        if let Some(resource) = declared {
            item["relative_path"] = json!(resource.location.file.display().to_string());
        }
        let group = resources.entry(kind.clone()).or_insert_with(|| json!({}));
        group[key] = item;
    }
    json!({
        "version": 1,
        "config": {
            "bundle": {"name": bundle.name, "target": bundle.target, "git": bundle.config.pointer("/bundle/git").cloned().unwrap_or(json!({}))},
            "workspace": {"file_path": bundle.file_path},
            "resources": resources,
            "presets": bundle.config.get("presets").cloned().unwrap_or(json!({})),
        },
        "extra": {},
    })
}

/// The workspace file's bytes, or `None` when there is none.
pub async fn read_file(client: &Client, path: &str) -> Result<Option<Vec<u8>>, ClientError> {
    export(client, &[("path", path), ("direct_download", "true")]).await
}

/// [`read_file`] of a notebook in an export `format` (`JUPYTER`, ...).
pub async fn read_file_as(client: &Client, path: &str, format: &str) -> Result<Option<Vec<u8>>, ClientError> {
    export(client, &[("path", path), ("format", format), ("direct_download", "true")]).await
}

async fn export(client: &Client, query: &[(&str, &str)]) -> Result<Option<Vec<u8>>, ClientError> {
    match client.download("/api/2.0/workspace/export", query).await {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

pub async fn read_json(client: &Client, path: &str) -> Result<Option<Value>, ClientError> {
    let Some(bytes) = read_file(client, path).await? else { return Ok(None) };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| ClientError::Invalid(format!("{path} is not the JSON a deployment writes: {e}")))
}

/// Writes a workspace file through `import-file`, making its directory
/// when the workspace says it is missing.
pub async fn write_file(client: &Client, path: &str, bytes: Vec<u8>, overwrite: bool) -> Result<(), ClientError> {
    let endpoint = format!("/api/2.0/workspace-files/import-file{path}");
    let flag = if overwrite { "true" } else { "false" };
    match client.upload(&endpoint, &[("overwrite", flag)], bytes.clone()).await {
        Err(e) if e.status() == Some(404) => {
            let parent = path.rsplit_once('/').map(|(dir, _)| dir).unwrap_or("/");
            client.post("/api/2.0/workspace/mkdirs", &json!({"path": parent})).await?;
            client.upload(&endpoint, &[("overwrite", flag)], bytes).await.map(|_| ())
        }
        other => other.map(|_| ()),
    }
}

pub async fn write_json(client: &Client, path: &str, value: &Value) -> Result<(), ClientError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| ClientError::Invalid(e.to_string()))?;
    write_file(client, path, bytes, true).await
}

/// Deletes a workspace object; one already gone is no error.
pub async fn delete_path(client: &Client, path: &str, recursive: bool) -> Result<(), ClientError> {
    match client.post("/api/2.0/workspace/delete", &json!({"path": path, "recursive": recursive})).await {
        Err(e) if !e.is_not_found() => Err(e),
        _ => Ok(()),
    }
}

/// The previous deployment's resources (empty when there was none).
pub async fn load_resources(client: &Client, state_path: &str) -> Result<Resources, ClientError> {
    let found = read_json(client, &format!("{state_path}/resources.json")).await?;
    Ok(found.map(|v| Resources::parse(&v)).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_json_round_trips_in_the_clis_shape() {
        let mut state = Resources { lineage: Some("l-1".into()), serial: 3, entries: BTreeMap::new() };
        let entry = Entry { id: "main.shop".into(), settings: json!({"name": "shop", "catalog_name": "main"}) };
        state.entries.insert(("schemas".into(), "shop".into()), entry.clone());
        let written = state.to_json();
        assert_eq!(written["state"]["resources.schemas.shop"]["__id__"], "main.shop");
        assert_eq!(written["state_version"], 2);
        let read = Resources::parse(&written);
        assert_eq!((read.lineage.as_deref(), read.serial), (Some("l-1"), 3));
        assert_eq!(read.entries.get(&("schemas".to_string(), "shop".to_string())), Some(&entry));
    }
}
