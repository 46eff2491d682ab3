//! `google.rpc.Status` with `google.rpc.ErrorInfo` details: how Spark
//! Connect servers tell clients which exception a failure is.
//! [`crate::status`] writes them for failures of SQL the gateway answers;
//! [`crate::connect`] reads the engine's.

use std::collections::HashMap;

use prost::Message;

#[derive(Clone, PartialEq, Message)]
pub(crate) struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<Any>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct Any {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct ErrorInfo {
    #[prost(string, tag = "1")]
    pub reason: String,
    #[prost(string, tag = "2")]
    pub domain: String,
    #[prost(map = "string, string", tag = "3")]
    pub metadata: HashMap<String, String>,
}

const ERROR_INFO_TYPE: &str = "type.googleapis.com/google.rpc.ErrorInfo";

impl ErrorInfo {
    pub fn into_status(self, code: i32, message: &str) -> RpcStatus {
        RpcStatus {
            code,
            message: message.to_string(),
            details: vec![Any { type_url: ERROR_INFO_TYPE.into(), value: self.encode_to_vec() }],
        }
    }

    /// The first `ErrorInfo` in an encoded `google.rpc.Status`.
    pub fn from_status_details(details: &[u8]) -> Option<Self> {
        let status = RpcStatus::decode(details).ok()?;
        let any = status.details.into_iter().find(|d| d.type_url == ERROR_INFO_TYPE)?;
        Self::decode(any.value.as_slice()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_info_round_trips_through_a_status() {
        let mut metadata = HashMap::new();
        metadata.insert("sqlState".to_string(), "42P01".to_string());
        let info = ErrorInfo { reason: "r".into(), domain: "d".into(), metadata };
        let bytes = info.clone().into_status(13, "m").encode_to_vec();
        assert_eq!(ErrorInfo::from_status_details(&bytes), Some(info));
        assert_eq!(ErrorInfo::from_status_details(b"\xff"), None);
    }
}
