//! Edge tokens and the edges the control plane knows: stored in `edge_tokens` and
//! `cf_edge_acks` (migration 0003), shared by every control process on one database.

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::store::Store;

/// Prefix of every edge token, so a leaked one is recognizable.
const TOKEN_PREFIX: &str = "ledge_et_";

/// Why a token operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// A token with that name exists.
    #[error("an edge token named {0:?} exists")]
    NameTaken(String),
    /// No token has that name or value.
    #[error("no edge token {0:?}")]
    NotFound(String),
    /// The name is empty or too long.
    #[error("invalid token name {0:?} (1 to 64 characters: letters, digits, '-', '_', '.')")]
    BadName(String),
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// One edge token, without its secret.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TokenInfo {
    /// Operator-chosen (or generated) name.
    pub name: String,
    /// Unix seconds of creation.
    pub created_at: i64,
}

/// One edge as the control plane knows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct EdgeInfo {
    /// The edge's location name (its identity).
    pub pop: String,
    /// Where it serves viewers, as it reported.
    pub address: Option<String>,
    /// The name of the token it authenticated with.
    pub token: Option<String>,
    /// The config version it applied last.
    pub applied_version: i64,
    /// How many versions it is behind the current one.
    pub lag: i64,
    /// Whether it was heard from within the heartbeat timeout.
    pub live: bool,
    /// Unix seconds of its last contact.
    pub last_seen: i64,
    /// What went wrong with its last apply, if anything.
    pub last_error: Option<String>,
}

/// Hex SHA-256 of a token: what the table keeps.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Creates a token named `name` (generated when `None`); returns `(name, token)`. The token
/// itself is not stored and cannot be shown again.
pub async fn create_token(
    store: &Store,
    name: Option<&str>,
) -> Result<(String, String), TokenError> {
    let secret = format!(
        "{TOKEN_PREFIX}{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let name = match name {
        Some(n) => n.to_owned(),
        None => format!("edge-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
    };
    if !valid_name(&name) {
        return Err(TokenError::BadName(name));
    }
    let done = sqlx::query(
        "INSERT INTO edge_tokens (name, token_sha256, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(&name)
    .bind(token_hash(&secret))
    .bind(now_secs())
    .execute(store.pool())
    .await?;
    if done.rows_affected() == 0 {
        return Err(TokenError::NameTaken(name));
    }
    Ok((name, secret))
}

/// Every token, by name.
pub async fn list_tokens(store: &Store) -> Result<Vec<TokenInfo>, TokenError> {
    let rows = sqlx::query("SELECT name, created_at FROM edge_tokens ORDER BY name")
        .fetch_all(store.pool())
        .await?;
    rows.iter()
        .map(|r| {
            Ok(TokenInfo {
                name: r.try_get(0)?,
                created_at: r.try_get(1)?,
            })
        })
        .collect()
}

/// Revokes the token with this name, or this value; returns its name.
pub async fn revoke_token(store: &Store, name_or_token: &str) -> Result<String, TokenError> {
    let row =
        sqlx::query("DELETE FROM edge_tokens WHERE name = $1 OR token_sha256 = $2 RETURNING name")
            .bind(name_or_token)
            .bind(token_hash(name_or_token))
            .fetch_optional(store.pool())
            .await?;
    match row {
        Some(r) => Ok(r.try_get(0)?),
        None => Err(TokenError::NotFound(name_or_token.to_owned())),
    }
}

/// `(token hash, name)` of every valid token.
pub async fn token_hashes(store: &Store) -> Result<Vec<(String, String)>, sqlx::Error> {
    let rows = sqlx::query("SELECT token_sha256, name FROM edge_tokens")
        .fetch_all(store.pool())
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

/// Records contact from edge `pop` (registering it with applied version 0 when new).
pub async fn heartbeat(
    conn: &mut sqlx::AnyConnection,
    pop: &str,
    address: Option<&str>,
    token: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO cf_edge_acks (edge_name, acked_version, last_seen, address, token_name) \
         VALUES ($1, 0, $2, $3, $4) ON CONFLICT (edge_name) DO UPDATE SET \
         last_seen = excluded.last_seen, address = COALESCE(excluded.address, cf_edge_acks.address), \
         token_name = excluded.token_name",
    )
    .bind(pop)
    .bind(now_secs())
    .bind(address)
    .bind(token)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records what edge `pop` applied (`version`), or why it could not apply a newer one.
pub async fn ack(
    conn: &mut sqlx::AnyConnection,
    pop: &str,
    address: Option<&str>,
    token: &str,
    version: i64,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO cf_edge_acks (edge_name, acked_version, last_seen, address, token_name, last_error) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (edge_name) DO UPDATE SET \
         acked_version = excluded.acked_version, last_seen = excluded.last_seen, \
         address = COALESCE(excluded.address, cf_edge_acks.address), \
         token_name = excluded.token_name, last_error = excluded.last_error",
    )
    .bind(pop)
    .bind(version)
    .bind(now_secs())
    .bind(address)
    .bind(token)
    .bind(error)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Every edge the control plane knows, by pop.
pub async fn list_edges(store: &Store) -> Result<Vec<EdgeInfo>, sqlx::Error> {
    let current = store.config_version().await?;
    let cutoff = now_secs() - store.edge_liveness_secs();
    let rows = sqlx::query(
        "SELECT edge_name, address, token_name, acked_version, last_seen, last_error \
         FROM cf_edge_acks ORDER BY edge_name",
    )
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|r| {
            let applied: i64 = r.try_get("acked_version")?;
            let last_seen: i64 = r.try_get("last_seen")?;
            Ok(EdgeInfo {
                pop: r.try_get("edge_name")?,
                address: r.try_get("address")?,
                token: r.try_get("token_name")?,
                applied_version: applied,
                lag: (current - applied).max(0),
                live: last_seen >= cutoff,
                last_seen,
                last_error: r.try_get("last_error")?,
            })
        })
        .collect()
}

/// Forgets edges offline for longer than `older_than_secs` (they re-register on contact).
pub async fn forget_edges(store: &Store, older_than_secs: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM cf_edge_acks WHERE last_seen < $1")
        .bind(now_secs() - older_than_secs)
        .execute(store.pool())
        .await?;
    Ok(done.rows_affected())
}
