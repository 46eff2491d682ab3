//! The engine gateway: tarn's own Spark Connect endpoint.
//!
//! Clients connect as Databricks Connect does,
//! `sc://localhost:<port>/;token=<token>;x-databricks-cluster-id=<id>`.
//! The gateway checks the token, finds the cluster's running engine, counts
//! the call as cluster activity, makes sure the session exists on the engine
//! with tarn's session defaults (Delta as the default table format, as on
//! Databricks), then streams the HTTP/2 call to the engine and back. Only
//! the first message of each call is decoded: for its session id, and in
//! `ExecutePlan` for the pipeline of rewrites tarn makes ([`crate::passes`]).

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::StreamExt;
use http_body_util::{BodyExt, BodyStream, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message;
use spark_connect_proto::{ConfigRequest, KeyValue, UserContext, config_request};
use tarn_compute::ClusterManager;
use tarn_store::Store;
use tokio::net::TcpListener;

use crate::passes::{self, Hooks, PassContext, SessionEngine};
use crate::status::{self, Body};
use crate::{EngineCallError, GatewayError};

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
        match self.answer(req).await {
            Ok(response) => response,
            Err(e) => status::response(&e),
        }
    }

    async fn answer(&self, req: Request<Incoming>) -> Result<Response<Body>, GatewayError> {
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let token = header("authorization").and_then(|h| h.strip_prefix("Bearer ").map(str::to_string));
        let token = token.ok_or(GatewayError::Unauthenticated)?;
        self.store.authenticate(&token, tarn_core::time::now_ms())?;
        let cluster_id = header("x-databricks-cluster-id").ok_or(GatewayError::NoCluster)?;
        let port = self.engine_port(&cluster_id)?;
        self.record_activity(&cluster_id);
        let (parts, body) = req.into_parts();
        let (prefix, rest) = first_message(body).await.map_err(GatewayError::ReadRequest)?;
        if let Some(header) = decode_header(&prefix) {
            if parts.uri.path().ends_with("/ReleaseSession") {
                self.forget_session(port, &header.session_id);
            } else {
                self.ensure_session(port, header).await.map_err(GatewayError::Session)?;
            }
        }
        let prefix = if parts.uri.path().ends_with("/ExecutePlan") {
            rewrite_execute(port, &self.hooks, prefix).await?
        } else {
            prefix
        };
        self.forward(port, parts, prefix, rest).await
    }

    /// The port of the cluster's running engine.
    fn engine_port(&self, cluster_id: &str) -> Result<u16, GatewayError> {
        match self.clusters.engine_port(cluster_id) {
            Ok(Some(port)) => Ok(port),
            Ok(None) => {
                let state = self.clusters.get(cluster_id).map(|c| c.state.as_str()).unwrap_or("UNKNOWN");
                Err(GatewayError::ClusterNotRunning { cluster_id: cluster_id.to_string(), state: state.to_string() })
            }
            Err(e) => Err(GatewayError::UnknownCluster(e)),
        }
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

    async fn ensure_session(&self, port: u16, header: SessionHeader) -> Result<(), EngineCallError> {
        let key = (port, header.session_id.clone());
        if self.sessions.lock().unwrap_or_else(|p| p.into_inner()).contains(&key) {
            return Ok(());
        }
        let mut client = tarn_compute::engine::client(port).await.map_err(EngineCallError::Unreachable)?;
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
        client.config(request).await.map_err(|e| EngineCallError::Refused(e.message().to_string()))?;
        self.sessions.lock().unwrap_or_else(|p| p.into_inner()).insert(key);
        Ok(())
    }

    async fn forward(
        &self,
        port: u16,
        parts: hyper::http::request::Parts,
        prefix: Bytes,
        rest: Incoming,
    ) -> Result<Response<Body>, GatewayError> {
        let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let uri = format!("http://127.0.0.1:{port}{path}").parse::<hyper::Uri>().map_err(|_| GatewayError::BadPath)?;
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
        let request = builder.body(body.boxed_unsync()).map_err(|_| GatewayError::BadHeaders)?;
        let response = self.client.request(request).await.map_err(GatewayError::EngineUnreachable)?;
        Ok(response.map(|b| b.boxed_unsync()))
    }
}

/// Runs an `ExecutePlan` request through the pipeline of rewrites, in the
/// caller's session on the engine at `port`; returns the framed message,
/// re-encoded only when a pass changed it. A message that is compressed or
/// does not decode goes to the engine as it came.
async fn rewrite_execute(port: u16, hooks: &Hooks, framed: Bytes) -> Result<Bytes, GatewayError> {
    if framed.len() < 5 || framed[0] != 0 {
        return Ok(framed);
    }
    let Ok(mut request) = spark_connect_proto::ExecutePlanRequest::decode(&framed[5..]) else {
        return Ok(framed);
    };
    let engine = SessionEngine::new(port, request.session_id.clone(), request.user_context.clone());
    let mut cx = PassContext::new(hooks, &engine);
    if !passes::run(&mut request, &mut cx).await? {
        return Ok(framed);
    }
    let payload = request.encode_to_vec();
    let length = u32::try_from(payload.len()).map_err(|_| GatewayError::PlanTooLarge)?;
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
