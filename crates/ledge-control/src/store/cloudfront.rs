//! CloudFront distributions, their invalidations and tags, and the global config version.
//!
//! # Design
//! Every write begins with [`bump_version`], which increments the one-row
//! `cf_config_version` table and returns the new version. That is the version recorded on the
//! changed row, and the row lock it takes serializes all CloudFront writes, so the uniqueness
//! checks below (caller reference, aliases) read a stable database.
//!
//! Whether a change is deployed is derived, never stored: a row with `config_version` V is
//! deployed when every live edge has acknowledged a version ≥ V (`cf_edge_acks`, filled by the
//! replication feed). With no edges registered, everything counts as deployed.

use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::Store;

/// Default of how long an edge may stay silent before it no longer holds deployments back
/// (seconds); see [`Store::with_edge_liveness`].
pub const EDGE_LIVENESS_SECS: i64 = 60;

/// One stored distribution.
#[derive(Debug, Clone, PartialEq)]
pub struct DistributionRow {
    /// `E` + 13 characters.
    pub id: String,
    /// Unique per account, immutable.
    pub caller_reference: String,
    /// `<name>.<edge-domain>`.
    pub domain_name: String,
    /// The current ETag.
    pub etag: String,
    /// The DistributionConfig in botocore's JSON form.
    pub config: Value,
    /// ISO 8601 time of the last accepted create/update.
    pub last_modified: String,
    /// The config version of the last change.
    pub config_version: i64,
    /// Creation order.
    pub seq: i64,
}

/// What a distribution write stores beside the config.
#[derive(Debug, Clone, Default)]
pub struct DistributionWrite {
    /// The DistributionConfig, defaults filled in.
    pub config: Value,
    /// New ETag.
    pub etag: String,
    /// Time of the write.
    pub last_modified: String,
    /// Aliases (lower-case).
    pub aliases: Vec<String>,
    /// Associated Lambda versions, `(function name, version)`.
    pub lambda: Vec<(String, i64)>,
    /// Custom or managed policy ids named by the behaviors.
    pub policies: Vec<String>,
}

/// CreateDistribution's failures.
#[derive(Debug, thiserror::Error)]
pub enum CreateDistributionError {
    /// The caller reference is in use.
    #[error("caller reference already used by {0}")]
    CallerReferenceExists(String),
    /// An alias is on another distribution.
    #[error("alias {0} is already in use")]
    CnameExists(String),
    /// An associated Lambda version was deleted while the distribution was written.
    #[error("function version {0} no longer exists")]
    VersionGone(String),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl From<LinkError> for CreateDistributionError {
    fn from(err: LinkError) -> Self {
        match err {
            LinkError::VersionGone(v) => Self::VersionGone(v),
            LinkError::Database(e) => Self::Database(e),
        }
    }
}

impl From<LinkError> for ChangeDistributionError {
    fn from(err: LinkError) -> Self {
        match err {
            LinkError::VersionGone(v) => Self::VersionGone(v),
            LinkError::Database(e) => Self::Database(e),
        }
    }
}

/// UpdateDistribution's and DeleteDistribution's failures.
#[derive(Debug, thiserror::Error)]
pub enum ChangeDistributionError {
    /// No such distribution.
    #[error("distribution not found")]
    NotFound,
    /// The If-Match value is not the current ETag.
    #[error("etag does not match")]
    PreconditionFailed,
    /// The caller reference was changed.
    #[error("caller reference cannot change")]
    CallerReferenceChanged,
    /// An alias is on another distribution.
    #[error("alias {0} is already in use")]
    CnameExists(String),
    /// Delete of a distribution that is enabled or not yet deployed.
    #[error("distribution is not disabled and deployed")]
    NotDisabled,
    /// An associated Lambda version was deleted while the distribution was written.
    #[error("function version {0} no longer exists")]
    VersionGone(String),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// One stored invalidation.
#[derive(Debug, Clone, PartialEq)]
pub struct InvalidationRow {
    /// `I` + characters.
    pub id: String,
    /// The distribution.
    pub distribution_id: String,
    /// The client's idempotency token.
    pub caller_reference: String,
    /// `{Quantity, Items}` of paths.
    pub paths: Value,
    /// ISO 8601 creation time.
    pub create_time: String,
    /// The config version that carries it.
    pub config_version: i64,
}

/// CreateInvalidation's failures.
#[derive(Debug, thiserror::Error)]
pub enum CreateInvalidationError {
    /// No such distribution.
    #[error("distribution not found")]
    NoSuchDistribution,
    /// The caller reference was used for different paths.
    #[error("caller reference used for a different batch")]
    AlreadyExists,
    /// The in-progress limits would be exceeded.
    #[error("too many invalidations in progress")]
    TooManyInProgress,
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

const DIST_COLUMNS: &str =
    "id, caller_reference, domain_name, etag, config, last_modified, config_version, seq";

fn decode_distribution(row: &AnyRow) -> Result<DistributionRow, sqlx::Error> {
    let config: String = row.try_get("config")?;
    Ok(DistributionRow {
        id: row.try_get("id")?,
        caller_reference: row.try_get("caller_reference")?,
        domain_name: row.try_get("domain_name")?,
        etag: row.try_get("etag")?,
        config: serde_json::from_str(&config).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        last_modified: row.try_get("last_modified")?,
        config_version: row.try_get("config_version")?,
        seq: row.try_get("seq")?,
    })
}

fn decode_invalidation(row: &AnyRow) -> Result<InvalidationRow, sqlx::Error> {
    let paths: String = row.try_get("paths")?;
    Ok(InvalidationRow {
        id: row.try_get("id")?,
        distribution_id: row.try_get("distribution_id")?,
        caller_reference: row.try_get("caller_reference")?,
        paths: serde_json::from_str(&paths).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        create_time: row.try_get("create_time")?,
        config_version: row.try_get("config_version")?,
    })
}

/// Increments the global config version and returns it (see the module docs).
pub(crate) async fn bump_version(tx: &mut Transaction<'_, Any>) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(
        "UPDATE cf_config_version SET version = version + 1 WHERE id = 1 RETURNING version",
    )
    .fetch_one(&mut **tx)
    .await?;
    row.try_get(0)
}

async fn next_seq(tx: &mut Transaction<'_, Any>, table: &str) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT CAST(COALESCE(MAX(seq), 0) + 1 AS BIGINT) FROM {table}"
    ))
    .fetch_one(&mut **tx)
    .await?;
    row.try_get(0)
}

/// The first alias of `aliases` held by a distribution other than `id`.
async fn alias_taken(
    tx: &mut Transaction<'_, Any>,
    aliases: &[String],
    id: &str,
) -> Result<Option<String>, sqlx::Error> {
    for alias in aliases {
        let row = sqlx::query("SELECT distribution_id FROM cf_aliases WHERE alias = $1")
            .bind(alias)
            .fetch_optional(&mut **tx)
            .await?;
        if let Some(row) = row {
            let owner: String = row.try_get(0)?;
            if owner != id {
                return Ok(Some(alias.clone()));
            }
        }
    }
    Ok(None)
}

/// Why the links of a distribution could not be written.
#[derive(Debug, thiserror::Error)]
enum LinkError {
    /// An associated Lambda version was deleted meanwhile (`name:version`).
    #[error("function version {0} no longer exists")]
    VersionGone(String),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Replaces the alias, association and policy-use rows of a distribution.
async fn write_links(
    tx: &mut Transaction<'_, Any>,
    id: &str,
    write: Option<&DistributionWrite>,
) -> Result<(), LinkError> {
    // Replicas: every version associated so far counts as released at this write's version
    // (one still associated is kept from deletion by its association row anyway).
    sqlx::query(
        "INSERT INTO cf_lambda_releases (function_name, version, released_version) \
         SELECT function_name, version, (SELECT version FROM cf_config_version WHERE id = 1) \
         FROM cf_lambda_associations WHERE distribution_id = $1 \
         ON CONFLICT (function_name, version) DO UPDATE SET \
         released_version = excluded.released_version",
    )
    .bind(id)
    .execute(&mut **tx)
    .await?;
    for table in ["cf_aliases", "cf_lambda_associations", "cf_policy_uses"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE distribution_id = $1"))
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    let Some(write) = write else {
        return Ok(());
    };
    for alias in &write.aliases {
        sqlx::query("INSERT INTO cf_aliases (alias, distribution_id) VALUES ($1, $2)")
            .bind(alias)
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    for (name, version) in &write.lambda {
        // Lock the function's row (as DeleteFunction does) and re-check the version inside
        // this transaction, so a concurrent DeleteFunction cannot slip between the check and
        // the association.
        let locked = sqlx::query(
            "UPDATE lambda_functions SET last_version = last_version WHERE name = $1 RETURNING name",
        )
        .bind(name)
        .fetch_optional(&mut **tx)
        .await?;
        let exists =
            sqlx::query("SELECT 1 FROM lambda_versions WHERE function_name = $1 AND version = $2")
                .bind(name)
                .bind(*version)
                .fetch_optional(&mut **tx)
                .await?;
        if locked.is_none() || exists.is_none() {
            return Err(LinkError::VersionGone(format!("{name}:{version}")));
        }
        sqlx::query(
            "INSERT INTO cf_lambda_associations (distribution_id, function_name, version) \
             VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(name)
        .bind(*version)
        .execute(&mut **tx)
        .await?;
    }
    for policy in &write.policies {
        sqlx::query(
            "INSERT INTO cf_policy_uses (distribution_id, policy_id) VALUES ($1, $2) \
             ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(policy)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

// === impl Store: deployment ===

impl Store {
    /// The lowest version every live edge has applied; `None` when no edge is live (then
    /// every change counts as deployed).
    pub async fn deployed_version(&self) -> Result<Option<i64>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT CAST(MIN(acked_version) AS BIGINT) FROM cf_edge_acks WHERE last_seen >= $1",
        )
        .bind(now_secs() - self.edge_liveness_secs)
        .fetch_one(&self.pool)
        .await?;
        row.try_get::<Option<i64>, _>(0)
    }

    /// Records that edge `name` applied config `version` (for the replication feed).
    pub async fn ack_version(&self, name: &str, version: i64) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO cf_edge_acks (edge_name, acked_version, last_seen) VALUES ($1, $2, $3) \
             ON CONFLICT (edge_name) DO UPDATE SET acked_version = excluded.acked_version, \
             last_seen = excluded.last_seen",
        )
        .bind(name)
        .bind(version)
        .bind(now_secs())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The current global config version.
    pub async fn config_version(&self) -> Result<i64, sqlx::Error> {
        let row = sqlx::query("SELECT version FROM cf_config_version WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        row.try_get(0)
    }

    /// Whether Lambda version `version` of `function` (any version when `None`) is
    /// associated with a distribution.
    pub async fn lambda_associated(
        &self,
        function: &str,
        version: Option<i64>,
    ) -> Result<bool, sqlx::Error> {
        let row = match version {
            Some(v) => sqlx::query(
                "SELECT 1 FROM cf_lambda_associations WHERE function_name = $1 AND version = $2",
            )
            .bind(function)
            .bind(v)
            .fetch_optional(&self.pool)
            .await?,
            None => {
                sqlx::query("SELECT 1 FROM cf_lambda_associations WHERE function_name = $1")
                    .bind(function)
                    .fetch_optional(&self.pool)
                    .await?
            }
        };
        Ok(row.is_some())
    }
}

// === impl Store: distributions ===

impl Store {
    /// Stores a new distribution.
    pub async fn create_distribution(
        &self,
        id: &str,
        caller_reference: &str,
        domain_name: &str,
        write: &DistributionWrite,
        tags: &[(String, String)],
    ) -> Result<DistributionRow, CreateDistributionError> {
        let mut tx = self.pool.begin().await?;
        let version = bump_version(&mut tx).await?;
        let existing = sqlx::query("SELECT id FROM cf_distributions WHERE caller_reference = $1")
            .bind(caller_reference)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = existing {
            return Err(CreateDistributionError::CallerReferenceExists(
                row.try_get(0)?,
            ));
        }
        if let Some(alias) = alias_taken(&mut tx, &write.aliases, id).await? {
            return Err(CreateDistributionError::CnameExists(alias));
        }
        let seq = next_seq(&mut tx, "cf_distributions").await?;
        let enabled = write.config.get("Enabled").and_then(Value::as_bool) == Some(true);
        sqlx::query(
            "INSERT INTO cf_distributions (id, seq, caller_reference, domain_name, etag, config, \
             enabled, last_modified, config_version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(id)
        .bind(seq)
        .bind(caller_reference)
        .bind(domain_name)
        .bind(&write.etag)
        .bind(write.config.to_string())
        .bind(i64::from(enabled))
        .bind(&write.last_modified)
        .bind(version)
        .execute(&mut *tx)
        .await?;
        write_links(&mut tx, id, Some(write)).await?;
        for (k, v) in tags {
            sqlx::query(
                "INSERT INTO cf_tags (distribution_id, tag_key, tag_value) VALUES ($1, $2, $3) \
                 ON CONFLICT (distribution_id, tag_key) DO UPDATE SET tag_value = excluded.tag_value",
            )
            .bind(id)
            .bind(k)
            .bind(v)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(DistributionRow {
            id: id.to_owned(),
            caller_reference: caller_reference.to_owned(),
            domain_name: domain_name.to_owned(),
            etag: write.etag.clone(),
            config: write.config.clone(),
            last_modified: write.last_modified.clone(),
            config_version: version,
            seq,
        })
    }

    /// One distribution.
    pub async fn get_distribution(&self, id: &str) -> Result<Option<DistributionRow>, sqlx::Error> {
        let row = sqlx::query(&format!(
            "SELECT {DIST_COLUMNS} FROM cf_distributions WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(decode_distribution).transpose()
    }

    /// Distributions created after `after_seq`, oldest first, at most `limit`.
    pub async fn list_distributions(
        &self,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<DistributionRow>, sqlx::Error> {
        let rows = sqlx::query(&format!(
            "SELECT {DIST_COLUMNS} FROM cf_distributions WHERE seq > $1 ORDER BY seq LIMIT $2"
        ))
        .bind(after_seq)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_distribution).collect()
    }

    /// Replaces a distribution's config when `if_match` is its current ETag.
    pub async fn update_distribution(
        &self,
        id: &str,
        if_match: &str,
        write: &DistributionWrite,
    ) -> Result<DistributionRow, ChangeDistributionError> {
        let mut tx = self.pool.begin().await?;
        let version = bump_version(&mut tx).await?;
        let current = sqlx::query(&format!(
            "SELECT {DIST_COLUMNS} FROM cf_distributions WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let current = match current {
            Some(row) => decode_distribution(&row)?,
            None => return Err(ChangeDistributionError::NotFound),
        };
        if current.etag != if_match {
            return Err(ChangeDistributionError::PreconditionFailed);
        }
        let reference = write.config.get("CallerReference").and_then(Value::as_str);
        if reference != Some(current.caller_reference.as_str()) {
            return Err(ChangeDistributionError::CallerReferenceChanged);
        }
        if let Some(alias) = alias_taken(&mut tx, &write.aliases, id).await? {
            return Err(ChangeDistributionError::CnameExists(alias));
        }
        let enabled = write.config.get("Enabled").and_then(Value::as_bool) == Some(true);
        sqlx::query(
            "UPDATE cf_distributions SET etag = $1, config = $2, enabled = $3, \
             last_modified = $4, config_version = $5 WHERE id = $6",
        )
        .bind(&write.etag)
        .bind(write.config.to_string())
        .bind(i64::from(enabled))
        .bind(&write.last_modified)
        .bind(version)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        write_links(&mut tx, id, Some(write)).await?;
        tx.commit().await?;
        Ok(DistributionRow {
            etag: write.etag.clone(),
            config: write.config.clone(),
            last_modified: write.last_modified.clone(),
            config_version: version,
            ..current
        })
    }

    /// Deletes a disabled, deployed distribution when `if_match` is its current ETag.
    pub async fn delete_distribution(
        &self,
        id: &str,
        if_match: &str,
    ) -> Result<(), ChangeDistributionError> {
        let deployed = self.deployed_version().await?;
        let mut tx = self.pool.begin().await?;
        bump_version(&mut tx).await?;
        let current =
            sqlx::query("SELECT etag, enabled, config_version FROM cf_distributions WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(current) = current else {
            return Err(ChangeDistributionError::NotFound);
        };
        let etag: String = current.try_get(0)?;
        let enabled: i64 = current.try_get(1)?;
        let version: i64 = current.try_get(2)?;
        if etag != if_match {
            return Err(ChangeDistributionError::PreconditionFailed);
        }
        if enabled != 0 || deployed.is_some_and(|d| d < version) {
            return Err(ChangeDistributionError::NotDisabled);
        }
        for table in ["cf_invalidations", "cf_tags"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE distribution_id = $1"))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        write_links(&mut tx, id, None).await?;
        sqlx::query("DELETE FROM cf_distributions WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Number of invalidations of a distribution not yet applied by every live edge
    /// (`deployed`: [`Store::deployed_version`]; `None` means none are in progress).
    pub async fn invalidations_in_progress(
        &self,
        distribution_id: &str,
        deployed: Option<i64>,
    ) -> Result<i64, sqlx::Error> {
        let Some(deployed) = deployed else {
            return Ok(0);
        };
        let row = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM cf_invalidations \
             WHERE distribution_id = $1 AND config_version > $2",
        )
        .bind(distribution_id)
        .bind(deployed)
        .fetch_one(&self.pool)
        .await?;
        row.try_get(0)
    }
}

// === impl Store: invalidations ===

/// In-progress limits of one distribution: (non-wildcard paths, wildcard paths).
pub const INVALIDATION_LIMITS: (usize, usize) = (3000, 15);

fn count_paths(paths: &Value) -> (usize, usize) {
    let items = paths
        .get("Items")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let wild = items
        .iter()
        .filter(|p| p.as_str().is_some_and(|s| s.ends_with('*')))
        .count();
    (items.len() - wild, wild)
}

impl Store {
    /// Stores an invalidation; an earlier one with the same reference and paths is returned
    /// instead (`false`: not new).
    pub async fn create_invalidation(
        &self,
        row: &InvalidationRow,
        deployed: Option<i64>,
    ) -> Result<(InvalidationRow, bool), CreateInvalidationError> {
        let mut tx = self.pool.begin().await?;
        let version = bump_version(&mut tx).await?;
        let dist = sqlx::query("SELECT 1 FROM cf_distributions WHERE id = $1")
            .bind(&row.distribution_id)
            .fetch_optional(&mut *tx)
            .await?;
        if dist.is_none() {
            return Err(CreateInvalidationError::NoSuchDistribution);
        }
        let earlier = sqlx::query(
            "SELECT id, distribution_id, caller_reference, paths, create_time, config_version \
             FROM cf_invalidations WHERE distribution_id = $1 AND caller_reference = $2",
        )
        .bind(&row.distribution_id)
        .bind(&row.caller_reference)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(earlier) = earlier {
            let earlier = decode_invalidation(&earlier)?;
            if earlier.paths == row.paths {
                return Ok((earlier, false));
            }
            return Err(CreateInvalidationError::AlreadyExists);
        }
        let (mut plain, mut wild) = count_paths(&row.paths);
        if let Some(deployed) = deployed {
            let pending = sqlx::query(
                "SELECT paths FROM cf_invalidations WHERE distribution_id = $1 AND config_version > $2",
            )
            .bind(&row.distribution_id)
            .bind(deployed)
            .fetch_all(&mut *tx)
            .await?;
            for p in pending {
                let paths: String = p.try_get(0)?;
                let paths: Value = serde_json::from_str(&paths).unwrap_or(Value::Null);
                let (a, b) = count_paths(&paths);
                plain += a;
                wild += b;
            }
        }
        if plain > INVALIDATION_LIMITS.0 || wild > INVALIDATION_LIMITS.1 {
            return Err(CreateInvalidationError::TooManyInProgress);
        }
        let seq = next_seq(&mut tx, "cf_invalidations").await?;
        sqlx::query(
            "INSERT INTO cf_invalidations (id, distribution_id, seq, caller_reference, paths, \
             create_time, config_version) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&row.id)
        .bind(&row.distribution_id)
        .bind(seq)
        .bind(&row.caller_reference)
        .bind(row.paths.to_string())
        .bind(&row.create_time)
        .bind(version)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((
            InvalidationRow {
                config_version: version,
                ..row.clone()
            },
            true,
        ))
    }

    /// One invalidation of a distribution.
    pub async fn get_invalidation(
        &self,
        distribution_id: &str,
        id: &str,
    ) -> Result<Option<InvalidationRow>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT id, distribution_id, caller_reference, paths, create_time, config_version \
             FROM cf_invalidations WHERE distribution_id = $1 AND id = $2",
        )
        .bind(distribution_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(decode_invalidation).transpose()
    }

    /// A distribution's invalidations, newest first, after the one with id `marker`.
    pub async fn list_invalidations(
        &self,
        distribution_id: &str,
        marker: Option<&str>,
        limit: i64,
    ) -> Result<Vec<InvalidationRow>, sqlx::Error> {
        let before = match marker {
            Some(m) => sqlx::query("SELECT seq FROM cf_invalidations WHERE id = $1")
                .bind(m)
                .fetch_optional(&self.pool)
                .await?
                .map(|r| r.try_get::<i64, _>(0))
                .transpose()?
                .unwrap_or(i64::MAX),
            None => i64::MAX,
        };
        let rows = sqlx::query(
            "SELECT id, distribution_id, caller_reference, paths, create_time, config_version \
             FROM cf_invalidations WHERE distribution_id = $1 AND seq < $2 \
             ORDER BY seq DESC LIMIT $3",
        )
        .bind(distribution_id)
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_invalidation).collect()
    }
}

// === impl Store: tags ===

impl Store {
    /// A distribution's tags, by key.
    pub async fn distribution_tags(&self, id: &str) -> Result<Vec<(String, String)>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT tag_key, tag_value FROM cf_tags WHERE distribution_id = $1 ORDER BY tag_key",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Adds or replaces tags, and removes the keys in `remove`.
    pub async fn change_distribution_tags(
        &self,
        id: &str,
        set: &[(String, String)],
        remove: &[String],
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        for (k, v) in set {
            sqlx::query(
                "INSERT INTO cf_tags (distribution_id, tag_key, tag_value) VALUES ($1, $2, $3) \
                 ON CONFLICT (distribution_id, tag_key) DO UPDATE SET tag_value = excluded.tag_value",
            )
            .bind(id)
            .bind(k)
            .bind(v)
            .execute(&mut *tx)
            .await?;
        }
        for k in remove {
            sqlx::query("DELETE FROM cf_tags WHERE distribution_id = $1 AND tag_key = $2")
                .bind(id)
                .bind(k)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
