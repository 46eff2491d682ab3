//! The engine gateway: tarn's own Spark Connect endpoint.
//!
//! Clients connect as Databricks Connect does,
//! `sc://localhost:<port>/;token=<token>;x-databricks-cluster-id=<id>`.
//! The gateway checks the token, finds the cluster's running engine, counts
//! the call as cluster activity, makes sure the session exists on the engine
//! with tarn's session defaults (Delta as the default table format, as on
//! Databricks), then streams the HTTP/2 call to the engine and back. Only
//! the first message of each call is decoded: for its session id, and in
//! `ExecutePlan` for the rewrites tarn makes (volume paths, see
//! [`PathResolver`]; Delta `saveAsTable`; and SQL statements tarn runs
//! itself, see [`SqlInterceptor`]).

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::StreamExt;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, BodyStream, Empty, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message;
use spark_connect_proto::{ConfigRequest, KeyValue, UserContext, config_request};
use tarn_store::Store;
use tokio::net::TcpListener;

use tarn_compute::ClusterManager;

use crate::passes::{PathResolver, SqlFailure, SqlInterceptor, ctas, paths, save_as_table, sql};

/// What the wiring plugs into the gateway's rewrites.
#[derive(Clone, Default)]
pub struct Hooks {
    pub sql: Option<Arc<dyn SqlInterceptor>>,
    pub paths: Option<Arc<dyn PathResolver>>,
}

type Body = UnsyncBoxBody<Bytes, hyper::Error>;

/// Session settings every session gets before its first call.
const SESSION_DEFAULTS: &[(&str, &str)] = &[("spark.sql.sources.default", "delta")];
/// Activity is written at most this often per cluster.
const ACTIVITY_EVERY: Duration = Duration::from_secs(1);

/// The fields every Spark Connect request starts with.
#[derive(Clone, PartialEq, Message)]
struct SessionHeader {
    #[prost(string, tag = "1")]
    session_id: String,
    #[prost(message, optional, tag = "2")]
    user_context: Option<UserContext>,
}

pub struct Gateway {
    clusters: ClusterManager,
    store: Arc<Store>,
    client: Client<HttpConnector, Body>,
    /// (engine port, session id) pairs already given the session defaults.
    sessions: Mutex<HashSet<(u16, String)>>,
    activity: Mutex<HashMap<String, Instant>>,
    hooks: Hooks,
}

/// A gRPC error in the "trailers-only" form: status and message as headers.
fn grpc_error(code: u8, message: &str) -> Response<Body> {
    grpc_error_with(code, message, None)
}

/// A statement tarn ran on the engine for the client, and the engine refused.
fn engine_failure(message: String) -> SqlFailure {
    SqlFailure { exception_class: "org.apache.spark.sql.AnalysisException", message }
}

/// A failed statement tarn ran, raised in the client as its Spark exception.
fn spark_error(failure: &SqlFailure) -> Response<Body> {
    grpc_error_with(INTERNAL, &failure.message, Some(failure))
}

fn grpc_error_with(code: u8, message: &str, failure: Option<&SqlFailure>) -> Response<Body> {
    let message: String = message.chars().filter(|c| c.is_ascii() && !c.is_ascii_control() && *c != '%').collect();
    let mut response = Response::new(Empty::new().map_err(|never| match never {}).boxed_unsync());
    let headers = response.headers_mut();
    headers.insert("content-type", hyper::header::HeaderValue::from_static("application/grpc"));
    headers.insert("grpc-status", u16::from(code).into());
    if let Ok(v) = hyper::header::HeaderValue::from_str(&message) {
        headers.insert("grpc-message", v);
    }
    if let Some(details) = failure.map(|f| sql::status_details(i32::from(code), &message, f))
        && let Ok(v) = hyper::header::HeaderValue::from_str(&details)
    {
        headers.insert("grpc-status-details-bin", v);
    }
    response
}

const UNAUTHENTICATED: u8 = 16;
const NOT_FOUND: u8 = 5;
const FAILED_PRECONDITION: u8 = 9;
const UNAVAILABLE: u8 = 14;
const INVALID_ARGUMENT: u8 = 3;
const INTERNAL: u8 = 13;

impl Gateway {
    pub fn new(clusters: ClusterManager, store: Arc<Store>, hooks: Hooks) -> Arc<Self> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).http2_only(true).build(connector);
        Arc::new(Self {
            clusters,
            store,
            client,
            sessions: Mutex::new(HashSet::new()),
            activity: Mutex::new(HashMap::new()),
            hooks,
        })
    }

    /// Serves Spark Connect on `listener` until `shutdown` resolves.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let (stream, _) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        tracing::warn!(error = %e, "gateway accept");
                        continue;
                    }
                },
                _ = &mut shutdown => return,
            };
            let _ = stream.set_nodelay(true);
            let gateway = self.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let gateway = gateway.clone();
                    async move { Ok::<_, Infallible>(gateway.handle(req).await) }
                });
                let served = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                if let Err(e) = served {
                    tracing::debug!(error = %e, "gateway connection");
                }
            });
        }
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let token = header("authorization").and_then(|h| h.strip_prefix("Bearer ").map(str::to_string));
        match token.map(|t| self.store.find_token(&t)) {
            Some(Ok(Some((token, _)))) if token.is_live_at(tarn_core::time::now_ms()) => {}
            Some(Err(e)) => return grpc_error(UNAVAILABLE, &e.to_string()),
            _ => {
                return grpc_error(
                    UNAUTHENTICATED,
                    "send a tarn token: sc://localhost:PORT/;token=TOKEN;x-databricks-cluster-id=ID",
                );
            }
        }
        let Some(cluster_id) = header("x-databricks-cluster-id") else {
            return grpc_error(
                INVALID_ARGUMENT,
                "name the cluster with x-databricks-cluster-id in the connection string",
            );
        };
        let port = match self.clusters.engine_port(&cluster_id) {
            Ok(Some(port)) => port,
            Ok(None) => {
                let state = self.clusters.get(&cluster_id).map(|c| c.state.as_str()).unwrap_or("UNKNOWN");
                return grpc_error(
                    FAILED_PRECONDITION,
                    &format!("cluster {cluster_id} is {state}, not RUNNING; start it first"),
                );
            }
            Err(e) => return grpc_error(NOT_FOUND, &e.to_string()),
        };
        self.record_activity(&cluster_id);
        let (parts, body) = req.into_parts();
        let (prefix, rest) = match first_message(body).await {
            Ok(split) => split,
            Err(e) => return grpc_error(INVALID_ARGUMENT, &format!("reading the request: {e}")),
        };
        if let Some(header) = decode_header(&prefix) {
            if parts.uri.path().ends_with("/ReleaseSession") {
                self.forget_session(port, &header.session_id);
            } else if let Err(e) = self.ensure_session(port, header).await {
                return grpc_error(UNAVAILABLE, &format!("preparing the session on the engine: {e}"));
            }
        }
        let prefix = if parts.uri.path().ends_with("/ExecutePlan") {
            match rewrite_execute(port, &self.hooks, prefix).await {
                Ok(prefix) => prefix,
                Err(response) => return response,
            }
        } else {
            prefix
        };
        self.forward(port, parts, prefix, rest).await
    }

    fn record_activity(&self, cluster_id: &str) {
        let mut seen = self.activity.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if seen.get(cluster_id).is_some_and(|t| now.duration_since(*t) < ACTIVITY_EVERY) {
            return;
        }
        seen.insert(cluster_id.to_string(), now);
        drop(seen);
        self.clusters.record_activity(cluster_id);
    }

    fn forget_session(&self, port: u16, session_id: &str) {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner()).remove(&(port, session_id.to_string()));
    }

    async fn ensure_session(&self, port: u16, header: SessionHeader) -> Result<(), String> {
        let key = (port, header.session_id.clone());
        if self.sessions.lock().unwrap_or_else(|p| p.into_inner()).contains(&key) {
            return Ok(());
        }
        let mut client = tarn_compute::engine::client(port).await?;
        let pairs = SESSION_DEFAULTS
            .iter()
            .map(|(k, v)| KeyValue { key: (*k).to_string(), value: Some((*v).to_string()) })
            .collect();
        let request = ConfigRequest {
            session_id: header.session_id,
            user_context: header.user_context,
            operation: Some(config_request::Operation {
                op_type: Some(config_request::operation::OpType::Set(config_request::Set {
                    pairs,
                    silent: Some(true),
                })),
            }),
            client_type: Some("tarn-gateway".into()),
            ..Default::default()
        };
        client.config(request).await.map_err(|e| e.message().to_string())?;
        self.sessions.lock().unwrap_or_else(|p| p.into_inner()).insert(key);
        Ok(())
    }

    async fn forward(
        &self,
        port: u16,
        parts: hyper::http::request::Parts,
        prefix: Bytes,
        rest: Incoming,
    ) -> Response<Body> {
        let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let Ok(uri) = format!("http://127.0.0.1:{port}{path}").parse::<hyper::Uri>() else {
            return grpc_error(INVALID_ARGUMENT, "bad request path");
        };
        let mut builder = Request::builder().method(parts.method).uri(uri).version(hyper::Version::HTTP_2);
        for (name, value) in &parts.headers {
            // The engine trusts loopback; the user's token stops here.
            if name != "authorization" && name != "host" {
                builder = builder.header(name, value);
            }
        }
        let body = StreamBody::new(
            futures_util::stream::once(async move { Ok(Frame::data(prefix)) }).chain(BodyStream::new(rest)),
        );
        let Ok(request) = builder.body(body.boxed_unsync()) else {
            return grpc_error(INVALID_ARGUMENT, "bad request headers");
        };
        match self.client.request(request).await {
            Ok(response) => response.map(|b| b.boxed_unsync()),
            Err(e) => grpc_error(UNAVAILABLE, &format!("engine unreachable: {e}")),
        }
    }
}

/// Gives an `ExecutePlan` request to the rewrites tarn makes for the engine;
/// returns the (possibly re-encoded) framed message.
async fn rewrite_execute(port: u16, hooks: &Hooks, framed: Bytes) -> Result<Bytes, Response<Body>> {
    if framed.len() < 5 || framed[0] != 0 {
        return Ok(framed);
    }
    let Ok(mut request) = spark_connect_proto::ExecutePlanRequest::decode(&framed[5..]) else {
        return Ok(framed);
    };
    let resolved = match hooks.paths.as_deref() {
        Some(paths) => paths::rewrite(&mut request, paths).map_err(|f| spark_error(&f))?,
        None => paths::Rewritten::default(),
    };
    if let (true, Some(sql)) = (resolved.reads_system_tables, hooks.sql.as_deref()) {
        sql.refresh_system_tables().await;
    }
    let resolved = resolved.changed;
    let intercepted = match hooks.sql.as_deref() {
        Some(interceptor) => sql::rewrite(interceptor, &mut request).await.map_err(|f| spark_error(&f))?,
        None => false,
    };
    let rewritten = intercepted
        || ctas::rewrite_request(port, &mut request).await.map_err(|e| spark_error(&engine_failure(e)))?
        || save_as_table::rewrite(port, &mut request).await.map_err(|e| grpc_error(INVALID_ARGUMENT, &e))?;
    if !resolved && !rewritten {
        return Ok(framed);
    }
    let payload = request.encode_to_vec();
    let length = u32::try_from(payload.len()).map_err(|_| grpc_error(INVALID_ARGUMENT, "plan too large"))?;
    let mut out = BytesMut::with_capacity(5 + payload.len());
    out.extend_from_slice(&[0]);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(&payload);
    Ok(out.freeze())
}

/// Reads the body until its first gRPC message (5-byte prefix plus payload)
/// is whole; returns those bytes and the rest of the body.
async fn first_message(mut body: Incoming) -> Result<(Bytes, Incoming), hyper::Error> {
    let mut buf = BytesMut::new();
    loop {
        if buf.len() >= 5 {
            let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
            if buf.len() >= 5 + len {
                break;
            }
        }
        match body.frame().await {
            Some(frame) => {
                if let Ok(data) = frame?.into_data() {
                    buf.extend_from_slice(data.chunk());
                }
            }
            None => break,
        }
    }
    Ok((buf.freeze(), body))
}

/// The session header of an uncompressed first message.
fn decode_header(message: &[u8]) -> Option<SessionHeader> {
    if message.len() < 5 || message[0] != 0 {
        return None;
    }
    let len = u32::from_be_bytes([message[1], message[2], message[3], message[4]]) as usize;
    let header = SessionHeader::decode(message.get(5..5 + len)?).ok()?;
    (!header.session_id.is_empty()).then_some(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_header_is_read_from_any_request() {
        let request = ConfigRequest {
            session_id: "s-1".into(),
            user_context: Some(UserContext { user_id: "u".into(), ..Default::default() }),
            client_type: Some("x".into()),
            ..Default::default()
        };
        let payload = request.encode_to_vec();
        let mut framed = vec![0u8];
        framed.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        framed.extend_from_slice(&payload);
        let header = decode_header(&framed).unwrap();
        assert_eq!((header.session_id.as_str(), header.user_context.unwrap().user_id.as_str()), ("s-1", "u"));
        framed[0] = 1;
        assert!(decode_header(&framed).is_none(), "compressed messages are passed through undecoded");
    }
}
