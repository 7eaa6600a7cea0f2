//! Turning the stored CloudFront and Lambda state into the [`ConfigSnapshot`] edges serve.

use std::collections::BTreeSet;

use ledge_model::api_form;
use ledge_model::lambda::FunctionArn;
use ledge_model::snapshot::{
    Distribution, FunctionVersion, Invalidation, NamedCachePolicy, NamedOriginRequestPolicy,
};
use ledge_model::{CacheBehavior, ConfigSnapshot};
use serde_json::Value;
use sqlx::Row;

use crate::store::{PolicyKind, Store};

/// How many of the newest invalidations a snapshot carries. An edge applies each one it has not
/// seen, so this bounds how long an edge may be away and still catch every one.
const MAX_INVALIDATIONS: i64 = 1000;

/// Why a snapshot could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored document does not convert (a bug: the API validated it).
    #[error("stored {what} {id} does not convert: {source}")]
    Convert {
        /// What kind of document.
        what: &'static str,
        /// Its id.
        id: String,
        /// The cause.
        source: serde_json::Error,
    },
}

/// Builds the snapshot of everything stored, labelled with the config version read first (so
/// the rows read afterwards hold every change up to it).
pub async fn build_snapshot(store: &Store) -> Result<ConfigSnapshot, BuildError> {
    let version = store.config_version().await?;
    let rows = sqlx::query("SELECT id, domain_name, config FROM cf_distributions ORDER BY seq ASC")
        .fetch_all(store.pool())
        .await?;
    let mut distributions = Vec::with_capacity(rows.len());
    for row in &rows {
        let id: String = row.try_get("id")?;
        let domain_name: String = row.try_get("domain_name")?;
        let text: String = row.try_get("config")?;
        let api: Value = serde_json::from_str(&text).map_err(|source| BuildError::Convert {
            what: "distribution",
            id: id.clone(),
            source,
        })?;
        let config =
            api_form::distribution_config_from_api(&api).map_err(|source| BuildError::Convert {
                what: "distribution",
                id: id.clone(),
                source,
            })?;
        distributions.push(Distribution {
            id,
            domain_name,
            config,
        });
    }

    let mut cache_policies = Vec::new();
    for row in store.list_policies(PolicyKind::Cache).await? {
        let config = api_form::from_api(&row.config).map_err(|source| BuildError::Convert {
            what: "cache policy",
            id: row.id.clone(),
            source,
        })?;
        cache_policies.push(NamedCachePolicy { id: row.id, config });
    }
    let mut origin_request_policies = Vec::new();
    for row in store.list_policies(PolicyKind::OriginRequest).await? {
        let config = api_form::from_api(&row.config).map_err(|source| BuildError::Convert {
            what: "origin request policy",
            id: row.id.clone(),
            source,
        })?;
        origin_request_policies.push(NamedOriginRequestPolicy { id: row.id, config });
    }

    let functions = functions(store, &distributions).await?;
    let invalidations = invalidations(store, &distributions).await?;
    Ok(ConfigSnapshot {
        version: u64::try_from(version).unwrap_or(0),
        distributions,
        cache_policies,
        origin_request_policies,
        functions,
        invalidations,
    })
}

/// Every function version an association names, with its package hash and settings.
async fn functions(
    store: &Store,
    distributions: &[Distribution],
) -> Result<Vec<FunctionVersion>, BuildError> {
    let arns: BTreeSet<&str> = distributions
        .iter()
        .flat_map(|d| {
            std::iter::once(&d.config.default_cache_behavior).chain(&d.config.cache_behaviors)
        })
        .flat_map(|b: &CacheBehavior| &b.lambda_function_associations)
        .map(|a| a.lambda_function_arn.as_str())
        .collect();
    let mut out = Vec::with_capacity(arns.len());
    for arn in arns {
        let Some((name, version)) = FunctionArn::parse(arn)
            .ok()
            .and_then(|a| Some((a.name.clone(), a.version()?)))
        else {
            tracing::warn!(arn, "association names no function version; left out");
            continue;
        };
        let Some(row) = store
            .get_version(&name, i64::try_from(version).unwrap_or(0))
            .await?
        else {
            tracing::warn!(arn, "associated function version is gone; left out");
            continue;
        };
        out.push(FunctionVersion {
            arn: arn.to_owned(),
            code_sha256: row.code_hex,
            runtime: row.config.runtime,
            handler: row.config.handler,
            memory_size: u32::try_from(row.config.memory_size).unwrap_or(128),
            timeout: u32::try_from(row.config.timeout).unwrap_or(3),
        });
    }
    Ok(out)
}

/// The newest invalidations of the distributions in the snapshot.
async fn invalidations(
    store: &Store,
    distributions: &[Distribution],
) -> Result<Vec<Invalidation>, BuildError> {
    let rows = sqlx::query(
        "SELECT id, distribution_id, paths FROM cf_invalidations \
         ORDER BY config_version DESC LIMIT $1",
    )
    .bind(MAX_INVALIDATIONS)
    .fetch_all(store.pool())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows.iter().rev() {
        let id: String = row.try_get("id")?;
        let distribution_id: String = row.try_get("distribution_id")?;
        if !distributions.iter().any(|d| d.id == distribution_id) {
            continue;
        }
        let text: String = row.try_get("paths")?;
        let paths = serde_json::from_str::<Value>(&text)
            .and_then(|v| api_form::from_api::<Vec<String>>(&v))
            .map_err(|source| BuildError::Convert {
                what: "invalidation",
                id: id.clone(),
                source,
            })?;
        out.push(Invalidation {
            id,
            distribution_id,
            paths,
        });
    }
    Ok(out)
}
