//! The framed protocol between ledge and a worker's bootstrap, over a Unix socket.
//!
//! ledge → worker: `u32 LE length`, then `{"id":…,"timeout":<ms>,"event":<event>}`.
//! The event bytes are spliced in as they are, never parsed and re-serialised here. The
//! timeout is relative: a worker may find a request already waiting when it finishes the one
//! before (see [`crate::lane`]), and the invocation's clock starts when it takes it.
//!
//! worker → ledge: `u32 LE length`, then `u8 kind`, `u32 LE max RSS (KiB)`, `u32 LE duration
//! (µs, how long the worker ran the invocation)`, `u32 LE log length`, the log text, then the
//! body (JSON).

use std::io;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Init phase done; the worker waits for invocations.
pub(crate) const INIT_DONE: u8 = b'I';
/// Init phase failed; the body is Lambda's error document.
pub(crate) const INIT_ERROR: u8 = b'X';
/// The handler's result.
pub(crate) const RESULT: u8 = b'R';
/// The handler's error; the worker stays usable.
pub(crate) const ERROR: u8 = b'E';
/// An error that ends the worker (uncaught exception, out of memory).
pub(crate) const FATAL: u8 = b'F';

/// One frame from a worker.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) kind: u8,
    pub(crate) max_rss_kib: u32,
    /// How long the worker ran the invocation (µs; 0 for frames outside one).
    pub(crate) duration_us: u32,
    pub(crate) logs: Bytes,
    pub(crate) body: Bytes,
}

/// Why a frame could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The socket closed or failed: the worker is gone.
    Closed,
    /// The frame is larger than allowed.
    TooLarge,
    /// The bytes do not form a frame.
    Garbage,
}

impl From<io::Error> for ReadError {
    fn from(_: io::Error) -> Self {
        ReadError::Closed
    }
}

/// Encodes an invocation request.
pub(crate) fn encode_request(request_id: &str, timeout_ms: u64, event: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(64 + request_id.len() + event.len());
    buf.extend_from_slice(&[0; 4]);
    buf.extend_from_slice(b"{\"id\":\"");
    buf.extend_from_slice(request_id.as_bytes());
    buf.extend_from_slice(b"\",\"timeout\":");
    buf.extend_from_slice(itoa_u64(timeout_ms).as_bytes());
    buf.extend_from_slice(b",\"event\":");
    buf.extend_from_slice(event);
    buf.push(b'}');
    let len = (buf.len() - 4) as u32;
    buf[..4].copy_from_slice(&len.to_le_bytes());
    buf
}

struct Digits {
    buf: [u8; 20],
    start: usize,
}

impl Digits {
    fn as_bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

fn itoa_u64(mut n: u64) -> Digits {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    Digits { buf, start: i }
}

/// Reads one reply frame, buffering any extra bytes in `buf` for the next call.
pub(crate) async fn read_reply<R: AsyncRead + Unpin>(
    stream: &mut R,
    buf: &mut BytesMut,
    max_len: usize,
) -> Result<Reply, ReadError> {
    loop {
        if buf.len() >= 4 {
            let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
            if len > max_len {
                return Err(ReadError::TooLarge);
            }
            if len < 13 {
                return Err(ReadError::Garbage);
            }
            if buf.len() >= 4 + len {
                // Copied out rather than split off: the buffer stays ours alone, and is reused
                // for the next frame instead of a new allocation per reply.
                let mut frame = Bytes::copy_from_slice(&buf[4..4 + len]);
                buf.advance(4 + len);
                let kind = frame.get_u8();
                let max_rss_kib = frame.get_u32_le();
                let duration_us = frame.get_u32_le();
                let log_len = frame.get_u32_le() as usize;
                if log_len > frame.len()
                    || !matches!(kind, INIT_DONE | INIT_ERROR | RESULT | ERROR | FATAL)
                {
                    return Err(ReadError::Garbage);
                }
                let logs = frame.split_to(log_len);
                return Ok(Reply {
                    kind,
                    max_rss_kib,
                    duration_us,
                    logs,
                    body: frame,
                });
            }
            buf.reserve(4 + len - buf.len());
        } else {
            buf.reserve(8 * 1024);
        }
        if stream.read_buf(buf).await? == 0 {
            return Err(ReadError::Closed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_frame_splices_the_event() {
        let buf = encode_request("abc", 3_000, br#"{"a":1}"#);
        let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        assert_eq!(len, buf.len() - 4);
        let v: serde_json::Value = serde_json::from_slice(&buf[4..]).unwrap();
        assert_eq!(v["id"], "abc");
        assert_eq!(v["timeout"], 3_000u64);
        assert_eq!(v["event"]["a"], 1);
        let buf = encode_request("x", 0, b"null");
        assert_eq!(&buf[4..], br#"{"id":"x","timeout":0,"event":null}"#);
    }

    #[tokio::test]
    async fn reply_frames_parse_and_garbage_is_rejected() {
        let mut frame = Vec::new();
        let logs = b"line\n";
        let body = b"{\"ok\":true}";
        frame.extend_from_slice(&((13 + logs.len() + body.len()) as u32).to_le_bytes());
        frame.push(RESULT);
        frame.extend_from_slice(&2048u32.to_le_bytes());
        frame.extend_from_slice(&1500u32.to_le_bytes());
        frame.extend_from_slice(&(logs.len() as u32).to_le_bytes());
        frame.extend_from_slice(logs);
        frame.extend_from_slice(body);
        let mut buf = BytesMut::new();
        let reply = read_reply(&mut &frame[..], &mut buf, 1 << 20)
            .await
            .unwrap();
        assert_eq!(reply.kind, RESULT);
        assert_eq!(reply.max_rss_kib, 2048);
        assert_eq!(reply.duration_us, 1500);
        assert_eq!(&reply.logs[..], logs);
        assert_eq!(&reply.body[..], body);

        let garbage = b"hello world, this is not a frame";
        let mut buf = BytesMut::new();
        assert!(read_reply(&mut &garbage[..], &mut buf, 1 << 20)
            .await
            .is_err());
    }
}
