//! The origin client: pooled HTTP/1.1 connections (plain or TLS) per connection settings, with
//! CloudFront's connection timeout and attempts, response (read) timeout and keep-alive timeout.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::{capture_connection, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::time::Sleep;

use crate::body::{BoxError, RequestBody};
use crate::error::{EdgeError, ErrorKind};

type Inner = Client<HttpsConnector<HttpConnector>, RequestBody>;

/// A pooled client for origins that share connection settings. Each worker thread keeps its
/// own pool for it (no cross-thread wake-ups on the request path); cloning shares the pools.
#[derive(Clone)]
pub struct OriginClient {
    id: u64,
    tls: Arc<rustls::ClientConfig>,
    connect_timeout: Duration,
    keepalive: Duration,
}

thread_local! {
    /// This thread's pooled clients, by [`OriginClient`] id.
    static POOLS: std::cell::RefCell<HashMap<u64, Inner>> = std::cell::RefCell::new(HashMap::new());
}

static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl std::fmt::Debug for OriginClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OriginClient")
            .field("connect_timeout", &self.connect_timeout)
            .finish_non_exhaustive()
    }
}

/// The clients of an edge, one per distinct (connection timeout, keep-alive timeout), kept
/// across snapshot swaps so pooled connections survive a reload.
#[derive(Clone)]
pub struct OriginClients {
    tls: Arc<rustls::ClientConfig>,
    clients: Arc<Mutex<HashMap<(Duration, Duration), OriginClient>>>,
}

impl std::fmt::Debug for OriginClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OriginClients").finish_non_exhaustive()
    }
}

/// Why the origin TLS trust store could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// The CA file could not be read.
    #[error("cannot read CA file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A certificate in the CA file was refused.
    #[error("invalid CA certificate in {0}")]
    Invalid(String),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

// === impl OriginClients ===

impl OriginClients {
    /// Clients trusting the public web roots plus the CA certificates in `extra_ca_files` (PEM).
    pub fn new(extra_ca_files: &[std::path::PathBuf]) -> Result<Self, TrustError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for path in extra_ca_files {
            let bytes = std::fs::read(path).map_err(|source| TrustError::Read {
                path: path.display().to_string(),
                source,
            })?;
            for cert in rustls_pemfile::certs(&mut bytes.as_slice()) {
                let cert = cert.map_err(|_| TrustError::Invalid(path.display().to_string()))?;
                roots
                    .add(cert)
                    .map_err(|_| TrustError::Invalid(path.display().to_string()))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            tls: Arc::new(tls),
            clients: Arc::default(),
        })
    }

    /// Clients with the public roots only (for unit tests).
    pub fn for_test() -> Self {
        Self::new(&[]).unwrap_or_else(|_| unreachable!("the public roots are valid"))
    }

    /// The shared client for these settings, created on first use.
    pub fn client(&self, connect_timeout: Duration, keepalive: Duration) -> OriginClient {
        let key = (connect_timeout, keepalive);
        let mut map = match self.clients.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.entry(key)
            .or_insert_with(|| OriginClient {
                id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                tls: self.tls.clone(),
                connect_timeout,
                keepalive,
            })
            .clone()
    }
}

// === impl OriginClient ===

impl OriginClient {
    /// This thread's pooled hyper client for these settings.
    fn pooled(&self) -> Inner {
        POOLS.with(|pools| {
            pools
                .borrow_mut()
                .entry(self.id)
                .or_insert_with(|| self.build())
                .clone()
        })
    }

    fn build(&self) -> Inner {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(self.connect_timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*self.tls).clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Client::builder(TokioExecutor::new())
            .pool_idle_timeout(self.keepalive)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(https)
    }

    /// Sends one request: up to `attempts` tries while connecting fails (any method) or, for
    /// `GET`/`HEAD`, while the response head does not come within `read_timeout`.
    ///
    /// `make` builds the request for each attempt (the body must be re-creatable, so
    /// streaming bodies get one attempt: `make` returns `None` the second time).
    pub async fn send(
        &self,
        mut make: impl FnMut() -> Option<Request<RequestBody>>,
        attempts: u32,
        read_timeout: Duration,
    ) -> Result<Response<TimedBody>, EdgeError> {
        let client = self.pooled();
        let mut last = EdgeError::new(ErrorKind::OriginConnectError);
        for attempt in 0..attempts.max(1) {
            let Some(mut req) = make() else { break };
            let idempotent = matches!(*req.method(), http::Method::GET | http::Method::HEAD);
            let mut captured = capture_connection(&mut req);
            let fut = client.request(req);
            tokio::pin!(fut);
            // Phase 1: connecting (bounded by the connector's own timeout).
            let connected = tokio::select! {
                r = &mut fut => Some(r),
                _ = captured.wait_for_connection_metadata() => None,
                _ = tokio::time::sleep(self.connect_timeout + Duration::from_secs(1)) => {
                    last = EdgeError::new(ErrorKind::OriginConnectTimeout).explain("connect");
                    continue;
                }
            };
            // Phase 2: waiting for the response head.
            let result = match connected {
                Some(r) => r,
                None => match tokio::time::timeout(read_timeout, &mut fut).await {
                    Ok(r) => r,
                    Err(_) => {
                        last =
                            EdgeError::new(ErrorKind::OriginReadTimeout).explain("response head");
                        if idempotent {
                            continue;
                        }
                        return Err(last);
                    }
                },
            };
            match result {
                Ok(resp) => {
                    return Ok(resp.map(|b| TimedBody::new(b, read_timeout)));
                }
                Err(e) if e.is_connect() => {
                    let timed_out = is_timeout(&e);
                    tracing::debug!(attempt, error = %DisplayChain(&e), "origin connect failed");
                    last = EdgeError::because(
                        if timed_out {
                            ErrorKind::OriginConnectTimeout
                        } else {
                            ErrorKind::OriginConnectError
                        },
                        e,
                    )
                    .explain("connect");
                }
                Err(e) => {
                    return Err(
                        EdgeError::because(ErrorKind::OriginInvalidResponse, e).explain("response")
                    );
                }
            }
        }
        Err(last)
    }
}

fn is_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::TimedOut {
                return true;
            }
        }
        if err.to_string().contains("timed out") {
            return true;
        }
        cur = err.source();
    }
    false
}

struct DisplayChain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut s = self.0.source();
        while let Some(e) = s {
            write!(f, ": {e}")?;
            s = e.source();
        }
        Ok(())
    }
}

/// An origin response body whose every gap between frames is bounded by the read timeout.
#[derive(Debug)]
pub struct TimedBody {
    inner: Incoming,
    timeout: Duration,
    sleep: Pin<Box<Sleep>>,
}

/// The origin stalled longer than its read timeout in the middle of a body.
#[derive(Debug, thiserror::Error)]
#[error("origin read timeout in the response body")]
pub struct BodyTimeout;

impl TimedBody {
    fn new(inner: Incoming, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            sleep: Box::pin(tokio::time::sleep(timeout)),
        }
    }
}

impl Body for TimedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(r) => {
                let deadline = tokio::time::Instant::now() + this.timeout;
                this.sleep.as_mut().reset(deadline);
                Poll::Ready(r.map(|r| r.map_err(Into::into)))
            }
            Poll::Pending => match this.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimeout)))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

use std::future::Future as _;
