//! A fresh PostgreSQL database per test, so tests against the machine's server run in parallel.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// A database name unique to one test; ledge creates it on start, and it is dropped on drop.
#[derive(Debug)]
pub struct PgDb(String);

impl PgDb {
    /// A new, unused database name (process id, counter and clock make it unique).
    pub fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        Self(format!(
            "ledge_test_{}_{}_{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ))
    }

    /// Its URL on the server at 127.0.0.1:5432 (trust auth, user postgres).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.0)
    }
}

impl Default for PgDb {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        // Best effort: a leftover database is harmless, only untidy.
        let _ = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-q",
                "-c",
            ])
            .arg(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.0))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
