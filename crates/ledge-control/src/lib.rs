//! ledge's control plane: the AWS-compatible Lambda and CloudFront APIs, its SigV4 front door, its store
//! and its blob store.
//!
//! # What this crate owns
//! - [`router`]: the axum router of the API (no socket; the binary binds it). Every request
//!   passes [`auth::authenticate`] (SigV4, header and presigned forms) first.
//! - [`store::Store`]: functions, versions, aliases and tags in SQLite or PostgreSQL, one
//!   code path on sqlx with embedded migrations.
//! - [`blobs::BlobStore`]: packages as content-addressed blobs on disk or S3.
//! - [`credentials`]: the root key pair, from the environment or `<data-dir>/credentials`.
//!
//! # How to use
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let config = ledge_control::ControlConfig::default();
//! let creds = ledge_control::credentials::load_or_create(&config.data_dir, None)?;
//! let control = ledge_control::ControlPlane::open(config, creds.credentials).await?;
//! let app = ledge_control::router(control.state());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:4000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! # Dependencies
//! sqlx (SQLite + PostgreSQL through its `Any` driver) and object_store (with its `aws`
//! feature, which brings reqwest) are the heavy ones: they buy one data layer for two
//! databases and one blob layer for disk and S3, instead of two of each.

#![warn(missing_docs)]

pub mod auth;
pub mod blobs;
pub mod cloudfront;
pub mod credentials;
pub mod error;
pub mod feed;
pub mod lambda;
pub mod sigv4;
pub mod store;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::Router;

pub use error::ApiError;
pub use sigv4::Credentials;

/// The control plane's configuration.
#[derive(Debug, Clone)]
pub struct ControlConfig {
    /// Directory for the SQLite database, blobs and credentials. Default `./ledge-data`.
    pub data_dir: PathBuf,
    /// Database URL; default `sqlite://<data_dir>/ledge.db`.
    pub database_url: Option<String>,
    /// Blob store URL; default `file://<data_dir>/blobs`.
    pub blob_url: Option<String>,
    /// Region reported in ARNs. Default `us-east-1`.
    pub region: String,
    /// 12-digit account id reported in ARNs. Default `000000000000`.
    pub account_id: String,
    /// How far a signed request's timestamp may be from the server clock. Default 5 minutes,
    /// as Lambda and CloudFront enforce.
    pub max_clock_skew: Duration,
    /// How old an unreferenced package must be before the sweep deletes it. Default 1 hour.
    pub orphan_grace: Duration,
    /// How often the orphan sweep runs. Default 1 hour.
    pub sweep_interval: Duration,
    /// Run functions for Invoke (in `<data_dir>/runtime`). Default true.
    pub run_functions: bool,
    /// Size of each function version's `/tmp` for Invoke, in bytes. Default: the runtime's
    /// (512 MiB).
    pub function_tmp_size: Option<u64>,
    /// Start each Invoke worker in a PID namespace of its own. Default: the runtime's (on
    /// when running as root).
    pub function_pid_namespaces: Option<bool>,
    /// Domain under which distributions get their `DomainName` (`<generated>.<edge_domain>`).
    /// Default `ledge.localhost`.
    pub edge_domain: String,
    /// An edge silent for this long is offline: listed so, and no longer holding
    /// distributions `InProgress`. Default 60 seconds.
    pub edge_heartbeat_timeout: Duration,
}

impl Default for ControlConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./ledge-data"),
            database_url: None,
            blob_url: None,
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
            max_clock_skew: Duration::from_secs(300),
            orphan_grace: Duration::from_secs(3600),
            sweep_interval: Duration::from_secs(3600),
            run_functions: true,
            function_tmp_size: None,
            function_pid_namespaces: None,
            edge_domain: "ledge.localhost".into(),
            edge_heartbeat_timeout: Duration::from_secs(60),
        }
    }
}

// === impl ControlConfig ===

impl ControlConfig {
    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("ledge.db").display()
            )
        })
    }

    /// The blob store URL in effect.
    pub fn blob_url(&self) -> String {
        self.blob_url
            .clone()
            .unwrap_or_else(|| format!("file://{}", self.data_dir.join("blobs").display()))
    }
}

/// Why the control plane could not start.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The account id is not 12 digits.
    #[error("--account-id must be 12 digits, got {0:?}")]
    AccountId(String),
    /// The data directory could not be created.
    #[error("cannot create the data directory {0}: {1}")]
    DataDir(PathBuf, std::io::Error),
    /// The database could not be opened.
    #[error(transparent)]
    Store(#[from] store::OpenError),
    /// The blob store could not be opened.
    #[error(transparent)]
    Blobs(#[from] blobs::BlobUrlError),
    /// The function runtime could not start.
    #[error("cannot start the function runtime: {0}")]
    Runtime(std::io::Error),
}

/// Shared state of the API handlers; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    region: String,
    account_id: String,
    edge_domain: String,
    verifier: sigv4::Verifier,
    store: store::Store,
    blobs: blobs::BlobStore,
    invoker: Option<Arc<lambda::invoke::Invoker>>,
}

// === impl AppState ===

impl AppState {
    /// Builds the state from its parts (tests and `ledge serve` may open them separately).
    pub fn new(
        config: &ControlConfig,
        credentials: Credentials,
        store: store::Store,
        blobs: blobs::BlobStore,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                region: config.region.clone(),
                account_id: config.account_id.clone(),
                edge_domain: config.edge_domain.clone(),
                verifier: sigv4::Verifier {
                    credentials,
                    max_skew: config.max_clock_skew,
                },
                store,
                blobs,
                invoker: None,
            }),
        }
    }

    /// Lets Invoke run functions in `runtime` (without one, Invoke answers 502).
    pub fn with_runtime(self, runtime: ledge_runtime::Runtime) -> Self {
        let mut inner = match Arc::try_unwrap(self.inner) {
            Ok(inner) => inner,
            Err(shared) => Inner {
                region: shared.region.clone(),
                account_id: shared.account_id.clone(),
                edge_domain: shared.edge_domain.clone(),
                verifier: shared.verifier.clone(),
                store: shared.store.clone(),
                blobs: shared.blobs.clone(),
                invoker: shared.invoker.clone(),
            },
        };
        inner.invoker = Some(Arc::new(lambda::invoke::Invoker::new(runtime)));
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The store behind the API.
    pub fn store(&self) -> &store::Store {
        &self.inner.store
    }

    /// The blob store behind the API.
    pub fn blobs(&self) -> &blobs::BlobStore {
        &self.inner.blobs
    }
}

/// An opened control plane: configuration, store and blob store.
#[derive(Debug, Clone)]
pub struct ControlPlane {
    config: ControlConfig,
    state: AppState,
}

// === impl ControlPlane ===

impl ControlPlane {
    /// Opens the database (running migrations) and the blob store.
    pub async fn open(config: ControlConfig, credentials: Credentials) -> Result<Self, OpenError> {
        if config.account_id.len() != 12 || !config.account_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(OpenError::AccountId(config.account_id.clone()));
        }
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| OpenError::DataDir(config.data_dir.clone(), e))?;
        // Absolute, because function workers run in directories of their own.
        let mut config = config;
        config.data_dir = std::fs::canonicalize(&config.data_dir)
            .map_err(|e| OpenError::DataDir(config.data_dir.clone(), e))?;
        let store = store::Store::open(&config.database_url())
            .await?
            .with_edge_liveness(config.edge_heartbeat_timeout);
        let blobs = blobs::BlobStore::open(&config.blob_url())?;
        let mut state = AppState::new(&config, credentials, store, blobs);
        if config.run_functions {
            let mut rc = ledge_runtime::RuntimeConfig::new(config.data_dir.join("runtime"));
            rc.region = config.region.clone();
            rc.account_id = config.account_id.clone();
            if let Some(bytes) = config.function_tmp_size {
                rc.tmp_size_bytes = bytes;
            }
            if let Some(on) = config.function_pid_namespaces {
                rc.pid_namespaces = on;
            }
            let runtime = ledge_runtime::Runtime::new(rc).map_err(OpenError::Runtime)?;
            state = state.with_runtime(runtime);
        }
        Ok(Self { config, state })
    }

    /// The handler state, for [`router`].
    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// Deletes packages no version references (older than the grace period); returns how many.
    pub async fn sweep_orphans(&self) -> Result<usize, ApiError> {
        let candidates = self
            .state
            .blobs()
            .sweep_candidates(self.config.orphan_grace)
            .await?;
        if candidates.is_empty() {
            return Ok(0);
        }
        // Read after listing: see `BlobStore::sweep_candidates`.
        let referenced = self.state.store().referenced_code().await?;
        let mut deleted = 0;
        for hex in candidates.iter().filter(|h| !referenced.contains(*h)) {
            self.state.blobs().delete(hex).await?;
            deleted += 1;
        }
        Ok(deleted)
    }

    /// Runs the orphan sweep now and then every `sweep_interval`, forever.
    pub async fn run_sweeper(self) {
        let mut tick = tokio::time::interval(self.config.sweep_interval);
        loop {
            tick.tick().await;
            match self.sweep_orphans().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "swept orphan packages"),
                Err(e) => tracing::warn!(error = %e, "orphan sweep failed"),
            }
        }
    }
}

/// The API router: every route behind SigV4, with AWS-shaped errors for unknown routes
/// (CloudFront's XML under `/2020-05-31/`, Lambda's JSON elsewhere).
pub fn router(state: AppState) -> Router {
    lambda::routes()
        .merge(cloudfront::routes())
        .fallback(unknown_operation)
        .method_not_allowed_fallback(unknown_operation)
        // The auth middleware enforces the body limit itself.
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .with_state(state)
}

/// The answer for a method and path no operation has.
async fn unknown_operation(uri: axum::http::Uri) -> axum::response::Response {
    use axum::response::IntoResponse;
    if uri.path().starts_with("/2020-05-31/") {
        cloudfront::CfError::NotFound("NotFound", "Unknown operation.".into()).into_response()
    } else {
        ApiError::UnknownOperation.into_response()
    }
}
