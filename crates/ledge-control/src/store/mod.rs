//! The control plane's database: one data layer on sqlx for SQLite and PostgreSQL.
//!
//! # Design
//! Queries go through sqlx's `Any` driver, so there is one set of SQL and one set of
//! migrations for both engines. The SQL sticks to what both speak: `$N` placeholders, TEXT and
//! BIGINT columns, `INSERT … ON CONFLICT`, `UPDATE … RETURNING`.
//!
//! Concurrency is handled in the database, never in memory, so several control planes can
//! share one PostgreSQL:
//! - Writes to a function start with a no-op `UPDATE` of its row. On PostgreSQL that takes the
//!   row lock; on SQLite it takes the write lock before anything is read, so a transaction
//!   never has to upgrade a read lock (which SQLite answers with "database is locked").
//! - `$LATEST` updates are also optimistic: `UPDATE … WHERE revision_id = $old`, so a lost
//!   update shows as zero rows affected.
//! - Version numbers come from `lambda_functions.last_version`, incremented inside that
//!   transaction: distinct, consecutive, never reused.

mod aliases;
pub mod cloudfront;
mod functions;
pub mod policies;

use std::borrow::Cow;
use std::str::FromStr;

use futures_util::future::BoxFuture;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::{MigrateDatabase, Migration, MigrationSource, MigrationType, Migrator};
use sqlx::{Any, AnyPool, Row};

pub use aliases::{AliasError, AliasRow};
pub use cloudfront::{
    ChangeDistributionError, CreateDistributionError, CreateInvalidationError, DistributionRow,
    DistributionWrite, InvalidationRow,
};
pub use functions::{
    CreateFunctionError, DeleteError, PublishError, UpdateError, VersionConfig, VersionRow,
};
pub use policies::{PolicyError, PolicyKind, PolicyRow};

/// Which engine a [`Store`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// SQLite, a file in the data directory (WAL mode).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The URL names neither `sqlite:` nor `postgres:`.
    #[error("unsupported database URL (expected sqlite://… or postgres://…): {0}")]
    UnsupportedUrl(String),
    /// Connecting, creating the database or running migrations failed.
    #[error("cannot open the database: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// A handle on the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    engine: Engine,
    /// Edges silent for longer than this (seconds) are offline and hold no deployment back.
    edge_liveness_secs: i64,
}

/// The migrations, embedded in the binary.
#[derive(Debug)]
struct Embedded;

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(self) -> BoxFuture<'s, Result<Vec<Migration>, sqlx::error::BoxDynError>> {
        Box::pin(async {
            Ok(vec![
                Migration::new(
                    1,
                    Cow::Borrowed("lambda"),
                    MigrationType::Simple,
                    Cow::Borrowed(include_str!("../../migrations/0001_lambda.sql")),
                    false,
                ),
                Migration::new(
                    2,
                    Cow::Borrowed("cloudfront"),
                    MigrationType::Simple,
                    Cow::Borrowed(include_str!("../../migrations/0002_cloudfront.sql")),
                    false,
                ),
                Migration::new(
                    3,
                    Cow::Borrowed("edges"),
                    MigrationType::Simple,
                    Cow::Borrowed(include_str!("../../migrations/0003_edges.sql")),
                    false,
                ),
                Migration::new(
                    4,
                    Cow::Borrowed("replicas"),
                    MigrationType::Simple,
                    Cow::Borrowed(include_str!("../../migrations/0004_replicas.sql")),
                    false,
                ),
            ])
        })
    }
}

// === impl Store ===

impl Store {
    /// Opens (creating if needed) the database at `url` and brings its schema up to date.
    pub async fn open(url: &str) -> Result<Self, OpenError> {
        sqlx::any::install_default_drivers();
        let engine: Engine = url.parse()?;
        if !Any::database_exists(url).await? {
            // Several control planes may race to create it; losing that race is fine.
            if let Err(e) = Any::create_database(url).await {
                if !Any::database_exists(url).await? {
                    return Err(e.into());
                }
            }
        }
        let max = match engine {
            Engine::Sqlite => 8,
            Engine::Postgres => 16,
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if engine == Engine::Sqlite {
                        // WAL lets readers run beside the one writer; waits instead of
                        // failing when another connection holds the write lock.
                        sqlx::query("PRAGMA journal_mode = WAL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA busy_timeout = 30000")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA synchronous = NORMAL")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await?;
        let migrator = Migrator::new(Embedded).await?;
        migrator.run(&pool).await?;
        Ok(Self {
            pool,
            engine,
            edge_liveness_secs: cloudfront::EDGE_LIVENESS_SECS,
        })
    }

    /// The same store, counting edges silent for longer than `timeout` as offline.
    pub fn with_edge_liveness(mut self, timeout: std::time::Duration) -> Self {
        self.edge_liveness_secs = i64::try_from(timeout.as_secs().max(1)).unwrap_or(i64::MAX);
        self
    }

    /// Seconds of silence after which an edge counts as offline.
    pub fn edge_liveness_secs(&self) -> i64 {
        self.edge_liveness_secs
    }

    /// The engine this store runs on.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The underlying pool, for other parts of the control plane with tables of their own.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Hex SHA-256 keys of every package some version still references.
    pub async fn referenced_code(&self) -> Result<std::collections::HashSet<String>, sqlx::Error> {
        let rows = sqlx::query("SELECT DISTINCT code_hex FROM lambda_versions")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| r.try_get::<String, _>(0)).collect()
    }

    /// `(total stored code bytes, function count)` for GetAccountSettings.
    pub async fn usage(&self) -> Result<(i64, i64), sqlx::Error> {
        let row: AnyRow = sqlx::query(
            "SELECT CAST(COALESCE(SUM(code_size), 0) AS BIGINT), \
             CAST((SELECT COUNT(*) FROM lambda_functions) AS BIGINT) FROM lambda_versions",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get(0)?, row.try_get(1)?))
    }
}

impl FromStr for Engine {
    type Err = OpenError;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Self::Postgres)
        } else {
            Err(OpenError::UnsupportedUrl(url.to_owned()))
        }
    }
}
