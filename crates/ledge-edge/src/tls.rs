//! The viewer-facing TLS configuration: several PEM certificate/key pairs, the one presented
//! chosen by the client's SNI name (the first pair when no name matches), ALPN `h2` and
//! `http/1.1`.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Why the TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A file holds no certificate or no private key.
    #[error("{0}: no PEM certificate or private key found")]
    Empty(String),
    /// The key is of a type rustls cannot use.
    #[error("{path}: unusable private key: {source}")]
    Key {
        /// The file.
        path: String,
        /// The cause.
        source: rustls::Error,
    },
    /// No certificate was given.
    #[error("no TLS certificate given (--tls-cert/--tls-key)")]
    NoCertificate,
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// Picks a certificate by SNI.
#[derive(Debug)]
struct SniResolver {
    keys: Vec<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if let Some(name) = hello
            .server_name()
            .and_then(|n| ServerName::try_from(n).ok())
        {
            for key in &self.keys {
                if valid_for(key.cert.first(), &name) {
                    return Some(key.clone());
                }
            }
        }
        self.keys.first().cloned()
    }
}

fn valid_for(cert: Option<&CertificateDer<'_>>, name: &ServerName<'_>) -> bool {
    let Some(cert) = cert else { return false };
    webpki::EndEntityCert::try_from(cert)
        .and_then(|ee| ee.verify_is_valid_for_subject_name(name))
        .is_ok()
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// Loads one certificate chain and its key from PEM files.
fn load_pair(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let cert_pem = read(cert)?;
    let chain: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|source| TlsError::Read {
            path: cert.display().to_string(),
            source,
        })?;
    if chain.is_empty() {
        return Err(TlsError::Empty(cert.display().to_string()));
    }
    let key_pem = read(key)?;
    let der = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|source| TlsError::Read {
            path: key.display().to_string(),
            source,
        })?
        .ok_or_else(|| TlsError::Empty(key.display().to_string()))?;
    let signing =
        rustls::crypto::ring::sign::any_supported_type(&der).map_err(|source| TlsError::Key {
            path: key.display().to_string(),
            source,
        })?;
    Ok(CertifiedKey::new(chain, signing))
}

/// A server configuration for the given (certificate, key) PEM file pairs.
pub fn server_config(
    pairs: &[(std::path::PathBuf, std::path::PathBuf)],
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    if pairs.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    let keys = pairs
        .iter()
        .map(|(c, k)| load_pair(c, k).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SniResolver { keys }));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
