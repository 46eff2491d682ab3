use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{self, RootCertStore};

use super::*;

#[test]
fn self_signed_is_kept_private_and_reused() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let (first, origin) = Identity::self_signed(&dir.path().join("tls"))?;
    assert!(matches!(origin, Origin::Generated { .. }));
    let key = dir.path().join("tls/key.pem");
    assert_eq!(std::fs::metadata(&key)?.permissions().mode() & 0o777, 0o600);
    let cert_bytes = std::fs::read(&first.cert_path)?;
    let (_, origin) = Identity::self_signed(&dir.path().join("tls"))?;
    assert_eq!(origin, Origin::Reused);
    assert_eq!(std::fs::read(&first.cert_path)?, cert_bytes);
    std::fs::write(&key, "not a key")?;
    let (_, origin) = Identity::self_signed(&dir.path().join("tls"))?;
    assert!(matches!(origin, Origin::Generated { reason } if reason.contains("unreadable")));
    assert_ne!(std::fs::read(&first.cert_path)?, cert_bytes);
    Ok(())
}

#[test]
fn a_file_without_a_certificate_is_refused() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let (identity, _) = Identity::self_signed(dir.path())?;
    let key = dir.path().join("key.pem");
    let refused = Identity::from_files(&key, &key).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(refused.contains("no CERTIFICATE"), "{refused}");
    let refused = Identity::from_files(&identity.cert_path, &identity.cert_path).err().map(|e| e.to_string());
    assert!(refused.unwrap_or_default().contains("no private key"));
    Ok(())
}

/// Echoes one line back on each accepted connection; says whether it was TLS.
async fn echo_server(acceptor: Acceptor) -> std::io::Result<(std::net::SocketAddr, tokio::task::JoinHandle<bool>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let Ok((tcp, _)) = listener.accept().await else { return false };
        let Ok(mut conn) = acceptor.accept(tcp).await else { return false };
        let mut buf = [0u8; 5];
        if conn.read_exact(&mut buf).await.is_err() || conn.write_all(&buf).await.is_err() {
            return false;
        }
        let _ = conn.flush().await;
        conn.is_tls()
    });
    Ok((addr, task))
}

#[tokio::test]
async fn one_port_serves_tls_and_plain() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let (identity, _) = Identity::self_signed(dir.path())?;
    let acceptor = Acceptor::tls(&identity, ALPN_GRPC)?;

    let (addr, server) = echo_server(acceptor.clone()).await?;
    let mut roots = RootCertStore::empty();
    roots.add(identity.chain[0].clone())?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = TlsConnector::from(Arc::new(config));
    let mut tls = connector.connect(ServerName::try_from("127.0.0.1")?, TcpStream::connect(addr).await?).await?;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    tls.write_all(b"hello").await?;
    let mut back = [0u8; 5];
    tls.read_exact(&mut back).await?;
    assert_eq!(&back, b"hello");
    assert!(server.await?);

    let (addr, server) = echo_server(acceptor).await?;
    let mut plain = TcpStream::connect(addr).await?;
    plain.write_all(b"GET /").await?;
    plain.read_exact(&mut back).await?;
    assert_eq!(&back, b"GET /");
    assert!(!server.await?);
    Ok(())
}
