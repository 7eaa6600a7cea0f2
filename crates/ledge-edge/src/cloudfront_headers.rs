//! The request headers CloudFront generates about the viewer (lambda-edge.md §6.1): added after
//! viewer-request when a behavior's cache policy, origin request policy or legacy forwarded
//! headers name them, so that they reach the cache key, origin-facing functions and the
//! origin, replacing any the viewer sent under the same name.
//!
//! Not generated: the geo headers (`CloudFront-Viewer-Country` …, no location data here, as
//! for requests from inside AWS), ASN, TLS details, JA3 and the header order and count.

use std::net::SocketAddr;
use std::sync::OnceLock;

use http::header::{HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use http::Version;

/// One generated header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloudFrontHeader {
    /// `CloudFront-Forwarded-Proto`: `http` or `https`.
    ForwardedProto,
    /// `CloudFront-Is-Desktop-Viewer`.
    IsDesktop,
    /// `CloudFront-Is-Mobile-Viewer`.
    IsMobile,
    /// `CloudFront-Is-Tablet-Viewer`.
    IsTablet,
    /// `CloudFront-Is-SmartTV-Viewer`.
    IsSmartTv,
    /// `CloudFront-Is-Android-Viewer`.
    IsAndroid,
    /// `CloudFront-Is-IOS-Viewer`.
    IsIos,
    /// `CloudFront-Viewer-Http-Version`: `1.0`, `1.1` or `2.0`.
    ViewerHttpVersion,
    /// `CloudFront-Viewer-Address`: the viewer's `ip:port`.
    ViewerAddress,
}

const ALL: [CloudFrontHeader; 9] = [
    CloudFrontHeader::ForwardedProto,
    CloudFrontHeader::IsDesktop,
    CloudFrontHeader::IsMobile,
    CloudFrontHeader::IsTablet,
    CloudFrontHeader::IsSmartTv,
    CloudFrontHeader::IsAndroid,
    CloudFrontHeader::IsIos,
    CloudFrontHeader::ViewerHttpVersion,
    CloudFrontHeader::ViewerAddress,
];

/// What the generated headers are computed from.
#[derive(Debug, Clone, Copy)]
pub struct Viewer {
    version: Version,
    peer: SocketAddr,
    https: bool,
    device: Device,
}

impl Viewer {
    /// The viewer of a request with these headers (its `User-Agent` read once).
    pub fn new(headers: &HeaderMap, version: Version, peer: SocketAddr, https: bool) -> Viewer {
        Viewer {
            version,
            peer,
            https,
            device: Device::of(headers.get(USER_AGENT)),
        }
    }
}

impl CloudFrontHeader {
    /// The header's name.
    pub fn name(self) -> HeaderName {
        // Built once from the keys (valid tokens by construction): a custom `HeaderName`
        // made per request would allocate.
        static NAMES: OnceLock<Vec<HeaderName>> = OnceLock::new();
        let names = NAMES.get_or_init(|| {
            ALL.iter()
                .map(|h| {
                    HeaderName::from_bytes(h.key().as_bytes())
                        .unwrap_or(HeaderName::from_static("cloudfront-unknown"))
                })
                .collect()
        });
        names[self as usize].clone()
    }

    /// The name as CloudFront spells it (an event's `key`).
    pub fn key(self) -> &'static str {
        match self {
            Self::ForwardedProto => "CloudFront-Forwarded-Proto",
            Self::IsDesktop => "CloudFront-Is-Desktop-Viewer",
            Self::IsMobile => "CloudFront-Is-Mobile-Viewer",
            Self::IsTablet => "CloudFront-Is-Tablet-Viewer",
            Self::IsSmartTv => "CloudFront-Is-SmartTV-Viewer",
            Self::IsAndroid => "CloudFront-Is-Android-Viewer",
            Self::IsIos => "CloudFront-Is-IOS-Viewer",
            Self::ViewerHttpVersion => "CloudFront-Viewer-Http-Version",
            Self::ViewerAddress => "CloudFront-Viewer-Address",
        }
    }

    /// The generated header a (policy-listed) name stands for, in any case.
    pub fn from_name(name: &str) -> Option<Self> {
        ALL.into_iter().find(|h| h.key().eq_ignore_ascii_case(name))
    }

    /// The value for this viewer.
    pub fn value(self, viewer: &Viewer) -> HeaderValue {
        let flag = |on: bool| HeaderValue::from_static(if on { "true" } else { "false" });
        let device = || viewer.device;
        match self {
            Self::ForwardedProto => {
                HeaderValue::from_static(if viewer.https { "https" } else { "http" })
            }
            Self::IsDesktop => flag(device().desktop()),
            Self::IsMobile => flag(device().mobile),
            Self::IsTablet => flag(device().tablet),
            Self::IsSmartTv => flag(device().smart_tv),
            Self::IsAndroid => flag(device().android),
            Self::IsIos => flag(device().ios),
            Self::ViewerHttpVersion => HeaderValue::from_static(match viewer.version {
                Version::HTTP_09 => "0.9",
                Version::HTTP_10 => "1.0",
                Version::HTTP_2 => "2.0",
                Version::HTTP_3 => "3.0",
                _ => "1.1",
            }),
            Self::ViewerAddress => {
                let addr = format!("{}:{}", viewer.peer.ip(), viewer.peer.port());
                HeaderValue::from_str(&addr).unwrap_or(HeaderValue::from_static("0.0.0.0:0"))
            }
        }
    }
}

/// The generated headers a list of policy header names asks for, without repeats.
pub fn listed<'a>(names: impl IntoIterator<Item = &'a String>) -> Vec<CloudFrontHeader> {
    let mut out = Vec::new();
    for h in names
        .into_iter()
        .filter_map(|n| CloudFrontHeader::from_name(n))
    {
        if !out.contains(&h) {
            out.push(h);
        }
    }
    out
}

/// Sets the generated headers in `headers`, replacing the viewer's of the same names.
pub fn add(
    headers: &mut HeaderMap,
    wanted: &[CloudFrontHeader],
    version: Version,
    peer: SocketAddr,
    https: bool,
) {
    if wanted.is_empty() {
        return;
    }
    let viewer = Viewer::new(headers, version, peer, https);
    for h in wanted {
        headers.insert(h.name(), h.value(&viewer));
    }
}

/// The device classes CloudFront derives from a `User-Agent` (several may hold at once: some
/// tablets are mobile too).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Device {
    mobile: bool,
    tablet: bool,
    smart_tv: bool,
    android: bool,
    ios: bool,
}

impl Device {
    fn of(user_agent: Option<&HeaderValue>) -> Device {
        let Some(ua) = user_agent.and_then(|v| v.to_str().ok()) else {
            return Device::default();
        };
        let has = |s: &str| ua.contains(s);
        let android = has("Android");
        let ios = has("iPhone") || has("iPad") || has("iPod");
        let smart_tv = [
            "SmartTV", "SMART-TV", "Smart-TV", "GoogleTV", "AppleTV", "BRAVIA", "Roku", "HbbTV",
            "Web0S", "Tizen",
        ]
        .iter()
        .any(|s| has(s));
        let tablet = has("iPad")
            || has("Tablet")
            || (android && !has("Mobile"))
            || has("Kindle")
            || has("Silk");
        let mobile = !smart_tv
            && (has("Mobi")
                || has("iPhone")
                || has("iPod")
                || (android && has("Mobile"))
                || has("Windows Phone"));
        Device {
            mobile,
            tablet: tablet && !smart_tv,
            smart_tv,
            android,
            ios,
        }
    }

    /// Neither mobile, tablet nor a TV.
    fn desktop(self) -> bool {
        !(self.mobile || self.tablet || self.smart_tv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(ua: &str) -> Device {
        Device::of(Some(&HeaderValue::from_str(ua).unwrap()))
    }

    #[test]
    fn names_are_the_keys_in_lower_case() {
        for (i, h) in ALL.into_iter().enumerate() {
            assert_eq!(h as usize, i);
            assert_eq!(h.name().as_str(), h.key().to_ascii_lowercase());
            assert_eq!(CloudFrontHeader::from_name(h.key()), Some(h));
        }
    }

    #[test]
    fn devices_from_user_agents() {
        let iphone = device("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148");
        assert!(iphone.mobile && iphone.ios && !iphone.tablet && !iphone.desktop());
        let ipad = device(
            "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
        );
        assert!(ipad.tablet && ipad.ios);
        let pixel = device("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/120.0 Mobile Safari/537.36");
        assert!(pixel.mobile && pixel.android && !pixel.tablet);
        let tab = device("Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 Chrome/120.0 Safari/537.36");
        assert!(tab.tablet && tab.android && !tab.mobile);
        let tv = device("Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 SamsungBrowser/4.0 TV Safari/537.36");
        assert!(tv.smart_tv && !tv.desktop() && !tv.mobile);
        let desktop =
            device("Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0");
        assert!(desktop.desktop() && !desktop.android);
        assert!(Device::of(None).desktop());
    }

    #[test]
    fn listed_names_in_any_case_and_added_over_the_viewers() {
        let names: Vec<String> = [
            "CloudFront-Is-Mobile-Viewer",
            "x-other",
            "cloudfront-forwarded-proto",
            "CLOUDFRONT-IS-MOBILE-VIEWER",
            "CloudFront-Viewer-Country",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let wanted = listed(&names);
        assert_eq!(
            wanted,
            [CloudFrontHeader::IsMobile, CloudFrontHeader::ForwardedProto]
        );
        let mut h = HeaderMap::new();
        h.insert(
            "cloudfront-is-mobile-viewer",
            HeaderValue::from_static("spoofed"),
        );
        h.insert(USER_AGENT, HeaderValue::from_static("curl/8.4.0"));
        let peer: SocketAddr = "203.0.113.9:4321".parse().unwrap();
        add(&mut h, &wanted, Version::HTTP_11, peer, true);
        assert_eq!(h["cloudfront-is-mobile-viewer"], "false");
        assert_eq!(h["cloudfront-forwarded-proto"], "https");
        let v = Viewer::new(&h, Version::HTTP_2, peer, false);
        assert_eq!(
            CloudFrontHeader::ViewerAddress.value(&v),
            "203.0.113.9:4321"
        );
        assert_eq!(CloudFrontHeader::ViewerHttpVersion.value(&v), "2.0");
    }
}
