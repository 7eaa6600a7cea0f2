//! Checks the raw bytes of HTTP/1 requests before hyper parses them (§1 of the edge
//! semantics): heads over 20,480 bytes or targets over 8,192 bytes get 413, and heads whose
//! framing could be read two ways (request smuggling: CL+TE, two `Content-Length`s, a
//! `Transfer-Encoding` other than `chunked`, obfuscated header lines) get 400, both with
//! CloudFront's error page and a closed connection.
//!
//! Why here and not in the pipeline: hyper resolves or rejects these heads itself (it drops
//! `Content-Length` next to `Transfer-Encoding`, answers large heads with its own 431, and
//! bare 400s for malformed lines), so the parsed request no longer shows the problem.
//!
//! How: [`Sniff`] frames the stream with a [`Scanner`] (request heads, then `Content-Length`
//! or chunked bodies, so every head of a pipelined connection is checked). A head is handed
//! to hyper only once it is complete and checked; until then its bytes wait in `held`.
//! A refused head is replaced by a small stand-in request, and [`Verdicts`] tells the
//! pipeline which request number that is, so it answers that one with the refusal while the
//! requests before it are served normally. After the stand-in, hyper reads nothing more (what
//! the viewer still sends is dropped) until it closes the connection after the refusal, which
//! carries `Connection: close`. Bytes go straight into hyper's
//! buffer; copies happen only while a head arrives in pieces.

mod scan;

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub use scan::{Refusal, Scan, Scanner};

/// What hyper reads in place of a refused head: a request it accepts, with no body.
const STAND_IN: &[u8] = b"GET / HTTP/1.1\r\n\r\n";

/// What the sniff learnt about one connection's requests, shared between its [`Sniff`] and
/// the pipeline: refusals, and header names spelled otherwise than `Canonical-Case`.
#[derive(Debug, Default)]
pub struct Verdicts {
    /// The index of the refused request + 1; 0 while none was refused.
    refused: AtomicU64,
    /// Why it was refused (set before `refused`; at most one per connection).
    refusal: Mutex<Option<Refusal>>,
    /// Requests the pipeline has taken from this connection.
    taken: AtomicU64,
    /// `(request index, name)`, in order.
    spellings: Mutex<VecDeque<(u64, Box<str>)>>,
    /// Entries in `spellings`: most connections never have one, and their requests then do
    /// not take the lock.
    spelled: AtomicU64,
}

/// A request's header names as the viewer spelled them, where that is not `Canonical-Case`
/// (a request extension; events show header keys as on the wire, lambda-edge.md §2.4).
#[derive(Debug, Clone, Default)]
pub struct WireNames(Vec<Box<str>>);

impl WireNames {
    /// How the viewer spelled a header name (given in any case), when not `Canonical-Case`.
    pub fn spelling(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|n| n.eq_ignore_ascii_case(name))
            .map(|n| &**n)
    }
}

/// A stream whose incoming HTTP/1 requests are checked before they are read.
#[derive(Debug)]
pub struct Sniff<S> {
    inner: S,
    scanner: Scanner,
    verdicts: Arc<Verdicts>,
    /// Bytes read but not handed out: checked ones first (`ready` of them), then the start
    /// of a head not yet complete.
    held: Vec<u8>,
    ready: usize,
    end: End,
}

/// What the reader gets once no more requests may pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Still reading requests.
    Open,
    /// A head was refused: the stand-in, from this offset, then nothing.
    StandIn(usize),
    /// A body's framing broke: an error.
    Broken,
}

// === impl Verdicts ===

impl Verdicts {
    /// Called once for every request hyper hands the pipeline, in order: the refusal of its
    /// head, if it was refused.
    pub fn next_request(&self) -> (Option<Refusal>, Option<WireNames>) {
        let index = self.taken.fetch_add(1, Ordering::AcqRel);
        (self.refusal(index), self.take_spellings(index))
    }

    fn refusal(&self, index: u64) -> Option<Refusal> {
        if self.refused.load(Ordering::Acquire) != index + 1 {
            return None;
        }
        *self.refusal.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn take_spellings(&self, index: u64) -> Option<WireNames> {
        if self.spelled.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut all = self
            .spellings
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Entries of earlier requests are left over only if those requests never reached
        // the pipeline; they go too.
        let mut names = Vec::new();
        while all.front().is_some_and(|(i, _)| *i <= index) {
            let Some((i, name)) = all.pop_front() else {
                break;
            };
            self.spelled.fetch_sub(1, Ordering::AcqRel);
            if i == index {
                names.push(name);
            }
        }
        (!names.is_empty()).then_some(WireNames(names))
    }

    fn refuse(&self, index: u64, why: Refusal) {
        *self.refusal.lock().unwrap_or_else(PoisonError::into_inner) = Some(why);
        self.refused.store(index + 1, Ordering::Release);
    }
}

// === impl Sniff ===

impl<S> Sniff<S> {
    /// Wraps `inner`, refusing heads over `max_head` bytes and targets over `max_url` bytes;
    /// refusals are reported through `verdicts`.
    pub fn new(inner: S, max_head: usize, max_url: usize, verdicts: Arc<Verdicts>) -> Self {
        Self {
            inner,
            scanner: Scanner::new(max_head, max_url),
            verdicts,
            held: Vec::new(),
            ready: 0,
            end: End::Open,
        }
    }

    /// Frames the `n` bytes just read to the end of `buf`, keeping back what may not pass.
    fn check(&mut self, buf: &mut ReadBuf<'_>, before: usize) {
        let new_start = self.scanner.pos();
        let scan = self.scanner.scan(&buf.filled()[before..]);
        let spellings = self.scanner.take_spellings();
        if !spellings.is_empty() {
            let n = spellings.len() as u64;
            self.verdicts
                .spellings
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend(spellings);
            self.verdicts.spelled.fetch_add(n, Ordering::AcqRel);
        }
        let pass_until = match scan {
            Scan::Clean => self.scanner.unchecked_from(),
            Scan::Refused { at, why } => {
                self.verdicts.refuse(self.scanner.heads(), why);
                self.end = End::StandIn(0);
                Some(at)
            }
            Scan::Broken { at } => {
                self.end = End::Broken;
                Some(at)
            }
        };
        let keep = scan == Scan::Clean;
        if self.held.is_empty() {
            // The common case: whole requests, straight into hyper's buffer.
            let n = buf.filled().len() - before;
            let cut = pass_until.map_or(n, |at| offset(at, new_start));
            if keep {
                self.held.extend_from_slice(&buf.filled()[before + cut..]);
            }
            buf.set_filled(before + cut);
        } else {
            // A head arrived in pieces: gather it in `held`, hand it out once checked.
            let held_start = new_start - self.held.len() as u64;
            self.held.extend_from_slice(&buf.filled()[before..]);
            buf.set_filled(before);
            self.ready = pass_until.map_or(self.held.len(), |at| offset(at, held_start));
            if !keep {
                self.held.truncate(self.ready);
            }
        }
    }
}

/// `at - start` as an index (both stream offsets, `at` within what was just scanned).
fn offset(at: u64, start: u64) -> usize {
    usize::try_from(at.saturating_sub(start)).unwrap_or(usize::MAX)
}

impl<S: AsyncRead + Unpin> AsyncRead for Sniff<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            if this.ready > 0 {
                let n = this.ready.min(buf.remaining());
                buf.put_slice(&this.held[..n]);
                this.held.drain(..n);
                this.ready -= n;
                return Poll::Ready(Ok(()));
            }
            match this.end {
                End::Open => {}
                End::StandIn(from) if from < STAND_IN.len() => {
                    let n = (STAND_IN.len() - from).min(buf.remaining());
                    buf.put_slice(&STAND_IN[from..from + n]);
                    this.end = End::StandIn(from + n);
                    return Poll::Ready(Ok(()));
                }
                // hyper answers the stand-in with `Connection: close` and hangs up; nothing
                // after the refused head may reach it meanwhile.
                End::StandIn(_) => return this.discard(cx, buf),
                End::Broken => {
                    return Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "request body framing broken",
                    )))
                }
            }
            let before = buf.filled().len();
            ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
            if buf.filled().len() == before {
                // End of stream; an unfinished head never gets an answer.
                this.held.clear();
                return Poll::Ready(Ok(()));
            }
            this.check(buf, before);
            if buf.filled().len() > before {
                return Poll::Ready(Ok(()));
            }
        }
    }
}

impl<S: AsyncRead + Unpin> Sniff<S> {
    /// Reads and drops what the viewer sends after a refused head, so that closing the
    /// socket sends a FIN and not a reset that could destroy the refusal in flight. Never
    /// returns data; yields after a while so a fast sender cannot hold the task.
    fn discard(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        for _ in 0..16 {
            match Pin::new(&mut self.inner).poll_read(cx, buf) {
                Poll::Ready(Ok(())) if buf.filled().len() > before => buf.set_filled(before),
                // End of stream or an error: the answer is all that is left to do.
                Poll::Ready(_) | Poll::Pending => return Poll::Pending,
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
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
mod tests;
