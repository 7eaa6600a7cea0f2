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

    /// Writes `<stem>.crt` and `<stem>.key` into `dir`; returns their paths.
    pub fn write_to(&self, dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
        let cert = dir.join(format!("{stem}.crt"));
        let key = dir.join(format!("{stem}.key"));
        std::fs::write(&cert, &self.cert_pem).expect("write cert");
        std::fs::write(&key, &self.key_pem).expect("write key");
        (cert, key)
    }
}
