//! Where a scope's values live: tarn's own sealed store (`DATABRICKS`, as
//! Databricks names its own), one HashiCorp Vault KV v2 secret (`VAULT`:
//! its keys are the scope's keys) or the server's environment variables
//! (`ENV`: `<prefix><KEY>`). Vault and environment scopes are read-only
//! here; their values are written where they live. The Vault token comes
//! from `TARN_VAULT_TOKEN` in tarn's environment and is never stored.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use tarn_store::SecretScopeRow;

use crate::error::{IdentityError, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Sealed,
    Vault { address: String, mount: String, path: String },
    Env { prefix: String },
}

fn invalid(message: impl Into<String>) -> IdentityError {
    IdentityError::InvalidParameter(message.into())
}

fn text<'a>(config: &'a Value, field: &str, what: &str) -> Result<&'a str> {
    config
        .get(field)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid(format!("{what}.{field} is required")))
}

impl Backend {
    /// The backend a create request names: its type and settings.
    pub fn from_request(backend_type: Option<&str>, body: &Value) -> Result<Self> {
        match backend_type.unwrap_or("DATABRICKS") {
            "DATABRICKS" => Ok(Self::Sealed),
            "VAULT" => {
                let config = body.get("backend_vault").unwrap_or(&Value::Null);
                let address = text(config, "address", "backend_vault")?.trim_end_matches('/').to_string();
                if !address.starts_with("http://") && !address.starts_with("https://") {
                    return Err(invalid("backend_vault.address must be an http:// or https:// URL"));
                }
                let mount = text(config, "mount", "backend_vault").unwrap_or("secret").trim_matches('/').to_string();
                let path = text(config, "path", "backend_vault")?.trim_matches('/').to_string();
                Ok(Self::Vault { address, mount, path })
            }
            "ENV" => {
                let config = body.get("backend_env").unwrap_or(&Value::Null);
                let prefix = text(config, "prefix", "backend_env")?.to_string();
                Ok(Self::Env { prefix })
            }
            other => Err(IdentityError::NotImplemented(format!(
                "Secret scopes backed by {other} are not supported: use DATABRICKS, VAULT or ENV"
            ))),
        }
    }

    pub fn of(scope: &SecretScopeRow) -> Result<Self> {
        let config: Value = serde_json::from_str(&scope.backend_config).unwrap_or(Value::Null);
        let body = match scope.backend_type.as_str() {
            "VAULT" => json!({"backend_vault": config}),
            "ENV" => json!({"backend_env": config}),
            _ => json!({}),
        };
        Self::from_request(Some(&scope.backend_type), &body)
            .map_err(|e| IdentityError::Internal(format!("scope {}: {e}", scope.name)))
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Sealed => "DATABRICKS",
            Self::Vault { .. } => "VAULT",
            Self::Env { .. } => "ENV",
        }
    }

    /// The settings kept with the scope.
    pub fn config(&self) -> String {
        match self {
            Self::Sealed => json!({}),
            Self::Vault { address, mount, path } => json!({"address": address, "mount": mount, "path": path}),
            Self::Env { prefix } => json!({"prefix": prefix}),
        }
        .to_string()
    }

    /// The scope's keys and values, read where they live (not `Sealed`).
    pub async fn read(&self, http: &reqwest::Client, scope: &str) -> Result<BTreeMap<String, String>> {
        match self {
            Self::Sealed => Ok(BTreeMap::new()),
            Self::Env { prefix } => Ok(std::env::vars()
                .filter_map(|(name, value)| name.strip_prefix(prefix.as_str()).map(|key| (key.to_string(), value)))
                .filter(|(key, _)| !key.is_empty())
                .collect()),
            Self::Vault { address, mount, path } => read_vault(http, scope, address, mount, path).await,
        }
    }
}

fn unavailable(scope: &str, address: &str, why: impl std::fmt::Display) -> IdentityError {
    IdentityError::BackendUnavailable(format!("Scope {scope}: the Vault server at {address} {why}"))
}

/// `GET /v1/<mount>/data/<path>`: a KV v2 secret's latest version.
async fn read_vault(
    http: &reqwest::Client,
    scope: &str,
    address: &str,
    mount: &str,
    path: &str,
) -> Result<BTreeMap<String, String>> {
    let token = std::env::var("TARN_VAULT_TOKEN")
        .map_err(|_| unavailable(scope, address, "cannot be read: TARN_VAULT_TOKEN is not set for tarn"))?;
    let response = http
        .get(format!("{address}/v1/{mount}/data/{path}"))
        .header("X-Vault-Token", token)
        .send()
        .await
        .map_err(|e| unavailable(scope, address, format_args!("did not answer ({})", e.without_url())))?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Ok(BTreeMap::new());
    }
    if !status.is_success() {
        return Err(unavailable(scope, address, format_args!("answered {status} for {mount}/{path}")));
    }
    let body: Value = response.json().await.map_err(|e| unavailable(scope, address, format_args!("answered {e}")))?;
    let data = body.pointer("/data/data").and_then(Value::as_object).ok_or_else(|| {
        unavailable(scope, address, format_args!("answered no data for {mount}/{path} (is it a KV v2 mount?)"))
    })?;
    Ok(data
        .iter()
        .map(|(key, value)| (key.clone(), value.as_str().map_or_else(|| value.to_string(), str::to_string)))
        .collect())
}
