-- Replicas: the config version at which each function version lost an association. Until
-- every live edge has applied that version, the version's replicas may still run somewhere,
-- and DeleteFunction on it is refused (as Lambda does, for much longer).
CREATE TABLE cf_lambda_releases (
    function_name TEXT NOT NULL,
    version BIGINT NOT NULL,
    released_version BIGINT NOT NULL,
    PRIMARY KEY (function_name, version)
);
