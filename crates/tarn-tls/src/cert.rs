//! The server's certificate chain and private key: read from PEM files the
//! user names, or a self-signed certificate for `localhost`, `127.0.0.1`
//! and `::1` that tarn makes once and keeps in a directory (`cert.pem`, and
//! `key.pem` readable by its owner only) so clients that trust it keep
//! trusting it across restarts.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{Datelike, Utc};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::TlsError;

/// The names the self-signed certificate is valid for.
const SELF_SIGNED_NAMES: &[&str] = &["localhost", "127.0.0.1", "::1"];
/// How long a self-signed certificate is valid: the most Apple's TLS clients
/// accept for a server certificate.
const VALID_DAYS: i64 = 825;
/// A self-signed certificate this old is replaced before it expires.
const REPLACE_AFTER: Duration = Duration::from_secs(800 * 24 * 3600);

/// A certificate chain (leaf first) and its private key, loaded.
pub struct Identity {
    /// Where the chain was read from, for clients to trust.
    pub cert_path: PathBuf,
    pub(crate) chain: Vec<CertificateDer<'static>>,
    pub(crate) key: PrivateKeyDer<'static>,
}

/// Where an [`Identity`] came from, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The files the user named.
    Given,
    /// A self-signed certificate made at an earlier start.
    Reused,
    /// A self-signed certificate made now, and why the old one was not kept.
    Generated { reason: String },
}

impl Identity {
    /// The chain in `cert` and the key in `key` (PKCS#8, PKCS#1 or SEC1 PEM).
    pub fn from_files(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let chain = read_chain(cert)?;
        let key_pem = fs::read(key).map_err(|source| TlsError::Read { path: key.display().to_string(), source })?;
        // The key's parse error names no key material.
        let key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| TlsError::Pem { path: key.display().to_string(), reason: format!("no private key: {e}") })?;
        Ok(Self { cert_path: cert.to_path_buf(), chain, key })
    }

    /// The self-signed certificate kept in `dir` (`cert.pem`, `key.pem`),
    /// made first when it is missing, unreadable or about to expire.
    pub fn self_signed(dir: &Path) -> Result<(Self, Origin), TlsError> {
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        let reason = match kept_reason(&cert, &key) {
            None => return Ok((Self::from_files(&cert, &key)?, Origin::Reused)),
            Some(reason) => reason,
        };
        let (cert_pem, key_pem) = generate()?;
        fs::create_dir_all(dir).map_err(|source| TlsError::Write { path: dir.display().to_string(), source })?;
        write_file(&key, key_pem.as_bytes(), 0o600)?;
        write_file(&cert, cert_pem.as_bytes(), 0o644)?;
        Ok((Self::from_files(&cert, &key)?, Origin::Generated { reason }))
    }
}

/// Why the kept certificate cannot be served (`None`: it can).
fn kept_reason(cert: &Path, key: &Path) -> Option<String> {
    if !cert.exists() && !key.exists() {
        return Some("none was made before".into());
    }
    if let Err(e) = Identity::from_files(cert, key) {
        return Some(format!("the kept one is unreadable ({e})"));
    }
    let age = fs::metadata(cert).and_then(|m| m.modified()).ok().and_then(|t| SystemTime::now().duration_since(t).ok());
    match age {
        Some(age) if age > REPLACE_AFTER => Some("the kept one is about to expire".into()),
        _ => None,
    }
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = fs::read(path).map_err(|source| TlsError::Read { path: path.display().to_string(), source })?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem { path: path.display().to_string(), reason: e.to_string() })?;
    if chain.is_empty() {
        return Err(TlsError::Pem { path: path.display().to_string(), reason: "no CERTIFICATE in the file".into() });
    }
    Ok(chain)
}

/// A new ECDSA P-256 key and a certificate for it signed by itself: (cert
/// PEM, key PEM).
fn generate() -> Result<(String, String), TlsError> {
    let names: Vec<String> = SELF_SIGNED_NAMES.iter().map(|n| n.to_string()).collect();
    let mut params = rcgen::CertificateParams::new(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    let mut subject = rcgen::DistinguishedName::new();
    subject.push(rcgen::DnType::CommonName, "tarn self-signed localhost");
    subject.push(rcgen::DnType::OrganizationName, "tarn");
    params.distinguished_name = subject;
    let day = |offset: i64| {
        let date = (Utc::now() + chrono::Duration::days(offset)).date_naive();
        rcgen::date_time_ymd(date.year(), date.month() as u8, date.day() as u8)
    };
    params.not_before = day(-1);
    params.not_after = day(VALID_DAYS);
    // No key usage extension: one without keyCertSign makes OpenSSL and
    // BoringSSL (gRPC) refuse the certificate as its own issuer, the trust
    // anchor clients are given.
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let key = rcgen::KeyPair::generate().map_err(|e| TlsError::Generate(e.to_string()))?;
    let cert = params.self_signed(&key).map_err(|e| TlsError::Generate(e.to_string()))?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Writes `path` whole (through a file beside it, renamed over it) with `mode`.
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    let tmp = path.with_extension("pem.tmp");
    let failed = |source| TlsError::Write { path: path.display().to_string(), source };
    let _ = fs::remove_file(&tmp);
    let mut file = fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp).map_err(failed)?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(failed)?;
    // The umask may have narrowed `mode`; a certificate must stay readable.
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode)).map_err(failed)?;
    fs::rename(&tmp, path).map_err(failed)
}
