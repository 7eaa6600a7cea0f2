//! A [`ConfigSnapshot`] compiled for serving: host routing tables, path matchers, resolved
//! policies and origins with their pooled clients, all computed once per snapshot so the
//! request path only looks things up.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use ledge_cache::CacheSettings;
use ledge_model::policy::CachePolicyConfig;
use ledge_model::snapshot::Distribution;
use ledge_model::{
    CacheBehavior, ConfigSnapshot, CustomErrorResponse, Method, OriginProtocolPolicy,
    OriginRequestPolicyConfig, ViewerProtocolPolicy,
};

use crate::forward::ForwardRules;
use crate::origin::{OriginClient, OriginClients};
use crate::pattern::PathPattern;

/// Why a snapshot could not be compiled (after it passed the model's validation).
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// A custom origin header is not a valid HTTP header.
    #[error("distribution {distribution}: origin {origin}: invalid custom header {name}")]
    InvalidHeader {
        /// Distribution id.
        distribution: String,
        /// Origin id.
        origin: String,
        /// Header name.
        name: String,
    },
    /// A behavior's cache settings cannot be resolved.
    #[error("distribution {distribution}: {source}")]
    Settings {
        /// Distribution id.
        distribution: String,
        /// The cause.
        source: ledge_cache::SettingsError,
    },
    /// An origin's domain name cannot be used in a URL or `Host` header.
    #[error("distribution {distribution}: origin {origin}: invalid domain name")]
    InvalidOrigin {
        /// Distribution id.
        distribution: String,
        /// Origin id.
        origin: String,
    },
}

/// Everything an edge serves at one version, ready for lookups.
#[derive(Debug)]
pub struct CompiledSnapshot {
    /// The snapshot's version.
    pub version: u64,
    /// The snapshot as loaded.
    pub source: Arc<ConfigSnapshot>,
    distributions: Vec<Arc<CompiledDistribution>>,
    exact: HashMap<Box<str>, usize>,
    /// Wildcard aliases by their suffix, dot included (`*.shop.test` → `.shop.test`).
    wildcard: HashMap<Box<str>, usize>,
}

/// One distribution, compiled.
#[derive(Debug)]
pub struct CompiledDistribution {
    /// Distribution id.
    pub id: Arc<str>,
    /// The distribution's own domain name (part of every cache key).
    pub domain_name: Arc<str>,
    /// Disabled distributions answer 403.
    pub enabled: bool,
    /// `/<DefaultRootObject>`, if set.
    pub default_root_object: Option<Box<str>>,
    /// Ordered behaviors, the default one last.
    pub behaviors: Vec<CompiledBehavior>,
    /// Origins by position; behaviors refer to them by index.
    pub origins: Vec<Arc<CompiledOrigin>>,
    /// Custom error responses as configured.
    pub custom_error_responses: Vec<CustomErrorResponse>,
}

/// One cache behavior, compiled.
#[derive(Debug)]
pub struct CompiledBehavior {
    /// `None` for the default behavior (matches everything).
    pub pattern: Option<PathPattern>,
    /// The behavior as configured.
    pub config: Arc<CacheBehavior>,
    /// Index into the distribution's origins.
    pub origin: usize,
    /// Which schemes viewers may use.
    pub viewer_protocol_policy: ViewerProtocolPolicy,
    allowed: u8,
    cached: u8,
    /// The resolved cache policy, when the behavior has one.
    pub cache_policy: Option<Arc<CachePolicyConfig>>,
    /// The resolved origin request policy, when the behavior has one.
    pub origin_request_policy: Option<Arc<OriginRequestPolicyConfig>>,
    /// What reaches the origin.
    pub forward: ForwardRules,
    /// The cache's view of the behavior (key, TTLs, compression, error TTLs).
    pub cache_settings: CacheSettings,
}

/// One origin, compiled.
#[derive(Debug)]
pub struct CompiledOrigin {
    /// Origin id.
    pub id: Box<str>,
    /// Host name or IP.
    pub domain_name: Box<str>,
    /// Prefix for every path ("" or "/dir").
    pub origin_path: Box<str>,
    /// Added last to every origin request.
    pub custom_headers: Vec<(HeaderName, HeaderValue)>,
    /// Scheme choice.
    pub protocol_policy: OriginProtocolPolicy,
    /// HTTP port.
    pub http_port: u16,
    /// HTTPS port.
    pub https_port: u16,
    /// Total tries (connect failures; read timeouts for GET/HEAD).
    pub connection_attempts: u32,
    /// Bound on each response read (head, and each body gap).
    pub read_timeout: Duration,
    /// `Host` sent over HTTP (with `:port` when not 80).
    pub host_http: HeaderValue,
    /// `Host` sent over HTTPS (with `:port` when not 443).
    pub host_https: HeaderValue,
    /// The pooled client for this origin's connection settings.
    pub client: OriginClient,
}

// === impl CompiledSnapshot ===

impl CompiledSnapshot {
    /// Compiles a validated snapshot; origins get clients from `clients`.
    pub fn compile(
        snapshot: Arc<ConfigSnapshot>,
        clients: &OriginClients,
    ) -> Result<Self, CompileError> {
        let mut distributions = Vec::with_capacity(snapshot.distributions.len());
        let mut exact = HashMap::new();
        let mut wildcard = HashMap::new();
        for (i, d) in snapshot.distributions.iter().enumerate() {
            distributions.push(Arc::new(compile_distribution(&snapshot, d, clients)?));
            exact.insert(d.domain_name.to_ascii_lowercase().into_boxed_str(), i);
            for alias in &d.config.aliases {
                let alias = alias.to_ascii_lowercase();
                match alias.strip_prefix('*') {
                    Some(suffix) if suffix.starts_with('.') => {
                        wildcard.insert(suffix.into(), i);
                    }
                    _ => {
                        exact.insert(alias.into_boxed_str(), i);
                    }
                }
            }
        }
        Ok(Self {
            version: snapshot.version,
            source: snapshot,
            distributions,
            exact,
            wildcard,
        })
    }

    /// The distribution for a lower-cased host name without port: exact names first, then the
    /// most specific wildcard alias.
    pub fn route(&self, host: &str) -> Option<&Arc<CompiledDistribution>> {
        if let Some(i) = self.exact.get(host) {
            return self.distributions.get(*i);
        }
        if self.wildcard.is_empty() {
            return None;
        }
        // Try `.b.shop.test`, then `.shop.test`, then `.test`: the longest suffix wins.
        let mut rest = host;
        while let Some(dot) = rest.find('.') {
            let suffix = &host[host.len() - rest.len() + dot..];
            if dot > 0 || rest.len() != host.len() {
                if let Some(i) = self.wildcard.get(suffix) {
                    return self.distributions.get(*i);
                }
            }
            rest = &rest[dot + 1..];
        }
        None
    }

    /// The distribution with this id.
    pub fn distribution(&self, id: &str) -> Option<&Arc<CompiledDistribution>> {
        self.distributions.iter().find(|d| &*d.id == id)
    }

    /// All distributions.
    pub fn distributions(&self) -> &[Arc<CompiledDistribution>] {
        &self.distributions
    }
}

// === impl CompiledDistribution ===

impl CompiledDistribution {
    /// The behavior for a path: the first ordered one that matches, else the default.
    pub fn behavior(&self, path: &str) -> &CompiledBehavior {
        &self.behaviors[self.behavior_index(path)]
    }

    /// Index in [`Self::behaviors`] of the behavior for a path.
    pub fn behavior_index(&self, path: &str) -> usize {
        let last = self.behaviors.len() - 1;
        self.behaviors[..last]
            .iter()
            .position(|b| b.pattern.as_ref().is_some_and(|p| p.matches(path)))
            .unwrap_or(last)
    }

    /// The custom error response for a status, if any.
    pub fn custom_error_response(&self, status: u16) -> Option<&CustomErrorResponse> {
        self.custom_error_responses
            .iter()
            .find(|c| c.error_code == status)
    }
}

// === impl CompiledBehavior ===

impl CompiledBehavior {
    /// Whether the method is in `AllowedMethods`.
    pub fn allows(&self, method: &http::Method) -> bool {
        method_bit(method) & self.allowed != 0
    }

    /// Whether responses to the method are cached (`CachedMethods`).
    pub fn caches(&self, method: &http::Method) -> bool {
        method_bit(method) & self.cached != 0
    }
}

fn method_bit(m: &http::Method) -> u8 {
    match *m {
        http::Method::GET => 1,
        http::Method::HEAD => 2,
        http::Method::POST => 4,
        http::Method::PUT => 8,
        http::Method::PATCH => 16,
        http::Method::OPTIONS => 32,
        http::Method::DELETE => 64,
        _ => 0,
    }
}

fn bits(methods: &[Method]) -> u8 {
    methods.iter().fold(0, |acc, m| {
        acc | method_bit(&http::Method::from_bytes(m.as_str().as_bytes()).unwrap_or_default())
    })
}

fn compile_distribution(
    snapshot: &ConfigSnapshot,
    d: &Distribution,
    clients: &OriginClients,
) -> Result<CompiledDistribution, CompileError> {
    let c = &d.config;
    let mut origins = Vec::with_capacity(c.origins.len());
    for o in &c.origins {
        let cfg = o.custom_config();
        let bad = || CompileError::InvalidOrigin {
            distribution: d.id.clone(),
            origin: o.id.clone(),
        };
        let host = |port: u16, default: u16| {
            let v = if port == default {
                o.domain_name.clone()
            } else {
                format!("{}:{port}", o.domain_name)
            };
            HeaderValue::from_str(&v).map_err(|_| bad())
        };
        let mut custom_headers = Vec::new();
        for h in &o.custom_headers {
            let name = HeaderName::from_bytes(h.header_name.as_bytes());
            let value = HeaderValue::from_str(&h.header_value);
            match (name, value) {
                (Ok(n), Ok(v)) => custom_headers.push((n, v)),
                _ => {
                    return Err(CompileError::InvalidHeader {
                        distribution: d.id.clone(),
                        origin: o.id.clone(),
                        name: h.header_name.clone(),
                    })
                }
            }
        }
        let origin_path = o.origin_path.trim_end_matches('/');
        origins.push(Arc::new(CompiledOrigin {
            id: o.id.as_str().into(),
            domain_name: o.domain_name.as_str().into(),
            origin_path: if origin_path.is_empty() || origin_path.starts_with('/') {
                origin_path.into()
            } else {
                format!("/{origin_path}").into_boxed_str()
            },
            custom_headers,
            protocol_policy: cfg.origin_protocol_policy,
            http_port: cfg.http_port,
            https_port: cfg.https_port,
            connection_attempts: o.connection_attempts.clamp(1, 3),
            read_timeout: Duration::from_secs(cfg.origin_read_timeout.max(1)),
            host_http: host(cfg.http_port, 80)?,
            host_https: host(cfg.https_port, 443)?,
            client: clients.client(
                o.connection_timeout(),
                Duration::from_secs(cfg.origin_keepalive_timeout),
            ),
        }));
    }
    let mut behaviors = Vec::with_capacity(c.cache_behaviors.len() + 1);
    for b in c.behaviors() {
        let origin = c
            .origins
            .iter()
            .position(|o| o.id == b.target_origin_id)
            .unwrap_or(0);
        let cache_policy = b
            .cache_policy_id
            .as_deref()
            .and_then(|id| snapshot.cache_policy(id))
            .map(Arc::new);
        let origin_request_policy = b
            .origin_request_policy_id
            .as_deref()
            .and_then(|id| snapshot.origin_request_policy(id))
            .map(Arc::new);
        let cache_settings = CacheSettings::from_behavior(b, c, snapshot).map_err(|source| {
            CompileError::Settings {
                distribution: d.id.clone(),
                source,
            }
        })?;
        let forward =
            ForwardRules::new(b, cache_policy.as_deref(), origin_request_policy.as_deref());
        behaviors.push(CompiledBehavior {
            pattern: b.path_pattern.as_deref().map(PathPattern::new),
            config: Arc::new(b.clone()),
            origin,
            viewer_protocol_policy: b.viewer_protocol_policy,
            allowed: bits(&b.allowed_methods),
            cached: bits(&b.cached_methods),
            cache_policy,
            origin_request_policy,
            forward,
            cache_settings,
        });
    }
    // The default behavior is last and matches everything.
    if let Some(last) = behaviors.last_mut() {
        last.pattern = None;
    }
    let root = c.default_root_object.trim_start_matches('/');
    Ok(CompiledDistribution {
        id: d.id.as_str().into(),
        domain_name: d.domain_name.to_ascii_lowercase().into(),
        enabled: c.enabled,
        default_root_object: (!root.is_empty()).then(|| format!("/{root}").into_boxed_str()),
        behaviors,
        origins,
        custom_error_responses: c.custom_error_responses.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap() -> CompiledSnapshot {
        let d = |id: &str, host: &str, aliases: &str| {
            format!(
                r#"{{"Id": "{id}", "DomainName": "{host}", "Config": {{"Aliases": [{aliases}],
                "Origins": [{{"Id": "o", "DomainName": "127.0.0.1"}}],
                "DefaultCacheBehavior": {{"TargetOriginId": "o", "ForwardedValues": {{}}}},
                "CacheBehaviors": [
                  {{"PathPattern": "images/*.jpg", "TargetOriginId": "o", "ForwardedValues": {{}}}},
                  {{"PathPattern": "images/*", "TargetOriginId": "o", "ForwardedValues": {{}}}},
                  {{"PathPattern": "*.gif", "TargetOriginId": "o", "ForwardedValues": {{}}}}],
                "Enabled": true}}}}"#
            )
        };
        let json = format!(
            r#"{{"Version": 1, "Distributions": [{}, {}, {}]}}"#,
            d(
                "E1",
                "a.ledge.localhost",
                r#""www.shop.test", "*.shop.test""#
            ),
            d(
                "E2",
                "b.ledge.localhost",
                r#""x.shop.test", "*.deep.shop.test""#
            ),
            d("E3", "C.ledge.localhost", "")
        );
        let s = ConfigSnapshot::from_json(json.as_bytes()).unwrap();
        CompiledSnapshot::compile(Arc::new(s), &OriginClients::for_test()).unwrap()
    }

    #[test]
    fn routes_by_name_alias_and_wildcard() {
        let s = snap();
        let id = |h: &str| s.route(h).map(|d| d.id.to_string());
        assert_eq!(id("a.ledge.localhost").as_deref(), Some("E1"));
        assert_eq!(id("c.ledge.localhost").as_deref(), Some("E3"));
        assert_eq!(id("www.shop.test").as_deref(), Some("E1"));
        assert_eq!(id("x.shop.test").as_deref(), Some("E2"));
        assert_eq!(id("y.shop.test").as_deref(), Some("E1"));
        assert_eq!(id("a.b.shop.test").as_deref(), Some("E1"));
        assert_eq!(id("q.deep.shop.test").as_deref(), Some("E2"));
        assert_eq!(id("shop.test"), None);
        assert_eq!(id("nope.test"), None);
        assert_eq!(id(".shop.test"), None);
    }

    #[test]
    fn behaviors_in_order() {
        let s = snap();
        let d = s.route("a.ledge.localhost").unwrap();
        let pat = |p: &str| d.behavior(p).config.path_pattern.clone();
        assert_eq!(pat("/images/sample.gif").as_deref(), Some("images/*"));
        assert_eq!(pat("/images/a/b.jpg").as_deref(), Some("images/*.jpg"));
        assert_eq!(pat("/x.gif").as_deref(), Some("*.gif"));
        assert_eq!(pat("/x.png"), None);
    }
}
