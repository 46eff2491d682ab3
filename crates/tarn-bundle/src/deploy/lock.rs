//! The deploy lock: `<state_path>/deploy.lock`, created only when absent
//! (`import-file?overwrite=false`) and read back to check it is ours, so
//! two deploys of one target never interleave.

use serde_json::{Value, json};
use tarn_assist::Client;

use super::DeployError;
use super::state::{delete_path, read_json, write_file};

pub struct Lock {
    path: String,
}

fn held_by(found: &Value) -> (String, String) {
    let text = |k: &str| found.get(k).and_then(Value::as_str).unwrap_or("?").to_string();
    (text("User"), text("AcquisitionTime"))
}

impl Lock {
    /// Takes the lock for `user`, or names who holds it; `force` takes it
    /// over.
    pub async fn acquire(client: &Client, state_path: &str, user: &str, force: bool) -> Result<Self, DeployError> {
        let path = format!("{state_path}/deploy.lock");
        let id = uuid::Uuid::new_v4().to_string();
        let body = json!({
            "ID": id,
            "AcquisitionTime": chrono::Utc::now().to_rfc3339(),
            "IsForced": force,
            "User": user,
        });
        let bytes = serde_json::to_vec(&body).map_err(|e| DeployError::Local(e.to_string()))?;
        match write_file(client, &path, bytes.clone(), false).await {
            Ok(()) => {}
            Err(e) if e.status() == Some(409) || e.to_string().contains("ALREADY_EXISTS") => {
                let found = read_json(client, &path).await.map_err(DeployError::api("reading the deploy lock"))?;
                let (holder, since) = found.as_ref().map(held_by).unwrap_or_default();
                if !force {
                    return Err(DeployError::Locked { user: holder, since });
                }
                write_file(client, &path, bytes, true).await.map_err(DeployError::api("forcing the deploy lock"))?;
            }
            Err(e) => return Err(DeployError::api("taking the deploy lock")(e)),
        }
        let back = read_json(client, &path).await.map_err(DeployError::api("reading the deploy lock"))?;
        if back.as_ref().and_then(|v| v.get("ID")).and_then(Value::as_str) != Some(id.as_str()) {
            let (holder, since) = back.as_ref().map(held_by).unwrap_or_default();
            return Err(DeployError::Locked { user: holder, since });
        }
        Ok(Self { path })
    }

    pub async fn release(self, client: &Client) -> Result<(), DeployError> {
        delete_path(client, &self.path, false).await.map_err(DeployError::api("releasing the deploy lock"))
    }
}
