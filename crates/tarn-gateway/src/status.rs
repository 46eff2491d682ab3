//! The one mapping from [`GatewayError`] to what a Spark Connect client
//! reads: a gRPC status in the "trailers-only" form (`grpc-status` and
//! `grpc-message` as headers), and for failures that are Spark exceptions
//! a `google.rpc.Status` with `ErrorInfo` details naming the exception
//! class, which PySpark raises as that exception.

use std::collections::HashMap;

use base64::Engine;
use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty};
use hyper::HeaderMap;
use hyper::Response;
use hyper::header::HeaderValue;
use prost::Message;
use tonic::Code;

use crate::GatewayError;
use crate::rpc_status::ErrorInfo;

/// The body of every response the gateway sends or relays.
pub(crate) type Body = UnsyncBoxBody<Bytes, hyper::Error>;

const ANALYSIS_EXCEPTION: &str = "org.apache.spark.sql.AnalysisException";

impl GatewayError {
    /// The gRPC status code clients see.
    pub fn code(&self) -> Code {
        match self {
            Self::Unauthenticated => Code::Unauthenticated,
            Self::PermissionDenied(_) => Code::PermissionDenied,
            Self::TokenStore(_) | Self::Session(_) | Self::EngineUnreachable(_) => Code::Unavailable,
            Self::NoCluster
            | Self::ReadRequest(_)
            | Self::BadPath
            | Self::BadHeaders
            | Self::PlanTooLarge
            | Self::SaveAsTable(_) => Code::InvalidArgument,
            Self::ClusterNotRunning { .. } => Code::FailedPrecondition,
            Self::UnknownCluster(_) => Code::NotFound,
            Self::Path(_) | Self::Statement(_) | Self::Ctas(_) | Self::Pipeline(_) => Code::Internal,
        }
    }

    /// The JVM exception class the client raises, for failures of SQL
    /// (tarn's own, or a statement it split) rather than of the call.
    pub fn exception_class(&self) -> Option<&'static str> {
        match self {
            Self::Statement(failure) => Some(failure.exception_class),
            Self::Pipeline(failure) => Some(failure.exception_class),
            Self::Path(_) | Self::Ctas(_) => Some(ANALYSIS_EXCEPTION),
            _ => None,
        }
    }
}

/// `error` as a trailers-only gRPC response.
pub(crate) fn response(error: &GatewayError) -> Response<Body> {
    let mut response = Response::new(Empty::new().map_err(|never| match never {}).boxed_unsync());
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("application/grpc"));
    headers.extend(status_headers(error));
    response
}

/// The gRPC status fields for `error`: the headers of a trailers-only
/// response, or the trailers of a stream that failed after its first
/// messages.
pub(crate) fn status_headers(error: &GatewayError) -> HeaderMap {
    let code = error.code();
    // A header value holds visible ASCII only; `%` would start an escape.
    let message: String =
        error.to_string().chars().filter(|c| c.is_ascii() && !c.is_ascii_control() && *c != '%').collect();
    let mut headers = HeaderMap::new();
    headers.insert("grpc-status", i32::from(code).into());
    if let Ok(v) = HeaderValue::from_str(&message) {
        headers.insert("grpc-message", v);
    }
    if let Some(details) = error.exception_class().map(|class| status_details(code, &message, class))
        && let Ok(v) = HeaderValue::from_str(&details)
    {
        headers.insert("grpc-status-details-bin", v);
    }
    headers
}

/// The `grpc-status-details-bin` value naming `exception_class`; the
/// message must be the one sent as `grpc-message`.
fn status_details(code: Code, message: &str, exception_class: &str) -> String {
    let mut metadata = HashMap::new();
    metadata.insert("classes".to_string(), format!("[\"{exception_class}\"]"));
    if let Some(class) = message.strip_prefix('[').and_then(|m| m.split_once(']')).map(|(c, _)| c) {
        metadata.insert("errorClass".to_string(), class.to_string());
    }
    let info = ErrorInfo { reason: exception_class.to_string(), domain: "org.apache.spark".into(), metadata };
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(info.into_status(i32::from(code), message).encode_to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EngineCallError;
    use crate::passes::SqlFailure;

    fn header(response: &Response<Body>, name: &str) -> Option<String> {
        response.headers().get(name).map(|v| v.to_str().unwrap().to_string())
    }

    /// The status, message and exception class a client sees for `error`.
    fn check(error: GatewayError, code: i32, message: &str, class: Option<&str>) {
        let response = response(&error);
        assert_eq!(header(&response, "content-type").as_deref(), Some("application/grpc"));
        assert_eq!(header(&response, "grpc-status"), Some(code.to_string()), "{error:?}");
        assert_eq!(header(&response, "grpc-message").as_deref(), Some(message));
        let details = header(&response, "grpc-status-details-bin").map(|d| {
            let bytes = base64::engine::general_purpose::STANDARD_NO_PAD.decode(d).unwrap();
            ErrorInfo::from_status_details(&bytes).unwrap()
        });
        assert_eq!(details.as_ref().map(|i| i.reason.as_str()), class, "{error:?}");
        if let (Some(info), Some(class)) = (details, class) {
            assert_eq!(info.metadata["classes"], format!("[\"{class}\"]"));
        }
    }

    #[test]
    fn call_failures_keep_their_codes_and_messages() {
        check(
            GatewayError::Unauthenticated,
            16,
            "send a tarn token: sc://localhost:PORT/;token=TOKEN;x-databricks-cluster-id=ID",
            None,
        );
        for refused in [tarn_store::AuthError::Invalid, tarn_store::AuthError::Expired] {
            let message = "send a tarn token: sc://localhost:PORT/;token=TOKEN;x-databricks-cluster-id=ID";
            check(refused.into(), 16, message, None);
        }
        check(
            GatewayError::NoCluster,
            3,
            "name the cluster with x-databricks-cluster-id in the connection string",
            None,
        );
        check(
            GatewayError::ClusterNotRunning { cluster_id: "c-1".into(), state: "TERMINATED".into() },
            9,
            "cluster c-1 is TERMINATED, not RUNNING; start it first",
            None,
        );
        check(
            GatewayError::UnknownCluster(tarn_compute::ComputeError::ClusterNotFound("c-2".into())),
            5,
            &tarn_compute::ComputeError::ClusterNotFound("c-2".into()).to_string(),
            None,
        );
        check(
            GatewayError::Session(EngineCallError::Unreachable("refused".into())),
            14,
            "preparing the session on the engine: refused",
            None,
        );
        check(GatewayError::BadPath, 3, "bad request path", None);
        check(GatewayError::BadHeaders, 3, "bad request headers", None);
        check(GatewayError::PlanTooLarge, 3, "plan too large", None);
        check(GatewayError::SaveAsTable(EngineCallError::Refused("no".into())), 3, "no", None);
    }

    #[test]
    fn sql_failures_are_spark_exceptions() {
        check(GatewayError::Path("no volume /Volumes/x".into()), 13, "no volume /Volumes/x", Some(ANALYSIS_EXCEPTION));
        check(GatewayError::Ctas(EngineCallError::Refused("bad".into())), 13, "bad", Some(ANALYSIS_EXCEPTION));
        let failure = SqlFailure {
            exception_class: "org.apache.spark.sql.catalyst.parser.ParseException",
            message: "[PARSE_SYNTAX_ERROR] near 'x' (100%)\n".into(),
        };
        let response = response(&GatewayError::Statement(failure));
        let message = "[PARSE_SYNTAX_ERROR] near 'x' (100)";
        assert_eq!(header(&response, "grpc-message").as_deref(), Some(message));
        let details = header(&response, "grpc-status-details-bin").unwrap();
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD.decode(details).unwrap();
        let info = ErrorInfo::from_status_details(&bytes).unwrap();
        assert_eq!(info.reason, "org.apache.spark.sql.catalyst.parser.ParseException");
        assert_eq!(info.metadata["errorClass"], "PARSE_SYNTAX_ERROR");
    }
}
