//! Viewer listeners: HTTP/1.1 on plain TCP, HTTP/2 and HTTP/1.1 (by ALPN) over TLS.
//!
//! Each accepted connection runs in its own task. Slow clients are cut off by the header read
//! timeout (HTTP/1) and the TLS handshake timeout; request heads hyper cannot hold get its own
//! 431, anything between the CloudFront limits and hyper's buffer gets the pipeline's 413.

use std::convert::Infallible;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::pipeline::{ConnInfo, Edge};
use crate::sniff::Sniff;
use crate::triggers::Triggers;

/// Connection-level settings of the listeners.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// How long a viewer may take to send a request head (HTTP/1), default 10 s.
    pub header_read_timeout: Duration,
    /// How long a TLS handshake may take, default 10 s.
    pub handshake_timeout: Duration,
    /// hyper's read buffer, which bounds a request head; above the 20,480-byte limit so the
    /// pipeline can answer 413 itself. Default 64 KiB.
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

/// Serves plain HTTP/1.1 on `listener` until the task is dropped.
pub async fn serve_http<T: Triggers>(
    listener: TcpListener,
    edge: Arc<Edge<T>>,
    settings: ServerSettings,
) {
    let builder = Arc::new(builder(&settings).http1_only());
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let edge = edge.clone();
        let builder = builder.clone();
        tokio::spawn(async move {
            let flag = Arc::new(AtomicBool::new(false));
            let conn = ConnInfo {
                peer,
                https: false,
                smuggling: Some(flag.clone()),
            };
            let svc = service_fn(move |req| {
                let edge = edge.clone();
                let conn = conn.clone();
                async move { Ok::<_, Infallible>(edge.handle(req, conn).await) }
            });
            if let Err(e) = builder
                .serve_connection(TokioIo::new(Sniff::new(stream, flag)), svc)
                .await
            {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
}

/// Serves HTTPS (h2 and http/1.1 by ALPN) on `listener` until the task is dropped.
pub async fn serve_https<T: Triggers>(
    listener: TcpListener,
    edge: Arc<Edge<T>>,
    tls: Arc<rustls::ServerConfig>,
    settings: ServerSettings,
) {
    let acceptor = TlsAcceptor::from(tls);
    let builder = Arc::new(builder(&settings));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let edge = edge.clone();
        let builder = builder.clone();
        let acceptor = acceptor.clone();
        let handshake_timeout = settings.handshake_timeout;
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
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
            let flag = Arc::new(AtomicBool::new(false));
            let conn = ConnInfo {
                peer,
                https: true,
                smuggling: Some(flag.clone()),
            };
            let svc = service_fn(move |req| {
                let edge = edge.clone();
                let conn = conn.clone();
                async move { Ok::<_, Infallible>(edge.handle(req, conn).await) }
            });
            if let Err(e) = builder
                .serve_connection(TokioIo::new(Sniff::new(tls, flag)), svc)
                .await
            {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
}
