//! Finding the workspace and calling its REST API.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The workspace answered with its error JSON (or a bare HTTP status).
    #[error("{code}: {message}")]
    Api { status: u16, code: String, message: String },
    #[error("{0}")]
    Transport(String),
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Invalid(String),
}

/// Where the workspace is and how to authenticate. The token is never
/// printed: `Debug` leaves it out.
#[derive(Clone)]
pub struct Workspace {
    pub host: String,
    token: String,
}

impl std::fmt::Debug for Workspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workspace").field("host", &self.host).finish_non_exhaustive()
    }
}

impl Workspace {
    pub fn new(host: &str, token: &str) -> Self {
        Self { host: host.trim_end_matches('/').to_string(), token: token.to_string() }
    }

    /// `DATABRICKS_HOST` and `DATABRICKS_TOKEN` when both are set, else the
    /// tarn serving from `home`.
    pub fn discover(home: &Path) -> Result<Self, ClientError> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        if let (Some(host), Some(token)) = (var("DATABRICKS_HOST"), var("DATABRICKS_TOKEN")) {
            let host = if host.starts_with("http") { host } else { format!("https://{host}") };
            return Ok(Self::new(&host, &token));
        }
        let server = home.join("server.json");
        let text = std::fs::read_to_string(&server).map_err(|_| {
            ClientError::Config(format!(
                "no workspace: set DATABRICKS_HOST and DATABRICKS_TOKEN, or start `tarn serve` (no {} found)",
                server.display()
            ))
        })?;
        let info: Value = serde_json::from_str(&text)
            .map_err(|e| ClientError::Config(format!("reading {}: {e}", server.display())))?;
        let host = info
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| ClientError::Config(format!("{} names no url", server.display())))?;
        let token_file = home.join("token");
        let token = std::fs::read_to_string(&token_file)
            .map_err(|e| ClientError::Config(format!("reading the admin token {}: {e}", token_file.display())))?;
        Ok(Self::new(host, token.trim()))
    }
}

/// A REST client of one workspace.
#[derive(Clone, Debug)]
pub struct Client {
    workspace: Workspace,
    http: reqwest::Client,
}

impl Client {
    pub fn new(workspace: Workspace) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(300))
            .build()
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        Ok(Self { workspace, http })
    }

    pub fn workspace(&self) -> &Workspace {
        &self.workspace
    }

    pub fn host(&self) -> &str {
        &self.workspace.host
    }

    pub async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, ClientError> {
        let request = self.http.get(format!("{}{path}", self.workspace.host)).query(query);
        self.send(request).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        let request = self.http.post(format!("{}{path}", self.workspace.host)).json(body);
        self.send(request).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        let request = self.http.put(format!("{}{path}", self.workspace.host)).json(body);
        self.send(request).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        let request = self.http.patch(format!("{}{path}", self.workspace.host)).json(body);
        self.send(request).await
    }

    pub async fn delete(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, ClientError> {
        let request = self.http.delete(format!("{}{path}", self.workspace.host)).query(query);
        self.send(request).await
    }

    /// POSTs `bytes` as the raw body (the Workspace Files API's `import-file`).
    pub async fn upload(&self, path: &str, query: &[(&str, &str)], bytes: Vec<u8>) -> Result<Value, ClientError> {
        let request = self
            .http
            .post(format!("{}{path}", self.workspace.host))
            .query(query)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(bytes);
        self.send(request).await
    }

    /// GETs a raw body (`workspace/export?direct_download=true`).
    pub async fn download(&self, path: &str, query: &[(&str, &str)]) -> Result<Vec<u8>, ClientError> {
        let request = self.http.get(format!("{}{path}", self.workspace.host)).query(query);
        let response = self.call(request).await?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| ClientError::Transport(e.to_string()))?;
        if status.is_success() {
            return Ok(bytes.to_vec());
        }
        Err(api_error(status, &serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
    }

    async fn call(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, ClientError> {
        request
            .bearer_auth(&self.workspace.token)
            .send()
            .await
            .map_err(|e| ClientError::Transport(format!("calling {}: {e}", self.workspace.host)))
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Value, ClientError> {
        let response = self.call(request).await?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        Err(api_error(status, &body))
    }
}

fn api_error(status: reqwest::StatusCode, body: &Value) -> ClientError {
    let field = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
    ClientError::Api {
        status: status.as_u16(),
        code: field("error_code").unwrap_or_else(|| status.as_u16().to_string()),
        message: field("message").unwrap_or_else(|| status.to_string()),
    }
}

impl ClientError {
    /// The HTTP status of an API error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The object asked for is not there (404, or Databricks' codes for it).
    pub fn is_not_found(&self) -> bool {
        match self {
            Self::Api { status, code, .. } => {
                *status == 404 || matches!(code.as_str(), "RESOURCE_DOES_NOT_EXIST" | "NOT_FOUND")
            }
            _ => false,
        }
    }
}
