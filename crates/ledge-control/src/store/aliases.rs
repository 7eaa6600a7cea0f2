//! Aliases: named pointers at a function version.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::Store;

/// One stored alias.
#[derive(Debug, Clone, PartialEq)]
pub struct AliasRow {
    /// The function's name.
    pub function_name: String,
    /// The alias name.
    pub name: String,
    /// `$LATEST` or a version number.
    pub function_version: String,
    /// Free text.
    pub description: String,
    /// The `RoutingConfig` as JSON, if any.
    pub routing_config: Option<String>,
    /// Changes on every write.
    pub revision_id: String,
}

/// Alias operations' failures.
#[derive(Debug, thiserror::Error)]
pub enum AliasError {
    /// No such function.
    #[error("function not found")]
    FunctionNotFound,
    /// No such alias.
    #[error("alias not found")]
    AliasNotFound,
    /// The version the alias should point at does not exist.
    #[error("version not found")]
    VersionNotFound,
    /// An alias of that name exists.
    #[error("alias already exists")]
    AlreadyExists,
    /// The caller's RevisionId is not the alias's.
    #[error("revision id does not match")]
    RevisionMismatch,
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

const COLUMNS: &str =
    "function_name, name, function_version, description, routing_config, revision_id";

fn decode(row: &AnyRow) -> Result<AliasRow, sqlx::Error> {
    Ok(AliasRow {
        function_name: row.try_get("function_name")?,
        name: row.try_get("name")?,
        function_version: row.try_get("function_version")?,
        description: row.try_get("description")?,
        routing_config: row.try_get("routing_config")?,
        revision_id: row.try_get("revision_id")?,
    })
}

fn version_number(v: &str) -> i64 {
    if v == "$LATEST" {
        0
    } else {
        v.parse().unwrap_or(-1)
    }
}

// === impl Store ===

impl Store {
    async fn version_exists(
        conn: &mut sqlx::AnyConnection,
        function: &str,
        version: &str,
    ) -> Result<bool, sqlx::Error> {
        let row =
            sqlx::query("SELECT 1 FROM lambda_versions WHERE function_name = $1 AND version = $2")
                .bind(function)
                .bind(version_number(version))
                .fetch_optional(conn)
                .await?;
        Ok(row.is_some())
    }

    /// Creates an alias (its revision id is assigned here).
    pub async fn create_alias(&self, mut alias: AliasRow) -> Result<AliasRow, AliasError> {
        let mut tx = self.pool.begin().await?;
        let locked =
            sqlx::query("UPDATE lambda_functions SET last_version = last_version WHERE name = $1")
                .bind(&alias.function_name)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if locked == 0 {
            return Err(AliasError::FunctionNotFound);
        }
        if !Self::version_exists(&mut tx, &alias.function_name, &alias.function_version).await? {
            return Err(AliasError::VersionNotFound);
        }
        alias.revision_id = uuid::Uuid::new_v4().to_string();
        let inserted = sqlx::query(&format!(
            "INSERT INTO lambda_aliases ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (function_name, name) DO NOTHING"
        ))
        .bind(&alias.function_name)
        .bind(&alias.name)
        .bind(&alias.function_version)
        .bind(&alias.description)
        .bind(alias.routing_config.clone())
        .bind(&alias.revision_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Err(AliasError::AlreadyExists);
        }
        tx.commit().await?;
        Ok(alias)
    }

    /// One alias.
    pub async fn get_alias(
        &self,
        function: &str,
        name: &str,
    ) -> Result<Option<AliasRow>, sqlx::Error> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM lambda_aliases WHERE function_name = $1 AND name = $2"
        ))
        .bind(function)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(decode).transpose()
    }

    /// Aliases of a function after `after` by name, optionally only those at `version`.
    pub async fn list_aliases(
        &self,
        function: &str,
        version: Option<&str>,
        after: &str,
        limit: i64,
    ) -> Result<Vec<AliasRow>, sqlx::Error> {
        let mut sql =
            format!("SELECT {COLUMNS} FROM lambda_aliases WHERE function_name = $1 AND name > $2");
        if version.is_some() {
            sql.push_str(" AND function_version = $4");
        }
        sql.push_str(" ORDER BY name LIMIT $3");
        let mut query = sqlx::query(&sql).bind(function).bind(after).bind(limit);
        if let Some(v) = version {
            query = query.bind(v);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(decode).collect()
    }

    /// Replaces an alias with `new` if its revision is still `base_revision`.
    pub async fn update_alias(
        &self,
        base_revision: &str,
        mut new: AliasRow,
    ) -> Result<AliasRow, AliasError> {
        let mut tx = self.pool.begin().await?;
        // Write first (the function's lock), so SQLite never upgrades a read transaction.
        let locked =
            sqlx::query("UPDATE lambda_functions SET last_version = last_version WHERE name = $1")
                .bind(&new.function_name)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if locked == 0 {
            return Err(AliasError::FunctionNotFound);
        }
        if !Self::version_exists(&mut tx, &new.function_name, &new.function_version).await? {
            return Err(AliasError::VersionNotFound);
        }
        new.revision_id = uuid::Uuid::new_v4().to_string();
        let updated = sqlx::query(
            "UPDATE lambda_aliases SET function_version = $1, description = $2, \
             routing_config = $3, revision_id = $4 \
             WHERE function_name = $5 AND name = $6 AND revision_id = $7",
        )
        .bind(&new.function_version)
        .bind(&new.description)
        .bind(new.routing_config.clone())
        .bind(&new.revision_id)
        .bind(&new.function_name)
        .bind(&new.name)
        .bind(base_revision)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            return Err(AliasError::RevisionMismatch);
        }
        tx.commit().await?;
        Ok(new)
    }

    /// Deletes an alias; `false` when there was none.
    pub async fn delete_alias(&self, function: &str, name: &str) -> Result<bool, sqlx::Error> {
        let deleted =
            sqlx::query("DELETE FROM lambda_aliases WHERE function_name = $1 AND name = $2")
                .bind(function)
                .bind(name)
                .execute(&self.pool)
                .await?
                .rows_affected();
        Ok(deleted > 0)
    }
}
