//! The worker's end of the Unix socket, registered with the runtime for reading only.
//!
//! # Why not `tokio::net::UnixStream`
//! tokio registers a stream for readable and writable events at once. A Unix stream socket
//! signals its writer that there is room again every time the reader takes data, so each time
//! a worker read a request, the edge thread waiting for its answer was woken for nothing: two
//! process switches per invocation, and the worker preempted in the middle of its work. Writes
//! to a worker are small and almost never wait (see [`crate::lane`]), so this socket writes
//! directly and only registers for writability, on a second descriptor, while a write waits.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, Interest, ReadBuf};

/// Bytes read from the socket at most per call.
const READ_CHUNK: usize = 64 * 1024;

/// A connected worker socket, readable through [`AsyncRead`].
#[derive(Debug)]
pub(crate) struct WorkerSocket {
    fd: AsyncFd<UnixStream>,
}

impl WorkerSocket {
    /// Takes over an accepted connection, on the current runtime.
    pub(crate) fn new(stream: tokio::net::UnixStream) -> io::Result<WorkerSocket> {
        Self::register(stream.into_std()?)
    }

    fn register(stream: UnixStream) -> io::Result<WorkerSocket> {
        Ok(WorkerSocket {
            fd: register(stream, Interest::READABLE)?,
        })
    }

    /// The same socket registered with the current runtime instead (a second descriptor;
    /// dropping this one leaves the old runtime's driver, the socket stays open).
    pub(crate) fn rehome(&self) -> io::Result<WorkerSocket> {
        Self::register(self.fd.get_ref().try_clone()?)
    }

    /// Writes all of `data`, waiting for room only if the socket buffer is full.
    pub(crate) async fn write_all(&self, mut data: &[u8]) -> io::Result<()> {
        let mut waiting: Option<AsyncFd<UnixStream>> = None;
        while !data.is_empty() {
            match self.fd.get_ref().write(data) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => data = &data[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let room = match waiting.take() {
                        Some(room) => room,
                        None => register(self.fd.get_ref().try_clone()?, Interest::WRITABLE)?,
                    };
                    room.writable().await?.clear_ready();
                    waiting = Some(room);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Registers `stream` with the current runtime's driver for `interest` only.
fn register(stream: UnixStream, interest: Interest) -> io::Result<AsyncFd<UnixStream>> {
    stream.set_nonblocking(true)?;
    // tokio's only way to choose the interest is this unsafe registration (the safe one is
    // deprecated, see tokio-rs/tokio#8587).
    // SAFETY: `stream` owns its descriptor and the AsyncFd owns `stream` from here on, so the
    // descriptor stays open and the same for as long as it is registered.
    #[allow(unsafe_code)]
    let fd = unsafe { AsyncFd::register_with_interest(stream, interest) };
    Ok(fd?)
}

impl AsyncRead for WorkerSocket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.fd.poll_read_ready(cx))?;
            // Zeroed before reading (no unsafe): at most one socket buffer's worth, not all of
            // the room a caller reserved for a large frame.
            let unfilled = buf.initialize_unfilled_to(buf.remaining().min(READ_CHUNK));
            match guard.try_io(|fd| fd.get_ref().read(unfilled)) {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn writes_more_than_the_socket_buffer_and_reads_it_back() {
        let (a, b) = tokio::net::UnixStream::pair().unwrap();
        let a = WorkerSocket::new(a).unwrap();
        let mut b = WorkerSocket::new(b).unwrap();
        let data: Vec<u8> = (0..4 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
        let expected = data.clone();
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            while got.len() < expected.len() {
                let mut chunk = vec![0; 64 * 1024];
                let n = b.read(&mut chunk).await.unwrap();
                assert!(n > 0);
                got.extend_from_slice(&chunk[..n]);
            }
            assert_eq!(got, expected);
        });
        a.write_all(&data).await.unwrap();
        reader.await.unwrap();
    }

    #[tokio::test]
    async fn a_rehomed_socket_is_the_same_connection_and_sees_the_close() {
        let (a, b) = tokio::net::UnixStream::pair().unwrap();
        let a = WorkerSocket::new(a).unwrap().rehome().unwrap();
        let mut b = WorkerSocket::new(b).unwrap();
        a.write_all(b"ping").await.unwrap();
        let mut got = [0; 4];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping");
        drop(a);
        assert_eq!(b.read(&mut got).await.unwrap(), 0);
    }
}
