-- Restore drills: each drill of a snapshot, passed or failed, with how long its restore took
-- and how big the snapshot was (the restore-time estimate scales the last one by size).
-- The alert subjects gain 'drill' (a failed drill) and 'drill_overdue' (none passed lately),
-- extended in place as migration 10 does, so subjects added elsewhere stay allowed.
CREATE TABLE dbops_drills (
    id bigserial PRIMARY KEY,
    environment text NOT NULL,
    snapshot text NOT NULL,
    drilled_at timestamptz NOT NULL,
    passed boolean NOT NULL,
    restore_ms double precision,       -- null: the restore itself failed
    size bigint NOT NULL,              -- the snapshot's bytes
    actor text NOT NULL,
    detail text NOT NULL DEFAULT ''    -- the first failed check, for a failed drill
);
CREATE INDEX dbops_drills_by_snapshot ON dbops_drills (environment, snapshot, drilled_at DESC);
CREATE INDEX dbops_drills_by_time ON dbops_drills (environment, drilled_at DESC);

DO $$
DECLARE
    c record;
BEGIN
    FOR c IN SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint
             WHERE conrelid = 'dbops_alerts'::regclass AND contype = 'c' AND pg_get_constraintdef(oid) LIKE '%subject%'
    LOOP
        EXECUTE format('ALTER TABLE dbops_alerts DROP CONSTRAINT %I', c.conname);
        EXECUTE format('ALTER TABLE dbops_alerts ADD CONSTRAINT %I %s', c.conname,
                       replace(c.def, 'ARRAY[', 'ARRAY[''drill''::text, ''drill_overdue''::text, '));
    END LOOP;
END $$;
