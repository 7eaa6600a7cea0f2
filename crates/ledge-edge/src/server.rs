//! Viewer listeners: HTTP/1.1 on plain TCP, HTTP/2 and HTTP/1.1 (by ALPN) over TLS.
//!
//! Each accepted connection runs in its own task. Slow clients are cut off by the header read
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
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

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

/// Binds `addr` `n` times with `SO_REUSEPORT`, so that each worker thread accepts on its own
/// socket and the kernel spreads connections between them. With port 0 the first socket picks
/// the port and the others join it.
pub fn bind_reuseport(addr: SocketAddr, n: usize) -> std::io::Result<Vec<std::net::TcpListener>> {
    let first = bind_one(addr)?;
    let actual = first.local_addr()?;
    let mut all = vec![first];
    for _ in 1..n.max(1) {
        all.push(bind_one(actual)?);
    }
    Ok(all)
}

fn bind_one(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    Ok(s.into())
}

/// Runs one future per listener, each on its own thread with a single-threaded runtime
/// (thread per core: no work stealing or cross-thread wake-ups on the request path).
pub fn spawn_workers<F, Fut>(
    name: &str,
    listeners: Vec<std::net::TcpListener>,
    serve: F,
) -> std::io::Result<()>
where
    F: Fn(TcpListener) -> Fut + Send + Clone + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    for (i, l) in listeners.into_iter().enumerate() {
        let serve = serve.clone();
        std::thread::Builder::new()
            .name(format!("{name}-{i}"))
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot start a worker runtime");
                        return;
                    }
                };
                rt.block_on(async move {
                    match TcpListener::from_std(l) {
                        Ok(l) => serve(l).await,
                        Err(e) => tracing::error!(error = %e, "cannot register a listener"),
                    }
                });
            })?;
    }
    Ok(())
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

/// Accepts the next viewer, or `None` once `drain` started.
async fn accept(listener: &TcpListener, drain: &Drain) -> Option<(TcpStream, SocketAddr)> {
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    return Some((stream, peer));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = drain.started() => return None,
        }
    }
}

/// Closes the listener, then waits for every connection (of every worker: the runtime must
/// outlive the tasks serving this worker's connections).
async fn close_and_wait(listener: TcpListener, guard: Guard, drain: &Drain) {
    drop(listener);
    drop(guard);
    drain.idle().await;
}

/// Serves plain HTTP/1.1 on `listener` until `drain` starts, then lets the open connections
/// finish.
pub async fn serve_http<T: Triggers>(
    listener: TcpListener,
    edge: Arc<Edge<T>>,
    settings: ServerSettings,
    drain: Arc<Drain>,
) {
    let guard = drain.listener();
    let builder = Arc::new(builder(&settings).http1_only());
    while let Some((stream, peer)) = accept(&listener, &drain).await {
        let edge = edge.clone();
        let builder = builder.clone();
        let (open, drain) = (drain.connection(), drain.clone());
        tokio::spawn(async move {
            serve_connection(stream, peer, false, edge, &builder, &drain).await;
            drop(open);
        });
    }
    close_and_wait(listener, guard, &drain).await;
}

/// Serves HTTPS (h2 and http/1.1 by ALPN) on `listener` until `drain` starts, then lets the
/// open connections finish.
pub async fn serve_https<T: Triggers>(
    listener: TcpListener,
    edge: Arc<Edge<T>>,
    tls: Arc<rustls::ServerConfig>,
    settings: ServerSettings,
    drain: Arc<Drain>,
) {
    let guard = drain.listener();
    let acceptor = TlsAcceptor::from(tls);
    let builder = Arc::new(builder(&settings));
    while let Some((stream, peer)) = accept(&listener, &drain).await {
        let edge = edge.clone();
        let builder = builder.clone();
        let acceptor = acceptor.clone();
        let handshake_timeout = settings.handshake_timeout;
        let (open, drain) = (drain.connection(), drain.clone());
        tokio::spawn(async move {
            let _open = open;
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
            serve_connection(tls, peer, true, edge, &builder, &drain).await;
        });
    }
    close_and_wait(listener, guard, &drain).await;
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
