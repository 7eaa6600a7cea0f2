-- Lambda functions, versions, aliases and tags. One set of SQL for SQLite and PostgreSQL:
-- only TEXT and BIGINT columns, so both engines (and sqlx's Any driver) read them alike.

CREATE TABLE lambda_functions (
    name TEXT PRIMARY KEY,
    -- The highest version number ever allocated (0: none). Never decreases, so numbers
    -- are never reused, even after a version or the newest version is deleted.
    last_version BIGINT NOT NULL,
    -- $LATEST's RevisionId when the newest version was cut: publishing again with an
    -- unchanged $LATEST returns that version instead of cutting a new one.
    published_revision TEXT,
    created_at BIGINT NOT NULL
);

CREATE TABLE lambda_versions (
    function_name TEXT NOT NULL,
    -- 0 is $LATEST, 1.. the published versions.
    version BIGINT NOT NULL,
    revision_id TEXT NOT NULL,
    -- Hex SHA-256 of the package: the blob's key.
    code_hex TEXT NOT NULL,
    code_size BIGINT NOT NULL,
    -- The rest of the configuration, as JSON.
    config TEXT NOT NULL,
    PRIMARY KEY (function_name, version)
);

CREATE INDEX lambda_versions_code ON lambda_versions (code_hex);

CREATE TABLE lambda_aliases (
    function_name TEXT NOT NULL,
    name TEXT NOT NULL,
    function_version TEXT NOT NULL,
    description TEXT NOT NULL,
    routing_config TEXT,
    revision_id TEXT NOT NULL,
    PRIMARY KEY (function_name, name)
);

CREATE TABLE lambda_tags (
    function_name TEXT NOT NULL,
    tag_key TEXT NOT NULL,
    tag_value TEXT NOT NULL,
    PRIMARY KEY (function_name, tag_key)
);
