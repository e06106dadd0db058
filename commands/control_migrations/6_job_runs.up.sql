-- Scheduled jobs' runs: one row per job, environment, occurrence and phase. The unique key
-- is the claim: of several replicas ticking at once, exactly one inserts the row and does
-- the phase (posts the notice, runs the cleanup); the others see the conflict and skip it.
CREATE TABLE dbops_job_runs (
    id bigserial PRIMARY KEY,
    job text NOT NULL,
    environment text NOT NULL,
    occurrence timestamptz NOT NULL,
    phase text NOT NULL CHECK (phase IN ('notice', 'run')),
    claimed_by text NOT NULL,          -- the replica (host:pid) that did it
    claimed_at timestamptz NOT NULL,
    finished_at timestamptz,
    outcome text,                      -- done, no-change, failed (null: cut off before it finished)
    caught_up boolean NOT NULL DEFAULT false,  -- run late: no replica was running at the occurrence
    UNIQUE (job, environment, occurrence, phase)
);
