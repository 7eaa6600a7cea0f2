//! The versioned configuration snapshot an edge serves.
//!
//! One snapshot holds everything an edge needs to serve every distribution it carries: the
//! distributions, the custom policies they name, the function versions they run, and the
//! invalidations to apply. The same JSON is read from `--config-file`, carried by the control
//! plane's feed, and kept on disk as the edge's last known good config.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::config::DistributionConfig;
use crate::policy::{
    managed_cache_policy, managed_origin_request_policy, CachePolicyConfig,
    OriginRequestPolicyConfig,
};

/// All distributions an edge serves, at one version.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConfigSnapshot {
    /// Increases with every change; an edge never goes back to a lower one.
    pub version: u64,
    /// The distributions, enabled or not.
    #[serde(default)]
    pub distributions: Vec<Distribution>,
    /// Custom cache policies the distributions name (managed ones are built in).
    #[serde(default)]
    pub cache_policies: Vec<NamedCachePolicy>,
    /// Custom origin request policies the distributions name.
    #[serde(default)]
    pub origin_request_policies: Vec<NamedOriginRequestPolicy>,
    /// Every function version an association names.
    #[serde(default)]
    pub functions: Vec<FunctionVersion>,
    /// Invalidations to apply; each is applied once, when first seen.
    #[serde(default)]
    pub invalidations: Vec<Invalidation>,
}

/// One distribution as the edge sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Distribution {
    /// CloudFront-style id, `E` + 13 characters.
    pub id: String,
    /// The host name viewers use: `<name>.<edge-domain>`.
    pub domain_name: String,
    /// The user's configuration.
    pub config: DistributionConfig,
}

/// A custom cache policy with its id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NamedCachePolicy {
    /// UUID.
    pub id: String,
    /// Settings.
    pub config: CachePolicyConfig,
}

/// A custom origin request policy with its id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NamedOriginRequestPolicy {
    /// UUID.
    pub id: String,
    /// Settings.
    pub config: OriginRequestPolicyConfig,
}

/// An immutable, published function version, as an edge needs it to run the code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FunctionVersion {
    /// Qualified ARN, ending in the version number.
    pub arn: String,
    /// Hex SHA-256 of the zip package; the package's name in the blob store.
    pub code_sha256: String,
    /// `nodejs20.x`, `python3.12` …
    pub runtime: String,
    /// `index.handler` …
    pub handler: String,
    /// Megabytes.
    #[serde(default = "default_memory")]
    pub memory_size: u32,
    /// Seconds.
    #[serde(default = "default_timeout")]
    pub timeout: u32,
}

/// Paths of one distribution to drop from the cache.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Invalidation {
    /// Invalidation id.
    pub id: String,
    /// Distribution it applies to.
    pub distribution_id: String,
    /// Exact paths, or prefixes ending in `*`.
    pub paths: Vec<String>,
}

/// Why a snapshot was refused.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The bytes are not a snapshot.
    #[error("not a valid config snapshot: {0}")]
    Parse(#[from] serde_json::Error),
    /// Two distributions share an id.
    #[error("distribution id {0} appears twice")]
    DuplicateId(String),
    /// Two distributions answer to one host name.
    #[error("host name {host} is claimed by both {first} and {second}")]
    DuplicateHost {
        /// The host name.
        host: String,
        /// First claimant.
        first: String,
        /// Second claimant.
        second: String,
    },
    /// A behavior names an origin the distribution lacks.
    #[error("distribution {distribution}: behavior targets unknown origin {origin}")]
    NoSuchOrigin {
        /// Distribution id.
        distribution: String,
        /// The missing origin id.
        origin: String,
    },
    /// A behavior names a policy that is neither managed nor in the snapshot.
    #[error("distribution {distribution}: unknown {kind} {id}")]
    NoSuchPolicy {
        /// Distribution id.
        distribution: String,
        /// Which kind of policy.
        kind: &'static str,
        /// The missing id.
        id: String,
    },
    /// An association names a function version the snapshot does not carry.
    #[error("distribution {distribution}: function {arn} is not in the snapshot")]
    NoSuchFunction {
        /// Distribution id.
        distribution: String,
        /// The missing ARN.
        arn: String,
    },
    /// A behavior is neither on a cache policy nor on legacy settings, or on both.
    #[error("distribution {distribution}: a behavior needs exactly one of CachePolicyId and ForwardedValues")]
    CacheSettings {
        /// Distribution id.
        distribution: String,
    },
}

// === impl ConfigSnapshot ===

impl ConfigSnapshot {
    /// Parses and validates a snapshot from its JSON form.
    pub fn from_json(bytes: &[u8]) -> Result<Self, SnapshotError> {
        let snapshot: Self = serde_json::from_slice(bytes)?;
        snapshot.validate()?;
        Ok(snapshot)
    }

    /// The JSON form, pretty-printed (it is also what operators read on disk).
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// The cache policy with this id: a custom one from the snapshot, or a managed one.
    pub fn cache_policy(&self, id: &str) -> Option<CachePolicyConfig> {
        self.cache_policies
            .iter()
            .find(|p| p.id == id)
            .map(|p| p.config.clone())
            .or_else(|| managed_cache_policy(id))
    }

    /// The origin request policy with this id: custom or managed.
    pub fn origin_request_policy(&self, id: &str) -> Option<OriginRequestPolicyConfig> {
        self.origin_request_policies
            .iter()
            .find(|p| p.id == id)
            .map(|p| p.config.clone())
            .or_else(|| managed_origin_request_policy(id))
    }

    /// The function version with this qualified ARN.
    pub fn function(&self, arn: &str) -> Option<&FunctionVersion> {
        self.functions.iter().find(|f| f.arn == arn)
    }

    /// Checks the references inside the snapshot, so an edge never serves a half-broken one.
    pub fn validate(&self) -> Result<(), SnapshotError> {
        let mut ids = HashSet::new();
        let mut hosts: HashMap<String, &str> = HashMap::new();
        for d in &self.distributions {
            if !ids.insert(d.id.as_str()) {
                return Err(SnapshotError::DuplicateId(d.id.clone()));
            }
            let names = std::iter::once(&d.domain_name).chain(&d.config.aliases);
            for host in names {
                let host = host.to_ascii_lowercase();
                if let Some(first) = hosts.insert(host.clone(), &d.id) {
                    return Err(SnapshotError::DuplicateHost {
                        host,
                        first: first.to_string(),
                        second: d.id.clone(),
                    });
                }
            }
            self.validate_behaviors(d)?;
        }
        Ok(())
    }

    fn validate_behaviors(&self, d: &Distribution) -> Result<(), SnapshotError> {
        let distribution = || d.id.clone();
        for b in d.config.behaviors() {
            if d.config.origin(&b.target_origin_id).is_none() {
                return Err(SnapshotError::NoSuchOrigin {
                    distribution: distribution(),
                    origin: b.target_origin_id.clone(),
                });
            }
            if b.cache_policy_id.is_some() == b.forwarded_values.is_some() {
                return Err(SnapshotError::CacheSettings {
                    distribution: distribution(),
                });
            }
            if let Some(id) = &b.cache_policy_id {
                if self.cache_policy(id).is_none() {
                    return Err(SnapshotError::NoSuchPolicy {
                        distribution: distribution(),
                        kind: "cache policy",
                        id: id.clone(),
                    });
                }
            }
            if let Some(id) = &b.origin_request_policy_id {
                if self.origin_request_policy(id).is_none() {
                    return Err(SnapshotError::NoSuchPolicy {
                        distribution: distribution(),
                        kind: "origin request policy",
                        id: id.clone(),
                    });
                }
            }
            for a in &b.lambda_function_associations {
                if self.function(&a.lambda_function_arn).is_none() {
                    return Err(SnapshotError::NoSuchFunction {
                        distribution: distribution(),
                        arn: a.lambda_function_arn.clone(),
                    });
                }
            }
        }
        Ok(())
    }
}

fn default_memory() -> u32 {
    128
}
fn default_timeout() -> u32 {
    3
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(extra_behavior: &str) -> String {
        format!(
            r#"{{"Version": 3, "Distributions": [{{"Id": "E1", "DomainName": "a.ledge.localhost",
              "Config": {{"Aliases": ["www.a.test"],
                "Origins": [{{"Id": "o", "DomainName": "127.0.0.1"}}],
                "DefaultCacheBehavior": {{"TargetOriginId": "o", {extra_behavior}}},
                "Enabled": true}}}}],
              "Functions": [{{"Arn": "arn:aws:lambda:us-east-1:111122223333:function:f:1",
                "CodeSha256": "ab", "Runtime": "nodejs20.x", "Handler": "index.handler"}}]}}"#
        )
    }

    #[test]
    fn accepts_a_consistent_snapshot() {
        let s = ConfigSnapshot::from_json(
            snapshot(r#""CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6""#).as_bytes(),
        )
        .unwrap();
        assert_eq!(s.version, 3);
        assert_eq!(s.functions[0].memory_size, 128);
        let again = ConfigSnapshot::from_json(&s.to_json()).unwrap();
        assert_eq!(s, again);
    }

    #[test]
    fn refuses_broken_references() {
        let cases = [
            (r#""CachePolicyId": "nope""#, "unknown cache policy"),
            (
                r#""ForwardedValues": {}, "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6""#,
                "exactly one",
            ),
            (
                r#""ForwardedValues": {}, "LambdaFunctionAssociations": [{"LambdaFunctionARN": "arn:x:2", "EventType": "viewer-request"}]"#,
                "not in the snapshot",
            ),
        ];
        for (behavior, reason) in cases {
            let err = ConfigSnapshot::from_json(snapshot(behavior).as_bytes()).unwrap_err();
            assert!(err.to_string().contains(reason), "{err}");
        }
        let err = ConfigSnapshot::from_json(b"{\"Version\": \"x\"}").unwrap_err();
        assert!(matches!(err, SnapshotError::Parse(_)));
    }

    #[test]
    fn refuses_a_host_claimed_twice() {
        let d = r#"{"Id": "ID", "DomainName": "HOST", "Config": {"Origins": [{"Id": "o", "DomainName": "x"}],
            "DefaultCacheBehavior": {"TargetOriginId": "o", "ForwardedValues": {}}, "Enabled": true}}"#;
        let two = |a: &str, b: &str| {
            format!(
                r#"{{"Version": 1, "Distributions": [{}, {}]}}"#,
                d.replace("ID", "E1").replace("HOST", a),
                d.replace("ID", "E2").replace("HOST", b)
            )
        };
        assert!(ConfigSnapshot::from_json(two("a.test", "b.test").as_bytes()).is_ok());
        let err = ConfigSnapshot::from_json(two("a.test", "A.test").as_bytes()).unwrap_err();
        assert!(matches!(err, SnapshotError::DuplicateHost { .. }));
    }
}
