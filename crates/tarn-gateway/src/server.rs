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
//! Declarative pipelines' commands are answered here instead of by the
//! engine ([`crate::sdp`], [`crate::reply`]), and so are the
//! `ReleaseExecute` calls that follow them.

use std::collections::HashMap;
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
use spark_connect_proto::{
    AnalyzePlanRequest, ConfigRequest, ExecutePlanRequest, KeyValue, ReleaseExecuteRequest, ReleaseExecuteResponse,
    UserContext, config_request,
};
use tarn_compute::ClusterManager;
use tarn_compute::backend::Backend;
use tarn_store::Store;
use tokio::net::TcpListener;

use crate::passes::{self, Hooks, PassContext, SessionEngine};
use crate::reply::{self, Answered, Operation};
use crate::sdp::{self, Answer, GraphCaller, GraphFailure};
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
    /// Sessions already given the session defaults, by (engine port,
    /// session id): the engine's server-side session id.
    sessions: Mutex<HashMap<(u16, String), String>>,
    /// Operations answered here, until the client releases them.
    answered: Answered,
    activity: Mutex<HashMap<String, Instant>>,
    /// Each session's current catalog and schema as its `USE`s moved it,
    /// by (engine port, session id), for the access pass's names.
    namespaces: Mutex<HashMap<(u16, String), Vec<String>>>,
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
            sessions: Mutex::new(HashMap::new()),
            answered: Answered::default(),
            activity: Mutex::new(HashMap::new()),
            namespaces: Mutex::new(HashMap::new()),
            hooks,
        })
    }

    /// Serves Spark Connect on `listener` until `shutdown` resolves, each
    /// connection through `acceptor` (TLS or plain, [`tarn_tls`]).
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        acceptor: tarn_tls::Acceptor,
        shutdown: impl Future<Output = ()>,
    ) {
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
            let (gateway, acceptor) = (self.clone(), acceptor.clone());
            tokio::spawn(async move {
                let stream = match acceptor.accept(stream).await {
                    Ok(conn) => conn,
                    Err(e) => return tracing::debug!(error = %e, "gateway TLS handshake"),
                };
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
        let user = self.store.authenticate(&token, tarn_core::time::now_ms())?;
        let cluster_id = header("x-databricks-cluster-id").ok_or(GatewayError::NoCluster)?;
        let (port, backend) = self.running_engine(&cluster_id)?;
        self.check_attach(&user, &cluster_id)?;
        self.record_activity(&cluster_id);
        let (parts, body) = req.into_parts();
        let (prefix, rest) = first_message(body).await.map_err(GatewayError::ReadRequest)?;
        // Before the session: the client releases operations the gateway
        // answered even after it released the session itself.
        if parts.uri.path().ends_with("/ReleaseExecute")
            && let Some(response) = self.release_answered(port, &prefix)
        {
            return Ok(response);
        }
        let mut server_side_session_id = String::new();
        if let Some(header) = decode_header(&prefix) {
            if parts.uri.path().ends_with("/ReleaseSession") {
                self.forget_session(port, &header.session_id);
            } else {
                server_side_session_id =
                    self.ensure_session(port, backend, header).await.map_err(GatewayError::Session)?;
            }
        }
        let mut prefix = prefix;
        if parts.uri.path().ends_with("/AnalyzePlan")
            && backend.is_sail()
            && let Some(mut request) = decode_message::<AnalyzePlanRequest>(&prefix)
        {
            self.check_analysis(&user, port, &mut request)?;
            if self.expand_views(port, &mut request)? {
                prefix = frame(&request)?;
            }
        }
        if parts.uri.path().ends_with("/ExecutePlan")
            && let Some(request) = decode_message::<ExecutePlanRequest>(&prefix)
        {
            let caller = GraphCaller { user: user.user_name.clone(), cluster_id, port };
            if let Some(answer) = self.answer_pipelines(&caller, &request) {
                let operation = Operation {
                    session_id: request.session_id.clone(),
                    server_side_session_id,
                    operation_id: request.operation_id.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
                };
                self.answered.insert(&operation.operation_id);
                return Ok(reply::execute(operation, answer.map_err(GatewayError::Pipeline)?));
            }
            let key = (port, request.session_id.clone());
            let namespace = self.namespace(&key);
            let pipeline = passes::pipeline(backend);
            let (framed, namespace) =
                rewrite_execute(port, pipeline, &self.hooks, &user, namespace, request, prefix).await?;
            self.namespaces.lock().unwrap_or_else(|p| p.into_inner()).insert(key, namespace);
            prefix = framed;
        }
        self.forward(port, parts, prefix, rest).await
    }

    /// A pipeline command, or SQL inside a flow's query function, when the
    /// wiring plugged in the dataflow graphs.
    fn answer_pipelines(
        &self,
        caller: &GraphCaller,
        request: &ExecutePlanRequest,
    ) -> Option<Result<Answer, GraphFailure>> {
        sdp::answer(self.hooks.graphs.as_deref()?, caller, request)
    }

    /// The answer to a `ReleaseExecute` of an operation the gateway answered
    /// itself (the engine never saw it).
    fn release_answered(&self, port: u16, framed: &Bytes) -> Option<Response<Body>> {
        let request = decode_message::<ReleaseExecuteRequest>(framed)?;
        if !self.answered.contains(&request.operation_id) {
            return None;
        }
        let sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let server_side_session_id = sessions.get(&(port, request.session_id.clone())).cloned().unwrap_or_default();
        drop(sessions);
        Some(reply::unary(&ReleaseExecuteResponse {
            session_id: request.session_id,
            server_side_session_id,
            operation_id: Some(request.operation_id),
        }))
    }

    /// Refuses an analysis (a DataFrame's schema, an explain) of a plan
    /// reaching what the caller may not read.
    fn check_analysis(
        &self,
        user: &tarn_store::User,
        port: u16,
        request: &mut AnalyzePlanRequest,
    ) -> Result<(), GatewayError> {
        let Some(control) = self.hooks.access.as_deref() else { return Ok(()) };
        let access = crate::access::of_analysis(request);
        if access.is_empty() {
            return Ok(());
        }
        let namespace = self.namespace(&(port, request.session_id.clone()));
        control.check(&user.user_name, &access, &namespace).map_err(GatewayError::PermissionDenied)
    }

    /// Puts views' queries where an analysed plan reads them by name; true
    /// when it did.
    fn expand_views(&self, port: u16, request: &mut AnalyzePlanRequest) -> Result<bool, GatewayError> {
        let Some(views) = self.hooks.views.as_deref() else { return Ok(false) };
        let namespace = self.namespace(&(port, request.session_id.clone()));
        let paths = self.hooks.paths.clone();
        let rewrite = move |text: &str| match paths.as_deref() {
            Some(resolver) => crate::rewrite_sql_text(text, resolver).map(std::borrow::Cow::into_owned),
            None => Ok(text.to_string()),
        };
        let mut changed = false;
        for plan in crate::access::analysed_plans(request) {
            if let Some(spark_connect_proto::plan::OpType::Root(relation)) = plan.op_type.as_mut() {
                changed |= crate::views::expand_reads(views, relation, &namespace, &rewrite)
                    .map_err(GatewayError::Statement)?;
            }
        }
        Ok(changed)
    }

    /// The session's current catalog and schema, by (engine port, session id).
    fn namespace(&self, key: &(u16, String)) -> Vec<String> {
        let found = self.namespaces.lock().unwrap_or_else(|p| p.into_inner()).get(key).cloned();
        found.unwrap_or_else(passes::default_namespace)
    }

    /// A session on a user's cluster needs CAN_ATTACH_TO (admins hold it);
    /// tarn's own clusters (serverless, the warehouse, pipelines) answer
    /// every principal that tarn gave a token for them.
    fn check_attach(&self, user: &tarn_store::User, cluster_id: &str) -> Result<(), GatewayError> {
        if user.admin {
            return Ok(());
        }
        let cluster = self.clusters.get(cluster_id).map_err(GatewayError::UnknownCluster)?;
        if cluster.row.is_managed() {
            return Ok(());
        }
        let Some(ty) = tarn_identity::ObjectType::of("clusters") else { return Ok(()) };
        let object = tarn_identity::Object::new(ty, cluster_id, cluster.row.creator.clone());
        tarn_identity::Permissions::new(self.store.clone())
            .check(user, &object, "CAN_ATTACH_TO")
            .map_err(|e| GatewayError::PermissionDenied(e.to_string()))
    }

    /// The port and backend of the cluster's running engine.
    fn running_engine(&self, cluster_id: &str) -> Result<(u16, Backend), GatewayError> {
        match self.clusters.running_engine_of(cluster_id) {
            Ok(Some(engine)) => Ok(engine),
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
        self.namespaces.lock().unwrap_or_else(|p| p.into_inner()).remove(&(port, session_id.to_string()));
    }

    /// Gives the session tarn's defaults on its first call; the engine's
    /// server-side id of the session.
    async fn ensure_session(
        &self,
        port: u16,
        backend: Backend,
        header: SessionHeader,
    ) -> Result<String, EngineCallError> {
        let key = (port, header.session_id.clone());
        if let Some(id) = self.sessions.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(id.clone());
        }
        // Spark's own default format stays: Delta is there only with its jars.
        let defaults: &[(&str, &str)] = if backend.is_sail() { SESSION_DEFAULTS } else { &[] };
        let mut client = tarn_compute::engine::client(port).await.map_err(EngineCallError::Unreachable)?;
        let pairs =
            defaults.iter().map(|(k, v)| KeyValue { key: (*k).to_string(), value: Some((*v).to_string()) }).collect();
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
        let response =
            client.config(request).await.map_err(|e| EngineCallError::Refused(e.message().to_string()))?.into_inner();
        let id = response.server_side_session_id;
        self.sessions.lock().unwrap_or_else(|p| p.into_inner()).insert(key, id.clone());
        Ok(id)
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

/// Runs a decoded `ExecutePlan` request through the pipeline of rewrites,
/// in the caller's session on the engine at `port`; returns the framed
/// message, re-encoded only when a pass changed it, and the session's
/// namespace after it.
async fn rewrite_execute(
    port: u16,
    pipeline: &[passes::Pass],
    hooks: &Hooks,
    user: &tarn_store::User,
    namespace: Vec<String>,
    mut request: ExecutePlanRequest,
    framed: Bytes,
) -> Result<(Bytes, Vec<String>), GatewayError> {
    let engine = SessionEngine::new(port, request.session_id.clone(), request.user_context.clone());
    let mut cx = PassContext::new(hooks, &engine);
    cx.user = Some(user);
    cx.namespace = namespace;
    if !passes::run(pipeline, &mut request, &mut cx).await? {
        return Ok((framed, cx.namespace));
    }
    Ok((frame(&request)?, cx.namespace))
}

/// A message as the first (uncompressed) gRPC frame of a call.
fn frame(message: &impl Message) -> Result<Bytes, GatewayError> {
    let payload = message.encode_to_vec();
    let length = u32::try_from(payload.len()).map_err(|_| GatewayError::PlanTooLarge)?;
    let mut out = BytesMut::with_capacity(5 + payload.len());
    out.extend_from_slice(&[0]);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(&payload);
    Ok(out.freeze())
}

/// An uncompressed first message, decoded; a compressed one or one that
/// does not decode goes to the engine as it came.
fn decode_message<M: Message + Default>(framed: &[u8]) -> Option<M> {
    if framed.len() < 5 || framed[0] != 0 {
        return None;
    }
    M::decode(&framed[5..]).ok()
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
