-- The rollback log: why each rollback was done, by whom, approved by whom, how, and what the
-- checks afterwards found (the guide's "Document Rollback Reasons", kept where a restore cannot erase it).
CREATE TABLE dbops_rollbacks (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    environment text NOT NULL,
    method text NOT NULL,
    reason text NOT NULL,
    requester text NOT NULL,
    approved_by text,
    version_before bigint NOT NULL,
    dirty_before boolean NOT NULL,
    version_after bigint NOT NULL,
    dirty_after boolean NOT NULL,
    outcome text NOT NULL,
    checks jsonb NOT NULL
);
