//! Errors of this crate, one enum per operation.

use std::path::PathBuf;

/// Why [`crate::Cache::new`] failed.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The disk tier's directory could not be prepared.
    #[error("cannot prepare the cache directory {dir}")]
    DiskDir {
        /// The directory.
        dir: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A size limit is zero or otherwise unusable.
    #[error("invalid cache configuration: {0}")]
    Config(&'static str),
}

/// Why [`crate::CacheSettings::from_behavior`] failed.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The behavior names a cache policy that is neither managed nor in the snapshot.
    #[error("unknown cache policy {0}")]
    UnknownCachePolicy(String),
    /// The behavior names an origin request policy that is neither managed nor in the snapshot.
    #[error("unknown origin request policy {0}")]
    UnknownOriginRequestPolicy(String),
}
