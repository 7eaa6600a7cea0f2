//! Self-signed certificates for TLS tests.

use std::path::{Path, PathBuf};

/// A self-signed certificate and its key, PEM-encoded.
#[derive(Debug, Clone)]
pub struct SelfSigned {
    /// Certificate (PEM); also usable as the CA file of a client.
    pub cert_pem: String,
    /// Private key (PEM).
    pub key_pem: String,
}

impl SelfSigned {
    /// A certificate valid for these DNS names.
    ///
    /// # Panics
    /// If key generation fails (a test failure).
    pub fn new(names: &[&str]) -> Self {
        let names: Vec<String> = names.iter().map(|s| (*s).to_string()).collect();
        let ck = rcgen::generate_simple_self_signed(names).expect("self-signed certificate");
        Self {
            cert_pem: ck.cert.pem(),
            key_pem: ck.key_pair.serialize_pem(),
        }
    }

    /// A rustls server configuration presenting this certificate (HTTP/1.1 by ALPN).
    ///
    /// # Panics
    /// If the PEM cannot be parsed (a test failure).
    pub fn server_config(&self) -> std::sync::Arc<rustls::ServerConfig> {
        let certs: Vec<_> = rustls_pemfile::certs(&mut self.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .expect("cert pem");
        let key = rustls_pemfile::private_key(&mut self.key_pem.as_bytes())
            .expect("key pem")
            .expect("a key");
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("server config");
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        std::sync::Arc::new(cfg)
    }

    /// Writes `<stem>.crt` and `<stem>.key` into `dir`; returns their paths.
    pub fn write_to(&self, dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
        let cert = dir.join(format!("{stem}.crt"));
        let key = dir.join(format!("{stem}.key"));
        std::fs::write(&cert, &self.cert_pem).expect("write cert");
        std::fs::write(&key, &self.key_pem).expect("write key");
        (cert, key)
    }
}
