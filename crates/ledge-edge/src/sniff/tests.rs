use std::collections::VecDeque;

use tokio::io::AsyncReadExt;

use super::*;

/// A reader that hands out the given pieces one read at a time, then EOF.
struct Pieces(VecDeque<Vec<u8>>);

impl AsyncRead for Pieces {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if let Some(mut p) = self.0.pop_front() {
            let n = p.len().min(buf.remaining());
            buf.put_slice(&p[..n]);
            if n < p.len() {
                self.0.push_front(p.split_off(n));
            }
        }
        Poll::Ready(Ok(()))
    }
}

fn sniff(pieces: Vec<Vec<u8>>) -> (Sniff<Pieces>, Arc<Verdicts>) {
    let v = Arc::new(Verdicts::default());
    (
        Sniff::new(
            Pieces(pieces.into_iter().filter(|p| !p.is_empty()).collect()),
            20_480,
            64,
            v.clone(),
        ),
        v,
    )
}

/// Reads through buffers of `size` bytes until EOF, an error, or a stall.
async fn drain(s: &mut Sniff<Pieces>, size: usize) -> (Vec<u8>, &'static str) {
    let mut out = Vec::new();
    let mut buf = vec![0; size];
    loop {
        match tokio::time::timeout(std::time::Duration::from_millis(50), s.read(&mut buf)).await {
            Ok(Ok(0)) => return (out, "eof"),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Ok(Err(_)) => return (out, "error"),
            Err(_) => return (out, "stall"),
        }
    }
}

const TWO: &[u8] =
    b"POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\nHost: x\r\n\r\n";

#[tokio::test]
async fn checked_requests_pass_unchanged_however_they_are_split() {
    for split in 0..=TWO.len() {
        for size in [5, 4096] {
            let (mut s, v) = sniff(vec![TWO[..split].to_vec(), TWO[split..].to_vec()]);
            let (out, end) = drain(&mut s, size).await;
            assert_eq!((out.as_slice(), end), (TWO, "eof"), "split {split}");
            assert_eq!((v.next_request().0, v.next_request().0), (None, None));
        }
    }
}

#[tokio::test]
async fn a_refused_head_becomes_the_stand_in_after_the_requests_before_it() {
    let long = format!(
        "GET /{} HTTP/1.1\r\n\r\nGET /never HTTP/1.1\r\n\r\n",
        "u".repeat(70)
    );
    let mut input = TWO.to_vec();
    input.extend_from_slice(long.as_bytes());
    for split in [1, 40, TWO.len() + 3, input.len() - 1] {
        let (mut s, v) = sniff(vec![input[..split].to_vec(), input[split..].to_vec()]);
        let (out, end) = drain(&mut s, 16).await;
        let mut want = TWO.to_vec();
        want.extend_from_slice(STAND_IN);
        assert_eq!(
            (String::from_utf8_lossy(&out), end),
            (String::from_utf8_lossy(&want), "stall"),
            "split {split}"
        );
        let got: Vec<_> = (0..4).map(|_| v.next_request().0).collect();
        assert_eq!(got, [None, None, Some(Refusal::UrlTooLong), None]);
    }
}

#[tokio::test]
async fn broken_body_framing_ends_the_stream_with_an_error() {
    let input = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n".to_vec();
    let (mut s, v) = sniff(vec![input.clone()]);
    let (out, end) = drain(&mut s, 4096).await;
    assert_eq!((out.as_slice(), end), (&input[..input.len() - 3], "error"));
    assert_eq!(v.next_request().0, None);
}

#[tokio::test]
async fn header_names_spelled_otherwise_than_canonical_case_are_kept_per_request() {
    let input: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nx-LOWER: 1\r\nX-Fine: 2\r\n\r\n\
GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHOST: x\r\n\r\n";
    for split in 0..=input.len() {
        let (mut s, v) = sniff(vec![input[..split].to_vec(), input[split..].to_vec()]);
        let (out, _) = drain(&mut s, 4096).await;
        assert_eq!(out, input);
        let names =
            |w: Option<WireNames>| w.map(|w| w.0.iter().map(|n| n.to_string()).collect::<Vec<_>>());
        assert_eq!(
            names(v.next_request().1),
            Some(vec!["x-LOWER".to_string()]),
            "split {split}"
        );
        assert_eq!(names(v.next_request().1), None);
        assert_eq!(names(v.next_request().1), Some(vec!["HOST".to_string()]));
    }
    let w = WireNames(vec!["x-LOWER".into()]);
    assert_eq!(w.spelling("X-Lower"), Some("x-LOWER"));
    assert_eq!(w.spelling("host"), None);
}
