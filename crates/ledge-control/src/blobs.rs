//! Function packages as content-addressed blobs, on local disk or S3, through `object_store`.
//!
//! # Design
//! A package is stored under `packages/<hex sha256>.zip` before the database row that refers to
//! it is committed. A crash in between leaves an unreferenced blob and no visible function;
//! [`BlobStore::sweep_candidates`] with the store's referenced set removes such orphans once they are older than a grace period (so it
//! never races a create that is still in flight). Blobs are shared by every version with the
//! same code, so deleting a function leaves its blobs to the sweep as well.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload};

/// Why a blob store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum BlobUrlError {
    /// Neither `file://` nor `s3://`.
    #[error("unsupported blob URL (expected file://DIR or s3://BUCKET/PREFIX): {0}")]
    Unsupported(String),
    /// The local directory could not be created.
    #[error("cannot create the blob directory {0}: {1}")]
    Directory(String, std::io::Error),
    /// object_store rejected the configuration.
    #[error("cannot open the blob store: {0}")]
    Store(#[from] object_store::Error),
}

/// Where packages live.
#[derive(Debug, Clone)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
}

// === impl BlobStore ===

impl BlobStore {
    /// Opens `file://DIR` (created if missing) or `s3://BUCKET[/PREFIX]`. S3 settings beyond
    /// the bucket come from the usual `AWS_*` environment (`AWS_ENDPOINT_URL` for an
    /// S3-compatible server, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`).
    pub fn open(url: &str) -> Result<Self, BlobUrlError> {
        if let Some(dir) = url.strip_prefix("file://") {
            std::fs::create_dir_all(dir).map_err(|e| BlobUrlError::Directory(dir.to_owned(), e))?;
            let store = LocalFileSystem::new_with_prefix(Path::new(dir))?;
            return Ok(Self {
                store: Arc::new(store),
                prefix: ObjectPath::default(),
            });
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(BlobUrlError::Unsupported(url.to_owned()));
            }
            let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
            let endpoint = std::env::var("AWS_ENDPOINT_URL")
                .or_else(|_| std::env::var("AWS_ENDPOINT"))
                .ok();
            if let Some(endpoint) = endpoint {
                builder = builder
                    .with_allow_http(endpoint.starts_with("http://"))
                    .with_endpoint(endpoint)
                    .with_virtual_hosted_style_request(false);
            }
            return Ok(Self {
                store: Arc::new(builder.build()?),
                prefix: ObjectPath::from(prefix),
            });
        }
        Err(BlobUrlError::Unsupported(url.to_owned()))
    }

    fn packages(&self) -> ObjectPath {
        self.prefix.child("packages")
    }

    fn key(&self, hex: &str) -> ObjectPath {
        self.packages().child(format!("{hex}.zip"))
    }

    /// Stores a package under its hex SHA-256. Always written, even when present, so its
    /// modification time protects it from a concurrent [`sweep`](Self::sweep_candidates).
    pub async fn put(&self, hex: &str, bytes: Bytes) -> Result<(), object_store::Error> {
        self.store
            .put(&self.key(hex), PutPayload::from(bytes))
            .await?;
        Ok(())
    }

    /// Reads a package back.
    pub async fn get(&self, hex: &str) -> Result<Bytes, object_store::Error> {
        self.store.get(&self.key(hex)).await?.bytes().await
    }

    /// Hex keys of the packages last written more than `grace` ago: the candidates of an
    /// orphan sweep. The caller reads the referenced set *after* this listing, so a package
    /// written by a create still in flight is either too new to be listed or referenced.
    pub async fn sweep_candidates(
        &self,
        grace: Duration,
    ) -> Result<Vec<String>, object_store::Error> {
        let cutoff = chrono::Utc::now()
            - chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::zero());
        let prefix = self.packages();
        let mut listing = self.store.list(Some(&prefix));
        let mut candidates = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta?;
            if meta.last_modified >= cutoff {
                continue;
            }
            if let Some(hex) = meta
                .location
                .filename()
                .and_then(|f| f.strip_suffix(".zip"))
            {
                candidates.push(hex.to_owned());
            }
        }
        Ok(candidates)
    }

    /// Deletes a package (missing is fine).
    pub async fn delete(&self, hex: &str) -> Result<(), object_store::Error> {
        match self.store.delete(&self.key(hex)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
