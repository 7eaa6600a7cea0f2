//! Functions and their versions: `$LATEST` (version 0) and the published, immutable ones.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::Store;

/// The configuration of one version, stored as JSON beside the indexed columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionConfig {
    /// Runtime identifier, e.g. `nodejs20.x`.
    pub runtime: String,
    /// Execution role ARN (opaque to ledge).
    pub role: String,
    /// Handler, e.g. `index.handler`.
    pub handler: String,
    /// Free text, at most 256 characters.
    pub description: String,
    /// Timeout in seconds.
    pub timeout: i64,
    /// Memory in MB.
    pub memory_size: i64,
    /// Environment variables.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// `x86_64` or `arm64`.
    pub architectures: Vec<String>,
    /// Base64 SHA-256 of the package, as Lambda reports it.
    pub code_sha256: String,
    /// Time of the last change, in Lambda's `LastModified` format.
    pub last_modified: String,
}

/// One stored version of a function.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionRow {
    /// The function's name.
    pub function_name: String,
    /// 0 for `$LATEST`, else the version number.
    pub version: i64,
    /// Changes on every write of this version.
    pub revision_id: String,
    /// Hex SHA-256 of the package, the key of its blob.
    pub code_hex: String,
    /// Package size in bytes.
    pub code_size: i64,
    /// Everything else.
    pub config: VersionConfig,
}

/// CreateFunction's failures.
#[derive(Debug, thiserror::Error)]
pub enum CreateFunctionError {
    /// A function of that name exists.
    #[error("function already exists")]
    AlreadyExists,
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// UpdateFunctionCode/Configuration's failures.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// No such function.
    #[error("function not found")]
    NotFound,
    /// `$LATEST` changed since it was read.
    #[error("revision id does not match")]
    RevisionMismatch,
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// PublishVersion's failures.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// No such function.
    #[error("function not found")]
    NotFound,
    /// The caller's CodeSha256 is not `$LATEST`'s.
    #[error("code sha256 does not match $LATEST ({current})")]
    CodeShaMismatch {
        /// `$LATEST`'s CodeSha256.
        current: String,
    },
    /// The caller's RevisionId is not `$LATEST`'s.
    #[error("revision id does not match")]
    RevisionMismatch,
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// DeleteFunction's failures.
#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    /// No such function or version.
    #[error("not found")]
    NotFound,
    /// An alias points at the version.
    #[error("version is referenced by alias {0}")]
    AliasReferences(String),
    /// A CloudFront distribution has the version (`Some`) or some version of the function
    /// (`None`) associated: its replicas are still in use.
    #[error("version is associated with a distribution")]
    Replicated(Option<i64>),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

const COLUMNS: &str = "function_name, version, revision_id, code_hex, code_size, config";

fn new_revision() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn decode_row(row: &AnyRow) -> Result<VersionRow, sqlx::Error> {
    let config: String = row.try_get("config")?;
    let config = serde_json::from_str(&config).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    Ok(VersionRow {
        function_name: row.try_get("function_name")?,
        version: row.try_get("version")?,
        revision_id: row.try_get("revision_id")?,
        code_hex: row.try_get("code_hex")?,
        code_size: row.try_get("code_size")?,
        config,
    })
}

fn encode_config(config: &VersionConfig) -> Result<String, sqlx::Error> {
    serde_json::to_string(config).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

async fn insert_version(
    tx: &mut Transaction<'_, Any>,
    row: &VersionRow,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO lambda_versions (function_name, version, revision_id, code_hex, code_size, config) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&row.function_name)
    .bind(row.version)
    .bind(&row.revision_id)
    .bind(&row.code_hex)
    .bind(row.code_size)
    .bind(encode_config(&row.config)?)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Takes the function's write lock (see the module docs) and returns
/// `(last_version, published_revision)`, or `None` when there is no such function.
async fn lock_function(
    tx: &mut Transaction<'_, Any>,
    name: &str,
) -> Result<Option<(i64, Option<String>)>, sqlx::Error> {
    let row = sqlx::query(
        "UPDATE lambda_functions SET last_version = last_version WHERE name = $1 \
         RETURNING last_version, published_revision",
    )
    .bind(name)
    .fetch_optional(&mut **tx)
    .await?;
    row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose()
}

async fn get_in(
    tx: &mut Transaction<'_, Any>,
    name: &str,
    version: i64,
) -> Result<Option<VersionRow>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM lambda_versions WHERE function_name = $1 AND version = $2"
    ))
    .bind(name)
    .bind(version)
    .fetch_optional(&mut **tx)
    .await?;
    row.as_ref().map(decode_row).transpose()
}

/// Cuts a new version from `latest` under the function lock.
async fn cut_version(
    tx: &mut Transaction<'_, Any>,
    latest: &VersionRow,
    last_version: i64,
    description: Option<String>,
    now: &str,
) -> Result<VersionRow, sqlx::Error> {
    let mut config = latest.config.clone();
    if let Some(d) = description {
        config.description = d;
    }
    config.last_modified = now.to_owned();
    let version = VersionRow {
        version: last_version + 1,
        revision_id: new_revision(),
        config,
        ..latest.clone()
    };
    insert_version(tx, &version).await?;
    sqlx::query(
        "UPDATE lambda_functions SET last_version = $1, published_revision = $2 WHERE name = $3",
    )
    .bind(version.version)
    .bind(&latest.revision_id)
    .bind(&latest.function_name)
    .execute(&mut **tx)
    .await?;
    Ok(version)
}

// === impl Store ===

impl Store {
    /// Creates a function whose `$LATEST` is `latest` (its revision id is assigned here), and
    /// publishes version 1 too when `publish`. Returns `$LATEST`, or version 1 when published.
    pub async fn create_function(
        &self,
        mut latest: VersionRow,
        publish: bool,
        now_millis: i64,
    ) -> Result<VersionRow, CreateFunctionError> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO lambda_functions (name, last_version, published_revision, created_at) \
             VALUES ($1, 0, NULL, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(&latest.function_name)
        .bind(now_millis)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Err(CreateFunctionError::AlreadyExists);
        }
        latest.version = 0;
        latest.revision_id = new_revision();
        insert_version(&mut tx, &latest).await?;
        let result = if publish {
            let now = latest.config.last_modified.clone();
            cut_version(&mut tx, &latest, 0, None, &now).await?
        } else {
            latest
        };
        tx.commit().await?;
        Ok(result)
    }

    /// One version (0 = `$LATEST`) of a function.
    pub async fn get_version(
        &self,
        name: &str,
        version: i64,
    ) -> Result<Option<VersionRow>, sqlx::Error> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM lambda_versions WHERE function_name = $1 AND version = $2"
        ))
        .bind(name)
        .bind(version)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(decode_row).transpose()
    }

    /// Rewrites `$LATEST` with `edit` of its current value; then, when `publish` is set,
    /// cuts a version from it in the same transaction. `expected_revision` (the caller's
    /// RevisionId) must match, and the write itself is conditional on the revision read, so a
    /// lost update is impossible even without the row lock. Returns the new `$LATEST`, or
    /// the new version when published.
    pub async fn update_latest(
        &self,
        name: &str,
        expected_revision: Option<&str>,
        publish: bool,
        edit: impl FnOnce(&VersionRow) -> VersionRow,
    ) -> Result<VersionRow, UpdateError> {
        let mut tx = self.pool.begin().await?;
        let Some((last_version, _)) = lock_function(&mut tx, name).await? else {
            return Err(UpdateError::NotFound);
        };
        let current = get_in(&mut tx, name, 0)
            .await?
            .ok_or(UpdateError::NotFound)?;
        if expected_revision.is_some_and(|r| r != current.revision_id) {
            return Err(UpdateError::RevisionMismatch);
        }
        let mut new = edit(&current);
        new.function_name = name.to_owned();
        new.version = 0;
        new.revision_id = new_revision();
        let updated = sqlx::query(
            "UPDATE lambda_versions SET revision_id = $1, code_hex = $2, code_size = $3, config = $4 \
             WHERE function_name = $5 AND version = 0 AND revision_id = $6",
        )
        .bind(&new.revision_id)
        .bind(&new.code_hex)
        .bind(new.code_size)
        .bind(encode_config(&new.config)?)
        .bind(&new.function_name)
        .bind(&current.revision_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            return Err(UpdateError::RevisionMismatch);
        }
        let result = if publish {
            let now = new.config.last_modified.clone();
            cut_version(&mut tx, &new, last_version, None, &now).await?
        } else {
            new
        };
        tx.commit().await?;
        Ok(result)
    }

    /// PublishVersion: cuts the next version from `$LATEST`, or returns the newest version
    /// when `$LATEST` has not changed since it was cut.
    pub async fn publish(
        &self,
        name: &str,
        code_sha256: Option<&str>,
        revision_id: Option<&str>,
        description: Option<String>,
        now: &str,
    ) -> Result<VersionRow, PublishError> {
        let mut tx = self.pool.begin().await?;
        let Some((last_version, published_revision)) = lock_function(&mut tx, name).await? else {
            return Err(PublishError::NotFound);
        };
        let latest = get_in(&mut tx, name, 0)
            .await?
            .ok_or(PublishError::NotFound)?;
        if let Some(sha) = code_sha256 {
            if sha != latest.config.code_sha256 {
                return Err(PublishError::CodeShaMismatch {
                    current: latest.config.code_sha256,
                });
            }
        }
        if revision_id.is_some_and(|r| r != latest.revision_id) {
            return Err(PublishError::RevisionMismatch);
        }
        if published_revision.as_deref() == Some(latest.revision_id.as_str()) {
            if let Some(existing) = get_in(&mut tx, name, last_version).await? {
                tx.commit().await?;
                return Ok(existing);
            }
        }
        let version = cut_version(&mut tx, &latest, last_version, description, now).await?;
        tx.commit().await?;
        Ok(version)
    }

    /// Versions in (name, version) order after `after`, at most `limit`: all functions or
    /// one, every version or `$LATEST` only.
    pub async fn list_versions(
        &self,
        function: Option<&str>,
        latest_only: bool,
        after: Option<(&str, i64)>,
        limit: i64,
    ) -> Result<Vec<VersionRow>, sqlx::Error> {
        let (after_name, after_version) = after.unwrap_or(("", -1));
        let mut sql = format!(
            "SELECT {COLUMNS} FROM lambda_versions \
             WHERE (function_name > $1 OR (function_name = $1 AND version > $2))"
        );
        if latest_only {
            sql.push_str(" AND version = 0");
        }
        if function.is_some() {
            sql.push_str(" AND function_name = $4");
        }
        sql.push_str(" ORDER BY function_name, version LIMIT $3");
        let mut query = sqlx::query(&sql)
            .bind(after_name)
            .bind(after_version)
            .bind(limit);
        if let Some(f) = function {
            query = query.bind(f);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(decode_row).collect()
    }

    /// Deletes a function with all its versions, aliases and tags.
    pub async fn delete_function(&self, name: &str) -> Result<(), DeleteError> {
        let mut tx = self.pool.begin().await?;
        // The row lock first: distribution writes take it before associating a version.
        if lock_function(&mut tx, name).await?.is_none() {
            return Err(DeleteError::NotFound);
        }
        let attached = sqlx::query(
            "SELECT version FROM cf_lambda_associations WHERE function_name = $1 ORDER BY version",
        )
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = attached {
            return Err(DeleteError::Replicated(Some(row.try_get(0)?)));
        }
        if let Some(v) =
            replicas_pending(&mut tx, name, None, self.deployed_version().await?).await?
        {
            return Err(DeleteError::Replicated(Some(v)));
        }
        let deleted = sqlx::query("DELETE FROM lambda_functions WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted == 0 {
            return Err(DeleteError::NotFound);
        }
        for table in ["lambda_versions", "lambda_aliases", "lambda_tags"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE function_name = $1"))
                .bind(name)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deletes one published version; refused while an alias points at it.
    pub async fn delete_version(&self, name: &str, version: i64) -> Result<(), DeleteError> {
        let mut tx = self.pool.begin().await?;
        if lock_function(&mut tx, name).await?.is_none() {
            return Err(DeleteError::NotFound);
        }
        let alias = sqlx::query(
            "SELECT name FROM lambda_aliases WHERE function_name = $1 AND function_version = $2",
        )
        .bind(name)
        .bind(version.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(alias) = alias {
            return Err(DeleteError::AliasReferences(alias.try_get(0)?));
        }
        let attached = sqlx::query(
            "SELECT 1 FROM cf_lambda_associations WHERE function_name = $1 AND version = $2",
        )
        .bind(name)
        .bind(version)
        .fetch_optional(&mut *tx)
        .await?;
        if attached.is_some() {
            return Err(DeleteError::Replicated(Some(version)));
        }
        let deployed = self.deployed_version().await?;
        if replicas_pending(&mut tx, name, Some(version), deployed)
            .await?
            .is_some()
        {
            return Err(DeleteError::Replicated(Some(version)));
        }
        let deleted =
            sqlx::query("DELETE FROM lambda_versions WHERE function_name = $1 AND version = $2")
                .bind(name)
                .bind(version)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if deleted == 0 {
            return Err(DeleteError::NotFound);
        }
        tx.commit().await?;
        Ok(())
    }

    /// The function's tags.
    pub async fn tags(&self, name: &str) -> Result<BTreeMap<String, String>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT tag_key, tag_value FROM lambda_tags WHERE function_name = $1 ORDER BY tag_key",
        )
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Adds or replaces tags; `false` when there is no such function.
    pub async fn tag(
        &self,
        name: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        if lock_function(&mut tx, name).await?.is_none() {
            return Ok(false);
        }
        for (k, v) in tags {
            sqlx::query(
                "INSERT INTO lambda_tags (function_name, tag_key, tag_value) VALUES ($1, $2, $3) \
                 ON CONFLICT (function_name, tag_key) DO UPDATE SET tag_value = excluded.tag_value",
            )
            .bind(name)
            .bind(k)
            .bind(v)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Removes tags; `false` when there is no such function.
    pub async fn untag(&self, name: &str, keys: &[String]) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        if lock_function(&mut tx, name).await?.is_none() {
            return Ok(false);
        }
        for k in keys {
            sqlx::query("DELETE FROM lambda_tags WHERE function_name = $1 AND tag_key = $2")
                .bind(name)
                .bind(k)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}

/// The first version of `name` (or just `version`) whose association was removed by a change
/// some live edge has not applied yet (`deployed`: [`Store::deployed_version`]): its replicas
/// may still run.
async fn replicas_pending(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    name: &str,
    version: Option<i64>,
    deployed: Option<i64>,
) -> Result<Option<i64>, sqlx::Error> {
    let Some(deployed) = deployed else {
        return Ok(None);
    };
    let row = sqlx::query(
        "SELECT version FROM cf_lambda_releases WHERE function_name = $1 \
         AND ($2 < 0 OR version = $2) AND released_version > $3 ORDER BY version",
    )
    .bind(name)
    .bind(version.unwrap_or(-1))
    .bind(deployed)
    .fetch_optional(&mut **tx)
    .await?;
    row.map(|r| r.try_get(0)).transpose()
}
