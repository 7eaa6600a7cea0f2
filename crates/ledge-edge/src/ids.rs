//! Request ids (`X-Amz-Cf-Id`) and the edge's identity headers (`Via`, `X-Amz-Cf-Pop`).
//!
//! Ids are 40 pseudo-random bytes in URL-safe base64: 56 characters ending in `==`, like
//! CloudFront's. They come from a per-thread xorshift generator seeded from the OS's hash
//! randomness, so making one costs a few nanoseconds and takes no lock.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use base64::Engine;
use http::HeaderValue;

/// Identity of this edge node, as it appears in response and origin request headers.
#[derive(Debug, Clone)]
pub struct EdgeIdentity {
    /// `X-Amz-Cf-Pop` value.
    pub pop: HeaderValue,
    /// `Via` for HTTP/1.x viewers: `1.1 <node-id>.<edge-domain> (CloudFront)`.
    pub via_11: HeaderValue,
    /// `Via` for HTTP/1.0 viewers.
    pub via_10: HeaderValue,
    /// `Via` for HTTP/2 viewers: `2.0 <node-id>.<edge-domain> (CloudFront)`.
    pub via_20: HeaderValue,
    /// The Via entry the edge appends towards origins (always `1.1`).
    pub via_origin: String,
}

/// Why an identity could not be built.
#[derive(Debug, thiserror::Error)]
#[error("invalid --pop or --edge-domain: not usable in an HTTP header")]
pub struct IdentityError;

// === impl EdgeIdentity ===

impl EdgeIdentity {
    /// An identity for a POP name and edge domain; the node id is random per process.
    pub fn new(pop: &str, edge_domain: &str) -> Result<Self, IdentityError> {
        let node = hex_id();
        let host = format!("{node}.{edge_domain}");
        let v = |s: String| HeaderValue::from_str(&s).map_err(|_| IdentityError);
        Ok(Self {
            pop: HeaderValue::from_str(pop).map_err(|_| IdentityError)?,
            via_10: v(format!("1.0 {host} (CloudFront)"))?,
            via_11: v(format!("1.1 {host} (CloudFront)"))?,
            via_20: v(format!("2.0 {host} (CloudFront)"))?,
            via_origin: format!("1.1 {host} (CloudFront)"),
        })
    }
}

fn seed() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(0x9e37_79b9_7f4a_7c15);
    h.finish() | 1
}

fn hex_id() -> String {
    let mut s = String::with_capacity(32);
    for _ in 0..2 {
        s.push_str(&format!("{:016x}", seed()));
    }
    s
}

thread_local! {
    static STATE: Cell<u64> = Cell::new(seed());
}

fn next() -> u64 {
    STATE.with(|s| {
        // xorshift64*: fast, good enough for opaque ids.
        let mut x = s.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    })
}

/// A fresh request id as a header value.
pub fn request_id() -> HeaderValue {
    let mut raw = [0u8; 40];
    for chunk in raw.chunks_mut(8) {
        chunk.copy_from_slice(&next().to_le_bytes());
    }
    let mut out = [0u8; 56];
    let n = base64::engine::general_purpose::URL_SAFE
        .encode_slice(raw, &mut out)
        .unwrap_or(0);
    HeaderValue::from_bytes(&out[..n]).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_look_like_cloudfront_ones_and_differ() {
        let a = request_id();
        let b = request_id();
        assert_eq!(a.len(), 56);
        assert!(a.to_str().unwrap().ends_with("=="));
        assert_ne!(a, b);
        let id = EdgeIdentity::new("LOCAL1", "ledge.localhost").unwrap();
        assert!(id.via_11.to_str().unwrap().starts_with("1.1 "));
        assert!(id
            .via_20
            .to_str()
            .unwrap()
            .ends_with(".ledge.localhost (CloudFront)"));
    }
}
