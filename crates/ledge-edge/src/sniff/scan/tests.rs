use super::*;

fn scanner() -> Scanner {
    Scanner::new(20_480, 8_192)
}

/// Scans `input` in one go, then again byte by byte: both must agree.
fn scan_all(input: &[u8]) -> (Scan, u64) {
    let mut one = scanner();
    let whole = one.scan(input);
    let mut each = scanner();
    let mut first = Scan::Clean;
    for b in input {
        let s = each.scan(std::slice::from_ref(b));
        if first == Scan::Clean {
            first = s;
        }
    }
    assert_eq!(whole, first, "split scanning disagrees on {input:?}");
    (whole, one.heads())
}

fn refusal(input: &[u8]) -> Option<Refusal> {
    match scan_all(input).0 {
        Scan::Refused { why, .. } => Some(why),
        _ => None,
    }
}

#[test]
fn pipelined_requests_with_bodies_are_framed() {
    let input = b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello\
POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nT: 1\r\n\r\n\
GET /c HTTP/1.0\r\n\r\n\r\nGET /d HTTP/1.1\r\nHost: a\r\n\r\nGET /e HTT";
    let mut s = scanner();
    assert_eq!(s.scan(input), Scan::Clean);
    assert_eq!(s.heads(), 4);
    let e = input.windows(6).position(|w| w == b"GET /e").unwrap() as u64;
    assert_eq!(s.unchecked_from(), Some(e));
    assert_eq!(scan_all(input), (Scan::Clean, 4));
}

#[test]
fn a_body_that_looks_like_a_head_is_a_body() {
    // The body contains a CL+TE head: it is data, not a request.
    let body = b"GET /x HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
    let mut input =
        format!("POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    input.extend_from_slice(body);
    input.extend_from_slice(b"GET /next HTTP/1.1\r\n\r\n");
    assert_eq!(scan_all(&input), (Scan::Clean, 2));
}

#[test]
fn smuggling_shapes_are_refused() {
    use Refusal::*;
    let cases: &[(&[u8], Refusal)] = &[
        (
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            ContentLengthAndTransferEncoding,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\ncontent-length: 0\r\n\r\n",
            ContentLengthAndTransferEncoding,
        ),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            BadContentLength,
        ),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
            BadContentLength,
        ),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\n",
            BadContentLength,
        ),
        (
            b"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n",
            BadContentLength,
        ),
        (
            b"POST / HTTP/1.1\r\nContent-Length:\r\n\r\n",
            BadContentLength,
        ),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            BadContentLength,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            BadTransferEncoding,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
            BadTransferEncoding,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: identity, chunked\r\n\r\n",
            BadTransferEncoding,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n",
            BadTransferEncoding,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            BadTransferEncoding,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n",
            BadHeader,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding\t: chunked\r\n\r\n",
            BadHeader,
        ),
        (
            b"POST / HTTP/1.1\r\n Transfer-Encoding: chunked\r\n\r\n",
            FoldedHeader,
        ),
        (
            b"POST / HTTP/1.1\r\nX: a\r\n Transfer-Encoding: chunked\r\n\r\n",
            FoldedHeader,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: ch\x0bunked\r\n\r\n",
            BadHeader,
        ),
        (
            b"POST / HTTP/1.1\r\nX: a\rTransfer-Encoding: chunked\r\n\r\n",
            BadHeader,
        ),
        (
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            TransferEncodingOnHttp10,
        ),
        (b"GET / HTTP/1.1\r\nno colon\r\n\r\n", BadHeader),
        (b"\x00\x01garbage\r\n\r\n", BadRequestLine),
        (b"GET  / HTTP/1.1\r\n\r\n", BadRequestLine),
        (b"GET /\r\n\r\n", BadRequestLine),
        (b"GET / HTTP/1.2\r\n\r\n", BadRequestLine),
        (b"PRI * HTTP/2.0\r\n\r\n", BadRequestLine), // only as a connection's first bytes
        (b"GET /caf\xe9 HTTP/1.1\r\n\r\n", TargetNotUtf8), // ISO-8859-1
        (b"GET /?q=\xe9x HTTP/1.1\r\n\r\n", TargetNotUtf8),
        (b"GET /\xc3 HTTP/1.1\r\n\r\n", TargetNotUtf8), // cut short
        (b"GET /\xc0\xaf HTTP/1.1\r\n\r\n", TargetNotUtf8), // overlong
        (b"GET /\xed\xa0\x80 HTTP/1.1\r\n\r\n", TargetNotUtf8), // a surrogate
        (b"GET /\xf4\x90\x80\x80 HTTP/1.1\r\n\r\n", TargetNotUtf8), // over U+10FFFF
    ];
    for (input, want) in cases {
        let mut input = input.to_vec();
        if input.starts_with(b"PRI") {
            input.splice(0..0, b"GET / HTTP/1.1\r\n\r\n".iter().copied());
        }
        assert_eq!(
            refusal(&input),
            Some(*want),
            "{}",
            String::from_utf8_lossy(&input)
        );
    }
}

#[test]
fn lenient_but_unambiguous_heads_pass() {
    for input in [
        &b"POST / HTTP/1.1\r\nTransfer-Encoding: Chunked \r\n\r\n0\r\n\r\n"[..],
        b"POST / HTTP/1.1\r\ntransfer-encoding:\tchunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\nContent-Length:  2 \nX-Content-Length: 1, 2\n\nab",
        b"\r\n\r\nGET / HTTP/1.1\r\nX-Transfer-Encoding: gzip\r\nTransfer-Encodings: x\r\n\r\n",
        b"GET /caf\xc3\xa9 HTTP/1.1\r\nX: \xff\r\n\r\n",
        b"GET /\xe2\x82\xac?\xf0\x9f\x98\x80=\xed\x9f\xbf HTTP/1.1\r\n\r\n",
    ] {
        assert_eq!(
            scan_all(input),
            (Scan::Clean, 1),
            "{}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn limits_are_exact() {
    let head = |total: usize| {
        let fixed = "GET / HTTP/1.1\r\nX: \r\n\r\n".len();
        format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(total - fixed)).into_bytes()
    };
    assert_eq!(head(20_480).len(), 20_480);
    assert_eq!(scan_all(&head(20_480)), (Scan::Clean, 1));
    assert_eq!(refusal(&head(20_481)), Some(Refusal::HeadTooLarge));
    let url = |n: usize| format!("GET /{} HTTP/1.1\r\n\r\n", "u".repeat(n - 1)).into_bytes();
    assert_eq!(scan_all(&url(8_192)), (Scan::Clean, 1));
    assert_eq!(refusal(&url(8_193)), Some(Refusal::UrlTooLong));
    // A refusal points at the refused head, after the heads that passed.
    let mut two = b"GET /ok HTTP/1.1\r\n\r\n".to_vec();
    two.extend_from_slice(&url(9_000));
    let mut s = scanner();
    match s.scan(&two) {
        Scan::Refused { at, why } => {
            assert_eq!((at, why, s.heads()), (20, Refusal::UrlTooLong, 1));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn broken_chunked_framing_is_reported_where_it_breaks() {
    let head = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (body, at) in [
        (&b"3\r\nabcX"[..], 6),
        (b"zz\r\n", 0),
        (b"3\nabc", 1),
        (b"11111111111111111\r\n", 16),
        (b"\r\n", 0),
    ] {
        let mut input = head.to_vec();
        input.extend_from_slice(body);
        let (got, _) = scan_all(&input);
        assert_eq!(
            got,
            Scan::Broken {
                at: (head.len() + at) as u64
            },
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn leading_zeros_in_chunk_sizes_are_fine() {
    let input = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
000000000000000000003\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n";
    assert_eq!(scan_all(input), (Scan::Clean, 2));
}

#[test]
fn an_http2_preface_passes_untouched() {
    let mut input = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    input.extend_from_slice(&[0, 0, 0x12, 4, 0, 0, 0, 0, 0, 0xff, b'\r', b'\n']);
    let mut s = scanner();
    assert_eq!(s.scan(&input), Scan::Clean);
    assert_eq!(s.unchecked_from(), None);
}

#[test]
fn the_target_check_agrees_with_std_on_utf8() {
    let valid = |bytes: &[u8]| {
        let mut u = Utf8::default();
        bytes.iter().all(|&b| u.push(b)) && u.complete()
    };
    let mut seq = Vec::with_capacity(3);
    for a in 0x80..=0xffu8 {
        for b in 0..=0xffu8 {
            seq.clear();
            seq.extend([a, b]);
            assert_eq!(valid(&seq), std::str::from_utf8(&seq).is_ok(), "{seq:02x?}");
            if (0xe0..=0xf4).contains(&a) {
                for c in [0x00, 0x7f, 0x80, 0x9f, 0xa0, 0xbf, 0xc0] {
                    seq.truncate(2);
                    seq.push(c);
                    // Three bytes after a four-byte lead are a valid start when one more
                    // continuation byte completes them.
                    let whole = if a >= 0xf0 {
                        std::str::from_utf8(&[a, b, c, 0x80]).is_ok()
                    } else {
                        std::str::from_utf8(&seq).is_ok()
                    };
                    let prefix_ok = {
                        let mut u = Utf8::default();
                        seq.iter().all(|&x| u.push(x))
                    };
                    assert_eq!(prefix_ok, whole, "{seq:02x?}");
                }
            }
        }
    }
}
