//! Replicas: when several `tarn serve` share one workspace, the one holding
//! the schedulers lease runs compute (engines, contexts, run drivers,
//! statements); the others serve reads from the store themselves and hand
//! every other call, as it came, to the holder. A call is forwarded before
//! auth, so the holder checks and audits it once.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// Where the lease holder answers, as this replica knows it.
pub trait Replicas: Send + Sync + 'static {
    /// `None` when this replica holds the lease; else the holder's API URL
    /// (`http://host:port`), or why it is not known.
    fn holder_url(&self) -> Option<Result<String, String>>;
}

/// Marks a call one replica handed to another: it is never handed on.
const FORWARDED: &str = "x-tarn-forwarded";

/// Reads that need the holder's memory: contexts and commands, statements'
/// results and SQL sessions, serving endpoints (their workers' state); and
/// the workspace, whose Git folders are checked out on the holder's disk
/// (replicas on other machines do not share it even with an object-store
/// root).
const HOLDER_READS: &[&str] = &[
    "/api/1.2/",
    "/api/2.0/sql/statements",
    "/api/2.0/sql/sessions",
    "/api/2.0/serving-endpoints",
    "/api/2.0/workspace/",
];

/// Whether only the lease holder can answer the call.
pub fn needs_holder(method: &Method, path: &str) -> bool {
    let read = method == Method::GET || method == Method::HEAD;
    !read || HOLDER_READS.iter().any(|prefix| path.starts_with(prefix))
}

#[derive(Clone)]
struct Forwarding {
    replicas: Arc<dyn Replicas>,
    client: Client<HttpConnector, Body>,
}

/// `router` with calls the holder must answer forwarded to it.
pub fn layer(router: Router, replicas: Arc<dyn Replicas>) -> Router {
    let client = Client::builder(TokioExecutor::new()).build_http();
    router.layer(axum::middleware::from_fn_with_state(Forwarding { replicas, client }, forward))
}

async fn forward(State(forwarding): State<Forwarding>, request: Request, next: Next) -> Response {
    if !needs_holder(request.method(), request.uri().path()) {
        return next.run(request).await;
    }
    let base = match forwarding.replicas.holder_url() {
        None => return next.run(request).await,
        // Sent here by a replica that took this one for the holder: this
        // one is taking the lease over, or lost it.
        Some(_) if request.headers().contains_key(FORWARDED) => {
            return unavailable("this replica is taking over the schedulers lease; retry in a few seconds");
        }
        Some(Ok(base)) => base,
        Some(Err(why)) => return unavailable(&why),
    };
    let (mut parts, body) = request.into_parts();
    let target = format!("{base}{}", parts.uri.path_and_query().map_or("/", |p| p.as_str()));
    parts.uri = match target.parse::<Uri>() {
        Ok(uri) => uri,
        Err(e) => return unavailable(&format!("the lease holder's address {base} is not a URL: {e}")),
    };
    parts.headers.remove(header::HOST);
    parts.headers.insert(FORWARDED, HeaderValue::from_static("1"));
    match forwarding.client.request(Request::from_parts(parts, body)).await {
        Ok(response) => response.map(Body::new),
        Err(e) => unavailable(&format!("the replica holding the schedulers lease did not answer: {e}")),
    }
}

/// The Databricks error shape, for a call no replica can answer now (the
/// client's retry policy retries 503s).
fn unavailable(why: &str) -> Response {
    let body = serde_json::json!({"error_code": "TEMPORARILY_UNAVAILABLE", "message": why});
    (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_reads_of_the_holders_memory_go_to_the_holder() {
        assert!(needs_holder(&Method::POST, "/api/2.1/jobs/run-now"));
        assert!(needs_holder(&Method::DELETE, "/api/2.0/fs/files/Volumes/a/b/c/x"));
        assert!(needs_holder(&Method::GET, "/api/1.2/commands/status"));
        assert!(needs_holder(&Method::GET, "/api/2.0/sql/statements/abc"));
        assert!(!needs_holder(&Method::GET, "/api/2.1/jobs/runs/get"));
        assert!(needs_holder(&Method::GET, "/api/2.0/workspace/export"));
        assert!(!needs_holder(&Method::GET, "/api/2.0/mlflow/runs/get"));
        assert!(!needs_holder(&Method::GET, "/jobs/12"));
    }
}
