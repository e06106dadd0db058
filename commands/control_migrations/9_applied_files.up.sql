-- Every migration file dbops applied or reverted: its checksum, who, when and how long. The
-- newest row of a version says whether the file is applied as recorded (direction 'up') and
-- with which bytes, so status can tell a file edited after it was applied. ``previous`` is the
-- version the database was at just before: an up from it to ``version`` ran every file between,
-- so a file found between them later was not there then (it is out of order).
CREATE TABLE dbops_applied_files (
    id bigserial PRIMARY KEY,
    environment text NOT NULL,
    version bigint NOT NULL,
    previous bigint NOT NULL,          -- the version before this file ran (-1: none)
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
