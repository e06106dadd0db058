-- The expected schema of a version, built once in a scratch database and kept here. The key
-- is the sha256 of the migration files up to that version (names and bytes), so an edited
-- file is a new key: a cached schema is never that of files that are no longer there.
CREATE TABLE dbops_schema_cache (
    files_sha256 text PRIMARY KEY,
    version bigint NOT NULL,
    server_major integer NOT NULL,     -- the PostgreSQL it was built on
    built_on text NOT NULL,            -- scratch_database_url, the managed server, or embedded
    schema jsonb NOT NULL,
    built_at timestamptz NOT NULL DEFAULT now(),
    uses bigint NOT NULL DEFAULT 0,    -- drift checks answered from this row since it was built
    used_at timestamptz
);
