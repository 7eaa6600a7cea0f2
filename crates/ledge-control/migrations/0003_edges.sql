-- Replication: edge tokens, and what the control plane knows of each edge. Same rules as 0001:
-- TEXT and BIGINT columns only, one set of SQL for SQLite and PostgreSQL.

-- Tokens edges authenticate with. Only a SHA-256 (hex) of each token is kept; revoking deletes
-- the row.
CREATE TABLE edge_tokens (
    name TEXT PRIMARY KEY,
    token_sha256 TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

-- Beside cf_edge_acks (keyed by the edge's pop): where it serves, with which token, and the
-- last error it reported (NULL when its last apply succeeded).
ALTER TABLE cf_edge_acks ADD COLUMN address TEXT;
ALTER TABLE cf_edge_acks ADD COLUMN token_name TEXT;
ALTER TABLE cf_edge_acks ADD COLUMN last_error TEXT;
