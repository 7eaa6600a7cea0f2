//! Custom cache policies and origin request policies (the managed ones live in
//! `ledge_model::policy` and are never stored).

use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::cloudfront::bump_version;
use super::Store;

/// Account quota of custom policies of each kind.
pub const MAX_CUSTOM_POLICIES: i64 = 20;

/// Which family a policy belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// Cache policies.
    Cache,
    /// Origin request policies.
    OriginRequest,
}

impl PolicyKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Cache => "cache",
            Self::OriginRequest => "origin-request",
        }
    }
}

/// One stored custom policy.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyRow {
    /// UUID.
    pub id: String,
    /// The policy's config in botocore's JSON form.
    pub config: Value,
    /// The current ETag.
    pub etag: String,
    /// ISO 8601 time of the last change.
    pub last_modified: String,
    /// The config version of the last change.
    pub config_version: i64,
}

/// Policy writes' failures.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// No such policy.
    #[error("policy not found")]
    NotFound,
    /// Another policy of the kind has that name.
    #[error("a policy with this name exists")]
    NameExists,
    /// The quota of custom policies is used up.
    #[error("too many policies")]
    TooMany,
    /// The If-Match value is not the current ETag.
    #[error("etag does not match")]
    PreconditionFailed,
    /// A distribution names the policy.
    #[error("policy is in use")]
    InUse,
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

fn decode(row: &AnyRow) -> Result<PolicyRow, sqlx::Error> {
    let config: String = row.try_get("config")?;
    Ok(PolicyRow {
        id: row.try_get("id")?,
        config: serde_json::from_str(&config).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        etag: row.try_get("etag")?,
        last_modified: row.try_get("last_modified")?,
        config_version: row.try_get("config_version")?,
    })
}

fn name_of(config: &Value) -> String {
    config
        .get("Name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

// === impl Store ===

impl Store {
    /// Stores a new custom policy.
    pub async fn create_policy(
        &self,
        kind: PolicyKind,
        id: &str,
        config: &Value,
        etag: &str,
        last_modified: &str,
    ) -> Result<PolicyRow, PolicyError> {
        let mut tx = self.pool.begin().await?;
        let version = bump_version(&mut tx).await?;
        let row = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT), CAST(COALESCE(MAX(seq), 0) + 1 AS BIGINT), \
             CAST(SUM(CASE WHEN name = $2 THEN 1 ELSE 0 END) AS BIGINT) \
             FROM cf_policies WHERE kind = $1",
        )
        .bind(kind.as_str())
        .bind(name_of(config))
        .fetch_one(&mut *tx)
        .await?;
        let (count, seq): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
        let same_name: Option<i64> = row.try_get(2)?;
        if same_name.unwrap_or(0) > 0 {
            return Err(PolicyError::NameExists);
        }
        if count >= MAX_CUSTOM_POLICIES {
            return Err(PolicyError::TooMany);
        }
        sqlx::query(
            "INSERT INTO cf_policies (id, kind, name, seq, etag, config, last_modified, \
             config_version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id)
        .bind(kind.as_str())
        .bind(name_of(config))
        .bind(seq)
        .bind(etag)
        .bind(config.to_string())
        .bind(last_modified)
        .bind(version)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(PolicyRow {
            id: id.to_owned(),
            config: config.clone(),
            etag: etag.to_owned(),
            last_modified: last_modified.to_owned(),
            config_version: version,
        })
    }

    /// One custom policy.
    pub async fn get_policy(
        &self,
        kind: PolicyKind,
        id: &str,
    ) -> Result<Option<PolicyRow>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT id, config, etag, last_modified, config_version FROM cf_policies \
             WHERE kind = $1 AND id = $2",
        )
        .bind(kind.as_str())
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(decode).transpose()
    }

    /// Every custom policy of a kind, oldest first.
    pub async fn list_policies(&self, kind: PolicyKind) -> Result<Vec<PolicyRow>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT id, config, etag, last_modified, config_version FROM cf_policies \
             WHERE kind = $1 ORDER BY seq",
        )
        .bind(kind.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode).collect()
    }

    /// Replaces a custom policy's config when `if_match` is its current ETag.
    pub async fn update_policy(
        &self,
        kind: PolicyKind,
        id: &str,
        if_match: &str,
        config: &Value,
        etag: &str,
        last_modified: &str,
    ) -> Result<PolicyRow, PolicyError> {
        let mut tx = self.pool.begin().await?;
        let version = bump_version(&mut tx).await?;
        let current = sqlx::query("SELECT etag FROM cf_policies WHERE kind = $1 AND id = $2")
            .bind(kind.as_str())
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(current) = current else {
            return Err(PolicyError::NotFound);
        };
        if current.try_get::<String, _>(0)? != if_match {
            return Err(PolicyError::PreconditionFailed);
        }
        let clash =
            sqlx::query("SELECT 1 FROM cf_policies WHERE kind = $1 AND name = $2 AND id <> $3")
                .bind(kind.as_str())
                .bind(name_of(config))
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        if clash.is_some() {
            return Err(PolicyError::NameExists);
        }
        sqlx::query(
            "UPDATE cf_policies SET name = $1, etag = $2, config = $3, last_modified = $4, \
             config_version = $5 WHERE id = $6",
        )
        .bind(name_of(config))
        .bind(etag)
        .bind(config.to_string())
        .bind(last_modified)
        .bind(version)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(PolicyRow {
            id: id.to_owned(),
            config: config.clone(),
            etag: etag.to_owned(),
            last_modified: last_modified.to_owned(),
            config_version: version,
        })
    }

    /// Deletes a custom policy no distribution names, when `if_match` is its ETag.
    pub async fn delete_policy(
        &self,
        kind: PolicyKind,
        id: &str,
        if_match: &str,
    ) -> Result<(), PolicyError> {
        let mut tx = self.pool.begin().await?;
        bump_version(&mut tx).await?;
        let current = sqlx::query("SELECT etag FROM cf_policies WHERE kind = $1 AND id = $2")
            .bind(kind.as_str())
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(current) = current else {
            return Err(PolicyError::NotFound);
        };
        if current.try_get::<String, _>(0)? != if_match {
            return Err(PolicyError::PreconditionFailed);
        }
        let used = sqlx::query("SELECT 1 FROM cf_policy_uses WHERE policy_id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        if used.is_some() {
            return Err(PolicyError::InUse);
        }
        sqlx::query("DELETE FROM cf_policies WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
