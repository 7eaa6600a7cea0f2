//! `--config FILE`: the same keys as the command-line flags, for every role.
//!
//! A flag given on the command line (or as `LEDGE_<FLAG>`) wins over the file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// Values from `--config FILE`, keyed by flag name with `_` for `-`.
pub(crate) struct FileValues(HashMap<String, serde_json::Value>);

impl FileValues {
    /// Reads `path` (JSON, or `key = value` lines); no path gives no values.
    pub(crate) fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let Some(path) = path else {
            return Ok(Self(HashMap::new()));
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read --config {}", path.display()))?;
        let map: HashMap<String, serde_json::Value> = if text.trim_start().starts_with('{') {
            serde_json::from_str(&text)
                .with_context(|| format!("{}: invalid JSON", path.display()))?
        } else {
            let mut m = HashMap::new();
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') || line.starts_with('[') {
                    continue;
                }
                let (k, v) = line.split_once('=').with_context(|| {
                    format!("{}:{}: expected key = value", path.display(), n + 1)
                })?;
                let v = v.trim();
                let value = serde_json::from_str(v)
                    .unwrap_or_else(|_| serde_json::Value::String(v.trim_matches('\'').into()));
                m.insert(k.trim().trim_matches('"').to_string(), value);
            }
            m
        };
        Ok(Self(
            map.into_iter()
                .map(|(k, v)| (k.replace('-', "_"), v))
                .collect(),
        ))
    }

    /// The value of `key` as text.
    pub(crate) fn string(&self, key: &str) -> Option<String> {
        match self.0.get(key)? {
            serde_json::Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }

    /// The value of `key` parsed, or an error naming the key.
    pub(crate) fn parse<T: std::str::FromStr>(&self, key: &str) -> anyhow::Result<Option<T>> {
        match self.string(key) {
            None => Ok(None),
            Some(s) => s
                .parse()
                .map(Some)
                .map_err(|_| anyhow::anyhow!("--config: invalid value for {key}: {s}")),
        }
    }

    /// The value of `key` as a list of paths (an array, or comma-separated text).
    pub(crate) fn list(&self, key: &str) -> Vec<PathBuf> {
        match self.0.get(key) {
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(PathBuf::from))
                .collect(),
            Some(serde_json::Value::String(s)) => s.split(',').map(PathBuf::from).collect(),
            _ => Vec::new(),
        }
    }
}
