-- CloudFront: distributions, policies, invalidations, tags. Same rules as 0001: TEXT and
-- BIGINT columns only, one set of SQL for SQLite and PostgreSQL.

-- The global config version: one row, bumped by every change to anything an edge serves
-- (distributions, policies, invalidations, deletions). Every CloudFront write starts by
-- bumping it, which also serializes CloudFront writes (row lock on PostgreSQL, the write
-- lock on SQLite). Each changed row records the version of its change.
CREATE TABLE cf_config_version (
    id BIGINT PRIMARY KEY,
    version BIGINT NOT NULL
);
INSERT INTO cf_config_version (id, version) VALUES (1, 0);

CREATE TABLE cf_distributions (
    id TEXT PRIMARY KEY,
    -- Creation order, for ListDistributions.
    seq BIGINT NOT NULL UNIQUE,
    caller_reference TEXT NOT NULL UNIQUE,
    domain_name TEXT NOT NULL,
    etag TEXT NOT NULL,
    -- The DistributionConfig in botocore's JSON form, defaults filled in.
    config TEXT NOT NULL,
    enabled BIGINT NOT NULL,
    last_modified TEXT NOT NULL,
    -- cf_config_version.version of the last change of this distribution.
    config_version BIGINT NOT NULL
);

-- Aliases (CNAMEs) in use: unique across distributions.
CREATE TABLE cf_aliases (
    alias TEXT PRIMARY KEY,
    distribution_id TEXT NOT NULL
);

-- Lambda versions associated with a distribution (DeleteFunction is refused while here).
CREATE TABLE cf_lambda_associations (
    distribution_id TEXT NOT NULL,
    function_name TEXT NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (distribution_id, function_name, version)
);
CREATE INDEX cf_lambda_associations_function ON cf_lambda_associations (function_name, version);

-- Cache and origin request policies a distribution names (deletion refused while here).
CREATE TABLE cf_policy_uses (
    distribution_id TEXT NOT NULL,
    policy_id TEXT NOT NULL,
    PRIMARY KEY (distribution_id, policy_id)
);
CREATE INDEX cf_policy_uses_policy ON cf_policy_uses (policy_id);

-- Custom cache policies (kind 'cache') and origin request policies (kind 'origin-request').
CREATE TABLE cf_policies (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    seq BIGINT NOT NULL,
    etag TEXT NOT NULL,
    config TEXT NOT NULL,
    last_modified TEXT NOT NULL,
    config_version BIGINT NOT NULL,
    UNIQUE (kind, name)
);

CREATE TABLE cf_invalidations (
    id TEXT PRIMARY KEY,
    distribution_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    caller_reference TEXT NOT NULL,
    -- The Paths list as JSON (botocore's form: {Quantity, Items}).
    paths TEXT NOT NULL,
    create_time TEXT NOT NULL,
    config_version BIGINT NOT NULL,
    UNIQUE (distribution_id, caller_reference)
);
CREATE INDEX cf_invalidations_distribution ON cf_invalidations (distribution_id, seq);

CREATE TABLE cf_tags (
    distribution_id TEXT NOT NULL,
    tag_key TEXT NOT NULL,
    tag_value TEXT NOT NULL,
    PRIMARY KEY (distribution_id, tag_key)
);

-- What each edge has applied; the replication feed fills it. A change (row config_version V)
-- is deployed when every live edge acked a version >= V. No edges: everything is deployed.
CREATE TABLE cf_edge_acks (
    edge_name TEXT PRIMARY KEY,
    acked_version BIGINT NOT NULL,
    -- Unix seconds of the edge's last contact; edges silent too long stop counting.
    last_seen BIGINT NOT NULL
);
