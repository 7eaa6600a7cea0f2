//! Viewer listeners: HTTP/1.1 on plain TCP, HTTP/2 and HTTP/1.1 (by ALPN) over TLS.
//!
//! Each accepted connection runs in its own task (on the thread [`crate::accept`] chose).
//! Slow clients are cut off by the header read
//! timeout (HTTP/1) and the TLS handshake timeout. HTTP/1 bytes go through [`Sniff`] first,
//! which refuses oversized and ambiguous request heads before hyper parses them.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;

pub use crate::accept::{bind_reuseport, spawn_workers, Accepted, Acceptor};
use crate::drain::{Drain, Guard};
use crate::pipeline::{ConnInfo, Edge};
use crate::sniff::{Sniff, Verdicts};
use crate::triggers::Triggers;

/// Connection-level settings of the listeners.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// How long a viewer may take to send a request head (HTTP/1), default 10 s.
    pub header_read_timeout: Duration,
    /// How long a TLS handshake may take, default 10 s.
    pub handshake_timeout: Duration,
    /// hyper's read buffer, which bounds a request head; above the 20,480-byte limit (which
    /// [`Sniff`] enforces before hyper reads a head). Default 64 KiB.
    pub max_buf_size: usize,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            max_buf_size: 64 * 1024,
        }
    }
}

fn builder(settings: &ServerSettings) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        .max_buf_size(settings.max_buf_size)
        .keep_alive(true);
    b.http2()
        .timer(TokioTimer::new())
        .max_header_list_size(64 * 1024)
        .max_concurrent_streams(256);
    b
}

/// Closes the listener, then waits for every connection (of every thread: the runtime must
/// outlive the tasks serving this thread's connections).
async fn close_and_wait(acceptor: Acceptor, guard: Guard, drain: &Drain) {
    drop(acceptor);
    drop(guard);
    drain.idle().await;
}

/// Serves plain HTTP/1.1 on `listener` until `drain` starts, then lets the open connections
/// finish.
pub async fn serve_http<T: Triggers>(
    mut acceptor: Acceptor,
    edge: Arc<Edge<T>>,
    settings: ServerSettings,
    drain: Arc<Drain>,
) {
    let guard = drain.listener();
    let builder = Arc::new(builder(&settings).http1_only());
    while let Some(Accepted { stream, peer, open }) = acceptor.accept(&drain).await {
        let edge = edge.clone();
        let builder = builder.clone();
        let (open, drain) = ((open, drain.connection()), drain.clone());
        tokio::spawn(async move {
            serve_connection(stream, peer, false, edge, &builder, &drain).await;
            drop(open);
        });
    }
    close_and_wait(acceptor, guard, &drain).await;
}

/// Serves HTTPS (h2 and http/1.1 by ALPN) on `listener` until `drain` starts, then lets the
/// open connections finish.
pub async fn serve_https<T: Triggers>(
    mut acceptor: Acceptor,
    edge: Arc<Edge<T>>,
    tls: Arc<rustls::ServerConfig>,
    settings: ServerSettings,
    drain: Arc<Drain>,
) {
    let guard = drain.listener();
    let tls = TlsAcceptor::from(tls);
    let builder = Arc::new(builder(&settings));
    while let Some(Accepted { stream, peer, open }) = acceptor.accept(&drain).await {
        let edge = edge.clone();
        let builder = builder.clone();
        let tls = tls.clone();
        let handshake_timeout = settings.handshake_timeout;
        let (open, drain) = ((open, drain.connection()), drain.clone());
        tokio::spawn(async move {
            let _open = open;
            let tls = match tokio::time::timeout(handshake_timeout, tls.accept(stream)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, %peer, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            serve_connection(tls, peer, true, edge, &builder, &drain).await;
        });
    }
    close_and_wait(acceptor, guard, &drain).await;
}

/// Serves one viewer connection (plain or TLS) through the pipeline until it closes; once
/// `drain` starts, the request in progress is finished and the connection closed.
async fn serve_connection<T, S>(
    stream: S,
    peer: SocketAddr,
    https: bool,
    edge: Arc<Edge<T>>,
    builder: &auto::Builder<TokioExecutor>,
    drain: &Drain,
) where
    T: Triggers,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let verdicts = Arc::new(Verdicts::default());
    let conn = ConnInfo {
        peer,
        https,
        sniff: Some(verdicts.clone()),
    };
    let limits = edge.limits();
    let stream = Sniff::new(
        stream,
        limits.max_head_bytes,
        limits.max_url_bytes,
        verdicts,
    );
    let svc = service_fn(move |req| {
        let edge = edge.clone();
        let conn = conn.clone();
        async move { Ok::<_, Infallible>(edge.handle(req, conn).await) }
    });
    let conn = builder.serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = drain.started() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, %peer, "connection ended with an error");
    }
}
