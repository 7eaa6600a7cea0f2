//! Accepting viewers: one listening socket per edge thread, connections spread evenly over
//! the threads.
//!
//! # Why connections are handed over
//! Each thread accepts on its own `SO_REUSEPORT` socket, and the kernel picks the socket by a
//! hash of the connection's addresses: with two connections and two threads, both land on one
//! thread half the time, and that thread serves them one after the other (and, with a
//! function, drives both its workers) while the other idles. So a thread that accepts a
//! connection while another thread has fewer open hands it to that thread, which registers it
//! with its own runtime. Once spread, a connection never changes threads again; a request
//! never does.
//!
//! Measured at two connections, in rounds interleaved with the code before (BENCHMARKS.md):
//! the added p50 of a no-op viewer-request function was lower in every round of one run
//! (median 165 against 185 µs) and the same in another (135–145 µs both). Keeping each thread
//! on a CPU of its own as well gave nothing more, and is not done.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::drain::Drain;

/// The threads serving one kind of listener (plain or TLS) and their open connections.
#[derive(Debug)]
struct Spread {
    seats: Vec<Seat>,
}

#[derive(Debug)]
struct Seat {
    open: AtomicUsize,
    inbox: mpsc::UnboundedSender<Handed>,
}

/// A connection on its way to another thread.
#[derive(Debug)]
struct Handed {
    stream: std::net::TcpStream,
    peer: SocketAddr,
    open: Open,
}

/// Counts one connection as open on its thread until dropped.
#[derive(Debug)]
pub struct Open {
    spread: Arc<Spread>,
    seat: usize,
}

impl Open {
    fn new(spread: &Arc<Spread>, seat: usize) -> Open {
        spread.seats[seat].open.fetch_add(1, Ordering::AcqRel);
        Open {
            spread: spread.clone(),
            seat,
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.spread.seats[self.seat]
            .open
            .fetch_sub(1, Ordering::AcqRel);
    }
}

impl Spread {
    /// The thread a new connection should go to: the one with the fewest open, this one when
    /// none has fewer than it.
    fn target(&self, me: usize) -> usize {
        let mine = self.seats[me].open.load(Ordering::Acquire);
        let (best, fewest) = self
            .seats
            .iter()
            .enumerate()
            .map(|(i, s)| (i, s.open.load(Ordering::Acquire)))
            .min_by_key(|&(i, open)| (open, i != me))
            .unwrap_or((me, mine));
        if fewest < mine {
            best
        } else {
            me
        }
    }
}

/// One thread's listener, and the connections other threads hand it.
#[derive(Debug)]
pub struct Acceptor {
    listener: TcpListener,
    seat: usize,
    spread: Arc<Spread>,
    inbox: mpsc::UnboundedReceiver<Handed>,
}

/// A viewer connection for this thread.
#[derive(Debug)]
pub struct Accepted {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    /// Keep while the connection is served.
    pub open: Open,
}

impl Acceptor {
    /// Accepts the next viewer for this thread, or `None` once `drain` started.
    pub async fn accept(&mut self, drain: &Drain) -> Option<Accepted> {
        loop {
            tokio::select! {
                r = self.listener.accept() => match r {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        if let Some(accepted) = self.place(stream, peer) {
                            return Some(accepted);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(handed) = self.inbox.recv() => match TcpStream::from_std(handed.stream) {
                    Ok(stream) => {
                        return Some(Accepted { stream, peer: handed.peer, open: handed.open });
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot take over a connection"),
                },
                _ = drain.started() => return None,
            }
        }
    }

    /// Keeps a connection this thread accepted, or hands it to a thread with fewer open.
    fn place(&self, stream: TcpStream, peer: SocketAddr) -> Option<Accepted> {
        let target = self.spread.target(self.seat);
        if target == self.seat {
            return Some(self.keep(stream, peer));
        }
        // Counted on its new thread at once, so that the next accept sees it there.
        let open = Open::new(&self.spread, target);
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "cannot hand over a connection");
                return None;
            }
        };
        match self.spread.seats[target]
            .inbox
            .send(Handed { stream, peer, open })
        {
            Ok(()) => None,
            // That thread is gone (shutting down): serve it here.
            Err(mpsc::error::SendError(h)) => {
                let stream = TcpStream::from_std(h.stream).ok()?;
                Some(self.keep(stream, peer))
            }
        }
    }

    fn keep(&self, stream: TcpStream, peer: SocketAddr) -> Accepted {
        Accepted {
            stream,
            peer,
            open: Open::new(&self.spread, self.seat),
        }
    }
}

/// Binds `addr` `n` times with `SO_REUSEPORT`, so that each edge thread accepts on its own
/// socket. With port 0 the first socket picks the port and the others join it.
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

/// Runs `serve` once per listener, each on its own thread with a single-threaded runtime
/// (thread per core: no work stealing or cross-thread wake-ups on the request path).
pub fn spawn_workers<F, Fut>(
    name: &str,
    listeners: Vec<std::net::TcpListener>,
    serve: F,
) -> std::io::Result<()>
where
    F: Fn(Acceptor) -> Fut + Send + Clone + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let (senders, receivers): (Vec<_>, Vec<_>) = listeners
        .iter()
        .map(|_| mpsc::unbounded_channel::<Handed>())
        .unzip();
    let spread = Arc::new(Spread {
        seats: senders
            .into_iter()
            .map(|inbox| Seat {
                open: AtomicUsize::new(0),
                inbox,
            })
            .collect(),
    });
    for (seat, (l, inbox)) in listeners.into_iter().zip(receivers).enumerate() {
        let serve = serve.clone();
        let spread = spread.clone();
        std::thread::Builder::new()
            .name(format!("{name}-{seat}"))
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
                        Ok(listener) => {
                            serve(Acceptor {
                                listener,
                                seat,
                                spread,
                                inbox,
                            })
                            .await
                        }
                        Err(e) => tracing::error!(error = %e, "cannot register a listener"),
                    }
                });
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spread(open: &[usize]) -> Arc<Spread> {
        Arc::new(Spread {
            seats: open
                .iter()
                .map(|&n| Seat {
                    open: AtomicUsize::new(n),
                    inbox: mpsc::unbounded_channel().0,
                })
                .collect(),
        })
    }

    #[test]
    fn a_connection_goes_to_the_thread_with_the_fewest_open() {
        assert_eq!(spread(&[0, 0]).target(0), 0, "a tie stays");
        assert_eq!(spread(&[1, 0]).target(0), 1);
        assert_eq!(spread(&[1, 1]).target(1), 1);
        assert_eq!(spread(&[3, 2, 1]).target(0), 2);
        assert_eq!(
            spread(&[3, 1, 1]).target(2),
            2,
            "a tie with this thread stays"
        );
    }

    #[test]
    fn open_counts_until_dropped() {
        let s = spread(&[0, 0]);
        let a = Open::new(&s, 1);
        assert_eq!(s.seats[1].open.load(Ordering::Acquire), 1);
        assert_eq!(s.target(1), 0);
        drop(a);
        assert_eq!(s.seats[1].open.load(Ordering::Acquire), 0);
    }

    #[test]
    fn connections_are_spread_evenly_over_the_threads() {
        use tokio::io::AsyncReadExt;
        let listeners = bind_reuseport(([127, 0, 0, 1], 0).into(), 2).unwrap();
        let addr = listeners[0].local_addr().unwrap();
        let drain = Drain::new();
        // (thread, true) when a connection opens there, (thread, false) when it closes.
        let (tx, rx) = std::sync::mpsc::channel::<(String, bool)>();
        let d = drain.clone();
        spawn_workers("spread-test", listeners, move |mut acceptor| {
            let (tx, drain) = (tx.clone(), d.clone());
            async move {
                let thread = std::thread::current().name().unwrap_or("").to_string();
                while let Some(Accepted {
                    mut stream, open, ..
                }) = acceptor.accept(&drain).await
                {
                    let _ = tx.send((thread.clone(), true));
                    let (tx, thread) = (tx.clone(), thread.clone());
                    tokio::spawn(async move {
                        let _ = stream.read(&mut [0u8; 1]).await;
                        drop(open);
                        let _ = tx.send((thread, false));
                    });
                }
            }
        })
        .unwrap();
        let next = || rx.recv_timeout(Duration::from_secs(10)).unwrap();
        // One after the other, so each lands where the kernel hashes it first (for a pair,
        // the same socket half the time) and the spreading alone evens them out.
        let mut clients = Vec::new();
        let mut threads = Vec::new();
        for _ in 0..6 {
            clients.push(std::net::TcpStream::connect(addr).unwrap());
            let (thread, opened) = next();
            assert!(opened);
            threads.push(thread);
        }
        let first = threads.iter().filter(|t| *t == "spread-test-0").count();
        assert_eq!(first, 3, "{threads:?}");
        // A closed connection frees its place: the next one goes to the thread it left.
        drop(clients.remove(0));
        assert_eq!(next(), (threads[0].clone(), false));
        clients.push(std::net::TcpStream::connect(addr).unwrap());
        assert_eq!(next(), (threads[0].clone(), true));
        drain.start();
    }
}
