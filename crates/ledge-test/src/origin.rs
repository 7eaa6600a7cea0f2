//! A fake origin on `127.0.0.1:0`: routes with chosen status, headers and body, optional
//! delays and mid-body failures; it counts hits and remembers requests per path.
//!
//! ```no_run
//! # async fn demo() {
//! let origin = ledge_test::origin::Origin::new()
//!     .route("/a", ledge_test::origin::Route::ok("body").header("cache-control", "max-age=60"))
//!     .run()
//!     .await;
//! assert_eq!(origin.hits("/a"), 0);
//! # }
//! ```

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

type Body = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

/// How the origin answers one path.
#[derive(Debug, Clone)]
pub struct Route {
    status: u16,
    headers: Vec<(String, String)>,
    body: Bytes,
    delay: Duration,
    body_delay: Duration,
    fail_mid_body: bool,
    chunked: bool,
    echo: bool,
    /// When above zero, `delay` applies only to the first this-many requests.
    delay_first: usize,
}

/// One request as the origin received it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Method.
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

#[derive(Debug, Default)]
struct State {
    routes: HashMap<String, Route>,
    hits: HashMap<String, usize>,
    seen: HashMap<String, Vec<Seen>>,
}

/// Builder of a fake origin.
#[derive(Debug, Default)]
pub struct Origin {
    state: State,
}

/// A running fake origin; stops when dropped.
#[derive(Debug, Clone)]
pub struct RunningOrigin {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    _task: Arc<AbortOnDrop>,
}

#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

// === impl Route ===

impl Route {
    /// 200 with this body.
    pub fn ok(body: impl Into<Bytes>) -> Self {
        Self::status(200, body)
    }

    /// This status and body.
    pub fn status(status: u16, body: impl Into<Bytes>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.into(),
            delay: Duration::ZERO,
            body_delay: Duration::ZERO,
            fail_mid_body: false,
            chunked: false,
            echo: false,
            delay_first: 0,
        }
    }

    /// Adds a response header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Waits this long before sending the response head.
    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }

    /// Waits `d` before the head, for the first `n` requests only.
    pub fn delay_first(mut self, n: usize, d: Duration) -> Self {
        self.delay = d;
        self.delay_first = n;
        self
    }

    /// Sends the head, then waits this long before the body.
    pub fn body_delay(mut self, d: Duration) -> Self {
        self.body_delay = d;
        self
    }

    /// Announces the full length, sends half the body, then drops the connection.
    pub fn fail_mid_body(mut self) -> Self {
        self.fail_mid_body = true;
        self
    }

    /// Sends the body chunked (no `Content-Length`).
    pub fn chunked(mut self) -> Self {
        self.chunked = true;
        self
    }

    /// Answers with the request body.
    pub fn echo(mut self) -> Self {
        self.echo = true;
        self
    }
}

// === impl Origin ===

impl Origin {
    /// An origin with no routes (every path: 404 "not found").
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers `path` (no query) with `route`.
    pub fn route(mut self, path: &str, route: Route) -> Self {
        self.state.routes.insert(path.into(), route);
        self
    }

    /// Starts serving HTTPS (HTTP/1.1) on `127.0.0.1:0` with this certificate.
    pub async fn run_tls(self, cert: &crate::certs::SelfSigned) -> RunningOrigin {
        let acceptor = tokio_rustls::TlsAcceptor::from(cert.server_config());
        self.serve(Some(acceptor)).await
    }

    /// Starts serving on `127.0.0.1:0`.
    pub async fn run(self) -> RunningOrigin {
        self.serve(None).await
    }

    async fn serve(self, tls: Option<tokio_rustls::TlsAcceptor>) -> RunningOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind origin");
        let addr = listener.local_addr().expect("origin addr");
        let state = Arc::new(Mutex::new(self.state));
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let st = st.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(st.clone(), req));
                    let builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                            .http1_only();
                    match tls {
                        Some(acceptor) => {
                            if let Ok(s) = acceptor.accept(stream).await {
                                let _ = builder.serve_connection(TokioIo::new(s), svc).await;
                            }
                        }
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                        }
                    }
                });
            }
        });
        RunningOrigin {
            addr,
            state,
            _task: Arc::new(AbortOnDrop(task)),
        }
    }
}

async fn handle(
    state: Arc<Mutex<State>>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let path = parts.uri.path().to_string();
    let (route, hit) = {
        let mut s = state.lock().expect("origin state");
        let hit = {
            let h = s.hits.entry(path.clone()).or_default();
            *h += 1;
            *h
        };
        s.seen.entry(path.clone()).or_default().push(Seen {
            method: parts.method.to_string(),
            uri: parts
                .uri
                .path_and_query()
                .map_or("/".into(), |p| p.to_string()),
            headers: parts.headers.clone(),
            body: body.clone(),
        });
        (s.routes.get(&path).cloned(), hit)
    };
    let route = route.unwrap_or_else(|| Route::status(404, "not found"));
    if !route.delay.is_zero() && (route.delay_first == 0 || hit <= route.delay_first) {
        tokio::time::sleep(route.delay).await;
    }
    let payload = if route.echo { body } else { route.body.clone() };
    let mut resp =
        Response::builder().status(StatusCode::from_u16(route.status).unwrap_or(StatusCode::OK));
    for (n, v) in &route.headers {
        resp = resp.header(n.as_str(), v.as_str());
    }
    let delay = route.body_delay;
    let body: Body = if route.fail_mid_body {
        resp = resp.header("content-length", payload.len().to_string());
        let half = payload.slice(..payload.len() / 2);
        let mut b = Scripted::new(
            delay,
            vec![
                Ok(half),
                Err(std::io::Error::other("origin gives up mid-body")),
            ],
        );
        // Let the head and the first half go out before failing.
        b.gap = Duration::from_millis(100);
        BodyExt::boxed(b)
    } else if route.chunked || !delay.is_zero() {
        let mid = payload.len() / 2;
        BodyExt::boxed(Scripted::new(
            delay,
            vec![Ok(payload.slice(..mid)), Ok(payload.slice(mid..))],
        ))
    } else {
        BodyExt::boxed(http_body_util::Full::new(payload).map_err(|never| match never {}))
    };
    Ok(resp.body(body).unwrap_or_else(|_| Response::new(empty())))
}

fn empty() -> Body {
    BodyExt::boxed(http_body_util::Empty::new().map_err(|never| match never {}))
}

/// A body that waits once, then yields its chunks (or errors) in order.
struct Scripted {
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    gap: Duration,
    items: std::collections::VecDeque<Result<Bytes, std::io::Error>>,
}

impl Scripted {
    fn new(delay: Duration, items: Vec<Result<Bytes, std::io::Error>>) -> Self {
        Self {
            sleep: (!delay.is_zero()).then(|| Box::pin(tokio::time::sleep(delay))),
            gap: Duration::ZERO,
            items: items
                .into_iter()
                .filter(|i| i.as_ref().map_or(true, |b| !b.is_empty()))
                .collect(),
        }
    }
}

impl http_body::Body for Scripted {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if let Some(s) = self.sleep.as_mut() {
            if s.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.sleep = None;
        }
        let item = self.items.pop_front();
        if !self.gap.is_zero() && !self.items.is_empty() {
            self.sleep = Some(Box::pin(tokio::time::sleep(self.gap)));
        }
        Poll::Ready(item.map(|r| r.map(Frame::data)))
    }
}

// === impl RunningOrigin ===

impl RunningOrigin {
    /// How many requests reached `path`.
    pub fn hits(&self, path: &str) -> usize {
        let s = self.state.lock().expect("origin state");
        s.hits.get(path).copied().unwrap_or(0)
    }

    /// The requests that reached `path`, oldest first.
    pub fn seen(&self, path: &str) -> Vec<Seen> {
        let s = self.state.lock().expect("origin state");
        s.seen.get(path).cloned().unwrap_or_default()
    }

    /// The last request that reached `path`.
    pub fn last(&self, path: &str) -> Option<Seen> {
        self.seen(path).pop()
    }

    /// Replaces (or adds) the route of `path` while running.
    pub fn set_route(&self, path: &str, route: Route) {
        let mut s = self.state.lock().expect("origin state");
        s.routes.insert(path.into(), route);
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

/// An origin that answers every connection with bytes that are not HTTP, then closes.
pub async fn garbage() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"SPLAT \x00\x01 this is not http\r\n\r\n")
                    .await;
                let _ = s.shutdown().await;
            });
        }
    });
    (addr, task)
}

/// A port on which nothing listens (bound, then released).
pub async fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    l.local_addr().expect("addr").port()
}
