-- Every migration file dbops applied or reverted: its checksum, who, when and how long. The
-- newest row of a version says whether the file is applied as recorded (direction 'up') and
-- with which bytes, so status can tell a file edited after it was applied.
CREATE TABLE dbops_applied_files (
    id bigserial PRIMARY KEY,
    environment text NOT NULL,
    version bigint NOT NULL,
    name text NOT NULL,
    filename text NOT NULL,
    direction text NOT NULL CHECK (direction IN ('up', 'down')),
    sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    actor text NOT NULL,
    operation text NOT NULL,           -- up, down, goto (or rollback's steps)
    at timestamptz NOT NULL,
    duration_ms double precision NOT NULL
);
CREATE INDEX dbops_applied_files_newest ON dbops_applied_files (environment, version, id DESC);
