-- Alerts the watchers raised: at most one open alert per environment and subject, so of
-- several replicas watching the same database exactly one opens it (the unique index), one
-- sends each reminder and one resolves it (conditional updates).
CREATE TABLE dbops_alerts (
    id bigserial PRIMARY KEY,
    environment text NOT NULL,
    subject text NOT NULL CHECK (subject IN ('dirty', 'mismatch')),
    version bigint NOT NULL,
    opened_at timestamptz NOT NULL,
    notified_at timestamptz NOT NULL,   -- the alert or its latest reminder
    reminders integer NOT NULL DEFAULT 0,
    details jsonb NOT NULL DEFAULT '{}',
    channel text,
    message_ts text,
    resolved_at timestamptz,
    resolved_by text,               -- who ran the command that fixed it (null: not through dbops)
    resolved_with text              -- that command
);
CREATE UNIQUE INDEX dbops_alerts_one_open ON dbops_alerts (environment, subject) WHERE resolved_at IS NULL;
