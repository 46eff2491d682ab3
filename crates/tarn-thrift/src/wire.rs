//! Thrift's binary protocol as THttpClient carries it: one call per HTTP
//! request body, one reply per response body. A call's arguments are a
//! struct whose field 1 is the request; a reply's result is a struct whose
//! field 0 is the response.

use thrift::protocol::{
    TBinaryInputProtocol, TBinaryOutputProtocol, TFieldIdentifier, TInputProtocol, TMessageIdentifier, TMessageType,
    TOutputProtocol, TSerializable, TStructIdentifier, TType,
};
use thrift::{ApplicationError, ApplicationErrorKind, ProtocolError, ProtocolErrorKind};

/// A call read from a request body, its request still to be read.
pub struct Call<'a> {
    pub name: String,
    pub seq: i32,
    input: TBinaryInputProtocol<&'a [u8]>,
}

impl<'a> Call<'a> {
    /// The call's header; an error if the body is not a Thrift call.
    pub fn read(body: &'a [u8]) -> thrift::Result<Self> {
        let mut input = TBinaryInputProtocol::new(body, true);
        let header = input.read_message_begin()?;
        if header.message_type != TMessageType::Call && header.message_type != TMessageType::OneWay {
            return Err(thrift::Error::Protocol(ProtocolError::new(
                ProtocolErrorKind::InvalidData,
                format!("expected a call, got a {:?} message", header.message_type),
            )));
        }
        Ok(Self { name: header.name, seq: header.sequence_number, input })
    }

    /// The call's request: field 1 of its arguments struct.
    pub fn request<T: TSerializable>(&mut self) -> thrift::Result<T> {
        let input = &mut self.input;
        input.read_struct_begin()?;
        let mut request = None;
        loop {
            let field = input.read_field_begin()?;
            if field.field_type == TType::Stop {
                break;
            }
            match field.id {
                Some(1) => request = Some(T::read_from_in_protocol(input)?),
                _ => input.skip(field.field_type)?,
            }
            input.read_field_end()?;
        }
        input.read_struct_end()?;
        input.read_message_end()?;
        request.ok_or_else(|| {
            thrift::Error::Protocol(ProtocolError::new(
                ProtocolErrorKind::InvalidData,
                format!("{} was called without its request", self.name),
            ))
        })
    }
}

/// The reply to call `name` carrying `response`.
pub fn reply<T: TSerializable>(name: &str, seq: i32, response: &T) -> thrift::Result<Vec<u8>> {
    let mut out = TBinaryOutputProtocol::new(Vec::new(), true);
    out.write_message_begin(&TMessageIdentifier::new(name, TMessageType::Reply, seq))?;
    out.write_struct_begin(&TStructIdentifier::new(format!("{name}_result")))?;
    out.write_field_begin(&TFieldIdentifier::new("success", TType::Struct, 0))?;
    response.write_to_out_protocol(&mut out)?;
    out.write_field_end()?;
    out.write_field_stop()?;
    out.write_struct_end()?;
    out.write_message_end()?;
    Ok(out.transport)
}

/// The exception reply to call `name`: what clients raise as a protocol error.
pub fn exception(name: &str, seq: i32, kind: ApplicationErrorKind, message: String) -> Vec<u8> {
    let mut out = TBinaryOutputProtocol::new(Vec::new(), true);
    let error = ApplicationError::new(kind, message);
    let written = out
        .write_message_begin(&TMessageIdentifier::new(name, TMessageType::Exception, seq))
        .and_then(|()| thrift::Error::write_application_error_to_out_protocol(&error, &mut out))
        .and_then(|()| out.write_message_end());
    if let Err(e) = written {
        tracing::debug!(error = %e, "writing a Thrift exception");
    }
    out.transport
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcli::{TCloseSessionReq, TCloseSessionResp, THandleIdentifier, TSessionHandle, TStatus, TStatusCode};

    fn call_bytes(name: &str, request: &TCloseSessionReq) -> Vec<u8> {
        let mut out = TBinaryOutputProtocol::new(Vec::new(), true);
        out.write_message_begin(&TMessageIdentifier::new(name, TMessageType::Call, 7)).unwrap();
        out.write_struct_begin(&TStructIdentifier::new("args")).unwrap();
        out.write_field_begin(&TFieldIdentifier::new("req", TType::Struct, 1)).unwrap();
        request.write_to_out_protocol(&mut out).unwrap();
        out.write_field_end().unwrap();
        out.write_field_stop().unwrap();
        out.write_struct_end().unwrap();
        out.write_message_end().unwrap();
        out.transport
    }

    #[test]
    fn a_call_and_its_reply() {
        let handle = TSessionHandle::new(THandleIdentifier::new(vec![1; 16], vec![2; 16]), None);
        let bytes = call_bytes("CloseSession", &TCloseSessionReq::new(handle.clone()));
        let mut call = Call::read(&bytes).unwrap();
        assert_eq!((call.name.as_str(), call.seq), ("CloseSession", 7));
        let request: TCloseSessionReq = call.request().unwrap();
        assert_eq!(request.session_handle, handle);

        let status = TStatus::new(TStatusCode::SUCCESS_STATUS, None, None, None, None, None, None);
        let reply = reply("CloseSession", 7, &TCloseSessionResp::new(status)).unwrap();
        let mut input = TBinaryInputProtocol::new(&reply[..], true);
        let header = input.read_message_begin().unwrap();
        assert_eq!((header.message_type, header.sequence_number), (TMessageType::Reply, 7));
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(Call::read(b"not thrift at all").is_err());
        assert!(Call::read(&[]).is_err());
    }
}
