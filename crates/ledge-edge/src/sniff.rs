//! Detects request heads carrying both `Content-Length` and `Transfer-Encoding` on an HTTP/1
//! connection.
//!
//! hyper resolves such a request itself (it drops `Content-Length` and closes the connection
//! afterwards), so the pipeline cannot see the conflict in the parsed headers; CloudFront
//! refuses these requests with 400. This wrapper watches the bytes as they are read and raises
//! a flag the pipeline checks.
//!
//! # Limitations
//! Framing is approximated by lines: a request body that itself contains both header lines
//! followed by an empty line raises the flag too (the connection's next answer is then a 400).

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const CL: &[u8] = b"content-length:";
const TE: &[u8] = b"transfer-encoding:";

/// A stream whose incoming bytes are watched for CL+TE request heads.
#[derive(Debug)]
pub struct Sniff<S> {
    inner: S,
    flag: Arc<AtomicBool>,
    /// Bytes of the current line, lower-cased, up to `TE.len()`.
    line: [u8; 18],
    line_len: usize,
    /// Bytes seen in the current line (not capped).
    line_total: usize,
    seen_cl: bool,
    seen_te: bool,
}

impl<S> Sniff<S> {
    /// Wraps `inner`; `flag` is set when a CL+TE head goes by.
    pub fn new(inner: S, flag: Arc<AtomicBool>) -> Self {
        Self {
            inner,
            flag,
            line: [0; 18],
            line_len: 0,
            line_total: 0,
            seen_cl: false,
            seen_te: false,
        }
    }

    fn scan(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if b == b'\n' {
                let empty = self.line_total == 0 || (self.line_total == 1 && self.line[0] == b'\r');
                if empty {
                    if self.seen_cl && self.seen_te {
                        self.flag.store(true, Ordering::Relaxed);
                    }
                    self.seen_cl = false;
                    self.seen_te = false;
                } else {
                    let l = &self.line[..self.line_len];
                    if l.len() >= CL.len() && &l[..CL.len()] == CL {
                        self.seen_cl = true;
                    } else if l.len() >= TE.len() && &l[..TE.len()] == TE {
                        self.seen_te = true;
                    }
                }
                self.line_len = 0;
                self.line_total = 0;
                continue;
            }
            if self.line_len < self.line.len() {
                self.line[self.line_len] = b.to_ascii_lowercase();
                self.line_len += 1;
            }
            self.line_total += 1;
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Sniff<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &res {
            let this = &mut *self;
            this.scan(&buf.filled()[before..]);
        }
        res
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Sniff<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_cl_plus_te_in_one_head_only() {
        let flag = Arc::new(AtomicBool::new(false));
        let mut s = Sniff::new((), flag.clone());
        s.scan(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc");
        s.scan(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
        assert!(!flag.load(Ordering::Relaxed));
        s.scan(b"POST / HTTP/1.1\r\nContent-Len");
        s.scan(b"gth: 5\r\ntransfer-ENCODING: chunked\r\n\r\n");
        assert!(flag.load(Ordering::Relaxed));
    }
}
