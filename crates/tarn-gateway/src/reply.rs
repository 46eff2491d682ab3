//! Answers the gateway gives itself instead of an engine's: `ExecutePlan`
//! responses for the operations it took (a few results, or a run's events
//! as they come), ended by `ResultComplete` and `grpc-status` trailers, or
//! by a failure's status in the trailers; and the unary `ReleaseExecute`
//! for those operations. Each response carries the caller's session ids, as
//! clients check.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::header::HeaderValue;
use hyper::{HeaderMap, Response};
use prost::Message;
use spark_connect_proto::{ExecutePlanResponse, PipelineEvent, PipelineEventResult, execute_plan_response};
use tokio::sync::mpsc;

use crate::GatewayError;
use crate::sdp::{Answer, RunEvent};
use crate::status::{self, Body};

/// The operation an answer belongs to.
#[derive(Debug, Clone)]
pub(crate) struct Operation {
    pub session_id: String,
    pub server_side_session_id: String,
    pub operation_id: String,
}

impl Operation {
    fn response(&self, kind: execute_plan_response::ResponseType) -> Bytes {
        let response = ExecutePlanResponse {
            session_id: self.session_id.clone(),
            server_side_session_id: self.server_side_session_id.clone(),
            operation_id: self.operation_id.clone(),
            response_id: uuid::Uuid::new_v4().to_string(),
            response_type: Some(kind),
            ..Default::default()
        };
        framed(&response)
    }

    fn complete(&self) -> Bytes {
        self.response(execute_plan_response::ResponseType::ResultComplete(execute_plan_response::ResultComplete {}))
    }
}

/// Operations the gateway answered, for their `ReleaseExecute` calls. The
/// client sends those from a thread pool, `release_all` sometimes before
/// the last `release_until`, so an operation is remembered for a while
/// rather than until `release_all`.
#[derive(Default)]
pub(crate) struct Answered(Mutex<HashMap<String, Instant>>);

/// How long an answered operation is remembered.
const REMEMBER: Duration = Duration::from_secs(600);

impl Answered {
    pub fn insert(&self, operation_id: &str) {
        let mut answered = self.0.lock().unwrap_or_else(|p| p.into_inner());
        answered.retain(|_, at| at.elapsed() < REMEMBER);
        answered.insert(operation_id.to_string(), Instant::now());
    }

    /// Whether the gateway answered `operation_id`.
    pub fn contains(&self, operation_id: &str) -> bool {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).contains_key(operation_id)
    }
}

/// `answer` as the `ExecutePlan` response of `operation`.
pub(crate) fn execute(operation: Operation, answer: Answer) -> Response<Body> {
    match answer {
        Answer::Results(results) => {
            let mut frames: Vec<Frame<Bytes>> =
                results.into_iter().map(|r| Frame::data(operation.response(r))).collect();
            frames.push(Frame::data(operation.complete()));
            frames.push(Frame::trailers(ok_trailers()));
            grpc(futures_util::stream::iter(frames))
        }
        Answer::Events(events) => grpc(event_frames(operation, events)),
    }
}

/// A unary answer (`ReleaseExecute`).
pub(crate) fn unary(message: &impl Message) -> Response<Body> {
    grpc(futures_util::stream::iter([Frame::data(framed(message)), Frame::trailers(ok_trailers())]))
}

/// Where the event stream is.
enum Events {
    Running(Operation, mpsc::Receiver<RunEvent>),
    Ended,
}

/// A data frame per event, then `ResultComplete` and OK trailers when the
/// run ends well, or the failure's trailers when it fails.
fn event_frames(
    operation: Operation,
    events: mpsc::Receiver<RunEvent>,
) -> impl futures_util::Stream<Item = Frame<Bytes>> + Send + 'static {
    futures_util::stream::unfold(Events::Running(operation, events), |state| async move {
        let Events::Running(operation, mut events) = state else { return None };
        match events.recv().await {
            Some(RunEvent::Message { timestamp_ms, text }) => {
                let frame = Frame::data(operation.response(event(timestamp_ms, text)));
                Some((futures_util::stream::iter(vec![frame]), Events::Running(operation, events)))
            }
            Some(RunEvent::Failed(failure)) => {
                let trailers = status::status_headers(&GatewayError::Pipeline(failure));
                Some((futures_util::stream::iter(vec![Frame::trailers(trailers)]), Events::Ended))
            }
            None => {
                let frames = vec![Frame::data(operation.complete()), Frame::trailers(ok_trailers())];
                Some((futures_util::stream::iter(frames), Events::Ended))
            }
        }
    })
    .flatten()
}

fn event(timestamp_ms: i64, text: String) -> execute_plan_response::ResponseType {
    let timestamp = prost_types::Timestamp {
        seconds: timestamp_ms.div_euclid(1000),
        nanos: i32::try_from(timestamp_ms.rem_euclid(1000) * 1_000_000).unwrap_or(0),
    };
    let event = PipelineEvent { timestamp: Some(timestamp), message: Some(text) };
    execute_plan_response::ResponseType::PipelineEventResult(PipelineEventResult { event: Some(event) })
}

fn grpc(frames: impl futures_util::Stream<Item = Frame<Bytes>> + Send + 'static) -> Response<Body> {
    let body = StreamBody::new(frames.map(Ok::<_, hyper::Error>));
    let mut response = Response::new(body.boxed_unsync());
    response.headers_mut().insert("content-type", HeaderValue::from_static("application/grpc"));
    response
}

fn ok_trailers() -> HeaderMap {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    trailers
}

/// A gRPC message: uncompressed flag, big-endian length, payload.
fn framed(message: &impl Message) -> Bytes {
    let payload = message.encode_to_vec();
    let mut out = BytesMut::with_capacity(5 + payload.len());
    out.extend_from_slice(&[0]);
    out.extend_from_slice(&u32::try_from(payload.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(&payload);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::GraphFailure;

    fn operation() -> Operation {
        Operation { session_id: "s".into(), server_side_session_id: "ss".into(), operation_id: "op".into() }
    }

    /// The messages and trailers of a response body.
    async fn read(response: Response<Body>) -> (Vec<ExecutePlanResponse>, HeaderMap) {
        let mut body = response.into_body();
        let (mut messages, mut trailers) = (Vec::new(), HeaderMap::new());
        while let Some(frame) = body.frame().await {
            let frame = frame.unwrap();
            if let Some(data) = frame.data_ref() {
                messages.push(ExecutePlanResponse::decode(&data[5..]).unwrap());
            } else if let Ok(t) = frame.into_trailers() {
                trailers = t;
            }
        }
        (messages, trailers)
    }

    #[tokio::test]
    async fn events_stream_then_complete_or_fail() {
        let (tx, rx) = mpsc::channel(4);
        tx.send(RunEvent::Message { timestamp_ms: 1_500, text: "Flow 'a' is RUNNING.".into() }).await.unwrap();
        drop(tx);
        let (messages, trailers) = read(execute(operation(), Answer::Events(rx))).await;
        assert_eq!(messages.len(), 2);
        let Some(execute_plan_response::ResponseType::PipelineEventResult(r)) = &messages[0].response_type else {
            panic!("an event comes first")
        };
        let event = r.event.as_ref().unwrap();
        assert_eq!(event.message.as_deref(), Some("Flow 'a' is RUNNING."));
        assert_eq!(event.timestamp.as_ref().map(|t| (t.seconds, t.nanos)), Some((1, 500_000_000)));
        assert_eq!((messages[0].session_id.as_str(), messages[0].operation_id.as_str()), ("s", "op"));
        assert!(matches!(messages[1].response_type, Some(execute_plan_response::ResponseType::ResultComplete(_))));
        assert_eq!(trailers["grpc-status"], "0");

        let (tx, rx) = mpsc::channel(4);
        tx.send(RunEvent::Failed(GraphFailure::failed("Run is FAILED: boom"))).await.unwrap();
        let (messages, trailers) = read(execute(operation(), Answer::Events(rx))).await;
        assert!(messages.is_empty());
        assert_eq!(trailers["grpc-status"], "13");
        assert_eq!(trailers["grpc-message"], "Run is FAILED: boom");
        assert!(trailers.contains_key("grpc-status-details-bin"));
    }

    #[test]
    fn answered_operations_are_remembered() {
        let answered = Answered::default();
        answered.insert("op");
        assert!(answered.contains("op"));
        assert!(!answered.contains("other"));
    }
}
