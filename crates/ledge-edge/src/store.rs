//! The snapshot an edge serves, swapped atomically: each request loads the current
//! [`CompiledSnapshot`] once (an atomic reference count, no lock) and keeps it to the end, so a
//! swap never shows a request half of each config and in-flight requests finish on the old one.

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use ledge_model::{ConfigSnapshot, SnapshotError};

use crate::origin::OriginClients;
use crate::snapshot::{CompileError, CompiledSnapshot};

/// Why a new snapshot was not installed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The JSON is not a valid snapshot.
    #[error(transparent)]
    Invalid(#[from] SnapshotError),
    /// The snapshot is valid data but cannot be served.
    #[error(transparent)]
    Compile(#[from] CompileError),
    /// The edge already serves this version or a newer one.
    #[error("snapshot version {offered} is not newer than the served version {current}")]
    NotNewer {
        /// The version offered.
        offered: u64,
        /// The version being served.
        current: u64,
    },
}

/// Holder of the served snapshot.
#[derive(Debug)]
pub struct SnapshotStore {
    current: ArcSwap<CompiledSnapshot>,
    clients: OriginClients,
    /// Serializes installs (never held across an await, never taken by requests).
    install: Mutex<()>,
}

// === impl SnapshotStore ===

impl SnapshotStore {
    /// A store serving `snapshot` (compiled with `clients`).
    pub fn new(snapshot: ConfigSnapshot, clients: OriginClients) -> Result<Self, InstallError> {
        snapshot.validate()?;
        let compiled = CompiledSnapshot::compile(Arc::new(snapshot), &clients)?;
        Ok(Self {
            current: ArcSwap::from_pointee(compiled),
            clients,
            install: Mutex::new(()),
        })
    }

    /// The snapshot to serve one request with.
    pub fn load(&self) -> Arc<CompiledSnapshot> {
        self.current.load_full()
    }

    /// The served version.
    pub fn version(&self) -> u64 {
        self.current.load().version
    }

    /// Validates, compiles and swaps in a newer snapshot; returns the one it replaced.
    pub fn install(&self, snapshot: ConfigSnapshot) -> Result<Arc<CompiledSnapshot>, InstallError> {
        let _guard = match self.install.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let current = self.current.load().version;
        if snapshot.version <= current {
            return Err(InstallError::NotNewer {
                offered: snapshot.version,
                current,
            });
        }
        snapshot.validate()?;
        let compiled = CompiledSnapshot::compile(Arc::new(snapshot), &self.clients)?;
        Ok(self.current.swap(Arc::new(compiled)))
    }
}
