//! Edge compression (§8.3): gzip (flate2) and brotli (the `brotli` crate), both pure Rust.

use std::io::Write;

use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, ETAG, VARY};
use http::{HeaderMap, HeaderValue, StatusCode};

use crate::key::NormalizedEncoding;
use crate::settings::CacheSettings;

/// Smallest body compressed (bytes).
pub const MIN_SIZE: usize = 1_000;
/// Largest body compressed (bytes).
pub const MAX_SIZE: usize = 10_000_000;

/// Brotli quality: 5 keeps compression of a 10 MB body near 100 ms with ratios close to gzip -9.
const BROTLI_QUALITY: u32 = 5;

/// A content coding the edge produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// `gzip`.
    Gzip,
    /// `br`.
    Br,
}

/// Media types CloudFront compresses (§8.3).
const TYPES: &[&str] = &[
    "application/dash+xml",
    "application/eot",
    "application/font",
    "application/font-sfnt",
    "application/javascript",
    "application/json",
    "application/opentype",
    "application/otf",
    "application/pkcs7-mime",
    "application/protobuf",
    "application/rss+xml",
    "application/truetype",
    "application/ttf",
    "application/vnd.apple.mpegurl",
    "application/vnd.mapbox-vector-tile",
    "application/vnd.ms-fontobject",
    "application/x-font-opentype",
    "application/x-font-truetype",
    "application/x-font-ttf",
    "application/x-httpd-cgi",
    "application/x-javascript",
    "application/x-mpegurl",
    "application/x-opentype",
    "application/x-otf",
    "application/x-perl",
    "application/x-ttf",
    "application/xhtml+xml",
    "application/xml",
    "font/eot",
    "font/opentype",
    "font/otf",
    "font/ttf",
    "image/svg+xml",
    "text/css",
    "text/csv",
    "text/html",
    "text/javascript",
    "text/js",
    "text/plain",
    "text/richtext",
    "text/tab-separated-values",
    "text/x-component",
    "text/x-java-source",
    "text/x-script",
    "text/xml",
    "vnd.apple.mpegurl",
];

// === impl Coding ===

impl Coding {
    /// The `Content-Encoding` token.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gzip => "gzip",
            Self::Br => "br",
        }
    }
}

/// Whether a media type (parameters ignored, case-insensitive) is compressible.
pub fn compressible_type(content_type: &str) -> bool {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    !media.is_empty() && TYPES.contains(&media.as_str())
}

/// The coding to compress this response with, if all of §8.3's conditions hold
/// (caching on, policy-enabled coding named by the viewer, no `Content-Encoding`, status
/// 200/403/404, size 1,000–10,000,000 bytes, a listed `Content-Type`). A `Content-Length`
/// that disagrees with the body disables compression; a missing one counts as the body length.
pub fn choose(
    settings: &CacheSettings,
    encoding: NormalizedEncoding,
    status: StatusCode,
    headers: &HeaderMap,
    body_len: usize,
) -> Option<Coding> {
    if !settings.compress || !settings.caching_enabled() {
        return None;
    }
    let coding = match encoding.preferred()? {
        "br" => Coding::Br,
        _ => Coding::Gzip,
    };
    if !matches!(status.as_u16(), 200 | 403 | 404) || headers.contains_key(CONTENT_ENCODING) {
        return None;
    }
    if let Some(cl) = headers.get(CONTENT_LENGTH) {
        let declared = cl.to_str().ok()?.trim().parse::<usize>().ok()?;
        if declared != body_len {
            return None;
        }
    }
    if !(MIN_SIZE..=MAX_SIZE).contains(&body_len) {
        return None;
    }
    let ct = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    compressible_type(ct).then_some(coding)
}

/// Compresses `body`.
pub fn encode(coding: Coding, body: &[u8]) -> std::io::Result<Bytes> {
    let mut out = Vec::with_capacity(body.len() / 3 + 64);
    match coding {
        Coding::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(&mut out, flate2::Compression::new(6));
            enc.write_all(body)?;
            enc.finish()?;
        }
        Coding::Br => {
            let mut enc = brotli::CompressorWriter::new(&mut out, 64 * 1024, BROTLI_QUALITY, 22);
            enc.write_all(body)?;
            enc.flush()?;
            drop(enc);
        }
    }
    Ok(Bytes::from(out))
}

/// Rewrites response headers for a compressed body of `len` bytes: `Content-Encoding`,
/// `Content-Length`, `Vary: Accept-Encoding` (added once), and a weakened `ETag` (§8.3).
pub fn rewrite_headers(headers: &mut HeaderMap, coding: Coding, len: usize) {
    headers.insert(CONTENT_ENCODING, HeaderValue::from_static(coding.as_str()));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    let has_ae = headers
        .get_all(VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim().eq_ignore_ascii_case("accept-encoding"));
    if !has_ae {
        headers.append(VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    if let Some(etag) = headers.get(ETAG).and_then(|e| e.to_str().ok()) {
        let etag = etag.trim();
        let weak = if etag.starts_with("W/\"") && etag.ends_with('"') && etag.len() >= 4 {
            Some(etag.to_string())
        } else if etag.starts_with('"') && etag.ends_with('"') && etag.len() >= 2 {
            Some(format!("W/{etag}"))
        } else {
            None
        };
        match weak.and_then(|w| HeaderValue::from_str(&w).ok()) {
            Some(w) => {
                headers.insert(ETAG, w);
            }
            None => {
                headers.remove(ETAG);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledge_model::policy::{managed_cache_policy, CACHING_OPTIMIZED};
    use std::io::Read;

    fn settings() -> CacheSettings {
        let mut s =
            CacheSettings::from_policy(&managed_cache_policy(CACHING_OPTIMIZED).unwrap(), None);
        s.compress = true;
        s
    }

    fn headers(ct: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
        h
    }

    #[test]
    fn type_list_is_sorted_for_review_and_matches_parameters() {
        assert!(compressible_type("text/html; charset=utf-8"));
        assert!(compressible_type("Application/JSON"));
        assert!(!compressible_type("image/png"));
        assert!(!compressible_type(""));
    }

    #[test]
    fn conditions_of_8_3() {
        let s = settings();
        let ok = StatusCode::OK;
        let h = headers("text/css");
        assert_eq!(
            choose(&s, NormalizedEncoding::BrGzip, ok, &h, 5000),
            Some(Coding::Br)
        );
        assert_eq!(
            choose(&s, NormalizedEncoding::Gzip, ok, &h, 5000),
            Some(Coding::Gzip)
        );
        assert_eq!(choose(&s, NormalizedEncoding::Identity, ok, &h, 5000), None);
        assert_eq!(choose(&s, NormalizedEncoding::Gzip, ok, &h, 999), None);
        assert_eq!(
            choose(&s, NormalizedEncoding::Gzip, ok, &h, 1000),
            Some(Coding::Gzip)
        );
        assert_eq!(
            choose(&s, NormalizedEncoding::Gzip, ok, &h, 10_000_001),
            None
        );
        assert_eq!(
            choose(
                &s,
                NormalizedEncoding::Gzip,
                StatusCode::NOT_FOUND,
                &h,
                5000
            ),
            Some(Coding::Gzip)
        );
        assert_eq!(
            choose(&s, NormalizedEncoding::Gzip, StatusCode::FOUND, &h, 5000),
            None
        );
        let mut enc = h.clone();
        enc.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        assert_eq!(choose(&s, NormalizedEncoding::Gzip, ok, &enc, 5000), None);
        let mut bad_len = h.clone();
        bad_len.insert(CONTENT_LENGTH, HeaderValue::from(4000));
        assert_eq!(
            choose(&s, NormalizedEncoding::Gzip, ok, &bad_len, 5000),
            None
        );
        assert_eq!(
            choose(
                &s,
                NormalizedEncoding::Gzip,
                ok,
                &headers("image/png"),
                5000
            ),
            None
        );
        let mut off = s.clone();
        off.compress = false;
        assert_eq!(choose(&off, NormalizedEncoding::Gzip, ok, &h, 5000), None);
    }

    #[test]
    fn gzip_and_br_round_trip_and_headers() {
        let body = "hello world ".repeat(500);
        let gz = encode(Coding::Gzip, body.as_bytes()).unwrap();
        let mut back = String::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut back)
            .unwrap();
        assert_eq!(back, body);
        let br = encode(Coding::Br, body.as_bytes()).unwrap();
        let mut back = Vec::new();
        brotli::Decompressor::new(&br[..], 4096)
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, body.as_bytes());
        assert!(br.len() < body.len() / 10);

        let mut h = headers("text/plain");
        h.insert(ETAG, HeaderValue::from_static("\"abc\""));
        rewrite_headers(&mut h, Coding::Br, br.len());
        assert_eq!(h[CONTENT_ENCODING], "br");
        assert_eq!(h[CONTENT_LENGTH], br.len().to_string().as_str());
        assert_eq!(h[VARY], "Accept-Encoding");
        assert_eq!(h[ETAG], "W/\"abc\"");
        h.insert(ETAG, HeaderValue::from_static("garbage"));
        rewrite_headers(&mut h, Coding::Br, 1);
        assert!(h.get(ETAG).is_none());
        assert_eq!(h.get_all(VARY).iter().count(), 1);
    }
}
