//! TLS for tarn's listeners (`tarn serve --tls`): the server certificate
//! (given as PEM files, or a self-signed one for localhost kept under
//! `$TARN_HOME/tls`, [`cert`]) and the [`Acceptor`] both the REST API and
//! the Spark Connect gateway accept connections through.
//!
//! One port serves both TLS and plain connections: the first byte of each
//! connection decides. A TLS ClientHello starts with 0x16 (a handshake
//! record); HTTP/1 starts with a method's letter and HTTP/2 with its
//! `PRI * HTTP/2.0` preface. Engines and task processes, which tarn starts
//! and points at `http://127.0.0.1:<port>`, keep speaking plain HTTP and so
//! need not trust a self-signed certificate; users' clients use `https://`.

pub mod cert;

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::server::TlsStream;

pub use cert::{Identity, Origin};

/// The first byte of a TLS record carrying a handshake message.
const TLS_HANDSHAKE: u8 = 0x16;
/// A connection must show its first byte and finish a handshake within this;
/// a graceful shutdown waits for connections still being accepted.
const ACCEPT_TIMEOUT: Duration = Duration::from_secs(10);

/// ALPN for an HTTP API: HTTP/2 when the client offers it, else HTTP/1.1.
pub const ALPN_HTTP: &[&[u8]] = &[b"h2", b"http/1.1"];
/// ALPN for gRPC, which gRPC clients require the server to choose.
pub const ALPN_GRPC: &[&[u8]] = &[b"h2"];

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {path}: {source}")]
    Read { path: String, source: io::Error },
    #[error("writing {path}: {source}")]
    Write { path: String, source: io::Error },
    #[error("{path}: {reason}")]
    Pem { path: String, reason: String },
    #[error("making the self-signed certificate: {0}")]
    Generate(String),
    #[error("the certificate and key do not make a TLS configuration: {0}")]
    Config(String),
}

/// Accepts connections on a listener, TLS or plain: [`Acceptor::plain`]
/// passes every connection through as it is.
#[derive(Clone)]
pub struct Acceptor {
    tls: Option<TlsAcceptor>,
}

impl Acceptor {
    pub fn plain() -> Self {
        Self { tls: None }
    }

    /// Accepts TLS with `identity` (and plain connections too), offering `alpn`.
    pub fn tls(identity: &Identity, alpn: &[&[u8]]) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(identity.chain.clone(), identity.key.clone_key())
            .map_err(|e| TlsError::Config(e.to_string()))?;
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Self { tls: Some(TlsAcceptor::from(Arc::new(config))) })
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The connection as the client speaks it: after the TLS handshake when
    /// its first byte starts one, else as it came.
    pub async fn accept(&self, tcp: TcpStream) -> io::Result<Conn> {
        let Some(tls) = &self.tls else {
            return Ok(Conn::Plain(tcp));
        };
        let accepted = tokio::time::timeout(ACCEPT_TIMEOUT, async {
            let mut first = [0u8; 1];
            // Zero bytes: the client closed; the HTTP server sees the end.
            if tcp.peek(&mut first).await? == 0 || first[0] != TLS_HANDSHAKE {
                return Ok(Conn::Plain(tcp));
            }
            Ok(Conn::Tls(Box::new(tls.accept(tcp).await?)))
        });
        accepted.await.map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no request or TLS handshake in time"))?
    }
}

/// An accepted connection, plain or TLS.
pub enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Conn {
    pub fn is_tls(&self) -> bool {
        matches!(self, Conn::Tls(_))
    }
}

impl AsyncRead for Conn {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Conn::Plain(s) => s.is_write_vectored(),
            Conn::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests;
